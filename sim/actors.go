package sim

import (
	"fmt"
	"math"
	"math/rand/v2"
	"time"

	"github.com/latchnvr/latch/model"
)

const day = 24 * time.Hour

// Event operations.
const (
	opDay uint8 = iota
	opIntent
	opRetry
	opDevice
	opDeviceUpdate
	opHelp
	opAttack
	opStep
	opFix
	opReboot
	opSegment
)

// maxRefusals is how many refusals in one login a user waits out before
// asking the helpdesk, even when each Retry-After is within patience.
const maxRefusals = 3

// human is one legitimate user.
type human struct {
	user       UserID
	spec       *UserSpec
	rng        *rand.Rand
	sources    []SourceID
	devices    []int32
	gen        uint32 // current password generation (1 at the start)
	typoN      uint32
	forgotN    uint32
	pForget    float64 // per login
	pNewSource float64 // per login

	busy        bool // a login is in progress
	src         SourceID
	lastOK      SourceID
	refusals    int
	forgetLeft  int
	lockedSince model.Instant // -1: not locked out
	waitingHelp bool
	retryTok    int32
}

func (h *human) secret() SecretID { return MakeSecret(SecretPassword, h.user, h.gen) }

// device logs in by itself with a stored password.
type device struct {
	owner       int32
	src         SourceID
	gen         uint32
	stale       bool
	every       time.Duration
	updateAfter time.Duration
	rng         *rand.Rand
}

// site is the legitimate population: users and their devices.
type site struct {
	id      int32
	humans  []human
	devices []device
}

func newSite(s *sim, sc *Scenario, ids [][]UserID) *site {
	st := &site{}
	st.id = s.addActor(st)
	for gi := range sc.Users {
		g := &sc.Users[gi]
		activeDays := 365.0
		switch g.Days {
		case Weekdays:
			activeDays = 365.0 * 5 / 7
		case Weekends:
			activeDays = 365.0 * 2 / 7
		}
		perYear := g.LoginsPerDay * activeDays
		for ui, name := range g.names() {
			h := human{
				user:        ids[gi][ui],
				spec:        g,
				rng:         s.stream("user:"+name, 0),
				gen:         1,
				lastOK:      NoSource,
				lockedSince: -1,
			}
			if perYear > 0 {
				h.pForget = math.Min(1, g.ForgetPerYear/perYear)
				h.pNewSource = math.Min(1, g.NewSourcesPerYear/perYear)
			}
			for range g.Sources {
				h.sources = append(h.sources, s.newSource(true))
			}
			hi := int32(len(st.humans))
			for di := range g.Devices {
				ds := &g.Devices[di]
				d := device{owner: hi, src: s.newSource(true), gen: 1, stale: ds.Stale, every: ds.Every.D(),
					updateAfter: ds.UpdateAfter.D(), rng: s.stream(fmt.Sprintf("device:%s:%d", name, di), 0)}
				if d.stale {
					d.gen = 0
				}
				h.devices = append(h.devices, int32(len(st.devices)))
				st.devices = append(st.devices, d)
			}
			st.humans = append(st.humans, h)
		}
	}
	s.at(0, st.id, opDay, 0, 0)
	for i := range st.devices {
		d := &st.devices[i]
		s.at(model.Instant(uniform(d.rng, 0, d.every)), st.id, opDevice, int32(i), 0)
	}
	return st
}

func (st *site) fire(s *sim, op uint8, arg, tok int32) {
	switch op {
	case opDay:
		st.day(s)
	case opIntent:
		st.intent(s, arg)
	case opRetry:
		if h := &st.humans[arg]; h.busy && tok == h.retryTok {
			st.try(s, arg)
		}
	case opDevice:
		st.device(s, arg)
	case opDeviceUpdate:
		st.devices[arg].gen = uint32(tok)
	}
}

// day schedules each user's logins for the day starting now.
func (st *site) day(s *sim) {
	n := int64(time.Duration(s.now) / day)
	for i := range st.humans {
		h := &st.humans[i]
		g := h.spec
		if !g.Days.active(n) {
			continue
		}
		k := poisson(h.rng, g.LoginsPerDay)
		for range k {
			t := s.now.Add(g.Hours.From + uniform(h.rng, 0, g.Hours.To-g.Hours.From))
			s.at(t, st.id, opIntent, int32(i), 0)
		}
	}
	s.after(day, st.id, opDay, 0, 0)
}

