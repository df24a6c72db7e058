package web

import (
	"net/http"
	"sync"
	"time"

	"github.com/latchnvr/latch/nvr/auth"
)

// clockFloor: a device clock before this is taken as never set (an RTC
// that lost power starts in 1970 or at its build date).
var clockFloor = time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)

type clockOut struct {
	Now        time.Time `json:"now"`
	LooksUnset bool      `json:"looks_unset"`
	Warning    string    `json:"warning,omitempty"`
}

func (s *Server) clockJSON() clockOut {
	now := s.clk.Now().UTC()
	o := clockOut{Now: now}
	if now.Before(clockFloor) {
		o.LooksUnset = true
		o.Warning = "the device clock looks unset (before 2024): recordings and the audit log carry wrong times until it is set; locks are unaffected (they run on the monotonic clock)"
	}
	return o
}

type systemOut struct {
	Version           string     `json:"version"`
	FirmwareVersion   string     `json:"firmware_version"`
	SchemaVersion     int        `json:"schema_version"`
	Activated         bool       `json:"activated"`
	ActivatedAt       *time.Time `json:"activated_at"`
	Clock             clockOut   `json:"clock"`
	Cameras           int        `json:"cameras"`
	RecordingSegments int64      `json:"recording_segments"`
	RecordingBytes    int64      `json:"recording_bytes"`
	ProtectionEnabled bool       `json:"protection_enabled"`
}

func (s *Server) system(r *http.Request) (systemOut, error) {
	dev, err := s.db.GetDevice(r.Context())
	if err != nil {
		return systemOut{}, err
	}
	use, err := s.db.SegmentUsage(r.Context())
	if err != nil {
		return systemOut{}, err
	}
	return systemOut{Version: s.cfg.Version, FirmwareVersion: dev.FirmwareVersion, SchemaVersion: dev.SchemaVersion,
		Activated: dev.Activated, ActivatedAt: timeJSON(dev.ActivatedNS), Clock: s.clockJSON(), Cameras: len(s.cameras()),
		RecordingSegments: use.Segments, RecordingBytes: use.Bytes, ProtectionEnabled: !s.auth.Policy().Disabled}, nil
}

func (s *Server) handleSystem(w http.ResponseWriter, r *http.Request, c *caller) {
	out, err := s.system(r)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, out)
}

type factoryResetRequest struct {
	PIN     string `json:"pin"`
	Confirm bool   `json:"confirm"`
}

// handleFactoryReset is R-FACTORY from the web: an admin session, the CSRF
// token, explicit confirmation and the master PIN. Recordings stay.
func (s *Server) handleFactoryReset(w http.ResponseWriter, r *http.Request, c *caller) {
	var req factoryResetRequest
	if !decodeJSON(w, r, &req) {
		return
	}
	if !req.Confirm {
		badRequest(w, "confirmation_required", `a factory reset erases users, locks, sessions and settings: send "confirm": true`)
		return
	}
	if err := auth.CheckPIN(req.PIN); err != nil {
		s.fail(w, r, err)
		return
	}
	if wait := s.pin.retryAfter(s.clk.Instant()); wait > 0 {
		n := setRetryAfter(w, wait)
		writeJSON(w, http.StatusTooManyRequests, lockedResponse{Error: "locked", Scope: "pin",
			Message: "too many wrong PINs: wait, or reset at the console", RetryAfterSeconds: &n})
		return
	}
	dev, err := s.db.GetDevice(r.Context())
	if err != nil {
		s.fail(w, r, err)
		return
	}
	ok := false
	if dev.MasterPINHash != "" {
		if ok, err = s.auth.Hasher().Verify(r.Context(), dev.MasterPINHash, req.PIN); err != nil {
			s.fail(w, r, err)
			return
		}
	}
	if !ok {
		s.pin.fail(s.clk.Instant())
		s.log.Warn("web: wrong master PIN for factory reset", "actor", string(c.actor()), "peer", r.RemoteAddr)
		writeError(w, http.StatusForbidden, "wrong_pin", "that is not the master PIN")
		return
	}
	s.pin.reset()
	if err := s.auth.FactoryReset(r.Context(), c.actor()); err != nil {
		s.fail(w, r, err)
		return
	}
	if err := s.refreshCSRFKey(r.Context()); err != nil {
		s.serverError(w, r, err)
		return
	}
	s.clearSessionCookie(w, r)
	writeJSON(w, http.StatusOK, map[string]bool{"reset": true})
}

// pinLimiter bounds master-PIN guesses through the web (a 6-digit PIN is
// small): pinThreshold wrong PINs within pinWindow refuse further tries, for
// pinBase doubling per lock up to pinCap. It runs on clock instants.
type pinLimiter struct {
	mu       sync.Mutex
	failures []int64
	until    int64
	level    int
}

const (
	pinThreshold = 5
	pinWindow    = 15 * time.Minute
	pinBase      = 5 * time.Minute
	pinCap       = time.Hour
)

func (l *pinLimiter) retryAfter(now int64) time.Duration {
	l.mu.Lock()
	defer l.mu.Unlock()
	if now < l.until {
		return time.Duration(l.until - now)
	}
	return 0
}

func (l *pinLimiter) fail(now int64) {
	l.mu.Lock()
	defer l.mu.Unlock()
	kept := l.failures[:0]
	for _, t := range l.failures {
		if now-t < int64(pinWindow) {
			kept = append(kept, t)
		}
	}
	l.failures = append(kept, now)
	if len(l.failures) >= pinThreshold {
		d := pinBase
		for i := 0; i < l.level && d < pinCap; i++ {
			d *= 2
		}
		l.until = now + int64(min(d, pinCap))
		l.level++
		l.failures = l.failures[:0]
	}
}

func (l *pinLimiter) reset() {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.failures, l.until, l.level = nil, 0, 0
}
