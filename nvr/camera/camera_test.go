package camera

import (
	"bytes"
	"errors"
	"image"
	"image/jpeg"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/latchnvr/latch/nvr/clock"
)

var epoch = time.Date(2026, 3, 14, 12, 0, 0, 0, time.UTC)

// frameLog is a Sink that keeps every frame.
type frameLog struct {
	mu     sync.Mutex
	frames []Frame
}

func (l *frameLog) WriteFrame(f Frame) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.frames = append(l.frames, f)
}

func (l *frameLog) instants() []time.Duration {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []time.Duration
	for _, f := range l.frames {
		out = append(out, time.Duration(f.Instant))
	}
	return out
}

func startCamera(t *testing.T, clk clock.Clock, cfg Config, sink Sink) *Camera {
	t.Helper()
	c, err := New(cfg, clk)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Start(sink); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Stop)
	return c
}

func TestConfigValidate(t *testing.T) {
	tests := []struct {
		name string
		cfg  Config
		ok   bool
	}{
		{"defaults", Config{ID: "cam1"}, true},
		{"full", Config{ID: "front-door_2", Name: "Front door", Interval: 100 * time.Millisecond, Width: 320, Height: 180, Quality: 50}, true},
		{"empty id", Config{}, false},
		{"upper case id", Config{ID: "Cam1"}, false},
		{"id with slash", Config{ID: "a/b"}, false},
		{"id of dots", Config{ID: ".."}, false},
		{"id starting with dash", Config{ID: "-x"}, false},
		{"id too long", Config{ID: string(bytes.Repeat([]byte("a"), 65))}, false},
		{"interval too short", Config{ID: "c", Interval: time.Microsecond}, false},
		{"negative interval", Config{ID: "c", Interval: -time.Second}, false},
		{"too small", Config{ID: "c", Width: 8, Height: 8}, false},
		{"quality too high", Config{ID: "c", Quality: 101}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.cfg.Validate()
			if (err == nil) != tt.ok {
				t.Fatalf("Validate() = %v, want ok=%v", err, tt.ok)
			}
			if _, err := New(tt.cfg, clock.NewSim(epoch)); (err == nil) != tt.ok {
				t.Fatalf("New() = %v, want ok=%v", err, tt.ok)
			}
		})
	}
}

func TestDefaultConfigs(t *testing.T) {
	cfgs := DefaultConfigs(DefaultCount)
	if got, want := len(cfgs), 4; got != want {
		t.Fatalf("len = %d, want %d", got, want)
	}
	for i, cfg := range cfgs {
		if err := cfg.Validate(); err != nil {
			t.Fatalf("config %d: %v", i, err)
		}
	}
	if got, want := cfgs[3].ID, "cam4"; got != want {
		t.Fatalf("ID = %q, want %q", got, want)
	}
}

func TestFramesFollowTheSimClock(t *testing.T) {
	sim := clock.NewSim(epoch)
	var log frameLog
	c := startCamera(t, sim, Config{ID: "cam1"}, &log)

	// The first frame is captured by Start itself.
	if got := len(log.frames); got != 1 {
		t.Fatalf("%d frames after Start, want 1", got)
	}
	sim.Advance(10 * time.Second)
	if got, want := len(log.frames), 11; got != want {
		t.Fatalf("%d frames after 10s at 1 fps, want %d", got, want)
	}
	for i, f := range log.frames {
		if f.Seq != uint64(i) || f.Instant != int64(i)*int64(time.Second) || !f.Wall.Equal(epoch.Add(time.Duration(i)*time.Second)) || f.CameraID != "cam1" {
			t.Fatalf("frame %d = {Seq %d, Instant %v, Wall %v, %q}", i, f.Seq, time.Duration(f.Instant), f.Wall, f.CameraID)
		}
	}
	last := log.frames[10]
	if !bytes.Equal(c.Latest(), last.JPEG) {
		t.Fatalf("Latest() is not the last frame")
	}
	if f, ok := c.LatestFrame(); !ok || f.Seq != 10 {
		t.Fatalf("LatestFrame() = seq %d, %v; want 10, true", f.Seq, ok)
	}
	img, err := jpeg.Decode(bytes.NewReader(last.JPEG))
	if err != nil {
		t.Fatalf("decode: %v", err)
	}
	if got, want := img.Bounds(), image.Rect(0, 0, DefaultWidth, DefaultHeight); got != want {
		t.Fatalf("frame bounds %v, want %v", got, want)
	}
}

