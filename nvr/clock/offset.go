package clock

import (
	"sync/atomic"
	"time"
)

// Offset is a clock whose wall time can be stepped while instants and
// timers follow the base clock: what an NTP step or a user setting the
// date does to a running device. Soak tests inject wall-clock steps into a
// running `latch serve` through it (SPEC R-MONO: no lock may change).
type Offset struct {
	base   Clock
	offset atomic.Int64
}

// NewOffset wraps base.
func NewOffset(base Clock) *Offset { return &Offset{base: base} }

// Now is the base wall time plus every step so far.
func (o *Offset) Now() time.Time { return o.base.Now().Add(time.Duration(o.offset.Load())) }

// Instant is the base instant: steps never move it.
func (o *Offset) Instant() int64 { return o.base.Instant() }

// NewTimer and AfterFunc run on the base clock's instants.
func (o *Offset) NewTimer(d time.Duration) Timer { return o.base.NewTimer(d) }

// AfterFunc calls f after d of base time.
func (o *Offset) AfterFunc(d time.Duration, f func()) Timer { return o.base.AfterFunc(d, f) }

// Step moves the wall clock by delta.
func (o *Offset) Step(delta time.Duration) { o.offset.Add(int64(delta)) }

// Read returns Now and Instant from one reading of the base.
func (o *Offset) Read() (time.Time, int64) {
	wall, inst := Read(o.base)
	return wall.Add(time.Duration(o.offset.Load())), inst
}
