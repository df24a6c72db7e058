package clock

import (
	"container/heap"
	"fmt"
	"sync"
	"time"
)

// Sim is a clock that moves only when told. Advance and AdvanceTo fire every timer that comes
// due, synchronously, in order of (deadline, arming sequence), setting the clock to each timer's
// deadline before firing it; so a callback sees the time it was due at, and a timer it arms that
// falls within the same advance fires within it too. WallJump steps the wall clock alone.
//
// All methods are safe for concurrent use. Advance calls are serialised; a timer callback must
// not call Advance or AdvanceTo (it would wait for itself).
type Sim struct {
	advancing sync.Mutex // held for the whole of an advance

	mu       sync.Mutex
	instant  int64
	wallZero time.Time // the wall time at instant 0; WallJump moves it
	seq      uint64    // arming order, the tie-break between equal deadlines
	timers   simHeap
}

var _ Clock = (*Sim)(nil)

// NewSim returns a Sim at instant 0 showing wall time start. Give start an explicit location
// (UTC) so that anything formatting it is deterministic.
func NewSim(start time.Time) *Sim {
	return &Sim{wallZero: start.Round(0)}
}

// Now returns the simulated wall time.
func (s *Sim) Now() time.Time {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.wallZero.Add(time.Duration(s.instant))
}

// Instant returns the simulated monotonic instant.
func (s *Sim) Instant() int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.instant
}

// NewTimer returns a channel timer that fires during the Advance that reaches now+d.
func (s *Sim) NewTimer(d time.Duration) Timer {
	return newChanTimer(s.AfterFunc, s.Now, d)
}

// AfterFunc arms f to run during the Advance that reaches now+d. A timer with d <= 0 fires
// during the next Advance (even Advance(0)), never inside AfterFunc itself: its caller may
// hold locks that f needs.
func (s *Sim) AfterFunc(d time.Duration, f func()) Timer {
	s.mu.Lock()
	defer s.mu.Unlock()
	t := &simTimer{sim: s, f: f, index: -1}
	s.armLocked(t, d)
	return t
}

func (s *Sim) armLocked(t *simTimer, d time.Duration) {
	t.when = addSat(s.instant, max(int64(d), 0))
	s.seq++
	t.seq = s.seq
	heap.Push(&s.timers, t)
}

// Advance moves the clock forward by d, firing due timers on the way. A negative d is a bug in
// the caller and panics.
func (s *Sim) Advance(d time.Duration) {
	if d < 0 {
		panic(fmt.Sprintf("clock: Sim.Advance(%v): time never goes backwards", d))
	}
	s.advancing.Lock()
	defer s.advancing.Unlock()
	s.advanceLocked(addSat(s.Instant(), int64(d)))
}

// AdvanceTo moves the clock forward to instant, firing due timers on the way. AdvanceTo the
// current instant only fires timers already due; an earlier instant is a bug and panics.
func (s *Sim) AdvanceTo(instant int64) {
	s.advancing.Lock()
	defer s.advancing.Unlock()
	if now := s.Instant(); instant < now {
		panic(fmt.Sprintf("clock: Sim.AdvanceTo(%d) before now (%d): time never goes backwards", instant, now))
	}
	s.advanceLocked(instant)
}

func (s *Sim) advanceLocked(target int64) {
	for {
		s.mu.Lock()
		if len(s.timers) == 0 || s.timers[0].when > target {
			s.instant = max(s.instant, target)
			s.mu.Unlock()
			return
		}
		t := heap.Pop(&s.timers).(*simTimer)
		s.instant = max(s.instant, t.when)
		f := t.f
		s.mu.Unlock()
		// Outside the lock: f reads the clock and arms timers.
		f()
	}
}

// WallJump steps the wall clock by delta, as an NTP step or an RTC reset does. Instants and
// timers are unaffected.
func (s *Sim) WallJump(delta time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.wallZero = s.wallZero.Add(delta)
}

// NextDeadline returns the instant at which the earliest pending timer fires, so an event loop
// can interleave the clock's timers with its own events.
func (s *Sim) NextDeadline() (instant int64, ok bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.timers) == 0 {
		return 0, false
	}
	return s.timers[0].when, true
}

// Pending returns how many timers are armed.
func (s *Sim) Pending() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.timers)
}

// simTimer is an AfterFunc timer of a Sim. index is its place in the heap, -1 when not armed.
type simTimer struct {
	sim   *Sim
	f     func()
	when  int64
	seq   uint64
	index int
}

func (t *simTimer) C() <-chan time.Time { return nil }

func (t *simTimer) Stop() bool {
	t.sim.mu.Lock()
	defer t.sim.mu.Unlock()
	return t.removeLocked()
}

func (t *simTimer) Reset(d time.Duration) bool {
	t.sim.mu.Lock()
	defer t.sim.mu.Unlock()
	pending := t.removeLocked()
	t.sim.armLocked(t, d)
	return pending
}

func (t *simTimer) removeLocked() bool {
	if t.index < 0 {
		return false
	}
	heap.Remove(&t.sim.timers, t.index)
	return true
}

// simHeap orders timers by deadline, then by arming sequence.
type simHeap []*simTimer

func (h simHeap) Len() int { return len(h) }
func (h simHeap) Less(i, j int) bool {
	if h[i].when != h[j].when {
		return h[i].when < h[j].when
	}
	return h[i].seq < h[j].seq
}
func (h simHeap) Swap(i, j int) {
	h[i], h[j] = h[j], h[i]
	h[i].index = i
	h[j].index = j
}
func (h *simHeap) Push(x any) {
	t := x.(*simTimer)
	t.index = len(*h)
	*h = append(*h, t)
}
func (h *simHeap) Pop() any {
	old := *h
	t := old[len(old)-1]
	old[len(old)-1] = nil
	*h = old[:len(old)-1]
	t.index = -1
	return t
}

// Read returns Now and Instant under one lock.
func (s *Sim) Read() (time.Time, int64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.wallZero.Add(time.Duration(s.instant)), s.instant
}
