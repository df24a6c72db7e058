package recorder

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"time"
)

// Retention limits how much recording is kept. A zero field is no limit.
type Retention struct {
	// MaxAge deletes a segment once it ended more than MaxAge ago by the wall clock and at
	// least MaxAge of its camera's recording comes after it. The second condition keeps a
	// forward wall step (an RTC reset to 1970 corrected by NTP) from purging recent footage;
	// its cost is that footage from before a long outage is kept until MaxAge has been
	// recorded since.
	MaxAge time.Duration
	// MaxBytes deletes the oldest segments, across cameras, until the rest fit.
	MaxBytes int64
}

// Expired returns the segments to delete, a subsequence of segs. segs must be in recording
// order, oldest first; wall times are not trusted to order them. now is the wall clock.
func Expired(segs []Segment, now time.Time, p Retention) []Segment {
	expired := make([]bool, len(segs))
	if p.MaxAge > 0 {
		// Walk newest to oldest, adding up what each camera recorded after each segment.
		after := make(map[string]time.Duration)
		for i := len(segs) - 1; i >= 0; i-- {
			s := segs[i]
			if now.Sub(s.End()) > p.MaxAge && after[s.CameraID] >= p.MaxAge {
				expired[i] = true
			}
			after[s.CameraID] = satAddDuration(after[s.CameraID], max(s.Duration, 0))
		}
	}
	if p.MaxBytes > 0 {
		var kept int64
		for i, s := range segs {
			if !expired[i] {
				kept += s.Bytes
			}
		}
		for i := 0; i < len(segs) && kept > p.MaxBytes; i++ {
			if !expired[i] {
				expired[i] = true
				kept -= segs[i].Bytes
			}
		}
	}
	var out []Segment
	for i, s := range segs {
		if expired[i] {
			out = append(out, s)
		}
	}
	return out
}

func satAddDuration(a, b time.Duration) time.Duration {
	if s := a + b; s >= a {
		return s
	}
	return time.Duration(1<<63 - 1)
}

// Prune deletes the segments Expired picks: first from the index, in one call, then their
// files. In that order a crash can leave a file nobody lists, never a listed segment without
// its file. It returns what it deleted from the index; file errors are joined into err.
func Prune(ctx context.Context, idx RetentionIndex, dataDir string, now time.Time, p Retention) ([]Segment, error) {
	segs, err := idx.Segments(ctx)
	if err != nil {
		return nil, fmt.Errorf("prune recordings: list segments: %w", err)
	}
	expired := Expired(segs, now, p)
	if len(expired) == 0 {
		return nil, nil
	}
	paths := make([]string, len(expired))
	for i, s := range expired {
		paths[i] = s.Path
	}
	if err := idx.DeleteSegments(ctx, paths); err != nil {
		return nil, fmt.Errorf("prune recordings: delete %d segments from index: %w", len(paths), err)
	}
	var errs []error
	for _, s := range expired {
		if err := RemoveSegmentFile(dataDir, s.Path); err != nil {
			errs = append(errs, err)
		}
	}
	if err := errors.Join(errs...); err != nil {
		return expired, fmt.Errorf("prune recordings: %w", err)
	}
	return expired, nil
}

// RemoveSegmentFile removes the file of a segment Path under dataDir; a file already gone is not
// an error. It refuses any path outside the recordings directory: the index is data, and data is
// not trusted with unlink. It suits the store's garbage collector as its remover.
func RemoveSegmentFile(dataDir, p string) error {
	rel := filepath.FromSlash(p)
	if !filepath.IsLocal(rel) || !isUnder(rel, RecordingsDir) {
		return fmt.Errorf("remove segment %q: not a path under %s", p, RecordingsDir)
	}
	if err := os.Remove(filepath.Join(dataDir, rel)); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("remove segment: %w", err)
	}
	return nil
}

func isUnder(rel, dir string) bool {
	r, err := filepath.Rel(dir, rel)
	return err == nil && filepath.IsLocal(r) && r != "."
}
