// Package recordertest provides an in-memory segment index for tests of code that records.
// It must never be used by the running NVR, whose index is the SQLite store.
package recordertest

import (
	"context"
	"slices"
	"sync"

	"github.com/latchnvr/latch/nvr/recorder"
)

// Index is an in-memory recorder.SegmentIndex and recorder.RetentionIndex. The zero value is
// empty and ready; it is safe for concurrent use.
type Index struct {
	mu     sync.Mutex
	segs   []recorder.Segment // in the order added
	addErr error
}

var (
	_ recorder.SegmentIndex   = (*Index)(nil)
	_ recorder.RetentionIndex = (*Index)(nil)
)

// AddSegment appends s, or does nothing if its Path is already indexed.
func (x *Index) AddSegment(ctx context.Context, s recorder.Segment) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	x.mu.Lock()
	defer x.mu.Unlock()
	if x.addErr != nil {
		return x.addErr
	}
	if slices.ContainsFunc(x.segs, func(t recorder.Segment) bool { return t.Path == s.Path }) {
		return nil
	}
	x.segs = append(x.segs, s)
	return nil
}

// Segments returns a copy of the index, oldest first.
func (x *Index) Segments(ctx context.Context) ([]recorder.Segment, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	x.mu.Lock()
	defer x.mu.Unlock()
	return slices.Clone(x.segs), nil
}

// DeleteSegments removes the segments with these paths.
func (x *Index) DeleteSegments(ctx context.Context, paths []string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	x.mu.Lock()
	defer x.mu.Unlock()
	x.segs = slices.DeleteFunc(x.segs, func(s recorder.Segment) bool { return slices.Contains(paths, s.Path) })
	return nil
}

// SetAddErr makes AddSegment fail with err until it is set back to nil.
func (x *Index) SetAddErr(err error) {
	x.mu.Lock()
	defer x.mu.Unlock()
	x.addErr = err
}
