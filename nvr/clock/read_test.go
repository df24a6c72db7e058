package clock

import (
	"testing"
	"time"
)

// stallClock is a Sim on which the caller is paused for stall just
// before its second read of the instant after being armed — as a
// preempted thread is paused between reading the wall clock (which reads
// the base instant too, under a warp) and reading the instant. One
// reading (Read) cannot be split.
type stallClock struct {
	*Sim
	stall time.Duration
	reads int
}

func (s *stallClock) Instant() int64 {
	if s.stall != 0 {
		if s.reads++; s.reads == 2 {
			s.Sim.Advance(s.stall)
			s.stall, s.reads = 0, 0
		}
	}
	return s.Sim.Instant()
}

// A 28 ms pause of the server between reading the wall clock and the
// instant, at --time-warp 1000, looked like a 28 s wall-clock step and made
// the server re-anchor every key (the soak saw it: docs/RELIABILITY.md).
// One reading gives both (R-MONO: only a real step is a step).
func TestWarpedReadIsOneReading(t *testing.T) {
	base := &stallClock{Sim: NewSim(time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC))}
	w, err := NewWarped(base, 1000)
	if err != nil {
		t.Fatal(err)
	}
	d := NewStepDetector(2 * time.Second)
	d.Observe(Read(w))
	for i := range 5 {
		base.Advance(time.Millisecond)
		if i == 2 {
			base.stall = 28 * time.Millisecond
		}
		if st, stepped := d.Observe(Read(w)); stepped {
			t.Fatalf("sample %d: a %s pause seen as a wall step of %s", i, 28*time.Millisecond, st.Delta)
		}
	}
	// A real step still shows, through an Offset on top.
	o := NewOffset(w)
	d = NewStepDetector(2 * time.Second)
	d.Observe(Read(o))
	o.Step(-time.Hour)
	if st, stepped := d.Observe(Read(o)); !stepped || st.Delta != -time.Hour {
		t.Fatalf("a one-hour step: %v %v", st, stepped)
	}
}

// Read of each clock agrees with its Now and Instant when nothing moves.
func TestReadAgreesWithNowAndInstant(t *testing.T) {
	s := NewSim(time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC))
	s.Advance(time.Hour)
	w, _ := NewWarped(s, 60)
	o := NewOffset(w)
	o.Step(time.Minute)
	for _, c := range []Clock{s, w, o} {
		wall, inst := Read(c)
		if !wall.Equal(c.Now()) || inst != c.Instant() {
			t.Errorf("%T: Read = %v %d, Now/Instant = %v %d", c, wall, inst, c.Now(), c.Instant())
		}
	}
	wall, inst := Read(Real{})
	if d := time.Since(wall); d < 0 || d > time.Minute || inst <= 0 {
		t.Errorf("Real: Read = %v %d", wall, inst)
	}
}
