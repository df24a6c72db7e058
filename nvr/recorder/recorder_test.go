package recorder_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"image/jpeg"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/latchnvr/latch/nvr/camera"
	"github.com/latchnvr/latch/nvr/clock"
	"github.com/latchnvr/latch/nvr/recorder"
	"github.com/latchnvr/latch/nvr/recorder/recordertest"
)

var epoch = time.Date(2026, 3, 14, 12, 0, 0, 0, time.UTC)

// errorLog collects reported errors; the recorder reports from two goroutines.
type errorLog struct {
	mu   sync.Mutex
	errs []error
}

func (l *errorLog) report(err error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.errs = append(l.errs, err)
}

func (l *errorLog) all() []error {
	l.mu.Lock()
	defer l.mu.Unlock()
	return slices.Clone(l.errs)
}

// rig is one simulated camera recorded into a temp directory.
type rig struct {
	t    *testing.T
	sim  *clock.Sim
	dir  string
	idx  *recordertest.Index
	cam  *camera.Camera
	rec  *recorder.Recorder
	errs *errorLog
}

func newRig(t *testing.T, clk clock.Clock, cfg recorder.Config, idx recorder.SegmentIndex) (*camera.Camera, *recorder.Recorder, *errorLog) {
	t.Helper()
	errs := &errorLog{}
	cfg.OnError = errs.report
	rec, err := recorder.New(cfg, clk, idx)
	if err != nil {
		t.Fatal(err)
	}
	cam, err := camera.New(camera.Config{ID: cfg.CameraID, Width: 160, Height: 90, OnError: errs.report}, clk)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cam.Stop(); rec.Close() })
	return cam, rec, errs
}

func simRig(t *testing.T, cfg recorder.Config) *rig {
	t.Helper()
	r := &rig{t: t, sim: clock.NewSim(epoch), dir: t.TempDir(), idx: &recordertest.Index{}}
	if cfg.CameraID == "" {
		cfg.CameraID = "cam1"
	}
	cfg.DataDir = r.dir
	r.cam, r.rec, r.errs = newRig(t, r.sim, cfg, r.idx)
	return r
}

func (r *rig) start() {
	r.t.Helper()
	if err := r.cam.Start(r.rec); err != nil {
		r.t.Fatal(err)
	}
}

func (r *rig) segments() []recorder.Segment {
	r.t.Helper()
	r.rec.Flush()
	segs, err := r.idx.Segments(context.Background())
	if err != nil {
		r.t.Fatal(err)
	}
	return segs
}

// checkSegments checks the index against the files: sizes, frame counts, decodable frames,
// and that consecutive segments abut.
func checkSegments(t *testing.T, dataDir string, segs []recorder.Segment) {
	t.Helper()
	for i, s := range segs {
		data, err := os.ReadFile(filepath.Join(dataDir, filepath.FromSlash(s.Path)))
		if err != nil {
			t.Fatalf("segment %d: %v", i, err)
		}
		if got := int64(len(data)); got != s.Bytes {
			t.Fatalf("segment %d: file has %d bytes, index says %d", i, got, s.Bytes)
		}
		sc := recorder.NewFrameScanner(bytes.NewReader(data))
		frames := 0
		for sc.Scan() {
			// The scanner checks every frame's structure; decoding one per segment shows the
			// payload is real JPEG without making the race-detector run crawl.
			if frames > 0 {
				frames++
				continue
			}
			if _, err := jpeg.Decode(bytes.NewReader(sc.Bytes())); err != nil {
				t.Fatalf("segment %d frame %d: %v", i, frames, err)
			}
			frames++
		}
		if err := sc.Err(); err != nil {
			t.Fatalf("segment %d: scan: %v", i, err)
		}
		if frames != s.Frames {
			t.Fatalf("segment %d: file has %d frames, index says %d", i, frames, s.Frames)
		}
	}
}

func noTempFiles(t *testing.T, dataDir, cameraID string) {
	t.Helper()
	left, _ := filepath.Glob(filepath.Join(recorder.CameraDir(dataDir, cameraID), ".rec-*"))
	if len(left) > 0 {
		t.Fatalf("temp files left behind: %v", left)
	}
}

