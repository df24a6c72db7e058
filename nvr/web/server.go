package web

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/netip"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/latchnvr/latch/model"
	"github.com/latchnvr/latch/nvr/auth"
	"github.com/latchnvr/latch/nvr/camera"
	"github.com/latchnvr/latch/nvr/clock"
	"github.com/latchnvr/latch/nvr/store"
)

// MetricsHook receives one call per decided login attempt: outcome is
// "success", "wrong_secret", "wrong_totp", "totp_required", "refused" or
// "invalid"; scope is the refusing scope for "refused" and "" otherwise.
type MetricsHook interface {
	Attempt(outcome, scope string)
}

// Config wires a Server.
type Config struct {
	// Auth decides logins and administers users, keys and sessions.
	Auth *auth.Service
	// DB is the store Auth uses (recordings, audit, device).
	DB *store.DB
	// Cameras returns the running cameras (nil: none).
	Cameras func() []*camera.Camera
	// DataDir holds recordings/<camera>/*.mjpeg as the recorder wrote them.
	DataDir string
	// TrustedProxies are the peers whose X-Forwarded-For is believed
	// (SPEC §1 Source).
	TrustedProxies []netip.Prefix
	// Prove checks a policy's properties before it is saved; nil: policies
	// are validated but not proved (the answer says so).
	Prove func(model.Policy) (summary string, holds bool)
	// Version is the firmware version shown on the system page.
	Version string
	// Log receives server errors and panics (nil: discarded).
	Log *slog.Logger
	// Metrics, if set, counts login attempts.
	Metrics MetricsHook
	// SecureCookies marks cookies Secure even when the request did not
	// arrive over TLS (behind a TLS-terminating proxy).
	SecureCookies bool
	// ExposeClock adds the decision's instant and wall time to login
	// answers (X-Latch-Instant, X-Latch-Wall): for soak tests that compare
	// a running server with the model, never for a device in service.
	ExposeClock bool
}

// Limits of what a client may send.
const (
	// MaxBodyBytes bounds every request body.
	MaxBodyBytes = 64 << 10
	// MaxLiveStreams bounds concurrent MJPEG streams (live and playback):
	// each holds a goroutine and a socket.
	MaxLiveStreams = 64
)

// Server serves the API and the UI.
type Server struct {
	cfg   Config
	auth  *auth.Service
	db    *store.DB
	clk   clock.Clock
	log   *slog.Logger
	pages *pageSet
	mux   *http.ServeMux
	cop   *http.CrossOriginProtection

	csrfKey atomic.Pointer[[]byte]

	streams  atomic.Int64
	closed   chan struct{}
	closeOne sync.Once

	totpMu      sync.Mutex
	totpPending map[int64]pendingTOTP

	pin   pinLimiter
	prove chan struct{} // one proof at a time
}

// New checks cfg and builds a server.
func New(cfg Config) (*Server, error) {
	if cfg.Auth == nil {
		return nil, errors.New("web: no auth service")
	}
	if cfg.DB == nil {
		cfg.DB = cfg.Auth.DB()
	}
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	if cfg.Cameras == nil {
		cfg.Cameras = func() []*camera.Camera { return nil }
	}
	pages, err := loadPages()
	if err != nil {
		return nil, fmt.Errorf("web: templates: %w", err)
	}
	s := &Server{
		cfg: cfg, auth: cfg.Auth, db: cfg.DB, clk: cfg.Auth.Clock(), log: cfg.Log, pages: pages,
		cop:         http.NewCrossOriginProtection(),
		closed:      make(chan struct{}),
		totpPending: map[int64]pendingTOTP{},
		prove:       make(chan struct{}, 1),
	}
	if err := s.refreshCSRFKey(context.Background()); err != nil {
		return nil, err
	}
	s.routes()
	return s, nil
}

