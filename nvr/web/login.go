package web

import (
	"errors"
	"fmt"
	"net/http"
	"net/netip"
	"strconv"

	"github.com/latchnvr/latch/model"
	"github.com/latchnvr/latch/nvr/auth"
	"github.com/latchnvr/latch/nvr/store"
)

// clientSource is the request's client (SPEC §1): the socket peer, or
// behind a trusted proxy the right-most untrusted X-Forwarded-For hop.
func (s *Server) clientSource(r *http.Request) (model.Source, error) {
	var peer netip.Addr
	if ap, err := netip.ParseAddrPort(r.RemoteAddr); err == nil {
		peer = ap.Addr()
	} else if a, err := netip.ParseAddr(r.RemoteAddr); err == nil {
		peer = a
	}
	return model.ClientSource(peer, r.Header.Values("X-Forwarded-For"), s.cfg.TrustedProxies)
}

// crossOrigin refuses a cross-origin POST to an endpoint that has no
// session yet (login, activate): Fetch metadata and Origin must agree.
func (s *Server) crossOrigin(w http.ResponseWriter, r *http.Request) bool {
	if err := s.cop.Check(r); err != nil {
		writeError(w, http.StatusForbidden, "cross_origin", "cross-origin request refused")
		return true
	}
	return false
}

func (s *Server) handleStatus(w http.ResponseWriter, r *http.Request) {
	ok, err := s.auth.Activated(r.Context())
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]bool{"activated": ok})
}

type activateRequest struct {
	Username string `json:"username"`
	Password string `json:"password"`
	PIN      string `json:"pin"`
}

func (s *Server) handleActivate(w http.ResponseWriter, r *http.Request) {
	if s.crossOrigin(w, r) {
		return
	}
	var req activateRequest
	if !decodeJSON(w, r, &req) {
		return
	}
	u, err := s.auth.Activate(r.Context(), req.Username, req.Password, req.PIN)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	if err := s.refreshCSRFKey(r.Context()); err != nil {
		s.serverError(w, r, err)
		return
	}
	writeJSON(w, http.StatusCreated, map[string]string{"user": u.Name, "role": string(u.Role)})
}

type loginRequest struct {
	Username string `json:"username"`
	Password string `json:"password"`
	TOTP     string `json:"totp,omitempty"`
}

type loginResponse struct {
	User               string `json:"user"`
	DisplayName        string `json:"display_name"`
	Role               string `json:"role"`
	MustChangePassword bool   `json:"must_change_password"`
	CSRFToken          string `json:"csrf_token"`
}

// failedResponse is the 401 of a verified wrong secret; unknown users get
// exactly this shape (R-ENUM).
type failedResponse struct {
	Error             string `json:"error"`
	Message           string `json:"message"`
	RemainingAttempts int    `json:"remaining_attempts"`
}

// lockedResponse is the 429 of an attempt refused before verification.
type lockedResponse struct {
	Error   string `json:"error"`
	Scope   string `json:"scope"`
	Message string `json:"message"`
	// RetryAfterSeconds is omitted when the client may not learn it
	// (principal scope, R-DISCLOSE) or there is no timed end.
	RetryAfterSeconds *int64 `json:"retry_after_seconds,omitempty"`
}

func (s *Server) metric(outcome, scope string) {
	if s.cfg.Metrics != nil {
		s.cfg.Metrics.Attempt(outcome, scope)
	}
}

