// Package camera owns the simulated cameras: each produces JPEG frames of a test pattern (colour
// bars, a moving box, its name and the clock's wall time drawn in) on the clock's timers, keeps
// its latest frame for snapshots, fans frames out to live-view subscribers, and hands every frame
// to a sink (the recorder).
//
// A camera must never depend on auth, the store or the web, and must never block on a consumer:
// a slow subscriber loses frames, the camera does not wait (SPEC INV-RECORDING). It never panics
// on a failure it can report.
package camera

import (
	"errors"
	"fmt"
	"hash/fnv"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/latchnvr/latch/nvr/clock"
)

// Defaults for an appliance, which has little CPU to spare.
const (
	DefaultInterval = time.Second
	DefaultWidth    = 640
	DefaultHeight   = 360
	DefaultQuality  = 70
	DefaultCount    = 4
)

// ErrStarted is returned by Start on a camera that was already started.
var ErrStarted = errors.New("camera already started")

// Config describes one simulated camera. Zero fields take the defaults above.
type Config struct {
	ID       string        // names its recordings directory: 1–64 of [a-z0-9_-], starting alphanumeric
	Name     string        // drawn on every frame; ID when empty
	Interval time.Duration // between frames
	Width    int
	Height   int
	Quality  int // JPEG quality, 1–100

	// OnError receives failures the camera recovers from; nil logs them with slog.
	OnError func(error)
}

// DefaultConfigs returns n cameras cam1…camN with default settings.
func DefaultConfigs(n int) []Config {
	cfgs := make([]Config, n)
	for i := range cfgs {
		cfgs[i] = Config{ID: fmt.Sprintf("cam%d", i+1), Name: fmt.Sprintf("Camera %d", i+1)}
	}
	return cfgs
}

func (c Config) withDefaults() Config {
	if c.Name == "" {
		c.Name = c.ID
	}
	if c.Interval == 0 {
		c.Interval = DefaultInterval
	}
	if c.Width == 0 {
		c.Width = DefaultWidth
	}
	if c.Height == 0 {
		c.Height = DefaultHeight
	}
	if c.Quality == 0 {
		c.Quality = DefaultQuality
	}
	return c
}

// Validate reports the first problem with a configuration after defaults are applied.
func (c Config) Validate() error {
	c = c.withDefaults()
	if err := ValidateID(c.ID); err != nil {
		return err
	}
	switch {
	case c.Interval < time.Millisecond:
		return fmt.Errorf("camera %s: frame interval %v below 1ms", c.ID, c.Interval)
	case c.Width < 16 || c.Height < 16 || c.Width > 7680 || c.Height > 4320:
		return fmt.Errorf("camera %s: size %dx%d outside 16x16…7680x4320", c.ID, c.Width, c.Height)
	case c.Quality < 1 || c.Quality > 100:
		return fmt.Errorf("camera %s: jpeg quality %d outside 1–100", c.ID, c.Quality)
	}
	return nil
}

// ValidateID checks that id is safe as a single path element and readable in a URL.
func ValidateID(id string) error {
	if len(id) == 0 || len(id) > 64 {
		return fmt.Errorf("camera id %q: length must be 1–64", id)
	}
	for i, r := range id {
		alnum := r >= 'a' && r <= 'z' || r >= '0' && r <= '9'
		if !alnum && (i == 0 || r != '-' && r != '_') {
			return fmt.Errorf("camera id %q: want [a-z0-9][a-z0-9_-]*", id)
		}
	}
	return nil
}

// Frame is one captured image. JPEG is shared by every consumer and must not be modified.
type Frame struct {
	CameraID string
	Seq      uint64    // frames this camera produced before this one
	Wall     time.Time // the clock's wall time at capture, as drawn on the image
	Instant  int64     // the clock's instant at capture
	JPEG     []byte
}

// Sink receives every frame, synchronously, from the capture step. It must return quickly:
// while it runs the camera does not capture.
type Sink interface {
	WriteFrame(Frame)
}

// Camera is one simulated camera. Its capture step runs from a clock timer: in its own goroutine
// with a real clock, synchronously inside Advance with a simulated one.
type Camera struct {
	cfg     Config
	clk     clock.Clock
	variant int

	mu       sync.Mutex // serialises capture steps with Start and Stop
	state    int        // idle, running, stopped
	sink     Sink
	timer    clock.Timer
	renderer *renderer
	origin   int64 // instant of frame 0; frame slots are origin + k·Interval
	next     int64 // the slot the timer is armed for
	seq      uint64

	latest atomic.Pointer[Frame]

	subsMu sync.Mutex // never held while capturing, so subscribing never waits for a frame
	subs   map[*Subscription]struct{}
	ended  bool // stopped: new subscriptions start closed
}

const (
	idle = iota
	running
	stopped
)

// New returns a camera that has not started capturing.
func New(cfg Config, clk clock.Clock) (*Camera, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("new camera: %w", err)
	}
	cfg = cfg.withDefaults()
	return &Camera{
		cfg:     cfg,
		clk:     clk,
		variant: variantOf(cfg.ID),
		subs:    make(map[*Subscription]struct{}),
	}, nil
}

// ID returns the camera's id.
func (c *Camera) ID() string { return c.cfg.ID }

// Config returns the camera's configuration with defaults applied.
func (c *Camera) Config() Config { return c.cfg }