func (st *site) intent(s *sim, hi int32) {
	h := &st.humans[hi]
	// Draw the same numbers whatever happens next, so users' choices do
	// not shift between policies.
	pick, fresh, forget := h.rng.IntN(len(h.sources)), h.rng.Float64(), h.rng.Float64()
	if h.busy {
		return // still trying to log in from earlier
	}
	h.busy, h.refusals = true, 0
	h.src = h.sources[pick]
	if fresh < h.pNewSource {
		h.src = s.newSource(true)
		h.sources = append(h.sources, h.src)
	}
	if forget < h.pForget {
		h.forgetLeft = h.spec.ForgetTries
	}
	st.try(s, hi)
}

func (st *site) retry(s *sim, hi int32, d time.Duration) {
	h := &st.humans[hi]
	h.retryTok++
	s.after(d, st.id, opRetry, hi, h.retryTok)
}

// try types the password once and reacts to the answer as a person does.
func (st *site) try(s *sim, hi int32) {
	h := &st.humans[hi]
	typo := h.rng.Float64() < h.spec.Typo
	secret := h.secret()
	switch {
	case h.forgetLeft > 0:
		h.forgotN++
		secret = MakeSecret(SecretForgot, h.user, h.forgotN)
	case typo:
		h.typoN++
		secret = MakeSecret(SecretTypo, h.user, h.typoN)
	}
	d := s.attempt(Attempt{User: h.user, Source: h.src, Secret: secret}, classHuman, -1)
	if d.Verdict != model.Refused && h.lockedSince >= 0 {
		s.m.lockout(s, h.user, h.lockedSince)
		h.lockedSince = -1
	}
	switch d.Verdict {
	case model.Allowed:
		h.busy, h.lastOK = false, h.src
		s.m.m.Legit.Logins++
	case model.Failed:
		if h.forgetLeft > 0 {
			if h.forgetLeft--; h.forgetLeft == 0 {
				st.recoverPassword(s, hi)
				return
			}
			st.retry(s, hi, uniform(h.rng, 10*time.Second, time.Minute))
			return
		}
		st.retry(s, hi, uniform(h.rng, 3*time.Second, 20*time.Second))
	case model.Refused:
		h.refusals++
		if h.lockedSince < 0 {
			h.lockedSince = s.now
		}
		// R-DISCLOSE: a principal lock tells an unfamiliar client to use a
		// recognised device; the user picks up the one that last worked.
		if d.Scope == model.ScopePrincipal && h.lastOK != NoSource && h.lastOK != h.src {
			h.src = h.lastOK
			st.retry(s, hi, uniform(h.rng, time.Minute, 5*time.Minute))
			return
		}
		if w := d.RetryAfter; w > 0 && w <= h.spec.Patience.D() && h.refusals <= maxRefusals {
			st.retry(s, hi, w+uniform(h.rng, 5*time.Second, 2*time.Minute))
			return
		}
		st.askHelp(s, hi, helpUnlock, d.Scope)
	}
}

// recoverPassword ends a forgotten password: a self-service reset
// (R-RESET, allowed while locked) or a request to the helpdesk.
func (st *site) recoverPassword(s *sim, hi int32) {
	h := &st.humans[hi]
	if !h.spec.SelfService {
		st.askHelp(s, hi, helpReset, model.ScopeNone)
		return
	}
	s.m.m.Legit.SelfServiceResets++
	st.newPassword(s, hi)
	st.retry(s, hi, uniform(h.rng, time.Minute, 5*time.Minute))
}

func (st *site) newPassword(s *sim, hi int32) {
	h := &st.humans[hi]
	h.gen++
	h.forgetLeft = 0
	s.reset(h.user, h.secret())
	for _, di := range h.devices {
		if d := &st.devices[di]; !d.stale && d.updateAfter > 0 {
			s.after(d.updateAfter, st.id, opDeviceUpdate, di, int32(h.gen))
		}
	}
}

func (st *site) askHelp(s *sim, hi int32, kind uint8, scope model.Scope) {
	h := &st.humans[hi]
	h.retryTok++ // no retries until the helpdesk has acted
	if h.waitingHelp {
		return
	}
	h.waitingHelp = true
	s.helpdesk.request(s, helpReq{kind: kind, human: hi, src: h.src, scope: scope})
}

// helped is the helpdesk's answer: the user tries again shortly.
func (st *site) helped(s *sim, hi int32) {
	h := &st.humans[hi]
	h.waitingHelp, h.refusals = false, 0
	if h.busy {
		st.retry(s, hi, uniform(h.rng, time.Minute, 10*time.Minute))
	}
}

