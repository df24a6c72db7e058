// Package recorder owns recordings: it cuts each camera's frames into segments on the clock,
// writes every segment durably (temp file, fsync, rename) under DATA/recordings/<camera>/, hands
// its metadata to a SegmentIndex, and picks segments for deletion by age and disk quota.
//
// Recording must never stop because of anything in auth (SPEC INV-RECORDING): this package must
// never import auth, sessions or the web, never block the capture step on the index or on fsync,
// and never panic on a failure it can report. A segment that cannot be written is reported and
// recording carries on with the next one.
package recorder

import (
	"context"
	"path"
	"path/filepath"
	"strconv"
	"time"
)

// RecordingsDir is the directory under the data directory that holds one directory per camera.
const RecordingsDir = "recordings"

// Ext is the extension of segment files: concatenated baseline JPEG frames (raw MJPEG), which
// ffmpeg, ffplay and VLC play as they are and NewFrameScanner splits for multipart streaming.
const Ext = ".mjpeg"

// Segment describes one finished recording file.
type Segment struct {
	CameraID string
	// Start is the wall time at StartInstant, for people. It follows the wall clock, so it can
	// jump with it; order segments by recording order, never by Start.
	Start time.Time
	// StartInstant is the clock instant the segment began at; it means nothing across restarts.
	StartInstant int64
	// Duration is the span the segment covers: the next segment of the camera starts at
	// StartInstant+Duration unless recording was interrupted.
	Duration time.Duration
	Bytes    int64
	Frames   int
	// Path is slash-separated and relative to the data directory. It is unique, and it is the
	// segment's identity in the index.
	Path string
}

// End is the wall time the segment ends at.
func (s Segment) End() time.Time { return s.Start.Add(s.Duration) }

// SegmentIndex records finished segments; the SQLite store implements it.
type SegmentIndex interface {
	// AddSegment records a segment whose file is already durable on disk. It must be
	// idempotent by Path: the recorder retries after an error, and an error (a timeout) may
	// hide a commit.
	AddSegment(ctx context.Context, s Segment) error
}

// RetentionIndex is what Prune needs from the index.
type RetentionIndex interface {
	// Segments lists every segment in recording order, oldest first (for SQLite: by row id,
	// not by Start, which follows wall-clock steps).
	Segments(ctx context.Context) ([]Segment, error)
	// DeleteSegments takes the segments with these paths out of listings, in one
	// transaction; Prune removes the files afterwards. An index with a garbage table (the
	// store) may keep them there and collect them later with RemoveSegmentFile as the remover.
	DeleteSegments(ctx context.Context, paths []string) error
}

// CameraDir returns the directory that holds one camera's segments.
func CameraDir(dataDir, cameraID string) string {
	return filepath.Join(dataDir, RecordingsDir, cameraID)
}

// segmentPath returns the Path of a segment file named name.
func segmentPath(cameraID, name string) string {
	return path.Join(RecordingsDir, cameraID, name)
}

// segmentName names a segment file after its start in UTC, so names sort by wall time and
// contain no characters that trouble FAT or URLs.
func segmentName(start time.Time, collision int) string {
	base := start.UTC().Format("20060102T150405.000Z")
	if collision > 0 {
		return base + "-" + strconv.Itoa(collision) + Ext
	}
	return base + Ext
}
