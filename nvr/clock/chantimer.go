package clock

import (
	"sync"
	"time"
)

// chanTimer is a channel timer built on a clock's AfterFunc. Sim and Warped use it so that the
// value sent is the clock's own wall time (virtual, not the base clock's) and so Stop and Reset
// keep time.Timer's Go 1.23 guarantee: nothing stale is received after they return.
type chanTimer struct {
	afterFunc func(time.Duration, func()) Timer
	now       func() time.Time

	mu    sync.Mutex
	c     chan time.Time // capacity 1; only fire sends, only Stop/Reset drain
	inner Timer
	gen   uint64 // bumped by Stop/Reset so a callback already on its way sends nothing
	armed bool   // pending: not yet fired, stopped or reset
}

func newChanTimer(afterFunc func(time.Duration, func()) Timer, now func() time.Time, d time.Duration) *chanTimer {
	t := &chanTimer{afterFunc: afterFunc, now: now, c: make(chan time.Time, 1)}
	t.mu.Lock()
	defer t.mu.Unlock()
	t.armLocked(d)
	return t
}

func (t *chanTimer) armLocked(d time.Duration) {
	t.gen++
	t.armed = true
	gen := t.gen
	t.inner = t.afterFunc(d, func() { t.fire(gen) })
}

func (t *chanTimer) fire(gen uint64) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if gen != t.gen || !t.armed {
		return
	}
	t.armed = false
	select {
	case t.c <- t.now():
	default: // unreachable: the channel is drained before every re-arm
	}
}

func (t *chanTimer) C() <-chan time.Time { return t.c }

func (t *chanTimer) Stop() bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.disarmLocked()
}

func (t *chanTimer) Reset(d time.Duration) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	pending := t.disarmLocked()
	t.armLocked(d)
	return pending
}

// disarmLocked stops the inner timer and drains an unreceived value. A value still in the
// channel counts as pending, as with time.Timer since Go 1.23.
func (t *chanTimer) disarmLocked() bool {
	t.gen++
	t.inner.Stop()
	pending := t.armed
	t.armed = false
	select {
	case <-t.c:
		pending = true
	default:
	}
	return pending
}
