package web

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"os"
	"path"
	"strconv"
	"strings"
	"time"

	"github.com/latchnvr/latch/nvr/camera"
	"github.com/latchnvr/latch/nvr/recorder"
	"github.com/latchnvr/latch/nvr/store"
)

// Stream timing. These are network deadlines and presentation pacing, not
// lock arithmetic, so they use real time.
const (
	streamWriteTimeout = 20 * time.Second
	streamRecheck      = 15 * time.Second // how often a stream re-validates its session
	boundary           = "latchframe"
)

type cameraOut struct {
	ID          string     `json:"id"`
	Name        string     `json:"name"`
	Width       int        `json:"width"`
	Height      int        `json:"height"`
	IntervalMS  int64      `json:"interval_ms"`
	HasFrame    bool       `json:"has_frame"`
	LastFrameAt *time.Time `json:"last_frame_at"`
	SnapshotURL string     `json:"snapshot_url"`
	LiveURL     string     `json:"live_url"`
}

func cameraJSON(c *camera.Camera) cameraOut {
	cfg := c.Config()
	o := cameraOut{ID: c.ID(), Name: cfg.Name, Width: cfg.Width, Height: cfg.Height, IntervalMS: cfg.Interval.Milliseconds(),
		SnapshotURL: "/api/v1/cameras/" + c.ID() + "/snapshot", LiveURL: "/api/v1/cameras/" + c.ID() + "/live"}
	if f, ok := c.LatestFrame(); ok {
		o.HasFrame = true
		t := f.Wall.UTC()
		o.LastFrameAt = &t
	}
	return o
}

func (s *Server) cameras() []*camera.Camera {
	var out []*camera.Camera
	for _, c := range s.cfg.Cameras() {
		if c != nil {
			out = append(out, c)
		}
	}
	return out
}

// camera finds a running camera by id; ids are validated, never used as paths.
func (s *Server) camera(id string) *camera.Camera {
	if camera.ValidateID(id) != nil {
		return nil
	}
	for _, c := range s.cameras() {
		if c.ID() == id {
			return c
		}
	}
	return nil
}

func (s *Server) handleCameras(w http.ResponseWriter, r *http.Request, c *caller) {
	out := []cameraOut{}
	for _, cam := range s.cameras() {
		out = append(out, cameraJSON(cam))
	}
	writeJSON(w, http.StatusOK, map[string]any{"cameras": out})
}

func noCamera(w http.ResponseWriter) {
	writeError(w, http.StatusNotFound, "no_such_camera", "no camera with that id")
}

func (s *Server) handleSnapshot(w http.ResponseWriter, r *http.Request, c *caller) {
	cam := s.camera(r.PathValue("id"))
	if cam == nil {
		noCamera(w)
		return
	}
	jpg := cam.Latest()
	if jpg == nil {
		w.Header().Set("Retry-After", "1")
		writeError(w, http.StatusServiceUnavailable, "no_frame", "the camera has not produced a frame yet")
		return
	}
	w.Header().Set("Content-Type", "image/jpeg")
	w.Header().Set("Content-Length", strconv.Itoa(len(jpg)))
	w.WriteHeader(http.StatusOK)
	w.Write(jpg)
}

// mjpegWriter writes multipart/x-mixed-replace parts, extending the write
// deadline before each so a stream outlives the server's WriteTimeout
// while a stalled client is still dropped. Each part is followed at once by
// the next boundary, so a browser shows a frame as soon as it arrives
// instead of when the next one starts.
type mjpegWriter struct {
	w  http.ResponseWriter
	rc *http.ResponseController
}

func startMJPEG(w http.ResponseWriter) *mjpegWriter {
	w.Header().Set("Content-Type", "multipart/x-mixed-replace; boundary="+boundary)
	w.Header().Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)
	m := &mjpegWriter{w: w, rc: http.NewResponseController(w)}
	io.WriteString(w, "--"+boundary+"\r\n")
	return m
}

func (m *mjpegWriter) frame(jpg []byte) error {
	m.rc.SetWriteDeadline(time.Now().Add(streamWriteTimeout))
	if _, err := fmt.Fprintf(m.w, "Content-Type: image/jpeg\r\nContent-Length: %d\r\n\r\n", len(jpg)); err != nil {
		return err
	}
	if _, err := m.w.Write(jpg); err != nil {
		return err
	}
	if _, err := io.WriteString(m.w, "\r\n--"+boundary+"\r\n"); err != nil {
		return err
	}
	return m.rc.Flush()
}

// acquireStream counts a stream against MaxLiveStreams.
func (s *Server) acquireStream(w http.ResponseWriter) bool {
	if s.streams.Add(1) > MaxLiveStreams {
		s.streams.Add(-1)
		w.Header().Set("Retry-After", "5")
		writeError(w, http.StatusServiceUnavailable, "too_many_streams", "too many video streams are open: close one and retry")
		return false
	}
	return true
}

func (s *Server) releaseStream() { s.streams.Add(-1) }