func TestPattern(t *testing.T) {
	r := newRenderer(DefaultWidth, DefaultHeight, 90, 0)
	jpg, err := r.render("Camera 1", 0, 0, epoch)
	if err != nil {
		t.Fatal(err)
	}
	img, err := jpeg.Decode(bytes.NewReader(jpg))
	if err != nil {
		t.Fatal(err)
	}
	near := func(got, want uint32) bool { return got+24 >= want && got <= want+24 }
	// Sample the middle of each bar, below the name plate and above the ramp.
	for i, want := range bars {
		x := DefaultWidth*i/len(bars) + DefaultWidth/len(bars)/2
		r, g, b, _ := img.At(x, DefaultHeight/3).RGBA()
		if !near(r>>8, uint32(want.R)) || !near(g>>8, uint32(want.G)) || !near(b>>8, uint32(want.B)) {
			t.Errorf("bar %d at x=%d: got (%d,%d,%d), want %v", i, x, r>>8, g>>8, b>>8, want)
		}
	}
	// The name plate is black behind white text in the top-left corner.
	if r, g, b, _ := img.At(9, 9).RGBA(); r>>8 > 40 || g>>8 > 40 || b>>8 > 40 {
		t.Errorf("name plate corner is (%d,%d,%d), want black", r>>8, g>>8, b>>8)
	}
}

func TestFramesAreDeterministic(t *testing.T) {
	// Same config and same clock: byte-identical frames, so simulator traces can hash them.
	var logs [2]frameLog
	for i := range logs {
		sim := clock.NewSim(epoch)
		startCamera(t, sim, Config{ID: "cam2"}, &logs[i])
		sim.Advance(3 * time.Second)
	}
	for i := range logs[0].frames {
		if !bytes.Equal(logs[0].frames[i].JPEG, logs[1].frames[i].JPEG) {
			t.Fatalf("frame %d differs between identical runs", i)
		}
	}
	// The time is drawn in, so consecutive frames differ.
	if bytes.Equal(logs[0].frames[0].JPEG, logs[0].frames[1].JPEG) {
		t.Fatalf("frames at different times are identical")
	}
}

// skewClock makes chosen timers fire later or earlier than asked, as a loaded machine or a
// rounding warp would.
type skewClock struct {
	*clock.Sim
	skew map[int]time.Duration // by AfterFunc call number
	n    int
}

func (s *skewClock) AfterFunc(d time.Duration, f func()) clock.Timer {
	s.n++
	return &skewTimer{s: s, inner: s.Sim.AfterFunc(d+s.skew[s.n], f)}
}

type skewTimer struct {
	s     *skewClock
	inner clock.Timer
}

func (t *skewTimer) C() <-chan time.Time { return nil }
func (t *skewTimer) Stop() bool          { return t.inner.Stop() }
func (t *skewTimer) Reset(d time.Duration) bool {
	t.s.n++
	return t.inner.Reset(d + t.s.skew[t.s.n])
}

func TestLateTicksSkipSlots(t *testing.T) {
	// Arming 3 (for the 3s slot) fires 2.5s late: the camera captures at 5.5s, skips the 4s and
	// 5s slots rather than catching up, and is back on the grid at 6s.
	clk := &skewClock{Sim: clock.NewSim(epoch), skew: map[int]time.Duration{3: 2500 * time.Millisecond}}
	var log frameLog
	startCamera(t, clk, Config{ID: "cam1"}, &log)
	clk.Advance(8 * time.Second)
	want := []time.Duration{0, time.Second, 2 * time.Second, 5500 * time.Millisecond, 6 * time.Second, 7 * time.Second, 8 * time.Second}
	if got := log.instants(); !equalDurations(got, want) {
		t.Fatalf("frames at %v, want %v", got, want)
	}
	if got := log.frames[3].Seq; got != 3 {
		t.Fatalf("Seq after the stall = %d, want 3 (Seq counts frames, not slots)", got)
	}
}

func TestEarlyTickWaitsForItsSlot(t *testing.T) {
	clk := &skewClock{Sim: clock.NewSim(epoch), skew: map[int]time.Duration{2: -time.Nanosecond}}
	var log frameLog
	startCamera(t, clk, Config{ID: "cam1"}, &log)
	clk.Advance(2 * time.Second)
	want := []time.Duration{0, time.Second, 2 * time.Second}
	if got := log.instants(); !equalDurations(got, want) {
		t.Fatalf("frames at %v, want %v", got, want)
	}
}

