package clock

import (
	"fmt"
	"math"
	"slices"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"
)

var epoch = time.Date(2026, 3, 14, 12, 0, 0, 0, time.UTC)

func TestSimNowAndInstant(t *testing.T) {
	// Each step applies an operation and checks both clocks afterwards.
	type step struct {
		advance  time.Duration
		jump     time.Duration
		wantInst int64
		wantWall time.Time
	}
	tests := []struct {
		name  string
		steps []step
	}{
		{"advance moves both", []step{
			{advance: time.Second, wantInst: 1e9, wantWall: epoch.Add(time.Second)},
			{advance: time.Minute, wantInst: 61e9, wantWall: epoch.Add(61 * time.Second)},
		}},
		{"zero advance moves nothing", []step{
			{advance: 0, wantInst: 0, wantWall: epoch},
		}},
		{"ntp step forward moves wall only", []step{
			{advance: 10 * time.Second, wantInst: 10e9, wantWall: epoch.Add(10 * time.Second)},
			{jump: time.Hour, wantInst: 10e9, wantWall: epoch.Add(time.Hour + 10*time.Second)},
			{advance: time.Second, wantInst: 11e9, wantWall: epoch.Add(time.Hour + 11*time.Second)},
		}},
		{"rtc reset to 1970 moves wall only", []step{
			{advance: time.Second, wantInst: 1e9, wantWall: epoch.Add(time.Second)},
			{jump: time.Unix(0, 0).Sub(epoch.Add(time.Second)), wantInst: 1e9, wantWall: time.Unix(0, 0).UTC()},
			{advance: time.Second, wantInst: 2e9, wantWall: time.Unix(1, 0).UTC()},
		}},
		{"advance saturates", []step{
			{advance: math.MaxInt64, wantInst: math.MaxInt64, wantWall: epoch.Add(math.MaxInt64)},
			{advance: time.Hour, wantInst: math.MaxInt64, wantWall: epoch.Add(math.MaxInt64)},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := NewSim(epoch)
			for i, st := range tt.steps {
				if st.jump != 0 {
					s.WallJump(st.jump)
				} else {
					s.Advance(st.advance)
				}
				if got := s.Instant(); got != st.wantInst {
					t.Fatalf("step %d: Instant() = %d, want %d", i, got, st.wantInst)
				}
				if got := s.Now(); !got.Equal(st.wantWall) {
					t.Fatalf("step %d: Now() = %v, want %v", i, got, st.wantWall)
				}
			}
		})
	}
}

func TestSimTimersFireInOrder(t *testing.T) {
	s := NewSim(epoch)
	var fired []string
	record := func(name string) func() {
		return func() { fired = append(fired, fmt.Sprintf("%s@%v", name, time.Duration(s.Instant()))) }
	}
	s.AfterFunc(3*time.Second, record("c"))
	s.AfterFunc(time.Second, record("a"))
	s.AfterFunc(2*time.Second, record("b1"))
	s.AfterFunc(2*time.Second, record("b2")) // same deadline: arming order breaks the tie
	s.AfterFunc(time.Second, func() {
		record("a-chain")()
		// Armed during the advance and due within it: fires within it, at its own deadline.
		s.AfterFunc(500*time.Millisecond, record("chained"))
		// Due after the target: stays pending.
		s.AfterFunc(time.Hour, record("late"))
	})
	s.Advance(5 * time.Second)

	want := []string{"a@1s", "a-chain@1s", "chained@1.5s", "b1@2s", "b2@2s", "c@3s"}
	if !slices.Equal(fired, want) {
		t.Fatalf("fired %v, want %v", fired, want)
	}
	if got, want := s.Instant(), int64(5*time.Second); got != want {
		t.Fatalf("Instant() = %d, want %d", got, want)
	}
	if got, want := s.Pending(), 1; got != want {
		t.Fatalf("Pending() = %d, want %d", got, want)
	}
	if at, ok := s.NextDeadline(); !ok || at != int64(time.Second+time.Hour) {
		t.Fatalf("NextDeadline() = %d, %v; want %d, true", at, ok, int64(time.Second+time.Hour))
	}
}

