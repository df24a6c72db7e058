package app

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/latchnvr/latch/nvr/camera"
	"github.com/latchnvr/latch/nvr/recorder"
	"github.com/latchnvr/latch/nvr/store"
)

// segmentIndex is the store seen as the recorder's index: camera string
// ids map to camera rows, and deletions go through the garbage list.
type segmentIndex struct {
	db      *store.DB
	mu      sync.Mutex
	rows    map[string]int64 // camera id → row id
	names   map[int64]string
	written func(camera string)
}

func newSegmentIndex(ctx context.Context, db *store.DB, cams []camera.Config) (*segmentIndex, error) {
	idx := &segmentIndex{db: db, rows: map[string]int64{}, names: map[int64]string{}}
	existing, err := db.ListCameras(ctx)
	if err != nil {
		return nil, err
	}
	for _, c := range existing {
		idx.rows[c.Name], idx.names[c.ID] = c.ID, c.Name
	}
	for _, c := range cams {
		if _, ok := idx.rows[c.ID]; ok {
			continue
		}
		fps := int(time.Second / c.Interval)
		if fps < 1 {
			fps = 1
		}
		var id int64
		err := db.WithTx(ctx, func(tx *store.Tx) error {
			var err error
			id, err = tx.InsertCamera(ctx, store.Camera{Name: c.ID, FPS: fps, Width: c.Width, Height: c.Height, Enabled: true})
			return err
		})
		if err != nil {
			return nil, fmt.Errorf("camera %s: %w", c.ID, err)
		}
		idx.rows[c.ID], idx.names[id] = id, c.ID
	}
	return idx, nil
}

// AddSegment indexes a durable segment file; a repeat of the same path is
// success (the recorder retries after errors that may hide a commit).
func (x *segmentIndex) AddSegment(ctx context.Context, s recorder.Segment) error {
	x.mu.Lock()
	row, ok := x.rows[s.CameraID]
	x.mu.Unlock()
	if !ok {
		return fmt.Errorf("segment index: unknown camera %q", s.CameraID)
	}
	err := x.db.WithTx(ctx, func(tx *store.Tx) error {
		_, err := tx.InsertSegment(ctx, store.Segment{
			CameraID: row, StartWallNS: s.Start.UnixNano(), EndWallNS: s.Start.Add(s.Duration).UnixNano(),
			StartInstantNS: s.StartInstant, DurationNS: int64(s.Duration), Bytes: s.Bytes, Frames: int64(s.Frames), Path: s.Path,
		})
		return err
	})
	if errors.Is(err, store.ErrExists) {
		return nil
	}
	if err == nil && x.written != nil {
		x.written(s.CameraID)
	}
	return err
}

// Segments lists every segment in recording order (row id), oldest first.
func (x *segmentIndex) Segments(ctx context.Context) ([]recorder.Segment, error) {
	segs, err := x.db.OldestSegments(ctx, -1)
	if err != nil {
		return nil, err
	}
	x.mu.Lock()
	defer x.mu.Unlock()
	out := make([]recorder.Segment, 0, len(segs))
	for _, s := range segs {
		out = append(out, recorder.Segment{CameraID: x.names[s.CameraID], Start: time.Unix(0, s.StartWallNS), StartInstant: s.StartInstantNS,
			Duration: time.Duration(s.DurationNS), Bytes: s.Bytes, Frames: int(s.Frames), Path: s.Path})
	}
	return out, nil
}

// DeleteSegments moves segments to the garbage list in one transaction;
// the files go later, in collectGarbage (crash-safe either way).
func (x *segmentIndex) DeleteSegments(ctx context.Context, paths []string) error {
	if len(paths) == 0 {
		return nil
	}
	want := map[string]bool{}
	for _, p := range paths {
		want[p] = true
	}
	segs, err := x.db.OldestSegments(ctx, -1)
	if err != nil {
		return err
	}
	var ids []int64
	for _, s := range segs {
		if want[s.Path] {
			ids = append(ids, s.ID)
		}
	}
	return x.db.WithTx(ctx, func(tx *store.Tx) error {
		_, err := tx.MarkSegmentsGarbage(ctx, ids)
		return err
	})
}
