package sim

import (
	"hash/fnv"
	"math"
	"math/bits"
	"math/rand/v2"
	"time"

	"github.com/latchnvr/latch/model"
)

// event is one scheduled action of one actor. Events are ordered by
// (at, seq); seq is the order of scheduling, so ties never depend on
// anything but the run itself.
type event struct {
	at    model.Instant
	seq   uint64
	actor int32
	op    uint8
	arg   int32
	tok   int32
}

func (a *event) before(b *event) bool {
	return a.at < b.at || (a.at == b.at && a.seq < b.seq)
}

// queue is a binary min-heap of events. It is typed (no interface boxing)
// and reuses its array, so scheduling allocates nothing in steady state.
// Events pop in (at, seq) order whatever the heap's layout, since no two
// events share a seq. (A 4-ary heap measured slower: its child comparisons
// branch unpredictably.)
type queue []event

func (q *queue) push(e event) {
	h := append(*q, e)
	i := len(h) - 1
	for i > 0 {
		p := (i - 1) / 2
		if !h[i].before(&h[p]) {
			break
		}
		h[i], h[p] = h[p], h[i]
		i = p
	}
	*q = h
}

// down restores the heap below node i.
func (q queue) down(i int) {
	n := len(q)
	for {
		c := 2*i + 1
		if c >= n {
			return
		}
		m := c
		if r := c + 1; r < n && q[r].before(&q[c]) {
			m = r
		}
		if !q[m].before(&q[i]) {
			return
		}
		q[i], q[m] = q[m], q[i]
		i = m
	}
}

// removeTop drops the earliest event.
func (q *queue) removeTop() {
	h := *q
	n := len(h) - 1
	h[0] = h[n]
	*q = h[:n]
	(*q).down(0)
}

// replaceTop puts e where the earliest event was: one sift instead of a
// pop and a push, for the common case of an actor rescheduling itself.
func (q queue) replaceTop(e event) {
	q[0] = e
	q.down(0)
}

// actor is anything that acts on the simulated device: a population of
// users, an attack, the helpdesk, clock chaos, cameras. fire runs one of
// its events at s.now.
type actor interface {
	fire(s *sim, op uint8, arg, tok int32)
}

// finisher is an actor with something to settle when the run ends (open
// lockout episodes).
type finisher interface {
	finish(s *sim)
}

// hasher folds the decision trace into 64 bits: every attempt with its
// decision, and every operation. Two runs with equal hashes made the same
// decisions in the same order (INV-DETERMINISM).
type hasher struct{ h uint64 }

func (h *hasher) add(x uint64) {
	h.h = bits.RotateLeft64(h.h^(x*0x9E3779B97F4A7C15), 31) * 0x94D049BB133111EB
}

// Operation codes folded into the hash.
const (
	hashAttempt = 1 + iota
	hashUnlock
	hashReset
	hashRestart
	hashWallJump
)

// sim is one run: single goroutine, one seed, one event queue.
type sim struct {
	now, end  model.Instant
	q         queue
	seq       uint64
	seed      uint64
	eng       Engine
	rec       SegmentRecorder
	uni       *Universe
	actors    []actor
	m         *collector
	tr        *traceOut
	h         hasher
	wallStart int64
	wallErr   int64 // the device's wall clock minus true time
	events    int64
	attempts  int64
	// topDone: the event at the top of the queue has run and its slot
	// may take the next scheduled event.
	topDone  bool
	cursor   []uint32 // per principal: the next dictionary word to try
	observe  func(model.Instant, Attempt, model.Decision)
	progress func(done, total time.Duration)

	site        *site
	helpdesk    *helpdesk
	legitAddrs  uint32
	attackAddrs uint32
}

// stream returns the PRNG of one actor (label) and one of its members
// (sub). Streams derive from the run's seed alone, not from the order
// actors were built or how far other actors got, so the same seed gives
// each user and attacker the same random choices under every policy
// (common random numbers: compare and sweep differences are the policy's).
func (s *sim) stream(label string, sub uint64) *rand.Rand {
	f := fnv.New64a()
	f.Write([]byte(label))
	return rand.New(rand.NewPCG(s.seed, splitmix(f.Sum64()^splitmix(sub))))
}

func splitmix(x uint64) uint64 {
	x += 0x9E3779B97F4A7C15
	x = (x ^ x>>30) * 0xBF58476D1CE4E5B9
	x = (x ^ x>>27) * 0x94D049BB133111EB
	return x ^ x>>31
}

func (s *sim) addActor(a actor) int32 {
	s.actors = append(s.actors, a)
	return int32(len(s.actors) - 1)
}

// at schedules an event; events at or after the end never run.
func (s *sim) at(t model.Instant, actor int32, op uint8, arg, tok int32) {
	if t < s.now {
		t = s.now
	}
	if t >= s.end {
		return
	}
	s.seq++
	e := event{at: t, seq: s.seq, actor: actor, op: op, arg: arg, tok: tok}
	if s.topDone {
		s.topDone = false
		s.q.replaceTop(e)
		return
	}
	s.q.push(e)
}