// refreshCSRFKey derives the CSRF key from the device secret, so tokens
// survive a restart and die with a factory reset (which rotates it).
func (s *Server) refreshCSRFKey(ctx context.Context) error {
	dev, err := s.db.GetDevice(ctx)
	if err != nil {
		return fmt.Errorf("web: device: %w", err)
	}
	m := hmac.New(sha256.New, dev.Secret)
	m.Write([]byte("latch/web/csrf/v1"))
	k := m.Sum(nil)
	s.csrfKey.Store(&k)
	return nil
}

// Close ends every open MJPEG stream; call it before shutting the HTTP
// server down (HTTPServer registers it with RegisterOnShutdown).
func (s *Server) Close() { s.closeOne.Do(func() { close(s.closed) }) }

// handler is what Handler returns: the middleware chain, with Close so
// HTTPServer can end streams on shutdown.
type handler struct {
	s *Server
	h http.Handler
}

func (h handler) ServeHTTP(w http.ResponseWriter, r *http.Request) { h.h.ServeHTTP(w, r) }

// Close ends every open stream.
func (h handler) Close() { h.s.Close() }

// Handler returns the server's HTTP handler.
func (s *Server) Handler() http.Handler {
	return handler{s: s, h: s.recoverer(s.headers(s.activationGate(s.dispatch())))}
}

// HTTPServer returns an http.Server for h with timeouts against slow
// clients. MJPEG streams extend their own write deadline frame by frame, so
// WriteTimeout bounds ordinary responses only. If h came from Handler, the
// server's shutdown ends open streams.
func HTTPServer(addr string, h http.Handler) *http.Server {
	srv := &http.Server{
		Addr:              addr,
		Handler:           h,
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       15 * time.Second,
		// Long enough for a policy proof and a large audit CSV export.
		WriteTimeout:   2 * time.Minute,
		IdleTimeout:    2 * time.Minute,
		MaxHeaderBytes: 16 << 10,
	}
	if c, ok := h.(interface{ Close() }); ok {
		srv.RegisterOnShutdown(c.Close)
	}
	return srv
}

// recoverer turns a panic into a logged 500 JSON error.
func (s *Server) recoverer(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		tw := &trackingWriter{ResponseWriter: w}
		defer func() {
			v := recover()
			if v == nil {
				return
			}
			if v == http.ErrAbortHandler {
				panic(v)
			}
			s.log.Error("web: panic", "method", r.Method, "path", r.URL.Path, "panic", v)
			if !tw.wrote {
				writeError(tw, http.StatusInternalServerError, "internal", "internal server error")
			}
		}()
		next.ServeHTTP(tw, r)
	})
}

// trackingWriter remembers whether the header was written.
type trackingWriter struct {
	http.ResponseWriter
	wrote bool
}

func (t *trackingWriter) WriteHeader(code int) {
	t.wrote = true
	t.ResponseWriter.WriteHeader(code)
}

func (t *trackingWriter) Write(b []byte) (int, error) {
	t.wrote = true
	return t.ResponseWriter.Write(b)
}

// Unwrap lets http.ResponseController reach the connection.
func (t *trackingWriter) Unwrap() http.ResponseWriter { return t.ResponseWriter }

// contentSecurityPolicy allows nothing inline: scripts and styles come from
// the embedded static files; data: images are the TOTP QR code.
const contentSecurityPolicy = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; " +
	"connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"

// headers sets the security headers on every response.
func (s *Server) headers(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Content-Security-Policy", contentSecurityPolicy)
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("X-Frame-Options", "DENY")
		h.Set("Referrer-Policy", "no-referrer")
		h.Set("Permissions-Policy", "camera=(), microphone=(), geolocation=(), payment=(), usb=(), interest-cohort=()")
		h.Set("Cross-Origin-Opener-Policy", "same-origin")
		h.Set("Cross-Origin-Resource-Policy", "same-origin")
		if r.TLS != nil {
			h.Set("Strict-Transport-Security", "max-age=31536000")
		}
		if !strings.HasPrefix(r.URL.Path, "/static/") {
			h.Set("Cache-Control", "no-store")
		}
		next.ServeHTTP(w, r)
	})
}

