package clock

import (
	"errors"
	"fmt"
	"math"
	"time"
)

// ErrWarpFactor is returned for a warp factor that is not a finite number above zero.
var ErrWarpFactor = errors.New("warp factor must be finite and above zero")

// Warped runs factor times faster than a base clock from the moment it is made: with factor 60
// one base second is one virtual minute (`latch serve --time-warp 60`). Instants and elapsed
// wall time are scaled; a step of the base wall clock passes through unscaled, so a real NTP
// step shows up as a step of the same size. Timer durations are divided by factor.
type Warped struct {
	base   Clock
	factor float64
	start  int64 // base instant when the warp began; virtual instants continue from it
}

var _ Clock = (*Warped)(nil)

// NewWarped returns a clock running factor times faster than base (Real{} in production; a Sim
// in tests, so they do not depend on real time).
func NewWarped(base Clock, factor float64) (*Warped, error) {
	if math.IsNaN(factor) || math.IsInf(factor, 0) || factor <= 0 {
		return nil, fmt.Errorf("new warped clock: %w: %v", ErrWarpFactor, factor)
	}
	return &Warped{base: base, factor: factor, start: base.Instant()}, nil
}

// Factor returns how many virtual seconds pass per base second.
func (w *Warped) Factor() float64 { return w.factor }

// Now returns the base wall time plus the extra time the warp has added so far.
func (w *Warped) Now() time.Time {
	wall, _ := w.Read()
	return wall
}

// Read returns Now and Instant from one reading of the base clock: read
// apart, a pause between them is scaled by the factor into a phantom
// wall-clock step.
func (w *Warped) Read() (time.Time, int64) {
	wall, inst := Read(w.base)
	elapsed := subSat(inst, w.start)
	scaled := w.scaleUp(elapsed)
	return wall.Add(time.Duration(subSat(scaled, elapsed))), addSat(w.start, scaled)
}

// Instant returns the base start instant plus the scaled base time elapsed since.
func (w *Warped) Instant() int64 {
	return addSat(w.start, w.scaleUp(subSat(w.base.Instant(), w.start)))
}

// NewTimer returns a channel timer that fires after d of virtual time and sends virtual wall time.
func (w *Warped) NewTimer(d time.Duration) Timer {
	return newChanTimer(w.AfterFunc, w.Now, d)
}

// AfterFunc calls f after d of virtual time.
func (w *Warped) AfterFunc(d time.Duration, f func()) Timer {
	return warpedTimer{w: w, inner: w.base.AfterFunc(w.scaleDown(d), f)}
}

// scaleUp converts elapsed base nanoseconds to virtual ones, saturating. Float rounding is
// monotonic, so virtual instants never go backwards.
func (w *Warped) scaleUp(ns int64) int64 {
	v := float64(ns) * w.factor
	switch {
	case v >= math.MaxInt64:
		return math.MaxInt64
	case v <= math.MinInt64:
		return math.MinInt64
	}
	return int64(v)
}

// scaleDown converts a virtual duration to a base one, rounding up: a timer that fired early by
// a rounding error would let a camera tick land a nanosecond before its slot.
func (w *Warped) scaleDown(d time.Duration) time.Duration {
	if d <= 0 {
		return d
	}
	v := math.Ceil(float64(d) / w.factor)
	if v >= math.MaxInt64 {
		return math.MaxInt64
	}
	return time.Duration(v)
}

type warpedTimer struct {
	w     *Warped
	inner Timer
}

func (t warpedTimer) C() <-chan time.Time        { return nil }
func (t warpedTimer) Stop() bool                 { return t.inner.Stop() }
func (t warpedTimer) Reset(d time.Duration) bool { return t.inner.Reset(t.w.scaleDown(d)) }
