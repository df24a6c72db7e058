package clock

import (
	"testing"
	"time"
)

func TestOffsetStepsWallNotInstants(t *testing.T) {
	start := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	sim := NewSim(start)
	o := NewOffset(sim)
	fired := 0
	o.AfterFunc(time.Minute, func() { fired++ })
	i0 := o.Instant()
	o.Step(-24 * time.Hour)
	if got, want := o.Now(), start.Add(-24*time.Hour); !got.Equal(want) {
		t.Fatalf("Now %v, want %v", got, want)
	}
	if o.Instant() != i0 {
		t.Fatal("a wall step moved the instant")
	}
	sim.Advance(time.Minute)
	if fired != 1 || !o.Now().Equal(start.Add(-24*time.Hour+time.Minute)) {
		t.Fatalf("fired %d, now %v", fired, o.Now())
	}
}