// stillValid re-checks a stream's session now and then, so revoking a
// session or disabling a user ends its streams.
func (s *Server) stillValid(r *http.Request, c *caller, last *time.Time) bool {
	if time.Since(*last) < streamRecheck {
		return true
	}
	*last = time.Now()
	_, _, err := s.auth.Session(r.Context(), c.token)
	return err == nil
}

// handleLive streams a camera as MJPEG: the latest frame at once, then
// every new one. A slow client loses frames, the camera never waits.
func (s *Server) handleLive(w http.ResponseWriter, r *http.Request, c *caller) {
	cam := s.camera(r.PathValue("id"))
	if cam == nil {
		noCamera(w)
		return
	}
	if r.Method == http.MethodHead {
		w.Header().Set("Content-Type", "multipart/x-mixed-replace; boundary="+boundary)
		return
	}
	if !s.acquireStream(w) {
		return
	}
	defer s.releaseStream()
	sub := cam.Subscribe()
	defer sub.Close()
	mw := startMJPEG(w)
	if jpg := cam.Latest(); jpg != nil {
		if mw.frame(jpg) != nil {
			return
		}
	}
	checked := time.Now()
	for {
		select {
		case <-r.Context().Done():
			return
		case <-s.closed:
			return
		case f, ok := <-sub.C():
			if !ok || !s.stillValid(r, c, &checked) {
				return
			}
			if mw.frame(f.JPEG) != nil {
				return
			}
		}
	}
}

// Recordings.

type segmentOut struct {
	ID              int64     `json:"id"`
	Camera          string    `json:"camera"`
	Start           time.Time `json:"start"`
	End             time.Time `json:"end"`
	DurationSeconds float64   `json:"duration_seconds"`
	Bytes           int64     `json:"bytes"`
	Frames          int64     `json:"frames"`
	PlayURL         string    `json:"play_url"`
	DownloadURL     string    `json:"download_url"`
}

func segmentJSON(seg store.Segment, cameraName string) segmentOut {
	id := strconv.FormatInt(seg.ID, 10)
	return segmentOut{ID: seg.ID, Camera: cameraName, Start: time.Unix(0, seg.StartWallNS).UTC(), End: time.Unix(0, seg.EndWallNS).UTC(),
		DurationSeconds: time.Duration(seg.DurationNS).Seconds(), Bytes: seg.Bytes, Frames: seg.Frames,
		PlayURL: "/api/v1/recordings/" + id + "/play", DownloadURL: "/api/v1/recordings/" + id + "/download"}
}

// Recording listing bounds.
const (
	recordingsDefaultLimit = 2000
	recordingsMaxLimit     = 10000
	recordingsMaxRange     = 31 * 24 * time.Hour
)

func (s *Server) handleRecordings(w http.ResponseWriter, r *http.Request, c *caller) {
	q := r.URL.Query()
	now := s.clk.Now()
	from, to := now.Add(-24*time.Hour), now.Add(time.Minute)
	var err error
	if v := q.Get("from"); v != "" {
		if from, err = parseTime(v); err != nil {
			badRequest(w, "invalid_query", "from: "+err.Error())
			return
		}
	}
	if v := q.Get("to"); v != "" {
		if to, err = parseTime(v); err != nil {
			badRequest(w, "invalid_query", "to: "+err.Error())
			return
		}
	}
	if !to.After(from) {
		badRequest(w, "invalid_query", "to must be after from")
		return
	}
	if to.Sub(from) > recordingsMaxRange {
		badRequest(w, "invalid_query", "the range may span at most 31 days")
		return
	}
	limit := recordingsDefaultLimit
	if v := q.Get("limit"); v != "" {
		if limit, err = strconv.Atoi(v); err != nil || limit < 1 || limit > recordingsMaxLimit {
			badRequest(w, "invalid_query", fmt.Sprintf("limit: 1 to %d", recordingsMaxLimit))
			return
		}
	}
	cams, err := s.db.ListCameras(r.Context())
	if err != nil {
		s.fail(w, r, err)
		return
	}
	want := q.Get("camera")
	if want != "" && camera.ValidateID(want) != nil {
		noCamera(w)
		return
	}
	found := want == ""
	out := []segmentOut{}
	for _, cam := range cams {
		if want != "" && cam.Name != want {
			continue
		}
		found = true
		segs, err := s.db.ListSegments(r.Context(), cam.ID, from.UnixNano(), to.UnixNano(), limit)
		if err != nil {
			s.fail(w, r, err)
			return
		}
		for _, seg := range segs {
			out = append(out, segmentJSON(seg, cam.Name))
		}
	}
	if !found {
		noCamera(w)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"from": from.UTC(), "to": to.UTC(), "segments": out})
}