func TestThreeMinutesMakeThreeAbuttingSegments(t *testing.T) {
	r := simRig(t, recorder.Config{})
	r.start()
	r.sim.Advance(3 * time.Minute)

	segs := r.segments()
	if got, want := len(segs), 3; got != want {
		t.Fatalf("%d segments after 3 min, want %d: %+v", got, want, segs)
	}
	for i, s := range segs {
		start := time.Duration(i) * time.Minute
		want := recorder.Segment{
			CameraID:     "cam1",
			Start:        epoch.Add(start),
			StartInstant: int64(start),
			Duration:     time.Minute,
			Frames:       60,
			Path:         fmt.Sprintf("recordings/cam1/20260314T12%02d00.000Z.mjpeg", i),
			Bytes:        s.Bytes,
		}
		if !s.Start.Equal(want.Start) {
			t.Fatalf("segment %d: Start %v, want %v", i, s.Start, want.Start)
		}
		s.Start = want.Start
		if s != want {
			t.Fatalf("segment %d:\n got %+v\nwant %+v", i, s, want)
		}
		if i > 0 && segs[i-1].StartInstant+int64(segs[i-1].Duration) != s.StartInstant {
			t.Fatalf("gap or overlap between segments %d and %d", i-1, i)
		}
	}
	checkSegments(t, r.dir, segs)

	// Stopping keeps the frame captured at 3:00 as a partial segment.
	r.sim.Advance(500 * time.Millisecond)
	r.cam.Stop()
	r.rec.Close()
	segs = r.segments()
	if got, want := len(segs), 4; got != want {
		t.Fatalf("%d segments after Close, want %d", got, want)
	}
	if last := segs[3]; last.Frames != 1 || last.Duration != 500*time.Millisecond || last.StartInstant != int64(3*time.Minute) {
		t.Fatalf("partial segment %+v", last)
	}
	checkSegments(t, r.dir, segs)
	noTempFiles(t, r.dir, "cam1")
	if errs := r.errs.all(); len(errs) > 0 {
		t.Fatalf("errors reported: %v", errs)
	}
}

func TestWarpedClockSpeedsUpRecording(t *testing.T) {
	base := clock.NewSim(epoch)
	warped, err := clock.NewWarped(base, 60)
	if err != nil {
		t.Fatal(err)
	}
	dir, idx := t.TempDir(), &recordertest.Index{}
	cam, rec, _ := newRig(t, warped, recorder.Config{CameraID: "cam1", DataDir: dir}, idx)
	if err := cam.Start(rec); err != nil {
		t.Fatal(err)
	}
	base.Advance(3 * time.Second) // three virtual minutes
	rec.Flush()
	segs, _ := idx.Segments(context.Background())
	if got, want := len(segs), 3; got != want {
		t.Fatalf("%d segments after 3 base seconds at 60x, want %d", got, want)
	}
	for i, s := range segs {
		if s.Frames != 60 || s.Duration != time.Minute {
			t.Fatalf("segment %d: %d frames over %v, want 60 over 1m", i, s.Frames, s.Duration)
		}
	}
}

func TestWallStepsNeitherCutNorOverwriteSegments(t *testing.T) {
	r := simRig(t, recorder.Config{})
	r.start()
	// At 1:30 the wall clock is set back a minute: the third segment (instant 2:00) then shows
	// the same wall time as the second and must not replace its file.
	r.sim.Advance(90 * time.Second)
	r.sim.WallJump(-time.Minute)
	r.sim.Advance(90 * time.Second)

	segs := r.segments()
	if got, want := len(segs), 3; got != want {
		t.Fatalf("%d segments, want %d", got, want)
	}
	for i, s := range segs {
		if s.Frames != 60 || s.Duration != time.Minute || s.StartInstant != int64(i)*int64(time.Minute) {
			t.Fatalf("segment %d: %+v; wall steps must not move boundaries", i, s)
		}
	}
	if got, want := segs[2].Start, epoch.Add(time.Minute); !got.Equal(want) {
		t.Fatalf("third segment Start %v, want %v (wall time after the step)", got, want)
	}
	wantPaths := []string{
		"recordings/cam1/20260314T120000.000Z.mjpeg",
		"recordings/cam1/20260314T120100.000Z.mjpeg",
		"recordings/cam1/20260314T120100.000Z-1.mjpeg",
	}
	for i, s := range segs {
		if s.Path != wantPaths[i] {
			t.Fatalf("segment %d path %q, want %q", i, s.Path, wantPaths[i])
		}
	}
	checkSegments(t, r.dir, segs)
}

// frameAt is a synthetic frame for driving a recorder directly.
func frameAt(at time.Duration) camera.Frame {
	return camera.Frame{CameraID: "cam1", Wall: epoch.Add(at), Instant: int64(at), JPEG: []byte("frame")}
}