// activationGate lets an inactive device answer only activation, its status
// and static assets: the API says 409 not_activated, pages go to /activate.
func (s *Server) activationGate(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p := r.URL.Path
		if p == "/api/v1/activate" || p == "/api/v1/status" || p == "/activate" || strings.HasPrefix(p, "/static/") || p == "/favicon.ico" {
			next.ServeHTTP(w, r)
			return
		}
		ok, err := s.auth.Activated(r.Context())
		if err != nil {
			s.serverError(w, r, err)
			return
		}
		if ok {
			next.ServeHTTP(w, r)
			return
		}
		if !strings.HasPrefix(p, "/api/") && (r.Method == http.MethodGet || r.Method == http.MethodHead) {
			http.Redirect(w, r, "/activate", http.StatusSeeOther)
			return
		}
		writeError(w, http.StatusConflict, "not_activated", "the device is not activated: POST /api/v1/activate with an admin name, a strong password and a master PIN")
	})
}

// dispatch routes through the mux, answering the mux's own 404 and 405 as
// JSON for the API (and a page for the UI).
func (s *Server) dispatch() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h, pattern := s.mux.Handler(r)
		if pattern != "" {
			s.mux.ServeHTTP(w, r) // sets the path values
			return
		}
		// The mux's own answer: a redirect (path cleaning), 404 or 405.
		cw := &captureWriter{header: http.Header{}}
		h.ServeHTTP(cw, r)
		switch {
		case cw.code == http.StatusNotFound:
			s.notFound(w, r)
		case cw.code == http.StatusMethodNotAllowed:
			if a := cw.header.Get("Allow"); a != "" {
				w.Header().Set("Allow", a)
			}
			writeError(w, http.StatusMethodNotAllowed, "method_not_allowed", fmt.Sprintf("%s is not allowed on %s", r.Method, r.URL.Path))
		case cw.code >= 300 && cw.code < 400 && cw.header.Get("Location") != "":
			http.Redirect(w, r, cw.header.Get("Location"), cw.code)
		default:
			s.notFound(w, r)
		}
	})
}

// captureWriter records what the mux's built-in handlers write.
type captureWriter struct {
	header http.Header
	code   int
}

func (c *captureWriter) Header() http.Header { return c.header }
func (c *captureWriter) WriteHeader(code int) {
	if c.code == 0 {
		c.code = code
	}
}
func (c *captureWriter) Write(b []byte) (int, error) {
	if c.code == 0 {
		c.code = http.StatusOK
	}
	return len(b), nil
}

func (s *Server) notFound(w http.ResponseWriter, r *http.Request) {
	if strings.HasPrefix(r.URL.Path, "/api/") || !acceptsHTML(r) {
		writeError(w, http.StatusNotFound, "not_found", "no such resource")
		return
	}
	s.renderStatus(w, r, http.StatusNotFound, "Not found", "There is nothing at this address.")
}

func acceptsHTML(r *http.Request) bool {
	return strings.Contains(r.Header.Get("Accept"), "text/html")
}

