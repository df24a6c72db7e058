package store_test

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/latchnvr/latch/nvr/store"
)

// recorder writes real segment files under dir and indexes them, the way
// the recorder package does.
type recorder struct {
	t   *testing.T
	db  *store.DB
	dir string
}

func (r recorder) record(cam int64, n int) []int64 {
	r.t.Helper()
	ctx := context.Background()
	var ids []int64
	inTx(r.t, r.db, func(tx *store.Tx) error {
		ids = nil // WithTx bodies must be safe to run again
		existing, err := tx.SegmentUsage(ctx)
		if err != nil {
			return err
		}
		for i := range int64(n) {
			s := segmentAt(cam, existing.Segments+i)
			s.Path = fmt.Sprintf("cam%d-%d.mjpeg", cam, existing.Segments+i)
			if err := os.WriteFile(filepath.Join(r.dir, s.Path), []byte("frames"), 0o600); err != nil {
				return err
			}
			id, err := tx.InsertSegment(ctx, s)
			if err != nil {
				return err
			}
			ids = append(ids, id)
		}
		return nil
	})
	return ids
}

func (r recorder) remove(path string) error { return os.Remove(filepath.Join(r.dir, path)) }

func (r recorder) exists(path string) bool {
	_, err := os.Stat(filepath.Join(r.dir, path))
	return err == nil
}

func TestSegmentsListAndUsage(t *testing.T) {
	ctx := context.Background()
	db, _ := openTemp(t)
	var cam1, cam2 int64
	inTx(t, db, func(tx *store.Tx) error {
		var err error
		if cam1, err = tx.InsertCamera(ctx, store.Camera{Name: "door", FPS: 10, Width: 640, Height: 480, Enabled: true}); err != nil {
			return err
		}
		cam2, err = tx.InsertCamera(ctx, store.Camera{Name: "yard", FPS: 5, Width: 320, Height: 240})
		return err
	})
	rec := recorder{t, db, t.TempDir()}
	ids1 := rec.record(cam1, 10)
	rec.record(cam2, 5)

	tests := []struct {
		name       string
		cam        int64
		from, to   int64 // minutes after t0
		limit      int
		wantFirst  int // index into ids1, -1 for none
		wantLength int
	}{
		{"all of camera 1", cam1, -100, 100, 0, 0, 10},
		{"overlap at both ends", cam1, 2, 5, 0, 2, 3}, // [2,3) [3,4) [4,5)
		{"range inside one segment", cam1, 3, 3, 0, -1, 0},
		{"limit", cam1, 0, 100, 4, 0, 4},
		{"camera 2 only", cam2, 0, 100, 0, -1, 5},
		{"unknown camera", 999, 0, 100, 0, -1, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			segs, err := db.ListSegments(ctx, tt.cam, t0+tt.from*minute, t0+tt.to*minute, tt.limit)
			if err != nil {
				t.Fatal(err)
			}
			if len(segs) != tt.wantLength {
				t.Fatalf("%d segments, want %d", len(segs), tt.wantLength)
			}
			if tt.wantFirst >= 0 && len(segs) > 0 && segs[0].ID != ids1[tt.wantFirst] {
				t.Fatalf("first segment %d, want %d", segs[0].ID, ids1[tt.wantFirst])
			}
			for i := 1; i < len(segs); i++ {
				if segs[i].StartWallNS < segs[i-1].StartWallNS {
					t.Fatalf("not ordered by start: %+v", segs)
				}
			}
		})
	}
	if u, err := db.SegmentUsage(ctx); err != nil || u.Segments != 15 || u.Bytes != 15<<20 {
		t.Fatalf("SegmentUsage = %+v, %v", u, err)
	}
	if old, err := db.OldestSegments(ctx, 3); err != nil || len(old) != 3 || old[0].ID != ids1[0] {
		t.Fatalf("OldestSegments = %+v, %v", old, err)
	}
	if cams, err := db.ListCameras(ctx); err != nil || len(cams) != 2 || cams[1].Enabled {
		t.Fatalf("ListCameras = %+v, %v", cams, err)
	}
	inTx(t, db, func(tx *store.Tx) error {
		c, err := tx.GetCamera(ctx, cam2)
		if err != nil {
			return err
		}
		c.Enabled, c.FPS = true, 15
		return tx.UpdateCamera(ctx, c)
	})
	if c, err := db.GetCamera(ctx, cam2); err != nil || !c.Enabled || c.FPS != 15 || c.Name != "yard" {
		t.Fatalf("GetCamera after update = %+v, %v", c, err)
	}
	// A camera with segments cannot be deleted out from under them.
	err := db.WithTx(ctx, func(tx *store.Tx) error { return tx.DeleteCamera(ctx, cam2) })
	if !errors.Is(err, store.ErrConstraint) {
		t.Fatalf("DeleteCamera with segments = %v, want ErrConstraint", err)
	}
}