func TestSegmentBoundaries(t *testing.T) {
	type want struct {
		start, dur time.Duration
		frames     int
	}
	tests := []struct {
		name   string
		frames []time.Duration
		closed time.Duration // clock instant at Close
		want   []want
	}{
		{"one frame per segment", []time.Duration{0, 60 * time.Second, 120 * time.Second}, 130 * time.Second,
			[]want{{0, time.Minute, 1}, {time.Minute, time.Minute, 1}, {2 * time.Minute, 10 * time.Second, 1}}},
		{"frame just before the boundary stays", []time.Duration{0, time.Minute - 1, time.Minute}, time.Minute,
			[]want{{0, time.Minute, 2}, {time.Minute, 0, 1}}},
		{"a stall leaves a gap and the grid resumes", []time.Duration{0, 30 * time.Second, 200 * time.Second}, 210 * time.Second,
			[]want{{0, time.Minute, 2}, {3 * time.Minute, 30 * time.Second, 1}}},
		{"grid anchored at the first frame", []time.Duration{7 * time.Second, 66 * time.Second, 67 * time.Second}, 70 * time.Second,
			[]want{{7 * time.Second, time.Minute, 2}, {67 * time.Second, 3 * time.Second, 1}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sim := clock.NewSim(epoch)
			dir, idx := t.TempDir(), &recordertest.Index{}
			rec, err := recorder.New(recorder.Config{CameraID: "cam1", DataDir: dir}, sim, idx)
			if err != nil {
				t.Fatal(err)
			}
			for _, at := range tt.frames {
				rec.WriteFrame(frameAt(at))
			}
			sim.AdvanceTo(int64(tt.closed))
			rec.Close()
			segs, _ := idx.Segments(context.Background())
			var got []want
			for _, s := range segs {
				got = append(got, want{time.Duration(s.StartInstant), s.Duration, s.Frames})
				if wantWall := epoch.Add(time.Duration(s.StartInstant)); !s.Start.Equal(wantWall) {
					t.Errorf("segment at %v: Start %v, want %v", time.Duration(s.StartInstant), s.Start, wantWall)
				}
			}
			if !slices.Equal(got, tt.want) {
				t.Fatalf("segments %v, want %v", got, tt.want)
			}
		})
	}
}

// faultyFile fails writes or syncs the way a full or failing disk does.
type faultyFile struct {
	*os.File
	writeErr, syncErr error
}

func (f *faultyFile) Write(p []byte) (int, error) {
	if f.writeErr != nil {
		n, _ := f.File.Write(p[:len(p)/2]) // a short write, as ENOSPC leaves
		return n, f.writeErr
	}
	return f.File.Write(p)
}

func (f *faultyFile) Sync() error {
	if f.syncErr != nil {
		return f.syncErr
	}
	return f.File.Sync()
}

func TestDiskErrorsLoseOnlyTheirSegment(t *testing.T) {
	tests := []struct {
		name   string
		create func(n int, f *os.File) (recorder.SegmentFile, error) // n counts segments from 1
	}{
		{"disk full while writing", func(n int, f *os.File) (recorder.SegmentFile, error) {
			if n == 2 {
				return &faultyFile{File: f, writeErr: syscall.ENOSPC}, nil
			}
			return f, nil
		}},
		{"cannot create the file", func(n int, f *os.File) (recorder.SegmentFile, error) {
			if n == 2 {
				f.Close()
				os.Remove(f.Name())
				return nil, syscall.ENOSPC
			}
			return f, nil
		}},
		{"fsync fails", func(n int, f *os.File) (recorder.SegmentFile, error) {
			if n == 2 {
				return &faultyFile{File: f, syncErr: syscall.EIO}, nil
			}
			return f, nil
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := simRig(t, recorder.Config{})
			n := 0
			recorder.SetCreate(r.rec, func(dir string) (recorder.SegmentFile, error) {
				f, err := os.CreateTemp(dir, ".rec-*.tmp")
				if err != nil {
					return nil, err
				}
				n++
				return tt.create(n, f)
			})
			r.start()
			r.sim.Advance(3 * time.Minute)

			segs := r.segments()
			var starts []time.Duration
			for _, s := range segs {
				starts = append(starts, time.Duration(s.StartInstant))
			}
			if want := []time.Duration{0, 2 * time.Minute}; !slices.Equal(starts, want) {
				t.Fatalf("segments start at %v, want %v: only the second is lost", starts, want)
			}
			checkSegments(t, r.dir, segs)
			if len(r.cam.Latest()) == 0 {
				t.Fatalf("live view stopped")
			}
			errs := r.errs.all()
			if len(errs) != 1 {
				t.Fatalf("reported %d errors, want 1: %v", len(errs), errs)
			}
			if !errors.Is(errs[0], syscall.ENOSPC) && !errors.Is(errs[0], syscall.EIO) {
				t.Fatalf("reported %v, want it to wrap the disk error", errs[0])
			}
			r.cam.Stop()
			r.rec.Close()
			noTempFiles(t, r.dir, "cam1")
		})
	}
}