func TestSimAdvanceToExplicitInstants(t *testing.T) {
	s := NewSim(epoch)
	var fired []int64
	for _, d := range []time.Duration{10, 20, 30} {
		s.AfterFunc(d, func() { fired = append(fired, s.Instant()) })
	}
	tests := []struct {
		to        int64
		wantFired []int64
	}{
		{9, nil},
		{10, []int64{10}},
		{10, []int64{10}}, // AdvanceTo now is allowed and fires nothing new
		{29, []int64{10, 20}},
		{100, []int64{10, 20, 30}},
	}
	for _, tt := range tests {
		s.AdvanceTo(tt.to)
		if !slices.Equal(fired, tt.wantFired) {
			t.Fatalf("AdvanceTo(%d): fired at %v, want %v", tt.to, fired, tt.wantFired)
		}
		if got := s.Instant(); got != tt.to {
			t.Fatalf("AdvanceTo(%d): Instant() = %d", tt.to, got)
		}
	}
}

func TestSimZeroTimerFiresOnNextAdvance(t *testing.T) {
	s := NewSim(epoch)
	s.Advance(time.Second)
	fired := 0
	s.AfterFunc(0, func() { fired++ })
	s.AfterFunc(-time.Second, func() { fired++ }) // negative is due now, not in the past
	if fired != 0 {
		t.Fatalf("AfterFunc(0) fired inside AfterFunc")
	}
	if at, _ := s.NextDeadline(); at != int64(time.Second) {
		t.Fatalf("NextDeadline() = %d, want %d", at, int64(time.Second))
	}
	s.Advance(0)
	if got, want := fired, 2; got != want {
		t.Fatalf("fired %d after Advance(0), want %d", got, want)
	}
}

func TestSimStopReset(t *testing.T) {
	s := NewSim(epoch)
	fired := 0
	tm := s.AfterFunc(time.Second, func() { fired++ })

	if got := tm.Stop(); !got {
		t.Fatalf("Stop() of a pending timer = false, want true")
	}
	if got := tm.Stop(); got {
		t.Fatalf("second Stop() = true, want false")
	}
	s.Advance(2 * time.Second)
	if fired != 0 {
		t.Fatalf("stopped timer fired")
	}

	if got := tm.Reset(time.Second); got {
		t.Fatalf("Reset() of a stopped timer = true, want false")
	}
	if got := tm.Reset(3 * time.Second); !got {
		t.Fatalf("Reset() of a pending timer = false, want true")
	}
	s.Advance(2 * time.Second)
	if fired != 0 {
		t.Fatalf("timer fired at its old deadline after Reset")
	}
	s.Advance(time.Second)
	if got, want := fired, 1; got != want {
		t.Fatalf("fired %d times, want %d", got, want)
	}
	if got := tm.Stop(); got {
		t.Fatalf("Stop() after firing = true, want false")
	}
}

func TestSimResetTakesANewSequence(t *testing.T) {
	s := NewSim(epoch)
	var fired []string
	a := s.AfterFunc(time.Second, func() { fired = append(fired, "a") })
	s.AfterFunc(time.Second, func() { fired = append(fired, "b") })
	a.Reset(time.Second) // rearmed after b: now fires after it
	s.Advance(time.Second)
	if want := []string{"b", "a"}; !slices.Equal(fired, want) {
		t.Fatalf("fired %v, want %v", fired, want)
	}
}

func TestSimChannelTimer(t *testing.T) {
	s := NewSim(epoch)
	tm := s.NewTimer(time.Minute)
	s.Advance(59 * time.Second)
	select {
	case v := <-tm.C():
		t.Fatalf("received %v before the deadline", v)
	default:
	}
	s.Advance(time.Hour)
	select {
	case v := <-tm.C():
		// The value is the clock's wall time at the deadline, not when the advance ended.
		if want := epoch.Add(time.Minute); !v.Equal(want) {
			t.Fatalf("received %v, want %v", v, want)
		}
	default:
		t.Fatalf("nothing received after the deadline")
	}
	if tm.Stop() {
		t.Fatalf("Stop() after receiving = true, want false")
	}

	// Go 1.23 semantics: fired but not received counts as pending, and Stop/Reset drain it.
	tm.Reset(time.Second)
	s.Advance(time.Second)
	if !tm.Stop() {
		t.Fatalf("Stop() with an unreceived value = false, want true")
	}
	select {
	case v := <-tm.C():
		t.Fatalf("received stale %v after Stop", v)
	default:
	}
	tm.Reset(time.Second)
	s.Advance(time.Second)
	if !tm.Reset(time.Second) {
		t.Fatalf("Reset() with an unreceived value = false, want true")
	}
	select {
	case v := <-tm.C():
		t.Fatalf("received stale %v after Reset", v)
	default:
	}
	s.Advance(time.Second)
	if v := <-tm.C(); !v.Equal(s.Now()) {
		t.Fatalf("received %v, want %v", v, s.Now())
	}
}

