package recorder

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"time"

	"github.com/latchnvr/latch/nvr/camera"
	"github.com/latchnvr/latch/nvr/clock"
)

// Defaults.
const (
	DefaultSegment      = time.Minute
	DefaultQueueLen     = 8
	DefaultBacklog      = 1440 // a day of one-minute segments waiting for a broken index
	DefaultIndexTimeout = 30 * time.Second
)

// tempPattern names in-progress segment files. The leading dot keeps them out of listings; a
// crash leaves them behind and New removes them, since they were never indexed.
const tempPattern = ".rec-*.tmp"

// Config describes one camera's recorder. Zero fields take the defaults above.
type Config struct {
	CameraID string
	DataDir  string        // segments go to DataDir/recordings/CameraID
	Segment  time.Duration // clock time per segment
	// QueueLen bounds finished segments waiting for fsync and rename. When a stuck disk fills
	// the queue, further segments are dropped and reported rather than stalling capture.
	QueueLen int
	// Backlog bounds durable segments waiting for the index to accept them; they are retried,
	// oldest first, every time a segment finishes. Beyond it the oldest is given up (its file
	// stays on disk) and reported.
	Backlog      int
	IndexTimeout time.Duration // per AddSegment call
	// OnError receives every failure the recorder recovers from, from the capture goroutine
	// and the finalizer goroutine, so it must be safe for concurrent use. Nil logs with slog.
	OnError func(error)
}

func (c Config) withDefaults() Config {
	if c.Segment == 0 {
		c.Segment = DefaultSegment
	}
	if c.QueueLen == 0 {
		c.QueueLen = DefaultQueueLen
	}
	if c.Backlog == 0 {
		c.Backlog = DefaultBacklog
	}
	if c.IndexTimeout == 0 {
		c.IndexTimeout = DefaultIndexTimeout
	}
	return c
}

func (c Config) validate() error {
	if err := camera.ValidateID(c.CameraID); err != nil {
		return err
	}
	switch {
	case c.DataDir == "":
		return errors.New("no data directory")
	case c.Segment < time.Millisecond:
		return fmt.Errorf("segment length %v below 1ms", c.Segment)
	case c.QueueLen < 1 || c.Backlog < 1 || c.IndexTimeout < 0:
		return fmt.Errorf("queue %d, backlog %d, index timeout %v: must be positive", c.QueueLen, c.Backlog, c.IndexTimeout)
	}
	return nil
}

// segmentFile is the part of *os.File a segment needs; tests substitute failing ones.
type segmentFile interface {
	io.Writer
	Sync() error
	Close() error
	Name() string
}

// Recorder cuts one camera's frames into segments. It is the camera's Sink.
//
// Segment boundaries sit on a grid of Segment-long slots starting at the first frame's instant:
// a frame at or after the open segment's end closes it, and the next segment starts at the
// boundary, so consecutive segments abut exactly. After a stall longer than a segment the grid
// resumes at the slot holding the new frame, leaving an honest gap.
//
// Capture only appends to a temp file. fsync, rename and indexing happen in the recorder's own
// goroutine, so a slow disk or a busy database delays indexing, never capture.
type Recorder struct {
	cfg    Config
	clk    clock.Clock
	idx    SegmentIndex
	dir    string
	create func(dir string) (segmentFile, error)

	mu        sync.Mutex
	drained   *sync.Cond // signalled whenever inflight drops
	closed    bool
	cur       *openSegment
	started   bool
	nextStart int64 // where the next segment starts, once started
	inflight  int   // segments handed to the finalizer and not yet done
	jobs      chan *openSegment
	done      chan struct{}

	backlog []Segment // finalizer goroutine only
}

// openSegment is the segment frames are being appended to.
type openSegment struct {
	seg  Segment // Path and Duration are filled in when it finishes
	end  int64   // instant at which the next segment starts
	file segmentFile
	err  error // the first failure; a failed segment swallows frames until its end
}

