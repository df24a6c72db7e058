package auth

import (
	"fmt"
	"testing"
	"time"
)

const sec = int64(time.Second)

func TestThrottleOverExplicitInstants(t *testing.T) {
	th := &throttle{threshold: 3, window: 10 * time.Second, base: 20 * time.Second, ceiling: 60 * time.Second, maxKeys: 8}
	steps := []struct {
		at      int64
		add     bool
		refused time.Duration // refusedFor before the step's add
		after   time.Duration // add's answer
	}{
		{0, true, 0, 0},
		{1 * sec, true, 0, 0},
		{12 * sec, true, 0, 0},                // the events at 0 and 1 left the window
		{13 * sec, true, 0, 0},                //
		{14 * sec, true, 0, 20 * time.Second}, // third within 10 s: refused for base
		{20 * sec, false, 14 * time.Second, 0},
		{34 * sec, true, 0, 0}, // open again; counting starts afresh
		{35 * sec, true, 0, 0},
		{36 * sec, true, 0, 40 * time.Second}, // second refusal: doubled
		{76 * sec, true, 0, 0},
		{77 * sec, true, 0, 0},
		{78 * sec, true, 0, 60 * time.Second}, // third: capped at the ceiling
		{200 * sec, true, 0, 0},               // quiet for the ceiling: level back to 0
		{201 * sec, true, 0, 0},
		{202 * sec, true, 0, 20 * time.Second},
	}
	for i, s := range steps {
		if got := th.refusedFor("k", s.at); got != s.refused {
			t.Fatalf("step %d at %ds: refusedFor = %v, want %v", i, s.at/sec, got, s.refused)
		}
		if s.add {
			if got := th.add("k", s.at); got != s.after {
				t.Fatalf("step %d at %ds: add = %v, want %v", i, s.at/sec, got, s.after)
			}
		}
	}
	if th.refusedFor("other", 202*sec) != 0 {
		t.Fatal("keys share a count")
	}
}

// A full table forgets idle keys first; then a source throttle forgets
// the idlest key (fail open) and a principal throttle refuses the new key
// (fail closed), so flooding it with names never frees a victim's count.
func TestThrottleFullTable(t *testing.T) {
	mk := func(failClosed bool) *throttle {
		th := &throttle{threshold: 2, window: 10 * time.Second, base: time.Minute, ceiling: time.Minute, maxKeys: 3, failClosed: failClosed}
		for i := range 3 {
			th.add(fmt.Sprint("k", i), int64(i)*sec)
		}
		return th
	}
	open := mk(false)
	if open.add("new", 5*sec) != 0 || len(open.keys) != 3 || open.keys["k0"] != nil {
		t.Fatalf("fail-open table: %v", open.keys)
	}
	closed := mk(true)
	if closed.refusedFor("new", 5*sec) == 0 || closed.add("new", 5*sec) == 0 || closed.keys["new"] != nil || closed.keys["k0"] == nil {
		t.Fatalf("fail-closed table admitted a new key over counting ones: %v", closed.keys)
	}
	// Once the old keys are quiet for the ceiling, they make room.
	if closed.add("new", 2*time.Minute.Nanoseconds()) != 0 || closed.keys["new"] == nil {
		t.Fatalf("quiet keys were not forgotten: %v", closed.keys)
	}
}