func (s *Server) handleLogin(w http.ResponseWriter, r *http.Request) {
	if s.crossOrigin(w, r) {
		return
	}
	var req loginRequest
	if !decodeJSON(w, r, &req) {
		return
	}
	if req.Password == "" {
		s.metric("invalid", "")
		badRequest(w, "invalid_input", "password is required")
		return
	}
	if len(req.TOTP) > 16 {
		s.metric("invalid", "")
		badRequest(w, "invalid_input", "totp: a code has 6 digits")
		return
	}
	src, err := s.clientSource(r)
	if err != nil {
		s.metric("invalid", "")
		badRequest(w, "bad_source", err.Error())
		return
	}
	res, err := s.auth.Login(r.Context(), auth.Attempt{Username: req.Username, Secret: req.Password, TOTP: req.TOTP,
		Source: src, Channel: model.Remote, Peer: r.RemoteAddr, UserAgent: r.UserAgent()})
	if err != nil {
		if errors.Is(err, auth.ErrInvalidInput) {
			s.metric("invalid", "")
		}
		s.fail(w, r, err)
		return
	}
	if s.cfg.ExposeClock {
		// Soak tests compare each answer with the model at the instant the
		// service decided at (and re-anchor their model across restarts).
		w.Header().Set("X-Latch-Instant", strconv.FormatInt(int64(res.DecidedAt), 10))
		w.Header().Set("X-Latch-Wall", strconv.FormatInt(s.auth.Clock().Now().UnixNano(), 10))
	}
	if !s.answerAttempt(w, res) {
		return
	}
	s.setSessionCookie(w, r, res.Token)
	writeJSON(w, http.StatusOK, loginResponse{User: res.User.Name, DisplayName: res.User.DisplayName, Role: string(res.User.Role),
		MustChangePassword: res.MustChangePassword, CSRFToken: s.csrfToken(res.Token)})
}

// answerAttempt writes the response of an attempt that did not succeed and
// returns false; for a success it writes nothing and returns true.
func (s *Server) answerAttempt(w http.ResponseWriter, res auth.Result) bool {
	d := res.Decision
	switch {
	case res.TOTPRequired:
		s.metric("totp_required", "")
		writeError(w, http.StatusUnauthorized, "totp_required", "enter the 6-digit code from your authenticator app")
		return false
	case d.Verdict == model.Allowed:
		s.metric("success", "")
		return true
	case d.Verdict == model.Refused:
		s.metric("refused", d.Scope.String())
		s.writeRefusal(w, d)
		return false
	}
	// A wrong second factor after a right password fails the same way: the
	// answer never says which of the secrets was wrong.
	s.metric("wrong_secret", "")
	writeJSON(w, http.StatusUnauthorized, failedResponse{Error: "invalid_credentials",
		Message: "wrong user name, password or code", RemainingAttempts: d.Remaining})
	return false
}

// writeRefusal is the 429 of R-ADMIT, disclosing what R-DISCLOSE allows:
// the client's own pair or source lock with its remaining time; for a
// principal lock only that the account is locked for unrecognised devices.
func (s *Server) writeRefusal(w http.ResponseWriter, d model.Decision) {
	body := lockedResponse{Error: "locked", Scope: d.Scope.String()}
	withTime := func() {
		if n := setRetryAfter(w, d.RetryAfter); n > 0 {
			body.RetryAfterSeconds = &n
		}
	}
	switch d.Scope {
	case model.ScopePair:
		withTime()
		body.Message = "Too many failed sign-ins to this account from this device. Wait until the countdown ends, or ask an administrator to unlock it."
	case model.ScopeSource:
		withTime()
		body.Message = "Too many failed sign-ins from this network address. Wait until the countdown ends, or ask an administrator to unlock it."
	case model.ScopePrincipal:
		// R-DISCLOSE: no remaining time, no detail.
		body.Message = "This account is locked for unrecognised devices. Sign in from a device you have used before, at the device's console, or use account recovery."
	case model.ScopeHeld:
		withTime()
		if body.RetryAfterSeconds == nil {
			body.Message = "Sign-in is blocked after repeated lockouts until an administrator unlocks it or the password is reset."
		} else {
			body.Message = "Sign-in is blocked after repeated lockouts. Wait until the countdown ends, or ask an administrator."
		}
	case model.ScopeDisabled:
		body.Message = "This account is disabled or has expired. Ask an administrator."
	default:
		body.Scope = "held"
		body.Message = "Sign-in is refused. Ask an administrator."
	}
	writeJSON(w, http.StatusTooManyRequests, body)
}