// New makes the camera's directory, removes temp files a crash left there, and starts the
// recorder's finalizer goroutine. Close stops it.
func New(cfg Config, clk clock.Clock, idx SegmentIndex) (*Recorder, error) {
	cfg = cfg.withDefaults()
	if err := cfg.validate(); err != nil {
		return nil, fmt.Errorf("new recorder: %w", err)
	}
	if idx == nil {
		return nil, errors.New("new recorder: no segment index")
	}
	dir := CameraDir(cfg.DataDir, cfg.CameraID)
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return nil, fmt.Errorf("new recorder: %w", err)
	}
	leftovers, err := filepath.Glob(filepath.Join(dir, tempPattern))
	if err != nil {
		return nil, fmt.Errorf("new recorder: %w", err)
	}
	for _, name := range leftovers {
		if err := os.Remove(name); err != nil {
			return nil, fmt.Errorf("new recorder: remove unfinished segment: %w", err)
		}
	}
	r := &Recorder{
		cfg:  cfg,
		clk:  clk,
		idx:  idx,
		dir:  dir,
		jobs: make(chan *openSegment, cfg.QueueLen),
		done: make(chan struct{}),
		create: func(dir string) (segmentFile, error) {
			return os.CreateTemp(dir, tempPattern)
		},
	}
	r.drained = sync.NewCond(&r.mu)
	go r.finalizer()
	return r, nil
}

// WriteFrame appends f to the open segment, first finishing that segment if f lies past its end.
// It never waits for the disk to sync or for the index.
func (r *Recorder) WriteFrame(f camera.Frame) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		return
	}
	if f.CameraID != r.cfg.CameraID {
		r.report(fmt.Errorf("recorder %s: frame from camera %q ignored", r.cfg.CameraID, f.CameraID))
		return
	}
	if r.cur != nil && f.Instant >= r.cur.end {
		end := r.cur.end
		r.finishLocked(end)
		r.nextStart = end
	}
	if r.cur == nil {
		r.openLocked(f)
	}
	r.appendLocked(f)
}

func (r *Recorder) openLocked(f camera.Frame) {
	start := f.Instant
	if r.started {
		// Resume on the grid: the slot that holds f, which is nextStart unless we stalled.
		seg := int64(r.cfg.Segment)
		start = r.nextStart + max(f.Instant-r.nextStart, 0)/seg*seg
	}
	r.started = true
	cur := &openSegment{
		seg: Segment{
			CameraID:     r.cfg.CameraID,
			Start:        f.Wall.Add(-time.Duration(f.Instant - start)),
			StartInstant: start,
		},
		end: start + int64(r.cfg.Segment),
	}
	if cur.end < start { // saturate rather than wrap near the end of time
		cur.end = start
	}
	r.cur = cur
	file, err := r.create(r.dir)
	if err != nil {
		cur.err = err
		r.report(fmt.Errorf("recorder %s: open segment at %s: %w", r.cfg.CameraID, cur.seg.Start.Format(time.RFC3339), err))
		return
	}
	cur.file = file
}

func (r *Recorder) appendLocked(f camera.Frame) {
	cur := r.cur
	if cur.err != nil {
		return
	}
	n, err := cur.file.Write(f.JPEG)
	cur.seg.Bytes += int64(n)
	if err != nil {
		cur.err = err
		r.report(fmt.Errorf("recorder %s: write segment at %s: %w; recording resumes with the next segment",
			r.cfg.CameraID, cur.seg.Start.Format(time.RFC3339), err))
		r.discard(cur.file)
		return
	}
	cur.seg.Frames++
}

// finishLocked hands the open segment, ending at instant end, to the finalizer.
func (r *Recorder) finishLocked(end int64) {
	cur := r.cur
	r.cur = nil
	if cur.err != nil {
		return // reported and discarded when it failed
	}
	if cur.seg.Frames == 0 {
		r.discard(cur.file)
		return
	}
	cur.seg.Duration = time.Duration(end - cur.seg.StartInstant)
	select {
	case r.jobs <- cur:
		r.inflight++
	default:
		r.report(fmt.Errorf("recorder %s: segment at %s dropped: %d segments already waiting for the disk",
			r.cfg.CameraID, cur.seg.Start.Format(time.RFC3339), r.cfg.QueueLen))
		r.discard(cur.file)
	}
}

// discard closes and removes an unfinished segment file.
func (r *Recorder) discard(f segmentFile) {
	f.Close() // an error here changes nothing: the file is going
	r.remove(f.Name())
}

// remove deletes an unfinished segment file.
func (r *Recorder) remove(name string) {
	if err := os.Remove(name); err != nil && !errors.Is(err, fs.ErrNotExist) {
		r.report(fmt.Errorf("recorder %s: remove unfinished segment: %w", r.cfg.CameraID, err))
	}
}

// Flush waits until every finished segment has been synced, renamed and offered to the index.
// Tests call it after advancing a simulated clock; it does not wait for a failing index.
func (r *Recorder) Flush() {
	r.mu.Lock()
	defer r.mu.Unlock()
	for r.inflight > 0 {
		r.drained.Wait()
	}
}