// TestSegmentListingUsesCoveringIndex: listing reads only segments_cover,
// in index order (Moonfire's recording_cover).
func TestSegmentListingUsesCoveringIndex(t *testing.T) {
	db, _ := openTemp(t)
	plan, err := db.QueryPlan(context.Background(), store.SegmentListQuery, 1, t0, t0, 10)
	if err != nil {
		t.Fatal(err)
	}
	joined := strings.Join(plan, "; ")
	if !strings.Contains(joined, "USING COVERING INDEX segments_cover") || strings.Contains(joined, "TEMP B-TREE") {
		t.Fatalf("plan = %q; want the covering index and no sort", joined)
	}
}

// TestGarbageSurvivesCrash deletes segments in the two Moonfire steps and
// "crashes" (closes the database without finishing) between them.
func TestGarbageSurvivesCrash(t *testing.T) {
	ctx := context.Background()
	db, path := openTemp(t)
	var cam int64
	inTx(t, db, func(tx *store.Tx) error {
		var err error
		cam, err = tx.InsertCamera(ctx, store.Camera{Name: "door", FPS: 10, Width: 640, Height: 480})
		return err
	})
	rec := recorder{t, db, t.TempDir()}
	ids := rec.record(cam, 6)
	segs, _ := db.OldestSegments(ctx, 10)

	// A mark that rolls back changes nothing.
	errBoom := errors.New("boom")
	err := db.WithTx(ctx, func(tx *store.Tx) error {
		if _, err := tx.MarkSegmentsGarbage(ctx, ids[:3]); err != nil {
			return err
		}
		return errBoom
	})
	if !errors.Is(err, errBoom) {
		t.Fatalf("WithTx = %v", err)
	}
	if u, _ := db.SegmentUsage(ctx); u.Segments != 6 {
		t.Fatalf("rolled-back mark removed segments: %+v", u)
	}

	// Step 1: rows move to garbage (an unknown id is skipped).
	var moved int
	inTx(t, db, func(tx *store.Tx) error {
		moved, err = tx.MarkSegmentsGarbage(ctx, append(slices.Clone(ids[:3]), 9999))
		return err
	})
	if moved != 3 {
		t.Fatalf("moved %d, want 3", moved)
	}
	// Crash: the process dies before collecting. One file was already
	// removed by a collector that died before deleting its row.
	if err := rec.remove(segs[0].Path); err != nil {
		t.Fatal(err)
	}
	db.Close()

	db, err = store.Open(path, testOptions(1))
	if err != nil {
		t.Fatalf("reopen: %v", err)
	}
	defer db.Close()
	rec.db = db
	if listed, _ := db.ListSegments(ctx, cam, 0, t0+100*minute, 0); len(listed) != 3 || listed[0].ID != ids[3] {
		t.Fatalf("segments listed after crash = %+v; want the 3 not deleted", listed)
	}
	garbage, _ := db.ListGarbage(ctx)
	if len(garbage) != 3 || garbage[0].SegmentID != ids[0] || garbage[0].Path != segs[0].Path {
		t.Fatalf("garbage after crash = %+v", garbage)
	}

	// Step 2, with one removal failing: that row stays for the next pass.
	failing := segs[1].Path
	n, err := db.CollectGarbage(ctx, func(p string) error {
		if p == failing {
			return fs.ErrPermission
		}
		return rec.remove(p)
	})
	if n != 2 || !errors.Is(err, fs.ErrPermission) || !strings.Contains(err.Error(), failing) {
		t.Fatalf("CollectGarbage = %d, %v; want 2 and the permission error naming %s", n, err, failing)
	}
	if n, err := db.CollectGarbage(ctx, rec.remove); n != 1 || err != nil {
		t.Fatalf("second CollectGarbage = %d, %v", n, err)
	}
	if g, _ := db.ListGarbage(ctx); len(g) != 0 {
		t.Fatalf("garbage left: %+v", g)
	}
	for i, s := range segs {
		if got, want := rec.exists(s.Path), i >= 3; got != want {
			t.Errorf("file %s exists = %v, want %v", s.Path, got, want)
		}
	}
}