func (st *site) device(s *sim, di int32) {
	d := &st.devices[di]
	h := &st.humans[d.owner]
	c := classDevice
	if d.gen != h.gen {
		c = classStale
	}
	s.attempt(Attempt{User: h.user, Source: d.src, Secret: MakeSecret(SecretPassword, h.user, d.gen)}, c, -1)
	s.after(jitter(d.rng, d.every, 0.1), st.id, opDevice, di, 0)
}

func (st *site) finish(s *sim) {
	for i := range st.humans {
		if h := &st.humans[i]; h.lockedSince >= 0 {
			s.m.lockout(s, h.user, h.lockedSince)
			h.lockedSince = -1
		}
	}
}

// Helpdesk request kinds.
const (
	helpUnlock uint8 = iota
	helpReset
)

type helpReq struct {
	kind  uint8
	human int32
	src   SourceID
	scope model.Scope
}

// helpdesk is the admin who unlocks (R-UNLOCK) or resets (R-RESET) on
// request, after a delay.
type helpdesk struct {
	id    int32
	delay time.Duration
	rng   *rand.Rand
	reqs  []helpReq
}

func newHelpdesk(s *sim, sc *Scenario) *helpdesk {
	h := &helpdesk{delay: sc.Helpdesk.Delay.D(), rng: s.stream("helpdesk", 0)}
	h.id = s.addActor(h)
	return h
}

func (h *helpdesk) request(s *sim, r helpReq) {
	h.reqs = append(h.reqs, r)
	s.after(uniform(h.rng, h.delay/2, h.delay*3/2), h.id, opHelp, int32(len(h.reqs)-1), 0)
}

func (h *helpdesk) fire(s *sim, op uint8, arg, tok int32) {
	r := h.reqs[arg]
	u := s.site.humans[r.human].user
	if r.kind == helpReset {
		s.m.m.Legit.HelpdeskResets++
		s.site.newPassword(s, r.human)
	} else {
		s.m.m.Legit.HelpdeskUnlocks++
		s.unlock(Unlock{User: u, Source: NoSource})
		if r.scope == model.ScopeSource || r.scope == model.ScopeHeld {
			s.unlock(Unlock{User: u, Source: r.src})
		}
	}
	s.site.helped(s, r.human)
}

// attack is one attack: each source attempts at its own pace.
type attack struct {
	id      int32
	index   int // in the scenario's attacks
	spec    *AttackSpec
	srcs    []SourceID
	rngs    []*rand.Rand
	pos     []int32 // per source: target rotation, or stuffing entry count
	targets []UserID
	list    []UserID   // stuffing: principals in list order
	leak    []SecretID // stuffing: the leaked secret of each
	every   time.Duration
	maxWait time.Duration
	hammer  bool
	stop    model.Instant
}

func newAttack(s *sim, i int, a *AttackSpec, targets []UserID, list []UserID, leak []SecretID) {
	at := &attack{index: i, spec: a, targets: targets, list: list, leak: leak, every: a.Every.D(), maxWait: a.MaxWait.D(),
		hammer: a.OnRefusal == "hammer", stop: s.end}
	if a.Stop > 0 {
		at.stop = model.Instant(a.Stop)
	}
	at.id = s.addActor(at)
	s.m.m.Attacks = append(s.m.m.Attacks, AttackerStats{Name: a.Name, Kind: a.Kind, Sources: a.Sources})
	at.srcs = make([]SourceID, a.Sources)
	at.rngs = make([]*rand.Rand, a.Sources)
	at.pos = make([]int32, a.Sources)
	for j := range at.srcs {
		at.srcs[j] = s.newSource(false)
		at.rngs[j] = s.stream(fmt.Sprintf("attack:%d:%s", i, a.Name), uint64(j))
		s.at(model.Instant(a.Start.D()+uniform(at.rngs[j], 0, at.every)), at.id, opAttack, int32(j), 0)
	}
}

func (at *attack) fire(s *sim, op uint8, j, tok int32) {
	if s.now >= at.stop {
		return
	}
	r := at.rngs[j]
	var u UserID
	var secret SecretID
	stuffing := at.list != nil
	if stuffing {
		e := int(at.pos[j])*len(at.srcs) + int(j)
		if e >= len(at.list) {
			return // this source's share of the list is done
		}
		u, secret = at.list[e], at.leak[e]
	} else {
		u = at.targets[int(at.pos[j])%len(at.targets)]
		secret = MakeSecret(SecretGuess, 0, s.cursor[u])
	}
	d := s.attempt(Attempt{User: u, Source: at.srcs[j], Secret: secret}, classAttacker, at.index)
	next := jitter(r, at.every, 0.2)
	switch d.Verdict {
	case model.Failed:
		if !stuffing {
			s.cursor[u]++ // the next word of the dictionary for this account
		}
		at.pos[j]++
	case model.Allowed:
		at.pos[j]++
	case model.Refused:
		if !stuffing {
			at.pos[j]++ // a sprayer moves on to its next target
		}
		if !at.hammer {
			w := d.RetryAfter
			if w <= 0 {
				w = at.maxWait
			}
			next = max(next, w+uniform(r, 0, time.Second))
		}
	}
	s.after(next, at.id, opAttack, j, 0)
}

