package recorder_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/latchnvr/latch/nvr/recorder"
	"github.com/latchnvr/latch/nvr/recorder/recordertest"
)

// seg is a one-camera segment starting at minute start (of epoch) lasting dur minutes.
func seg(cam string, start, dur int, bytes int64) recorder.Segment {
	return recorder.Segment{
		CameraID: cam,
		Start:    epoch.Add(time.Duration(start) * time.Minute),
		Duration: time.Duration(dur) * time.Minute,
		Bytes:    bytes,
		Frames:   dur * 60,
		Path:     fmt.Sprintf("recordings/%s/%04d.mjpeg", cam, start),
	}
}

// minutes returns one-minute segments of cam starting at each minute in [from, to).
func minutes(cam string, from, to int) []recorder.Segment {
	var out []recorder.Segment
	for m := from; m < to; m++ {
		out = append(out, seg(cam, m, 1, 100))
	}
	return out
}

func paths(segs []recorder.Segment) []string {
	var out []string
	for _, s := range segs {
		out = append(out, s.Path)
	}
	return out
}

func TestExpired(t *testing.T) {
	interleaved := func() []recorder.Segment {
		var out []recorder.Segment
		for m := range 3 {
			out = append(out, seg("cam1", m, 1, 100), seg("cam2", m, 1, 100))
		}
		return out
	}
	rtcReset := []recorder.Segment{
		seg("cam1", 0, 1, 100),
		{CameraID: "cam1", Start: time.Unix(0, 0), Duration: time.Minute, Bytes: 100, Path: "recordings/cam1/19700101.mjpeg"},
	}
	tests := []struct {
		name string
		segs []recorder.Segment
		now  time.Time
		p    recorder.Retention
		want []string
	}{
		{"no limits", minutes("cam1", 0, 20), epoch.AddDate(1, 0, 0), recorder.Retention{}, nil},
		{"age: older than max age goes, exactly max age stays",
			minutes("cam1", 0, 20), epoch.Add(20 * time.Minute), recorder.Retention{MaxAge: 10 * time.Minute},
			paths(minutes("cam1", 0, 9))},
		{"age: a forward wall step keeps the last max age of recording",
			minutes("cam1", 0, 20), epoch.AddDate(10, 0, 0), recorder.Retention{MaxAge: 10 * time.Minute},
			paths(minutes("cam1", 0, 10))},
		{"age: a backward wall step deletes nothing",
			minutes("cam1", 0, 20), time.Unix(0, 0), recorder.Retention{MaxAge: 10 * time.Minute}, nil},
		{"age: footage before an outage waits until max age is recorded after it",
			append(minutes("cam1", 0, 5), minutes("cam1", 1440, 1443)...), epoch.Add(1443 * time.Minute),
			recorder.Retention{MaxAge: time.Hour}, nil},
		{"age: recording after counts per camera",
			append(minutes("cam2", 0, 5), minutes("cam1", 0, 20)...), epoch.Add(20 * time.Minute),
			recorder.Retention{MaxAge: 10 * time.Minute}, paths(minutes("cam1", 0, 9))},
		{"quota: oldest first across cameras",
			interleaved(), epoch, recorder.Retention{MaxBytes: 350},
			[]string{"recordings/cam1/0000.mjpeg", "recordings/cam2/0000.mjpeg", "recordings/cam1/0001.mjpeg"}},
		{"quota: an exact fit deletes nothing", interleaved(), epoch, recorder.Retention{MaxBytes: 600}, nil},
		{"quota: counts only what age left",
			minutes("cam1", 0, 20), epoch.Add(20 * time.Minute), recorder.Retention{MaxAge: 10 * time.Minute, MaxBytes: 900},
			paths(minutes("cam1", 0, 11))},
		{"quota: recording order, not wall order, says what is oldest",
			rtcReset, epoch, recorder.Retention{MaxBytes: 100}, []string{"recordings/cam1/0000.mjpeg"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := paths(recorder.Expired(tt.segs, tt.now, tt.p))
			if !slices.Equal(got, tt.want) {
				t.Fatalf("Expired =\n %v\nwant\n %v", got, tt.want)
			}
		})
	}
}