func TestSimWallJumpFiresNoTimer(t *testing.T) {
	s := NewSim(epoch)
	fired := false
	s.AfterFunc(time.Minute, func() { fired = true })
	s.WallJump(24 * time.Hour)
	s.Advance(0)
	if fired {
		t.Fatalf("a wall step fired a timer; timers run on instants")
	}
	if got := s.Instant(); got != 0 {
		t.Fatalf("Instant() = %d after WallJump, want 0", got)
	}
	if got, want := s.Now(), epoch.Add(24*time.Hour); !got.Equal(want) {
		t.Fatalf("Now() = %v, want %v", got, want)
	}
}

func TestSimGoingBackwardsPanics(t *testing.T) {
	tests := []struct {
		name string
		f    func(*Sim)
	}{
		{"Advance negative", func(s *Sim) { s.Advance(-time.Nanosecond) }},
		{"AdvanceTo the past", func(s *Sim) { s.AdvanceTo(s.Instant() - 1) }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := NewSim(epoch)
			s.Advance(time.Second)
			defer func() {
				if recover() == nil {
					t.Fatalf("no panic")
				}
				if got := s.Instant(); got != int64(time.Second) {
					t.Fatalf("Instant() = %d after the refused call", got)
				}
			}()
			tt.f(s)
		})
	}
}

// TestSimConcurrentUse is for the race detector: readers, arming and stopping from other
// goroutines while one goroutine advances.
func TestSimConcurrentUse(t *testing.T) {
	s := NewSim(epoch)
	var wg sync.WaitGroup
	var mu sync.Mutex
	fired := 0
	for g := range 4 {
		wg.Go(func() {
			for i := range 200 {
				tm := s.AfterFunc(time.Duration(i%7)*time.Millisecond, func() {
					mu.Lock()
					fired++
					mu.Unlock()
				})
				if (g+i)%3 == 0 {
					tm.Stop()
				}
				_ = s.Now()
				_ = s.Instant()
				ct := s.NewTimer(time.Millisecond)
				ct.Reset(2 * time.Millisecond)
				ct.Stop()
			}
		})
	}
	wg.Go(func() {
		for range 100 {
			s.Advance(time.Millisecond)
		}
	})
	wg.Wait()
	s.Advance(time.Second) // whatever is still armed fires now
	if got := s.Pending(); got != 0 {
		t.Fatalf("Pending() = %d after the final advance, want 0", got)
	}
	if fired == 0 {
		t.Fatalf("no timer fired")
	}
}

func TestWarped(t *testing.T) {
	type step struct {
		baseAdvance time.Duration
		baseJump    time.Duration
		wantInst    time.Duration // virtual instant since the warp began
		wantWall    time.Time
	}
	tests := []struct {
		name   string
		factor float64
		steps  []step
	}{
		{"one second is a minute", 60, []step{
			{baseAdvance: time.Second, wantInst: time.Minute, wantWall: epoch.Add(time.Minute)},
			{baseAdvance: time.Minute, wantInst: time.Hour + time.Minute, wantWall: epoch.Add(time.Hour + time.Minute)},
		}},
		{"factor one is the base clock", 1, []step{
			{baseAdvance: time.Second, wantInst: time.Second, wantWall: epoch.Add(time.Second)},
		}},
		{"slow motion", 0.5, []step{
			{baseAdvance: time.Second, wantInst: 500 * time.Millisecond, wantWall: epoch.Add(500 * time.Millisecond)},
		}},
		{"a base wall step passes through unscaled", 60, []step{
			{baseAdvance: time.Second, wantInst: time.Minute, wantWall: epoch.Add(time.Minute)},
			{baseJump: -time.Hour, wantInst: time.Minute, wantWall: epoch.Add(time.Minute - time.Hour)},
			{baseAdvance: time.Second, wantInst: 2 * time.Minute, wantWall: epoch.Add(2*time.Minute - time.Hour)},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			base := NewSim(epoch)
			base.Advance(time.Hour) // the warp starts from wherever the base clock is
			start := base.Instant()
			base.WallJump(-time.Hour) // keep wall == epoch at the warp's start for readable wants
			w, err := NewWarped(base, tt.factor)
			if err != nil {
				t.Fatal(err)
			}
			for i, st := range tt.steps {
				if st.baseJump != 0 {
					base.WallJump(st.baseJump)
				} else {
					base.Advance(st.baseAdvance)
				}
				if got, want := w.Instant()-start, int64(st.wantInst); got != want {
					t.Fatalf("step %d: virtual elapsed = %v, want %v", i, time.Duration(got), time.Duration(want))
				}
				if got := w.Now(); !got.Equal(st.wantWall) {
					t.Fatalf("step %d: Now() = %v, want %v", i, got, st.wantWall)
				}
			}
		})
	}
}