// clockChaos steps the wall clock and reboots the device.
type clockChaos struct {
	id   int32
	spec *ClockSpec
	rng  *rand.Rand
}

func newClockChaos(s *sim, c *ClockSpec) {
	cc := &clockChaos{spec: c, rng: s.stream("clock", 0)}
	cc.id = s.addActor(cc)
	if c.StepEvery > 0 {
		s.at(model.Instant(jitter(cc.rng, c.StepEvery.D(), 0.5)), cc.id, opStep, 0, 0)
	}
	if c.RebootEvery > 0 {
		s.at(model.Instant(jitter(cc.rng, c.RebootEvery.D(), 0.5)), cc.id, opReboot, 0, 0)
	}
}

func (cc *clockChaos) fire(s *sim, op uint8, arg, tok int32) {
	c := cc.spec
	switch op {
	case opStep:
		lo, hi := math.Log(float64(c.StepMin)), math.Log(float64(c.StepMax))
		by := time.Duration(math.Exp(lo + (hi-lo)*cc.rng.Float64()))
		if cc.rng.IntN(2) == 0 {
			by = -by
		}
		s.wallJump(by)
		if c.FixAfter > 0 {
			s.after(c.FixAfter.D(), cc.id, opFix, 0, 0)
		}
		s.after(jitter(cc.rng, c.StepEvery.D(), 0.5), cc.id, opStep, 0, 0)
	case opFix:
		if s.wallErr != 0 {
			s.wallJump(-time.Duration(s.wallErr))
		}
	case opReboot:
		before := s.wall()
		after := before
		if cc.rng.Float64() < c.RTCReset {
			after = int64(uniform(cc.rng, 0, time.Minute)) // the RTC came up in 1970
		}
		s.restart(before, after)
		if after != before {
			s.after(c.NTPSync.D(), cc.id, opFix, 0, 0)
		}
		s.after(jitter(cc.rng, c.RebootEvery.D(), 0.5), cc.id, opReboot, 0, 0)
	}
}

// cameras close a recording segment every segment length on the virtual
// (monotonic) clock, whatever the wall clock or the locks do.
type cameras struct {
	id      int32
	seg     time.Duration
	perHour int64
	hour    []int64
	count   []int64
}

func newCameras(s *sim, c *CameraSpec) {
	cs := &cameras{seg: c.Segment.D(), perHour: int64(time.Hour / c.Segment.D()),
		hour: make([]int64, c.Count), count: make([]int64, c.Count)}
	cs.id = s.addActor(cs)
	s.m.cameras = c.Count
	for k := range c.Count {
		// Phases in [0, seg) keep exactly perHour closings in every hour.
		s.at(model.Instant(cs.seg*time.Duration(k)/time.Duration(c.Count)), cs.id, opSegment, int32(k), 0)
	}
}

func (cs *cameras) fire(s *sim, op uint8, k, tok int32) {
	ok := true
	if s.rec != nil {
		ok = s.rec.RecordSegment(s.now, int(k))
	}
	if h := int64(time.Duration(s.now) / time.Hour); h != cs.hour[k] {
		cs.close(s, k)
		s.m.camHours += h - cs.hour[k] - 1 // hours with no segment at all
		cs.hour[k] = h
	}
	if ok {
		cs.count[k]++
		s.m.segments++
	}
	s.after(cs.seg, cs.id, opSegment, k, 0)
}

// close accounts the camera's current hour.
func (cs *cameras) close(s *sim, k int32) {
	s.m.camHours++
	if cs.count[k] == cs.perHour {
		s.m.complete++
	}
	cs.count[k] = 0
}

func (cs *cameras) finish(s *sim) {
	full := int64(time.Duration(s.end) / time.Hour)
	for k := range cs.hour {
		if cs.hour[k] < full {
			cs.close(s, int32(k))
		}
		// Hours in which a camera closed nothing at all are missing.
		s.m.camHours += max(0, full-1-cs.hour[k])
	}
}
