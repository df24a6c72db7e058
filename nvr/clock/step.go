package clock

import (
	"sync"
	"time"
)

// Step is a wall-clock step noticed while running: between two samples the wall clock moved by
// Delta more (positive) or less (negative) than the instants did.
type Step struct {
	Wall    time.Time // wall time of the sample that revealed the step
	Instant int64     // instant of that sample
	Delta   time.Duration
}

// StepDetector compares successive (wall, instant) samples. Instants are the truth for elapsed
// time (SPEC R-MONO); when the wall clock disagrees by more than the tolerance it has been
// stepped, and persisted lock anchors must be re-anchored (SPEC R-RESTART).
//
// The tolerance absorbs the gap between reading the wall clock and the instant, and NTP slewing
// (at most 500 ppm: half a millisecond per second between samples). It is not safe for
// concurrent use; Watch wraps it for a running clock.
type StepDetector struct {
	tolerance time.Duration
	primed    bool
	wall      time.Time
	instant   int64
}

// NewStepDetector returns a detector that ignores disagreements up to tolerance.
func NewStepDetector(tolerance time.Duration) *StepDetector {
	return &StepDetector{tolerance: max(tolerance, 0)}
}

// Observe records a sample and reports the step since the previous one, if any. The first
// sample only primes the detector.
func (d *StepDetector) Observe(wall time.Time, instant int64) (step Step, stepped bool) {
	// Round(0) drops a monotonic reading: with one present, Sub would measure monotonic time
	// and hide exactly the step we are looking for.
	wall = wall.Round(0)
	prevWall, prevInstant, primed := d.wall, d.instant, d.primed
	d.wall, d.instant, d.primed = wall, instant, true
	if !primed {
		return Step{}, false
	}
	wallElapsed := int64(wall.Sub(prevWall)) // Sub saturates
	delta := time.Duration(subSat(wallElapsed, subSat(instant, prevInstant)))
	if delta > d.tolerance || delta < -d.tolerance {
		return Step{Wall: wall, Instant: instant, Delta: delta}, true
	}
	return Step{}, false
}

// Watch samples c every interval on c's own timers (so a Sim drives it deterministically) and
// calls onStep for each step larger than tolerance; a non-positive interval means one second.
// onStep runs where c runs timer callbacks and must not block for long or call stop. The returned
// function stops watching; after it returns, onStep is not called again.
func Watch(c Clock, interval, tolerance time.Duration, onStep func(Step)) (stop func()) {
	if interval <= 0 {
		interval = time.Second
	}
	w := &watcher{c: c, interval: interval, onStep: onStep, det: NewStepDetector(tolerance)}
	w.mu.Lock()
	defer w.mu.Unlock()
	w.det.Observe(Read(c))
	w.timer = c.AfterFunc(interval, w.sample)
	return w.stop
}

type watcher struct {
	c        Clock
	interval time.Duration
	onStep   func(Step)

	mu      sync.Mutex // held while sampling, so stop waits for a sample in progress
	det     *StepDetector
	timer   Timer
	stopped bool
}

func (w *watcher) sample() {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.stopped {
		return
	}
	if step, ok := w.det.Observe(Read(w.c)); ok {
		w.onStep(step)
	}
	w.timer = w.c.AfterFunc(w.interval, w.sample)
}

func (w *watcher) stop() {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.stopped = true
	w.timer.Stop()
}