// segment resolves a path's recording id to its index row and camera name.
func (s *Server) segment(w http.ResponseWriter, r *http.Request) (store.Segment, string, bool) {
	id, err := strconv.ParseInt(r.PathValue("id"), 10, 64)
	if err != nil || id <= 0 {
		badRequest(w, "invalid_input", "a recording is named by its numeric id")
		return store.Segment{}, "", false
	}
	seg, err := s.db.GetSegment(r.Context(), id)
	if errors.Is(err, store.ErrNotFound) {
		writeError(w, http.StatusNotFound, "no_such_recording", "no recording with that id")
		return store.Segment{}, "", false
	}
	if err != nil {
		s.fail(w, r, err)
		return store.Segment{}, "", false
	}
	name := strconv.FormatInt(seg.CameraID, 10)
	if cam, err := s.db.GetCamera(r.Context(), seg.CameraID); err == nil {
		name = cam.Name
	}
	return seg, name, true
}

func (s *Server) handleRecording(w http.ResponseWriter, r *http.Request, c *caller) {
	seg, name, ok := s.segment(w, r)
	if !ok {
		return
	}
	writeJSON(w, http.StatusOK, segmentJSON(seg, name))
}

var errBadSegmentPath = errors.New("recording path outside the recordings directory")

// openSegment opens the file the index names, inside DataDir/recordings
// only: the path must be a clean, local, slash-separated name under
// recordings/, and os.Root refuses anything (.., symlinks) that would leave
// the data directory.
func (s *Server) openSegment(seg store.Segment) (*os.File, fs.FileInfo, error) {
	p := seg.Path
	if s.cfg.DataDir == "" || p == "" || path.Clean(p) != p || !fs.ValidPath(p) ||
		!strings.HasPrefix(p, recorder.RecordingsDir+"/") || !strings.HasSuffix(p, recorder.Ext) {
		return nil, nil, errBadSegmentPath
	}
	root, err := os.OpenRoot(s.cfg.DataDir)
	if err != nil {
		return nil, nil, err
	}
	defer root.Close()
	f, err := root.Open(p)
	if err != nil {
		return nil, nil, err
	}
	fi, err := f.Stat()
	if err != nil || !fi.Mode().IsRegular() {
		f.Close()
		return nil, nil, errBadSegmentPath
	}
	return f, fi, nil
}

func (s *Server) segmentFileError(w http.ResponseWriter, r *http.Request, seg store.Segment, err error) {
	s.log.Warn("web: recording file unavailable", "segment", seg.ID, "err", err)
	writeError(w, http.StatusNotFound, "recording_unavailable", "the recording's file is not available (deleted by retention, or damaged)")
}

// safeFilePart keeps [A-Za-z0-9._-] for a download's file name.
func safeFilePart(v string) string {
	var b strings.Builder
	for _, r := range v {
		if r < 0x80 && (r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_' || r == '.') {
			b.WriteRune(r)
		} else {
			b.WriteByte('_')
		}
	}
	return b.String()
}

func (s *Server) handleDownload(w http.ResponseWriter, r *http.Request, c *caller) {
	seg, name, ok := s.segment(w, r)
	if !ok {
		return
	}
	f, fi, err := s.openSegment(seg)
	if err != nil {
		s.segmentFileError(w, r, seg, err)
		return
	}
	defer f.Close()
	file := safeFilePart(name) + "-" + time.Unix(0, seg.StartWallNS).UTC().Format("20060102T150405Z") + recorder.Ext
	w.Header().Set("Content-Type", "video/x-motion-jpeg")
	w.Header().Set("Content-Disposition", `attachment; filename="`+file+`"`)
	http.ServeContent(w, r, file, fi.ModTime(), f)
}

// handlePlay streams a recorded segment as multipart MJPEG, paced at the
// recorded frame rate times ?speed (1–16), so an <img> plays it.
func (s *Server) handlePlay(w http.ResponseWriter, r *http.Request, c *caller) {
	speed := 1
	if v := r.URL.Query().Get("speed"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 16 {
			badRequest(w, "invalid_query", "speed: 1 to 16")
			return
		}
		speed = n
	}
	seg, _, ok := s.segment(w, r)
	if !ok {
		return
	}
	f, _, err := s.openSegment(seg)
	if err != nil {
		s.segmentFileError(w, r, seg, err)
		return
	}
	defer f.Close()
	if r.Method == http.MethodHead {
		w.Header().Set("Content-Type", "multipart/x-mixed-replace; boundary="+boundary)
		return
	}
	if !s.acquireStream(w) {
		return
	}
	defer s.releaseStream()
	interval := time.Second
	if seg.Frames > 0 && seg.DurationNS > 0 {
		interval = time.Duration(seg.DurationNS / seg.Frames)
	}
	interval = min(max(interval/time.Duration(speed), 10*time.Millisecond), 5*time.Second)
	sc := recorder.NewFrameScanner(bufio.NewReader(f))
	mw := startMJPEG(w)
	tick := time.NewTicker(interval)
	defer tick.Stop()
	checked := time.Now()
	for first := true; sc.Scan(); first = false {
		if !first {
			select {
			case <-r.Context().Done():
				return
			case <-s.closed:
				return
			case <-tick.C:
			}
			if !s.stillValid(r, c, &checked) {
				return
			}
		}
		if mw.frame(sc.Bytes()) != nil {
			return
		}
	}
	if err := sc.Err(); err != nil {
		s.log.Warn("web: playback stopped at a damaged frame", "segment", seg.ID, "err", err)
	}
}
