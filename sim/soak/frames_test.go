package soak

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/latchnvr/latch/nvr/camera"
	"github.com/latchnvr/latch/nvr/clock"
	"github.com/latchnvr/latch/nvr/store"
)

// These tests need no server: they check the soak's own reasoning about
// recordings (frames.go, checkGaps), so they run with `make test`.

type frameSink []camera.Frame

func (s *frameSink) WriteFrame(f camera.Frame) { *s = append(*s, f) }

// shoot captures n frames of a simulated camera, one every interval.
func shoot(t *testing.T, width, height, n int, interval time.Duration) []camera.Frame {
	t.Helper()
	clk := clock.NewSim(time.Date(2026, 11, 26, 15, 4, 5, 0, time.UTC))
	cam, err := camera.New(camera.Config{ID: "cam1", Interval: interval, Width: width, Height: height}, clk)
	if err != nil {
		t.Fatal(err)
	}
	var sink frameSink
	if err := cam.Start(&sink); err != nil {
		t.Fatal(err)
	}
	for len(sink) < n {
		clk.Advance(interval)
	}
	cam.Stop()
	return sink[:n]
}

func TestFrameSeqReadsTheCamerasStamp(t *testing.T) {
	for _, size := range [][2]int{{320, 90}, {640, 360}} {
		for _, f := range shoot(t, size[0], size[1], 120, 50*time.Second)[95:] {
			got, err := frameSeq(f.JPEG)
			if err != nil {
				t.Fatalf("%dx%d frame %d: %v", size[0], size[1], f.Seq, err)
			}
			if got != f.Seq {
				t.Errorf("%dx%d: read frame #%d, want #%d", size[0], size[1], got, f.Seq)
			}
		}
	}
	// At 160 pixels the number is drawn outside the frame: say so, never guess.
	if got, err := frameSeq(shoot(t, 160, 90, 1, time.Second)[0].JPEG); err == nil {
		t.Errorf("read #%d from a frame too narrow to show it", got)
	}
}

// TestCheckGapsTellsStallsFromLostSegments: a camera whose frames go on
// consecutively across a gap captured nothing there (a stall, attributed
// to the host when the server's threads were waiting for a CPU); one whose
// frames jump lost a segment, even when every segment around it is full.
func TestCheckGapsTellsStallsFromLostSegments(t *testing.T) {
	const seg, frame, warp = 15 * time.Minute, 50 * time.Second, 1000
	frames := shoot(t, 320, 90, 90, frame)
	dir := t.TempDir()
	if err := os.MkdirAll(filepath.Join(dir, "data", "recordings", "cam1"), 0o750); err != nil {
		t.Fatal(err)
	}
	// Slots of 18 frames: #0–17 in slot 0, #18–35 in slot 1, nothing in
	// slot 2 (a stall: #36 comes next), #36–53 in slot 3, slot 4's #54–71
	// lost, #72–89 in slot 5. Every segment is full.
	var segs []store.Segment
	for _, x := range []struct{ slot, first int }{{0, 0}, {1, 18}, {3, 36}, {5, 72}} {
		var b []byte
		for _, f := range frames[x.first : x.first+18] {
			b = append(b, f.JPEG...)
		}
		rel := "recordings/cam1/" + string(rune('a'+x.slot)) + ".mjpeg"
		if err := os.WriteFile(filepath.Join(dir, "data", filepath.FromSlash(rel)), b, 0o640); err != nil {
			t.Fatal(err)
		}
		segs = append(segs, store.Segment{ID: int64(len(segs) + 1), CameraID: 1, StartInstantNS: int64(x.slot) * int64(seg),
			DurationNS: int64(seg), Frames: 18, Bytes: int64(len(b)), Path: rel})
	}
	boot := &BootInfo{Boot: 1, RefInstant: 0, RefReal: 10, StartReal: 9.5}
	// Real seconds: slot k starts at 10 + 0.9k. The stall (slot 2, 11.8 s
	// to 12.7 s) happened while the server's threads waited 0.8 s for a
	// CPU; the lost segment's slot had no such excuse, nor does it need one.
	rss := []RSSSample{{RealSeconds: 11.5, Boot: 1, RunWaitMs: 100}, {RealSeconds: 13, Boot: 1, RunWaitMs: 900},
		{RealSeconds: 14.5, Boot: 1, RunWaitMs: 910}}
	e := &Engine{opt: Options{Dir: dir, Warp: warp, FPS: 1 / frame.Seconds(), Segment: seg, Cameras: 1, CheckGaps: true},
		boots: []*BootInfo{boot}, segMaxID: []int64{int64(len(segs))}, rss: rss}
	e.checkGaps(segs)
	st := e.rep.Segments
	if st.StallGaps != 1 || st.StallGapTime != seg || st.HostStallGapTime != seg {
		t.Errorf("stall gaps %d, %s, host's %s; want 1, %s, all the host's", st.StallGaps, st.StallGapTime, st.HostStallGapTime, seg)
	}
	if len(e.rep.Problems) != 1 || !strings.Contains(e.rep.Problems[0], "frames #54…#71 were captured and are in no segment") {
		t.Errorf("problems %q, want one: the segment of frames #54…#71 is missing", e.rep.Problems)
	}

	// The same stall with the server's threads never waiting is the server's.
	e = &Engine{opt: e.opt, boots: []*BootInfo{boot}, segMaxID: e.segMaxID,
		rss: []RSSSample{{RealSeconds: 11.5, Boot: 1}, {RealSeconds: 13, Boot: 1}}}
	e.checkGaps(segs[:3])
	if st := e.rep.Segments; st.StallGaps != 1 || st.HostStallGapTime != 0 || len(e.rep.Problems) != 0 {
		t.Errorf("stall gaps %d, host's %s, problems %q; want 1, none, none", st.StallGaps, st.HostStallGapTime, e.rep.Problems)
	}
}