// writeSegments puts a file for each segment under dataDir and indexes it.
func writeSegments(t *testing.T, dataDir string, idx *recordertest.Index, segs []recorder.Segment) {
	t.Helper()
	for _, s := range segs {
		name := filepath.Join(dataDir, filepath.FromSlash(s.Path))
		if err := os.MkdirAll(filepath.Dir(name), 0o750); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(name, make([]byte, s.Bytes), 0o640); err != nil {
			t.Fatal(err)
		}
		if err := idx.AddSegment(context.Background(), s); err != nil {
			t.Fatal(err)
		}
	}
}

func TestPrune(t *testing.T) {
	dir, idx := t.TempDir(), &recordertest.Index{}
	segs := minutes("cam1", 0, 5)
	writeSegments(t, dir, idx, segs)

	deleted, err := recorder.Prune(context.Background(), idx, dir, epoch, recorder.Retention{MaxBytes: 300})
	if err != nil {
		t.Fatal(err)
	}
	if got, want := paths(deleted), paths(segs[:2]); !slices.Equal(got, want) {
		t.Fatalf("deleted %v, want %v", got, want)
	}
	left, _ := idx.Segments(context.Background())
	if got, want := paths(left), paths(segs[2:]); !slices.Equal(got, want) {
		t.Fatalf("index keeps %v, want %v", got, want)
	}
	for i, s := range segs {
		_, err := os.Stat(filepath.Join(dir, filepath.FromSlash(s.Path)))
		if gone := errors.Is(err, os.ErrNotExist); gone != (i < 2) {
			t.Fatalf("segment %d: file gone = %v", i, gone)
		}
	}

	// Nothing more to do: no error, nothing deleted.
	if deleted, err := recorder.Prune(context.Background(), idx, dir, epoch, recorder.Retention{MaxBytes: 300}); err != nil || len(deleted) != 0 {
		t.Fatalf("second Prune = %v, %v", deleted, err)
	}
}

// refusingIndex cannot delete.
type refusingIndex struct{ recordertest.Index }

func (*refusingIndex) DeleteSegments(context.Context, []string) error {
	return errors.New("disk I/O error")
}

func TestPruneKeepsFilesTheIndexStillLists(t *testing.T) {
	dir, idx := t.TempDir(), &refusingIndex{}
	segs := minutes("cam1", 0, 3)
	writeSegments(t, dir, &idx.Index, segs)
	if _, err := recorder.Prune(context.Background(), idx, dir, epoch, recorder.Retention{MaxBytes: 100}); err == nil {
		t.Fatalf("Prune succeeded with an index that cannot delete")
	}
	for _, s := range segs {
		if _, err := os.Stat(filepath.Join(dir, filepath.FromSlash(s.Path))); err != nil {
			t.Fatalf("file of a still-indexed segment removed: %v", err)
		}
	}
}

func TestRemoveSegmentFileStaysInRecordings(t *testing.T) {
	dir := t.TempDir()
	for _, name := range []string{"store.db", "recordings/cam1/a.mjpeg"} {
		full := filepath.Join(dir, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(full), 0o750); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(full, []byte("x"), 0o640); err != nil {
			t.Fatal(err)
		}
	}
	tests := []struct {
		path string
		ok   bool
	}{
		{"recordings/cam1/a.mjpeg", true},
		{"recordings/cam1/missing.mjpeg", true}, // already gone is done
		{"store.db", false},
		{"recordings", false},
		{"recordings/../store.db", false},
		{"../store.db", false},
		{"/etc/passwd", false},
		{"", false},
	}
	for _, tt := range tests {
		if err := recorder.RemoveSegmentFile(dir, tt.path); (err == nil) != tt.ok {
			t.Errorf("RemoveSegmentFile(%q) = %v, want ok=%v", tt.path, err, tt.ok)
		}
	}
	if _, err := os.Stat(filepath.Join(dir, "store.db")); err != nil {
		t.Fatalf("store.db removed: %v", err)
	}
}