// after schedules an event d from now.
func (s *sim) after(d time.Duration, actor int32, op uint8, arg, tok int32) {
	s.at(s.now.Add(d), actor, op, arg, tok)
}

// progressEvery is how many events pass between progress reports.
const progressEvery = 1 << 16

func (s *sim) loop() {
	for len(s.q) > 0 {
		e := s.q[0]
		s.now = e.at
		s.topDone = true
		s.actors[e.actor].fire(s, e.op, e.arg, e.tok)
		if s.topDone {
			s.topDone = false
			s.q.removeTop()
		}
		s.events++
		if s.progress != nil && s.events%progressEvery == 0 {
			s.progress(time.Duration(s.now), time.Duration(s.end))
		}
	}
	s.now = s.end
	for _, a := range s.actors {
		if f, ok := a.(finisher); ok {
			f.finish(s)
		}
	}
}

// wall is the device's wall clock now (Unix nanoseconds).
func (s *sim) wall() int64 { return s.wallStart + int64(s.now) + s.wallErr }

// attempt presents one attempt to the engine and records it everywhere;
// atk numbers the attack making it (attackers only).
func (s *sim) attempt(a Attempt, c class, atk int) model.Decision {
	d := s.eng.Attempt(s.now, a)
	s.attempts++
	h := &s.h
	h.add(hashAttempt)
	h.add(uint64(s.now))
	h.add(uint64(uint32(a.User))<<32 | uint64(uint32(a.Source)))
	h.add(uint64(a.Secret))
	h.add(uint64(a.Channel) | uint64(d.Verdict)<<8 | uint64(d.Scope)<<16 | uint64(d.Modes[0])<<24 |
		uint64(d.Modes[1])<<32 | uint64(d.Modes[2])<<40 | uint64(d.Modes[3])<<48)
	h.add(uint64(d.RetryAfter))
	h.add(uint64(int64(d.Remaining)) ^ uint64(d.Effects)<<32)
	if s.tr != nil {
		s.tr.attempt(s.now, a)
	}
	if s.observe != nil {
		s.observe(s.now, a, d)
	}
	s.m.attempt(s, a, c, atk, &d)
	return d
}

func (s *sim) unlock(u Unlock) {
	s.eng.Unlock(s.now, u)
	s.h.add(hashUnlock)
	s.h.add(uint64(s.now))
	all := uint64(0)
	if u.All {
		all = 1
	}
	s.h.add(uint64(uint32(u.User))<<32 | uint64(uint32(u.Source)) ^ all<<63)
	if s.tr != nil {
		s.tr.unlock(s.now, u)
	}
}

func (s *sim) reset(u UserID, secret SecretID) {
	s.eng.Reset(s.now, u, secret)
	s.h.add(hashReset)
	s.h.add(uint64(s.now))
	s.h.add(uint64(uint32(u)))
	s.h.add(uint64(secret))
	if s.tr != nil {
		s.tr.reset(s.now, u, secret)
	}
}

func (s *sim) restart(wallBefore, wallAfter int64) {
	s.eng.Restart(s.now, wallBefore, wallAfter)
	s.h.add(hashRestart)
	s.h.add(uint64(s.now))
	s.h.add(uint64(wallAfter - wallBefore))
	s.wallErr += wallAfter - wallBefore
	if s.tr != nil {
		s.tr.restart(s.now, time.Duration(wallAfter-wallBefore))
	}
	s.m.restarts++
}

func (s *sim) wallJump(by time.Duration) {
	s.eng.WallJump(s.now, by)
	s.h.add(hashWallJump)
	s.h.add(uint64(s.now))
	s.h.add(uint64(by))
	s.wallErr += int64(by)
	if s.tr != nil {
		s.tr.wallJump(s.now, by)
	}
	s.m.wallJumps++
}

// uniform returns a duration uniformly in [lo, hi).
func uniform(r *rand.Rand, lo, hi time.Duration) time.Duration {
	if hi <= lo {
		return lo
	}
	return lo + time.Duration(r.Int64N(int64(hi-lo)))
}

// jitter returns d scaled by a factor uniform in [1−f, 1+f).
func jitter(r *rand.Rand, d time.Duration, f float64) time.Duration {
	return time.Duration(float64(d) * (1 - f + 2*f*r.Float64()))
}

// poisson draws a Poisson variate (Knuth; λ is small here: logins a day).
func poisson(r *rand.Rand, lambda float64) int {
	if lambda <= 0 {
		return 0
	}
	if lambda > 30 {
		// Normal approximation; no scenario needs more than a few dozen.
		n := int(lambda + r.NormFloat64()*math.Sqrt(lambda) + 0.5)
		return max(n, 0)
	}
	l := math.Exp(-lambda)
	k, p := 0, 1.0
	for {
		p *= r.Float64()
		if p <= l {
			return k
		}
		k++
	}
}
