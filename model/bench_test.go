package model

// Benchmarks of Decide per preset for the three kinds of attempt, and of a
// baseline: the obvious hand-written switch over one comparable struct
// (threshold, window, until), decided the same way, so the cost of the
// model (four keys, the compiled stateless table, fingerprints,
// familiarity, escalation) can be read as a ratio.
//
//	go test -run '^$' -bench . -benchmem ./model/
//
// States are built once, outside the timer, and reused: each iteration
// decides the same attempt on the same View (Decide takes and returns
// values), so the loop measures Decide alone.

import (
	"testing"
	"time"
)

var (
	benchSinkView     View
	benchSinkDecision Decision
	benchSinkSimple   benchSimpleLock
	benchSinkVerdict  Verdict
)

// benchCase is one attempt on one prepared View.
type benchCase struct {
	name string
	v    View
	ev   Event
	now  Instant
}

// benchCases prepares, under p, a refused attempt (a key already locked), a
// failed attempt that is counted without locking, and a successful one.
func benchCases(tb testing.TB, p *Policy) []benchCase {
	tb.Helper()
	t0 := Instant(time.Hour)
	wrong := func(print uint64) Event { return Event{Attempt: Attempt{Print: print}, Outcome: WrongSecret} }
	right := Event{Attempt: Attempt{Print: ptRightTag}, Outcome: RightSecret}

	// Refused: wrong secrets, one fingerprint each, until a key refuses.
	var locked View
	var refuse benchCase
	for i := 0; ; i++ {
		if i > 10*MaxThreshold {
			tb.Fatalf("%s: no key locked after %d failures", p.Preset, i)
		}
		now := t0 + Instant(i)*Instant(time.Millisecond)
		v, d := Decide(locked, wrong(uint64(i+1)), now, p)
		if d.Verdict == Refused {
			refuse = benchCase{"refused", locked, wrong(uint64(i + 1)), now}
			break
		}
		locked = v
	}

	// One earlier counted failure, so the window has something to scan.
	prior, d := Decide(View{}, wrong(1), t0, p)
	if d.Verdict != Failed || d.Effects&EffCounted == 0 {
		tb.Fatalf("%s: setup failure: %+v", p.Preset, d)
	}
	cases := []benchCase{
		refuse,
		{"failed", prior, wrong(2), t0.Add(time.Second)},
		{"allowed", prior, right, t0.Add(time.Second)},
	}
	for _, c := range cases {
		_, d := Decide(c.v, c.ev, c.now, p)
		ok := false
		switch c.name {
		case "refused":
			ok = d.Verdict == Refused && !d.Verified
		case "failed":
			ok = d.Verdict == Failed && d.Effects&EffCounted != 0 && d.Effects&(EffLocked|EffHeld) == 0
		case "allowed":
			ok = d.Verdict == Allowed
		}
		if !ok {
			tb.Fatalf("%s/%s: the prepared attempt decides %+v", p.Preset, c.name, d)
		}
	}
	return cases
}

// TestBenchCasesAreWhatTheySay keeps the benchmark's setups honest in the
// ordinary test run.
func TestBenchCasesAreWhatTheySay(t *testing.T) {
	for _, n := range PresetNames() {
		p, _ := Preset(n)
		benchCases(t, &p)
	}
	for _, c := range benchSimpleCases() {
		if _, v := c.s.decide(c.now, c.right); v != c.want {
			t.Errorf("baseline %s: %v, want %v", c.name, v, c.want)
		}
	}
}

// BenchmarkDecide: Decide per preset and kind of attempt.
func BenchmarkDecide(b *testing.B) {
	for _, n := range PresetNames() {
		p, _ := Preset(n)
		for _, c := range benchCases(b, &p) {
			b.Run(n+"/"+c.name, func(b *testing.B) {
				b.ReportAllocs()
				for b.Loop() {
					benchSinkView, benchSinkDecision = Decide(c.v, c.ev, c.now, &p)
				}
			})
		}
	}
}

// benchSimpleLock is the baseline: one key, the minimal lock logic a
// hand-written switch would have (a threshold of failures within a sliding
// window locks for a fixed time; a success clears), in a comparable struct
// of the same shape as one Key.
type benchSimpleLock struct {
	threshold int
	window    time.Duration
	lockFor   time.Duration
	n         int
	failures  [MaxThreshold]Instant
	until     Instant
	locked    bool
}

func (s benchSimpleLock) decide(now Instant, right bool) (benchSimpleLock, Verdict) {
	switch {
	case s.locked && now < s.until:
		return s, Refused
	case s.locked:
		s.locked, s.until, s.n = false, 0, 0
	}
	drop := 0
	for drop < s.n && now.Sub(s.failures[drop]) >= s.window {
		drop++
	}
	if drop > 0 {
		copy(s.failures[:], s.failures[drop:s.n])
		s.n -= drop
	}
	switch {
	case right:
		s.n = 0
		return s, Allowed
	case s.n+1 >= s.threshold:
		s.n, s.locked, s.until = 0, true, now.Add(s.lockFor)
		return s, Failed
	default:
		s.failures[s.n] = now
		s.n++
		return s, Failed
	}
}

type benchSimpleCase struct {
	name  string
	s     benchSimpleLock
	now   Instant
	right bool
	want  Verdict
}

func benchSimpleCases() []benchSimpleCase {
	t0 := Instant(time.Hour)
	fresh := benchSimpleLock{threshold: 5, window: 15 * time.Minute, lockFor: time.Minute}
	prior, _ := fresh.decide(t0, false)
	locked := prior
	for i := 0; i < 4; i++ {
		locked, _ = locked.decide(t0, false)
	}
	return []benchSimpleCase{
		{"refused", locked, t0.Add(time.Second), false, Refused},
		{"failed", prior, t0.Add(time.Second), false, Failed},
		{"allowed", prior, t0.Add(time.Second), true, Allowed},
	}
}

// BenchmarkBaselineSwitch: the baseline, the same three kinds of attempt.
func BenchmarkBaselineSwitch(b *testing.B) {
	for _, c := range benchSimpleCases() {
		b.Run(c.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				benchSinkSimple, benchSinkVerdict = c.s.decide(c.now, c.right)
			}
		})
	}
}