func TestWarpedTimers(t *testing.T) {
	base := NewSim(epoch)
	w, err := NewWarped(base, 60)
	if err != nil {
		t.Fatal(err)
	}
	var firedAt []time.Duration
	tm := w.AfterFunc(time.Minute, func() { firedAt = append(firedAt, time.Duration(w.Instant())) })
	ch := w.NewTimer(2 * time.Minute)

	base.Advance(999 * time.Millisecond)
	if len(firedAt) != 0 {
		t.Fatalf("fired after 59.94 virtual seconds")
	}
	base.Advance(time.Millisecond)
	if want := []time.Duration{time.Minute}; !slices.Equal(firedAt, want) {
		t.Fatalf("fired at %v, want %v", firedAt, want)
	}

	// Reset is in virtual time too.
	if tm.Reset(3 * time.Minute) {
		t.Fatalf("Reset() of a fired timer = true")
	}
	base.Advance(time.Second)
	select {
	case v := <-ch.C():
		if want := epoch.Add(2 * time.Minute); !v.Equal(want) {
			t.Fatalf("channel timer sent %v, want virtual wall %v", v, want)
		}
	default:
		t.Fatalf("channel timer did not fire after 2 virtual minutes")
	}
	base.Advance(2 * time.Second)
	if want := []time.Duration{time.Minute, 4 * time.Minute}; !slices.Equal(firedAt, want) {
		t.Fatalf("fired at %v, want %v", firedAt, want)
	}
}

func TestWarpedTimerNeverFiresEarly(t *testing.T) {
	// 1 s / 3 is 333333333.3 ns of base time; truncating would fire a virtual nanosecond early.
	base := NewSim(epoch)
	w, err := NewWarped(base, 3)
	if err != nil {
		t.Fatal(err)
	}
	fired := false
	w.AfterFunc(time.Second, func() { fired = true })
	base.Advance(333333333)
	if fired {
		t.Fatalf("fired at virtual %v, before 1s", time.Duration(w.Instant()))
	}
	base.Advance(1)
	if !fired {
		t.Fatalf("not fired at virtual %v", time.Duration(w.Instant()))
	}
}

func TestNewWarpedRejectsBadFactors(t *testing.T) {
	for _, f := range []float64{0, -1, math.NaN(), math.Inf(1), math.Inf(-1)} {
		if _, err := NewWarped(NewSim(epoch), f); err == nil {
			t.Errorf("NewWarped(factor %v) succeeded", f)
		}
	}
}

