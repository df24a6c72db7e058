// Package clock owns time for everything outside the lock model: the wall clock people read,
// the monotonic instants lock arithmetic uses (SPEC R-MONO), and timers.
//
// Three implementations share one interface: Real (the process clock), Warped (real time sped up,
// for `latch serve --time-warp`), and Sim (advanced only when told, for the simulator and tests).
// A StepDetector and Watch notice wall-clock steps while running (SPEC R-RESTART).
//
// This package must never import anything from latch, keep global mutable state beyond the
// process origin of instants, or let a wall-clock change move an instant or fire a timer: timers
// run on instants, exactly like Go's runtime timers run on the monotonic clock.
package clock

import (
	"math"
	"time"
)

// Clock is the only way code outside model reads time or waits for it.
type Clock interface {
	// Now is the wall clock, for people and for persisted anchors. It may jump in either
	// direction (NTP steps, RTC resets). It carries no monotonic reading, so Sub between two
	// results is a wall difference.
	Now() time.Time
	// Instant is monotonic nanoseconds since an arbitrary per-process origin. It never goes
	// backwards and is meaningless across restarts; only differences within one process mean
	// anything.
	Instant() int64
	// NewTimer sends the wall time on its channel once d has elapsed in instants.
	NewTimer(d time.Duration) Timer
	// AfterFunc calls f once d has elapsed in instants. Where f runs depends on the clock: in
	// its own goroutine for Real and Warped, synchronously inside Advance for Sim.
	AfterFunc(d time.Duration, f func()) Timer
}

// Timer is the part of time.Timer that callers use, with its Go 1.23 semantics: after Stop or
// Reset returns, no stale value is received from C.
type Timer interface {
	// C is the channel of a timer made by NewTimer; nil for one made by AfterFunc.
	C() <-chan time.Time
	// Stop prevents the timer from firing. It reports whether the timer was still pending (for
	// a channel timer: had not yet been received from).
	Stop() bool
	// Reset rearms the timer to fire d from now and reports whether it was pending.
	Reset(d time.Duration) bool
}

// processOrigin anchors Real instants. It is captured once so that every Real clock in the
// process hands out comparable instants.
var processOrigin = time.Now()

// Real is the process clock. The zero value is ready to use.
//
// Inside a testing/synctest bubble time.Now has no monotonic reading, so Real instants there are
// offset (they may be negative) but still advance with the bubble's fake time.
type Real struct{}

var _ Clock = Real{}

// Now returns time.Now without its monotonic reading, so wall differences stay wall differences.
func (Real) Now() time.Time { return time.Now().Round(0) }

// Instant returns the monotonic time since the process origin.
func (Real) Instant() int64 { return int64(time.Since(processOrigin)) }

// NewTimer wraps time.NewTimer.
func (Real) NewTimer(d time.Duration) Timer { return realTimer{time.NewTimer(d)} }

// AfterFunc wraps time.AfterFunc.
func (Real) AfterFunc(d time.Duration, f func()) Timer { return realTimer{time.AfterFunc(d, f)} }

type realTimer struct{ t *time.Timer }

func (r realTimer) C() <-chan time.Time        { return r.t.C }
func (r realTimer) Stop() bool                 { return r.t.Stop() }
func (r realTimer) Reset(d time.Duration) bool { return r.t.Reset(d) }

// addSat returns a+b, saturating at the int64 limits instead of wrapping (SPEC R-SATURATE).
func addSat(a, b int64) int64 {
	s := a + b
	switch {
	case b > 0 && s < a:
		return math.MaxInt64
	case b < 0 && s > a:
		return math.MinInt64
	}
	return s
}

// subSat returns a-b, saturating.
func subSat(a, b int64) int64 {
	s := a - b
	switch {
	case b < 0 && s < a:
		return math.MaxInt64
	case b > 0 && s > a:
		return math.MinInt64
	}
	return s
}

// Reader is a clock that can give its wall time and its instant from one
// reading. Every clock of this package is one.
type Reader interface {
	Read() (wall time.Time, instant int64)
}

// Read returns c's wall time and instant from one reading when c is a
// Reader, else from two reads. Anything that compares the two (the step
// detector) must use it: read apart, a pause of the caller between them
// shows as a disagreement — under --time-warp 1000 a 28 ms pause looked
// like a 28 s wall-clock step (R-MONO).
func Read(c Clock) (time.Time, int64) {
	if r, ok := c.(Reader); ok {
		return r.Read()
	}
	return c.Now(), c.Instant()
}

// Read returns Now and Instant from one time.Now.
func (Real) Read() (time.Time, int64) {
	t := time.Now()
	return t.Round(0), int64(t.Sub(processOrigin))
}