// Start captures the first frame now, synchronously, then one every Interval on the clock,
// handing each to sink (which may be nil). A camera starts once.
func (c *Camera) Start(sink Sink) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.state != idle {
		return fmt.Errorf("start camera %s: %w", c.cfg.ID, ErrStarted)
	}
	c.state = running
	c.sink = sink
	c.renderer = newRenderer(c.cfg.Width, c.cfg.Height, c.cfg.Quality, c.variant)
	c.origin = c.clk.Instant()
	c.next = c.origin
	c.captureLocked(c.origin)
	c.timer = c.clk.AfterFunc(c.untilNextLocked(), c.tick)
	return nil
}

// untilNextLocked reads the clock again rather than reusing the capture instant, so the time
// spent rendering does not delay the next slot.
func (c *Camera) untilNextLocked() time.Duration {
	return time.Duration(max(c.next-c.clk.Instant(), 0))
}

// variantOf picks the box colour from the id, so a camera looks the same whatever order
// cameras are made in.
func variantOf(id string) int {
	h := fnv.New32a()
	h.Write([]byte(id))
	return int(h.Sum32() % uint32(len(boxColours)))
}

// Stop ends capturing and closes every subscription. When Stop returns, the sink gets no more
// frames, so it can be closed. Latest keeps the last frame.
func (c *Camera) Stop() {
	c.mu.Lock()
	if c.state == running {
		c.timer.Stop()
	}
	c.state = stopped
	c.mu.Unlock()

	c.subsMu.Lock()
	defer c.subsMu.Unlock()
	c.ended = true
	for s := range c.subs {
		delete(c.subs, s)
		close(s.c)
	}
}

// tick is the timer callback: capture the due slot and arm the next.
func (c *Camera) tick() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.state != running {
		return
	}
	now := c.clk.Instant()
	if now >= c.next {
		c.captureLocked(now)
	}
	// A timer that fired early (rounding in a warped clock) re-arms for the rest of the slot.
	c.timer.Reset(c.untilNextLocked())
}

// captureLocked renders, publishes and sinks the frame for instant now, then sets c.next to the
// first slot after now. Slots missed while the process was stalled are skipped, not caught up:
// a camera cannot film the past.
func (c *Camera) captureLocked(now int64) {
	wall := c.clk.Now()
	jpg, err := c.renderer.render(c.cfg.Name, c.seq, time.Duration(now-c.origin), wall)
	interval := int64(c.cfg.Interval)
	c.next = c.origin + ((now-c.origin)/interval+1)*interval
	if err != nil {
		c.report(fmt.Errorf("camera %s: frame %d: %w", c.cfg.ID, c.seq, err))
		return
	}
	f := &Frame{CameraID: c.cfg.ID, Seq: c.seq, Wall: wall, Instant: now, JPEG: jpg}
	c.seq++
	c.latest.Store(f)
	c.publish(*f)
	if c.sink != nil {
		c.sink.WriteFrame(*f)
	}
}

func (c *Camera) report(err error) {
	if c.cfg.OnError != nil {
		c.cfg.OnError(err)
		return
	}
	slog.Error("camera", "err", err)
}

// Latest returns the newest frame's JPEG for snapshots, or nil before the first frame.
func (c *Camera) Latest() []byte {
	if f := c.latest.Load(); f != nil {
		return f.JPEG
	}
	return nil
}

// LatestFrame returns the newest frame with its capture time.
func (c *Camera) LatestFrame() (Frame, bool) {
	if f := c.latest.Load(); f != nil {
		return *f, true
	}
	return Frame{}, false
}

// Subscription delivers live frames. Its channel holds one frame: when the subscriber has not
// taken the previous one, the older is dropped for the newer, so live view shows the present
// and the camera never waits.
type Subscription struct {
	cam     *Camera
	c       chan Frame
	dropped atomic.Uint64
}

// Subscribe returns a subscription to frames captured from now on. Its channel is closed by
// Close or when the camera stops.
func (c *Camera) Subscribe() *Subscription {
	s := &Subscription{cam: c, c: make(chan Frame, 1)}
	c.subsMu.Lock()
	defer c.subsMu.Unlock()
	if c.ended {
		close(s.c)
		return s
	}
	c.subs[s] = struct{}{}
	return s
}

// C returns the channel of frames.
func (s *Subscription) C() <-chan Frame { return s.c }

// Dropped returns how many frames this subscriber missed by being slow.
func (s *Subscription) Dropped() uint64 { return s.dropped.Load() }

// Close ends the subscription and closes its channel. It may be called more than once.
func (s *Subscription) Close() {
	s.cam.subsMu.Lock()
	defer s.cam.subsMu.Unlock()
	if _, ok := s.cam.subs[s]; ok {
		delete(s.cam.subs, s)
		close(s.c)
	}
}

// publish offers f to every subscriber without blocking.
func (c *Camera) publish(f Frame) {
	c.subsMu.Lock()
	defer c.subsMu.Unlock()
	for s := range c.subs {
		select {
		case s.c <- f:
			continue
		default:
		}
		// Full: replace the unread frame with this one. Only publish sends, under subsMu, so
		// after the drain there is room unless the reader raced us to it, which is fine too.
		select {
		case <-s.c:
			s.dropped.Add(1)
		default:
		}
		select {
		case s.c <- f:
		default:
			s.dropped.Add(1)
		}
	}
}