func TestStepDetector(t *testing.T) {
	type sample struct {
		wall    time.Duration // since epoch
		instant int64
		want    time.Duration // 0: no step reported
	}
	tests := []struct {
		name    string
		samples []sample
	}{
		{"steady", []sample{{0, 0, 0}, {10e9, 10e9, 0}, {20e9, 20e9, 0}}},
		{"jitter within tolerance", []sample{{0, 0, 0}, {10*time.Second + 900*time.Millisecond, 10e9, 0}, {20e9, 20e9, 0}}},
		{"ntp step forward", []sample{{0, 0, 0}, {10*time.Second + time.Hour, 10e9, time.Hour}, {20*time.Second + time.Hour, 20e9, 0}}},
		{"user sets the clock back", []sample{{0, 0, 0}, {10*time.Second - 5*time.Minute, 10e9, -5 * time.Minute}}},
		{"rtc reset to 1970", []sample{{0, 0, 0}, {-epoch.Sub(time.Unix(0, 0)) + 10*time.Second, 10e9, -epoch.Sub(time.Unix(0, 0))}}},
		{"wall frozen while instants move", []sample{{0, 0, 0}, {0, 5e9, -5 * time.Second}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := NewStepDetector(time.Second)
			for i, s := range tt.samples {
				step, ok := d.Observe(epoch.Add(s.wall), s.instant)
				if ok != (s.want != 0) || step.Delta != s.want {
					t.Fatalf("sample %d: Observe = %+v, %v; want delta %v", i, step, ok, s.want)
				}
				if ok && (step.Instant != s.instant || !step.Wall.Equal(epoch.Add(s.wall))) {
					t.Fatalf("sample %d: step at (%v, %d), want the sample's own", i, step.Wall, step.Instant)
				}
			}
		})
	}
}

func TestWatchReportsWallSteps(t *testing.T) {
	s := NewSim(epoch)
	var steps []Step
	stop := Watch(s, 10*time.Second, time.Second, func(st Step) { steps = append(steps, st) })

	s.Advance(time.Minute)
	if len(steps) != 0 {
		t.Fatalf("steps %v without any wall jump", steps)
	}
	s.Advance(5 * time.Second)
	s.WallJump(-time.Hour)
	s.Advance(5 * time.Second)
	if len(steps) != 1 {
		t.Fatalf("got %d steps, want 1", len(steps))
	}
	if got, want := steps[0].Delta, -time.Hour; got != want {
		t.Fatalf("step delta %v, want %v", got, want)
	}
	if got, want := steps[0].Instant, int64(70*time.Second); got != want {
		t.Fatalf("step seen at instant %v, want %v", time.Duration(got), time.Duration(want))
	}

	stop()
	if got := s.Pending(); got != 0 {
		t.Fatalf("Pending() = %d after stop, want 0", got)
	}
	s.WallJump(time.Hour)
	s.Advance(time.Minute)
	if len(steps) != 1 {
		t.Fatalf("onStep called after stop")
	}
}

func TestRealNowIsWallOnly(t *testing.T) {
	// A monotonic reading would make Sub between two Now values ignore wall steps.
	if s := (Real{}).Now().String(); strings.Contains(s, "m=") {
		t.Fatalf("Real.Now() carries a monotonic reading: %s", s)
	}
}

func TestRealInsideSynctest(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var c Clock = Real{}
		i0, w0 := c.Instant(), c.Now()
		tm := c.NewTimer(time.Minute)
		fired := make(chan struct{})
		c.AfterFunc(30*time.Second, func() { close(fired) })
		<-fired
		if got, want := c.Instant()-i0, int64(30*time.Second); got != want {
			t.Fatalf("AfterFunc fired after %v, want %v", time.Duration(got), time.Duration(want))
		}
		<-tm.C()
		if got, want := c.Now().Sub(w0), time.Minute; got != want {
			t.Fatalf("timer fired after %v of wall time, want %v", got, want)
		}
	})
}

func TestSaturatingArithmetic(t *testing.T) {
	tests := []struct {
		a, b     int64
		add, sub int64
	}{
		{1, 2, 3, -1},
		{math.MaxInt64, 1, math.MaxInt64, math.MaxInt64 - 1},
		{math.MinInt64, -1, math.MinInt64, math.MinInt64 + 1},
		{math.MinInt64, 1, math.MinInt64 + 1, math.MinInt64},
		{0, math.MinInt64, math.MinInt64, math.MaxInt64},
		{-1, math.MinInt64, math.MinInt64, math.MaxInt64},
		{math.MaxInt64, math.MinInt64, -1, math.MaxInt64},
	}
	for _, tt := range tests {
		if got := addSat(tt.a, tt.b); got != tt.add {
			t.Errorf("addSat(%d, %d) = %d, want %d", tt.a, tt.b, got, tt.add)
		}
		if got := subSat(tt.a, tt.b); got != tt.sub {
			t.Errorf("subSat(%d, %d) = %d, want %d", tt.a, tt.b, got, tt.sub)
		}
	}
}
