package recorder

// SegmentFile lets external tests substitute failing files.
type SegmentFile = segmentFile

// SetCreate replaces how r creates segment files. Call it before the first frame.
func SetCreate(r *Recorder, create func(dir string) (SegmentFile, error)) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.create = create
}