func (s *Server) handleLogout(w http.ResponseWriter, r *http.Request, c *caller) {
	if err := s.auth.Logout(r.Context(), c.token); err != nil && !errors.Is(err, auth.ErrNoSession) {
		s.fail(w, r, err)
		return
	}
	s.clearSessionCookie(w, r)
	writeJSON(w, http.StatusOK, map[string]bool{"ok": true})
}

type meResponse struct {
	User               string     `json:"user"`
	DisplayName        string     `json:"display_name"`
	Email              string     `json:"email"`
	Role               string     `json:"role"`
	MustChangePassword bool       `json:"must_change_password"`
	TOTPEnabled        bool       `json:"totp_enabled"`
	CSRFToken          string     `json:"csrf_token"`
	Session            sessionOut `json:"session"`
}

func (s *Server) handleMe(w http.ResponseWriter, r *http.Request, c *caller) {
	writeJSON(w, http.StatusOK, meResponse{User: c.user.Name, DisplayName: c.user.DisplayName, Email: c.user.Email,
		Role: string(c.user.Role), MustChangePassword: c.user.MustChangePassword, TOTPEnabled: len(c.user.TOTPSecret) > 0,
		CSRFToken: c.csrf, Session: s.sessionJSON(c.sess, c)})
}

type passwordChange struct {
	CurrentPassword string `json:"current_password"`
	NewPassword     string `json:"new_password"`
}

func (s *Server) handleOwnPassword(w http.ResponseWriter, r *http.Request, c *caller) {
	var req passwordChange
	if !decodeJSON(w, r, &req) {
		return
	}
	if req.CurrentPassword == "" {
		badRequest(w, "invalid_input", "current_password is required")
		return
	}
	if err := auth.CheckPassword(req.NewPassword, c.user.Name); err != nil {
		s.fail(w, r, err)
		return
	}
	if req.NewPassword == req.CurrentPassword {
		badRequest(w, "invalid_input", "the new password must differ from the current one")
		return
	}
	if !s.verifyOwnPassword(w, r, c, req.CurrentPassword) {
		return
	}
	if err := s.auth.SetPassword(r.Context(), auth.Actor("self:"+c.user.Name), c.user.Name, req.NewPassword, false); err != nil {
		s.fail(w, r, err)
		return
	}
	relogin := false
	if _, _, err := s.auth.Session(r.Context(), c.token); err != nil {
		relogin = true
		s.clearSessionCookie(w, r)
	}
	writeJSON(w, http.StatusOK, map[string]bool{"ok": true, "relogin_required": relogin})
}

// verifyOwnPassword checks a signed-in user's password as a login attempt
// through the lock model (so a stolen session cannot guess it without
// being counted), writing the refusal or failure response when it fails.
func (s *Server) verifyOwnPassword(w http.ResponseWriter, r *http.Request, c *caller, password string) bool {
	src, err := s.clientSource(r)
	if err != nil {
		badRequest(w, "bad_source", err.Error())
		return false
	}
	res, err := s.auth.Login(r.Context(), auth.Attempt{Username: c.user.Name, Secret: password, Source: src,
		Channel: model.Remote, NoSession: true, Peer: r.RemoteAddr, UserAgent: r.UserAgent()})
	if err != nil {
		s.fail(w, r, err)
		return false
	}
	if res.TOTPRequired {
		// The password was right; this session already passed the second factor.
		return true
	}
	if !s.answerAttempt(w, res) {
		return false
	}
	return true
}

// userByName resolves a path's user name to a user.
func (s *Server) userByName(r *http.Request, name string) (store.User, error) {
	pr, err := checkUser("user", name)
	if err != nil {
		return store.User{}, err
	}
	u, err := s.db.GetUserByName(r.Context(), string(pr))
	if errors.Is(err, store.ErrNotFound) {
		return u, fmt.Errorf("%w: %s", auth.ErrNoUser, pr)
	}
	return u, err
}