func equalDurations(a, b []time.Duration) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func TestSlowSubscriberDropsOldFrames(t *testing.T) {
	sim := clock.NewSim(epoch)
	var log frameLog
	c := startCamera(t, sim, Config{ID: "cam1"}, &log)
	slow := c.Subscribe()
	fast := c.Subscribe()
	defer slow.Close()
	defer fast.Close()

	var fastSeqs []uint64
	for range 5 {
		sim.Advance(time.Second)
		fastSeqs = append(fastSeqs, (<-fast.C()).Seq)
	}
	// The camera and the recorder carried on regardless of the slow subscriber.
	if got, want := len(log.frames), 6; got != want {
		t.Fatalf("sink got %d frames, want %d", got, want)
	}
	if got, want := fastSeqs, []uint64{1, 2, 3, 4, 5}; !equalSeqs(got, want) {
		t.Fatalf("fast subscriber got %v, want %v", got, want)
	}
	if got := (<-slow.C()).Seq; got != 5 {
		t.Fatalf("slow subscriber got seq %d, want the newest, 5", got)
	}
	if got, want := slow.Dropped(), uint64(4); got != want {
		t.Fatalf("slow.Dropped() = %d, want %d", got, want)
	}
	if got := fast.Dropped(); got != 0 {
		t.Fatalf("fast.Dropped() = %d, want 0", got)
	}
}

func equalSeqs(a, b []uint64) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func TestStop(t *testing.T) {
	sim := clock.NewSim(epoch)
	var log frameLog
	c := startCamera(t, sim, Config{ID: "cam1"}, &log)
	sub := c.Subscribe()
	sim.Advance(time.Second)

	c.Stop()
	if got := sim.Pending(); got != 0 {
		t.Fatalf("Pending() = %d after Stop, want 0", got)
	}
	if f, ok := <-sub.C(); !ok || f.Seq != 1 {
		t.Fatalf("buffered frame lost by Stop: %v, %v", f.Seq, ok)
	}
	if _, ok := <-sub.C(); ok {
		t.Fatalf("subscription open after Stop")
	}
	sub.Close() // closing again after Stop is harmless
	if _, ok := <-c.Subscribe().C(); ok {
		t.Fatalf("Subscribe after Stop returned an open channel")
	}
	sim.Advance(time.Minute)
	if got, want := len(log.frames), 2; got != want {
		t.Fatalf("%d frames, want %d: captured after Stop", got, want)
	}
	if c.Latest() == nil {
		t.Fatalf("Latest() forgot the last frame on Stop")
	}
	if err := c.Start(&log); !errors.Is(err, ErrStarted) {
		t.Fatalf("Start after Stop = %v, want ErrStarted", err)
	}
}

func TestStartTwice(t *testing.T) {
	c := startCamera(t, clock.NewSim(epoch), Config{ID: "cam1"}, nil)
	if err := c.Start(nil); !errors.Is(err, ErrStarted) {
		t.Fatalf("second Start = %v, want ErrStarted", err)
	}
	if c.Latest() == nil {
		t.Fatalf("Latest() = nil after Start with no sink")
	}
}

// TestRealClockLiveView runs the camera on real timers in a synctest bubble: capture in timer
// goroutines, live view in another, for the race detector.
func TestRealClockLiveView(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var log frameLog
		c, err := New(Config{ID: "cam1", Width: 160, Height: 90}, clock.Real{})
		if err != nil {
			t.Fatal(err)
		}
		if err := c.Start(&log); err != nil {
			t.Fatal(err)
		}
		sub := c.Subscribe()
		done := make(chan []uint64)
		go func() {
			var seqs []uint64
			for f := range sub.C() {
				seqs = append(seqs, f.Seq)
			}
			done <- seqs
		}()
		time.Sleep(10*time.Second + time.Millisecond)
		c.Stop()
		seqs := <-done
		if got, want := len(log.frames), 11; got != want {
			t.Fatalf("%d frames in 10s, want %d", got, want)
		}
		if len(seqs) == 0 || seqs[len(seqs)-1] != 10 {
			t.Fatalf("live view saw %v, want it to end with 10", seqs)
		}
	})
}

func BenchmarkRenderFrame(b *testing.B) {
	r := newRenderer(DefaultWidth, DefaultHeight, DefaultQuality, 0)
	b.ReportAllocs()
	var size int
	for i := 0; b.Loop(); i++ {
		jpg, err := r.render("Camera 1", uint64(i), time.Duration(i)*time.Second, epoch.Add(time.Duration(i)*time.Second))
		if err != nil {
			b.Fatal(err)
		}
		size = len(jpg)
	}
	b.ReportMetric(float64(size), "bytes/frame")
}