// Close finishes the open segment where the clock is now (a partial segment, possibly of zero
// duration if it is closed at the instant of its only frame), waits for the finalizer, and stops
// it. Stop the camera first: frames written after Close are ignored.
func (r *Recorder) Close() {
	r.mu.Lock()
	if !r.closed {
		r.closed = true
		if r.cur != nil {
			r.finishLocked(min(max(r.clk.Instant(), r.cur.seg.StartInstant), r.cur.end))
		}
		close(r.jobs)
	}
	r.mu.Unlock()
	<-r.done
}

func (r *Recorder) report(err error) {
	if r.cfg.OnError != nil {
		r.cfg.OnError(err)
		return
	}
	slog.Error("recorder", "err", err)
}

// finalizer makes finished segments durable and indexes them, in order.
func (r *Recorder) finalizer() {
	defer close(r.done)
	for job := range r.jobs {
		r.finalize(job)
		r.mu.Lock()
		r.inflight--
		r.drained.Broadcast()
		r.mu.Unlock()
	}
	if n := len(r.backlog); n > 0 {
		r.report(fmt.Errorf("recorder %s: closed with %d segments on disk but not indexed, first %s",
			r.cfg.CameraID, n, r.backlog[0].Path))
	}
}

// finalize syncs, renames and indexes one segment. The order is what makes a crash safe: the
// index never names a file that is not complete and durable.
func (r *Recorder) finalize(job *openSegment) {
	seg := job.seg
	if err := job.file.Sync(); err != nil {
		r.report(fmt.Errorf("recorder %s: sync segment at %s: %w", r.cfg.CameraID, seg.Start.Format(time.RFC3339), err))
		r.discard(job.file)
		return
	}
	if err := job.file.Close(); err != nil {
		r.report(fmt.Errorf("recorder %s: close segment at %s: %w", r.cfg.CameraID, seg.Start.Format(time.RFC3339), err))
		r.remove(job.file.Name())
		return
	}
	name, err := r.rename(job.file.Name(), seg.Start)
	if err != nil {
		r.report(fmt.Errorf("recorder %s: %w", r.cfg.CameraID, err))
		r.remove(job.file.Name())
		return
	}
	seg.Path = segmentPath(r.cfg.CameraID, name)
	if err := syncDir(r.dir); err != nil {
		// The file is complete; only the rename's durability is in doubt. Index it anyway.
		r.report(fmt.Errorf("recorder %s: sync directory after %s: %w", r.cfg.CameraID, seg.Path, err))
	}

	r.backlog = append(r.backlog, seg)
	if len(r.backlog) > r.cfg.Backlog {
		r.report(fmt.Errorf("recorder %s: gave up indexing %s; the file stays on disk", r.cfg.CameraID, r.backlog[0].Path))
		r.backlog = slices.Delete(r.backlog, 0, 1)
	}
	for len(r.backlog) > 0 {
		if err := r.addToIndex(r.backlog[0]); err != nil {
			r.report(fmt.Errorf("recorder %s: index %s (%d waiting, retried with the next segment): %w",
				r.cfg.CameraID, r.backlog[0].Path, len(r.backlog), err))
			return
		}
		r.backlog = slices.Delete(r.backlog, 0, 1)
	}
}

// rename moves the temp file to a name from the segment's wall start. A wall clock that went
// back can repeat a name; an existing segment is never replaced, the new one takes a suffix.
// Only this recorder writes to its directory, so checking before renaming does not race.
func (r *Recorder) rename(tmp string, start time.Time) (string, error) {
	for i := 0; i < 1000; i++ {
		name := segmentName(start, i)
		final := filepath.Join(r.dir, name)
		_, err := os.Lstat(final)
		if errors.Is(err, fs.ErrNotExist) {
			if err := os.Rename(tmp, final); err != nil {
				return "", fmt.Errorf("rename segment: %w", err)
			}
			return name, nil
		}
		if err != nil {
			return "", fmt.Errorf("rename segment: %w", err)
		}
	}
	return "", fmt.Errorf("rename segment: 1000 segments already named %s", segmentName(start, 0))
}

// addToIndex calls the index with a deadline and turns a panic in it into an error: a bug in
// the store must not take recording down with it.
func (r *Recorder) addToIndex(seg Segment) (err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("index panicked: %v", p)
		}
	}()
	ctx, cancel := context.WithTimeout(context.Background(), r.cfg.IndexTimeout)
	defer cancel()
	return r.idx.AddSegment(ctx, seg)
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	return errors.Join(d.Sync(), d.Close())
}