// flakyIndex fails or panics on chosen calls, then behaves.
type flakyIndex struct {
	recordertest.Index
	mu    sync.Mutex
	calls int
	fail  map[int]string // call number → "error" or "panic"
}

func (x *flakyIndex) AddSegment(ctx context.Context, s recorder.Segment) error {
	x.mu.Lock()
	x.calls++
	mode := x.fail[x.calls]
	x.mu.Unlock()
	switch mode {
	case "error":
		return errors.New("database is locked")
	case "panic":
		panic("bug in the store")
	}
	return x.Index.AddSegment(ctx, s)
}

func TestIndexFailuresAreRetriedInOrder(t *testing.T) {
	// Calls 1 and 2 fail (segment 1, then its retry alongside segment 2), call 3 panics (the
	// retry at segment 3); from call 4 all three are indexed, oldest first.
	idx := &flakyIndex{fail: map[int]string{1: "error", 2: "error", 3: "panic"}}
	sim := clock.NewSim(epoch)
	dir := t.TempDir()
	cam, rec, errs := newRig(t, sim, recorder.Config{CameraID: "cam1", DataDir: dir}, idx)
	if err := cam.Start(rec); err != nil {
		t.Fatal(err)
	}
	sim.Advance(3 * time.Minute)
	rec.Flush()
	if got := len(errs.all()); got != 3 {
		t.Fatalf("reported %d errors, want 3: %v", got, errs.all())
	}
	if got := errs.all()[2].Error(); !strings.Contains(got, "bug in the store") {
		t.Fatalf("panic reported as %q", got)
	}
	sim.Advance(time.Minute)
	rec.Flush()
	segs, _ := idx.Segments(context.Background())
	var starts []time.Duration
	for _, s := range segs {
		starts = append(starts, time.Duration(s.StartInstant))
	}
	if want := []time.Duration{0, time.Minute, 2 * time.Minute, 3 * time.Minute}; !slices.Equal(starts, want) {
		t.Fatalf("indexed %v, want %v", starts, want)
	}
	checkSegments(t, dir, segs)
}

// blockingIndex holds AddSegment until released, like a database held by another writer.
type blockingIndex struct {
	recordertest.Index
	entered chan struct{}
	release chan struct{}
}

func (x *blockingIndex) AddSegment(ctx context.Context, s recorder.Segment) error {
	select {
	case x.entered <- struct{}{}:
	default:
	}
	<-x.release
	return x.Index.AddSegment(ctx, s)
}

func TestStuckIndexNeverStallsCapture(t *testing.T) {
	idx := &blockingIndex{entered: make(chan struct{}, 1), release: make(chan struct{})}
	sim := clock.NewSim(epoch)
	dir := t.TempDir()
	cam, rec, errs := newRig(t, sim, recorder.Config{CameraID: "cam1", DataDir: dir, QueueLen: 1}, idx)
	if err := cam.Start(rec); err != nil {
		t.Fatal(err)
	}
	sim.Advance(time.Minute)
	<-idx.entered // the finalizer is stuck indexing segment 1; the queue is empty
	sim.Advance(time.Minute)
	sim.Advance(time.Minute) // segment 2 waits in the queue; segment 3 finds it full

	if got, want := len(cam.Latest()), 0; got == want {
		t.Fatalf("no live frame")
	}
	if f, _ := cam.LatestFrame(); f.Seq != 180 {
		t.Fatalf("camera at frame %d, want 180: capture stalled behind the index", f.Seq)
	}
	if got := len(errs.all()); got != 1 || !strings.Contains(errs.all()[0].Error(), "dropped") {
		t.Fatalf("reported %v, want one dropped segment", errs.all())
	}
	close(idx.release)
	rec.Flush()
	segs, _ := idx.Segments(context.Background())
	if got, want := len(segs), 2; got != want {
		t.Fatalf("%d segments indexed, want %d", got, want)
	}
	cam.Stop()
	rec.Close()
	noTempFiles(t, dir, "cam1")
}