// routes registers every route. Role names the least role a route needs.
func (s *Server) routes() {
	m := http.NewServeMux()
	s.mux = m
	api := func(pattern string, h http.HandlerFunc) { m.Handle(pattern, h) }
	user := func(role store.Role, h sessionHandler) http.HandlerFunc { return s.withSession(role, false, h) }
	// own: reachable while a password change is pending.
	own := func(h sessionHandler) http.HandlerFunc { return s.withSession(store.RoleViewer, true, h) }

	// Public.
	api("GET /api/v1/status", s.handleStatus)
	api("POST /api/v1/activate", s.handleActivate)
	api("POST /api/v1/login", s.handleLogin)
	api("POST /api/v1/recovery/start", s.handleRecoveryStart)
	api("POST /api/v1/recovery/finish", s.handleRecoveryFinish)

	// Own account.
	api("POST /api/v1/logout", own(s.handleLogout))
	api("GET /api/v1/me", own(s.handleMe))
	api("POST /api/v1/me/password", own(s.handleOwnPassword))
	api("GET /api/v1/me/sessions", own(s.handleOwnSessions))
	api("DELETE /api/v1/me/sessions/{id}", own(s.handleRevokeOwnSession))
	api("POST /api/v1/me/totp", user(store.RoleViewer, s.handleTOTPStart))
	api("POST /api/v1/me/totp/confirm", user(store.RoleViewer, s.handleTOTPConfirm))
	api("POST /api/v1/me/totp/disable", user(store.RoleViewer, s.handleTOTPDisable))

	// Users (admin).
	api("GET /api/v1/users", user(store.RoleAdmin, s.handleListUsers))
	api("POST /api/v1/users", user(store.RoleAdmin, s.handleCreateUser))
	api("GET /api/v1/users/{name}", user(store.RoleAdmin, s.handleGetUser))
	api("PATCH /api/v1/users/{name}", user(store.RoleAdmin, s.handleUpdateUser))
	api("DELETE /api/v1/users/{name}", user(store.RoleAdmin, s.handleDeleteUser))
	api("POST /api/v1/users/{name}/password", user(store.RoleAdmin, s.handleResetPassword))
	api("DELETE /api/v1/users/{name}/totp", user(store.RoleAdmin, s.handleAdminTOTPRemove))
	api("GET /api/v1/users/{name}/sessions", user(store.RoleAdmin, s.handleUserSessions))
	api("DELETE /api/v1/users/{name}/sessions", user(store.RoleAdmin, s.handleRevokeUserSessions))
	api("DELETE /api/v1/users/{name}/sessions/{id}", user(store.RoleAdmin, s.handleRevokeUserSession))

	// Locks and audit (admin).
	api("GET /api/v1/locks", user(store.RoleAdmin, s.handleLocks))
	api("POST /api/v1/locks/unlock", user(store.RoleAdmin, s.handleUnlock))
	api("GET /api/v1/audit", user(store.RoleAdmin, s.handleAudit))
	api("GET /api/v1/audit/verify", user(store.RoleAdmin, s.handleAuditVerify))

	// Policy (admin).
	api("GET /api/v1/policy", user(store.RoleAdmin, s.handleGetPolicy))
	api("POST /api/v1/policy/validate", user(store.RoleAdmin, s.handleValidatePolicy))
	api("POST /api/v1/policy/prove", user(store.RoleAdmin, s.handleProvePolicy))
	api("PUT /api/v1/policy", user(store.RoleAdmin, s.handlePutPolicy))
	api("GET /api/v1/settings", user(store.RoleAdmin, s.handleGetSettings))
	api("PATCH /api/v1/settings", user(store.RoleAdmin, s.handlePatchSettings))

	// Cameras (viewer) and recordings (operator).
	api("GET /api/v1/cameras", user(store.RoleViewer, s.handleCameras))
	api("GET /api/v1/cameras/{id}/snapshot", user(store.RoleViewer, s.handleSnapshot))
	api("GET /api/v1/cameras/{id}/live", user(store.RoleViewer, s.handleLive))
	api("GET /api/v1/recordings", user(store.RoleOperator, s.handleRecordings))
	api("GET /api/v1/recordings/{id}", user(store.RoleOperator, s.handleRecording))
	api("GET /api/v1/recordings/{id}/download", user(store.RoleOperator, s.handleDownload))
	api("GET /api/v1/recordings/{id}/play", user(store.RoleOperator, s.handlePlay))

	// System.
	api("GET /api/v1/system", user(store.RoleViewer, s.handleSystem))
	api("POST /api/v1/system/factory-reset", user(store.RoleAdmin, s.handleFactoryReset))

	s.pageRoutes(m)
}