func TestNewRemovesUnfinishedSegments(t *testing.T) {
	dir := t.TempDir()
	camDir := recorder.CameraDir(dir, "cam1")
	if err := os.MkdirAll(camDir, 0o750); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{".rec-123.tmp", "20260314T120000.000Z.mjpeg"} {
		if err := os.WriteFile(filepath.Join(camDir, name), []byte("x"), 0o640); err != nil {
			t.Fatal(err)
		}
	}
	rec, err := recorder.New(recorder.Config{CameraID: "cam1", DataDir: dir}, clock.NewSim(epoch), &recordertest.Index{})
	if err != nil {
		t.Fatal(err)
	}
	rec.Close()
	noTempFiles(t, dir, "cam1")
	if _, err := os.Stat(filepath.Join(camDir, "20260314T120000.000Z.mjpeg")); err != nil {
		t.Fatalf("a finished segment was removed: %v", err)
	}
}

func TestNewRejectsBadConfig(t *testing.T) {
	dir := t.TempDir()
	tests := []struct {
		name string
		cfg  recorder.Config
		idx  recorder.SegmentIndex
	}{
		{"no index", recorder.Config{CameraID: "cam1", DataDir: dir}, nil},
		{"bad camera id", recorder.Config{CameraID: "../x", DataDir: dir}, &recordertest.Index{}},
		{"no data dir", recorder.Config{CameraID: "cam1"}, &recordertest.Index{}},
		{"negative segment", recorder.Config{CameraID: "cam1", DataDir: dir, Segment: -time.Second}, &recordertest.Index{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if rec, err := recorder.New(tt.cfg, clock.NewSim(epoch), tt.idx); err == nil {
				rec.Close()
				t.Fatalf("New succeeded")
			}
		})
	}
}

func TestFrameFromAnotherCameraIsRefused(t *testing.T) {
	r := simRig(t, recorder.Config{})
	f := frameAt(0)
	f.CameraID = "cam2"
	r.rec.WriteFrame(f)
	r.rec.Close()
	if got := len(r.segments()); got != 0 {
		t.Fatalf("%d segments from a foreign frame", got)
	}
	if got := len(r.errs.all()); got != 1 {
		t.Fatalf("reported %d errors, want 1", got)
	}
}

func TestFleetRecordsEveryCamera(t *testing.T) {
	sim := clock.NewSim(epoch)
	dir, idx := t.TempDir(), &recordertest.Index{}
	errs := &errorLog{}
	cfgs := camera.DefaultConfigs(camera.DefaultCount)
	for i := range cfgs {
		cfgs[i].Width, cfgs[i].Height = 160, 90
	}
	fleet, err := recorder.StartFleet(sim, idx, cfgs, recorder.Config{DataDir: dir, OnError: errs.report})
	if err != nil {
		t.Fatal(err)
	}
	sim.Advance(3 * time.Minute)
	fleet.Flush()
	segs, _ := idx.Segments(context.Background())
	perCamera := make(map[string]int)
	for _, s := range segs {
		perCamera[s.CameraID]++
	}
	for _, cfg := range cfgs {
		if got := perCamera[cfg.ID]; got != 3 {
			t.Fatalf("camera %s has %d segments, want 3", cfg.ID, got)
		}
	}
	if c := fleet.Camera("cam3"); c == nil || c.Latest() == nil {
		t.Fatalf("Camera(cam3) = %v, or no frame", c)
	}
	if fleet.Camera("cam9") != nil {
		t.Fatalf("Camera(cam9) found")
	}
	fleet.Stop()
	if got := sim.Pending(); got != 0 {
		t.Fatalf("%d timers armed after Stop", got)
	}
	if len(errs.all()) > 0 {
		t.Fatalf("errors: %v", errs.all())
	}

	if _, err := recorder.StartFleet(sim, idx, []camera.Config{{ID: "a"}, {ID: "a"}}, recorder.Config{DataDir: dir}); err == nil {
		t.Fatalf("duplicate camera ids accepted")
	}
}

// BenchmarkRecordFrame is the whole per-frame cost at the default size: render, encode, publish,
// append to the segment, and (every 60th frame) fsync, rename and index.
func BenchmarkRecordFrame(b *testing.B) {
	sim := clock.NewSim(epoch)
	idx := &recordertest.Index{}
	rec, err := recorder.New(recorder.Config{CameraID: "cam1", DataDir: b.TempDir()}, sim, idx)
	if err != nil {
		b.Fatal(err)
	}
	cam, err := camera.New(camera.Config{ID: "cam1"}, sim)
	if err != nil {
		b.Fatal(err)
	}
	if err := cam.Start(rec); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		sim.Advance(time.Second)
	}
	b.StopTimer()
	cam.Stop()
	rec.Close()
}
