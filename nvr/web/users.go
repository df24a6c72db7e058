package web

import (
	"bytes"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"image/png"
	"net/http"
	"strings"
	"time"

	"github.com/latchnvr/latch/nvr/auth"
	"github.com/latchnvr/latch/nvr/store"
)

type userOut struct {
	Name               string     `json:"name"`
	DisplayName        string     `json:"display_name"`
	Email              string     `json:"email"`
	Role               string     `json:"role"`
	Disabled           bool       `json:"disabled"`
	MustChangePassword bool       `json:"must_change_password"`
	TOTPEnabled        bool       `json:"totp_enabled"`
	ExpiresAt          *time.Time `json:"expires_at"`
	CreatedAt          *time.Time `json:"created_at"`
	UpdatedAt          *time.Time `json:"updated_at"`
	// Locked: some key of this user refuses now (see GET /api/v1/locks).
	Locked bool `json:"locked"`
}

func userJSON(u store.User, locked bool) userOut {
	return userOut{Name: u.Name, DisplayName: u.DisplayName, Email: u.Email, Role: string(u.Role), Disabled: u.Disabled,
		MustChangePassword: u.MustChangePassword, TOTPEnabled: len(u.TOTPSecret) > 0, ExpiresAt: timeJSON(u.ExpiresNS),
		CreatedAt: timeJSON(u.CreatedNS), UpdatedAt: timeJSON(u.UpdatedNS), Locked: locked}
}

// lockedUsers names the principals with a refusing key.
func (s *Server) lockedUsers(r *http.Request) (map[string]bool, error) {
	locks, err := s.auth.ListLocks(r.Context())
	if err != nil {
		return nil, err
	}
	m := map[string]bool{}
	for _, l := range locks {
		if l.Principal != "" {
			m[l.Principal] = true
		}
	}
	return m, nil
}

func (s *Server) handleListUsers(w http.ResponseWriter, r *http.Request, c *caller) {
	users, err := s.db.ListUsers(r.Context())
	if err != nil {
		s.fail(w, r, err)
		return
	}
	locked, err := s.lockedUsers(r)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	out := make([]userOut, 0, len(users))
	for _, u := range users {
		out = append(out, userJSON(u, locked[u.Name]))
	}
	writeJSON(w, http.StatusOK, map[string]any{"users": out})
}

type createUserRequest struct {
	Name      string `json:"name"`
	Password  string `json:"password"`
	Role      string `json:"role"`
	Email     string `json:"email,omitempty"`
	ExpiresAt string `json:"expires_at,omitempty"`
}

// parseExpiry reads an optional RFC 3339 expiry ("" means never).
func parseExpiry(v string) (int64, error) {
	if v == "" {
		return 0, nil
	}
	t, err := parseTime(v)
	if err != nil {
		return 0, fmt.Errorf("%w: expires_at: %v", auth.ErrInvalidInput, err)
	}
	if t.UnixNano() <= 0 {
		return 0, fmt.Errorf("%w: expires_at must be after 1970", auth.ErrInvalidInput)
	}
	return t.UnixNano(), nil
}

func (s *Server) handleCreateUser(w http.ResponseWriter, r *http.Request, c *caller) {
	var req createUserRequest
	if !decodeJSON(w, r, &req) {
		return
	}
	if err := checkText("email", req.Email, 254); err != nil {
		s.fail(w, r, err)
		return
	}
	exp, err := parseExpiry(req.ExpiresAt)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	u, err := s.auth.CreateUser(r.Context(), c.actor(), auth.NewUser{Name: req.Name, Password: req.Password,
		Email: req.Email, Role: store.Role(req.Role), ExpiresNS: exp})
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusCreated, userJSON(u, false))
}

func (s *Server) handleGetUser(w http.ResponseWriter, r *http.Request, c *caller) {
	u, err := s.userByName(r, r.PathValue("name"))
	if err != nil {
		s.fail(w, r, err)
		return
	}
	locked, err := s.lockedUsers(r)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, userJSON(u, locked[u.Name]))
}

type updateUserRequest struct {
	Role        *string `json:"role,omitempty"`
	Disabled    *bool   `json:"disabled,omitempty"`
	Email       *string `json:"email,omitempty"`
	DisplayName *string `json:"display_name,omitempty"`
	// ExpiresAt: RFC 3339, or "" for never.
	ExpiresAt *string `json:"expires_at,omitempty"`
}

func (s *Server) handleUpdateUser(w http.ResponseWriter, r *http.Request, c *caller) {
	var req updateUserRequest
	if !decodeJSON(w, r, &req) {
		return
	}
	if req.Role == nil && req.Disabled == nil && req.Email == nil && req.DisplayName == nil && req.ExpiresAt == nil {
		badRequest(w, "invalid_input", "nothing to change: send role, disabled, email, display_name or expires_at")
		return
	}
	var exp int64
	if req.ExpiresAt != nil {
		var err error
		if exp, err = parseExpiry(*req.ExpiresAt); err != nil {
			s.fail(w, r, err)
			return
		}
	}
	if req.Email != nil {
		if err := checkText("email", *req.Email, 254); err != nil {
			s.fail(w, r, err)
			return
		}
		if *req.Email != "" && !strings.Contains(*req.Email, "@") {
			badRequest(w, "invalid_input", "email address")
			return
		}
	}
	if req.DisplayName != nil {
		if err := checkText("display_name", *req.DisplayName, 128); err != nil {
			s.fail(w, r, err)
			return
		}
	}
	if _, err := checkUser("user", r.PathValue("name")); err != nil {
		s.fail(w, r, err)
		return
	}
	u, err := s.auth.UpdateUser(r.Context(), c.actor(), r.PathValue("name"), func(u *store.User) error {
		if req.Role != nil {
			u.Role = store.Role(*req.Role)
		}
		if req.Disabled != nil {
			u.Disabled = *req.Disabled
		}
		if req.Email != nil {
			u.Email = *req.Email
		}
		if req.DisplayName != nil {
			u.DisplayName = *req.DisplayName
		}
		if req.ExpiresAt != nil {
			u.ExpiresNS = exp
		}
		return nil
	})
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, userJSON(u, false))
}

func (s *Server) handleDeleteUser(w http.ResponseWriter, r *http.Request, c *caller) {
	if _, err := checkUser("user", r.PathValue("name")); err != nil {
		s.fail(w, r, err)
		return
	}
	if err := s.auth.DeleteUser(r.Context(), c.actor(), r.PathValue("name")); err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]bool{"deleted": true})
}

type resetPasswordRequest struct {
	Password string `json:"password"`
}

// handleResetPassword is an admin reset (R-RESET): it opens the user's
// keys, revokes their sessions and forces a change at next login.
func (s *Server) handleResetPassword(w http.ResponseWriter, r *http.Request, c *caller) {
	var req resetPasswordRequest
	if !decodeJSON(w, r, &req) {
		return
	}
	if _, err := checkUser("user", r.PathValue("name")); err != nil {
		s.fail(w, r, err)
		return
	}
	if err := s.auth.SetPassword(r.Context(), c.actor(), r.PathValue("name"), req.Password, true); err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]bool{"ok": true, "must_change_password": true})
}

// Sessions.

type sessionOut struct {
	ID               string     `json:"id"`
	CreatedAt        *time.Time `json:"created_at"`
	LastUsedAt       *time.Time `json:"last_used_at"`
	IdleExpiresAt    *time.Time `json:"idle_expires_at"`
	AbsoluteExpireAt *time.Time `json:"absolute_expires_at"`
	RevokedAt        *time.Time `json:"revoked_at,omitempty"`
	RevokeReason     string     `json:"revoke_reason,omitempty"`
	Active           bool       `json:"active"`
	Current          bool       `json:"current"`
	Peer             string     `json:"peer"`
	UserAgent        string     `json:"user_agent"`
	// Source is the client's address as the lock model sees it (SPEC §1,
	// behind trusted proxies too); with the user agent, the endpoint the
	// concurrent-session policy compares.
	Source string `json:"source"`
}

// sessionID is a session's public id: its stored hash, base64url. The
// token itself is never shown.
func sessionID(sess store.Session) string { return base64.RawURLEncoding.EncodeToString(sess.IDHash) }

func (s *Server) sessionJSON(sess store.Session, c *caller) sessionOut {
	wall := s.clk.Now().UnixNano()
	return sessionOut{ID: sessionID(sess), CreatedAt: timeJSON(sess.CreatedNS), LastUsedAt: timeJSON(sess.LastUsedNS),
		IdleExpiresAt: timeJSON(sess.IdleExpiresNS), AbsoluteExpireAt: timeJSON(sess.AbsoluteExpiresNS),
		RevokedAt: timeJSON(sess.RevokedNS), RevokeReason: sess.RevokeReason,
		Active:  sess.RevokedNS == 0 && wall < sess.IdleExpiresNS && wall < sess.AbsoluteExpiresNS,
		Current: c != nil && bytes.Equal(sess.IDHash, store.SessionIDHash(c.token)),
		Peer:    sess.Peer, UserAgent: sess.UserAgent, Source: sess.Source}
}

func (s *Server) listSessions(w http.ResponseWriter, r *http.Request, c *caller, u store.User) {
	list, err := s.db.ListUserSessions(r.Context(), u.ID)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	out := make([]sessionOut, 0, len(list))
	for _, sess := range list {
		out = append(out, s.sessionJSON(sess, c))
	}
	writeJSON(w, http.StatusOK, map[string]any{"user": u.Name, "sessions": out})
}

func (s *Server) handleOwnSessions(w http.ResponseWriter, r *http.Request, c *caller) {
	s.listSessions(w, r, c, c.user)
}

func (s *Server) handleUserSessions(w http.ResponseWriter, r *http.Request, c *caller) {
	u, err := s.userByName(r, r.PathValue("name"))
	if err != nil {
		s.fail(w, r, err)
		return
	}
	s.listSessions(w, r, c, u)
}

// revokeSession revokes one session of u named by its public id.
func (s *Server) revokeSession(w http.ResponseWriter, r *http.Request, u store.User, id string, actor auth.Actor) {
	idHash, err := base64.RawURLEncoding.DecodeString(id)
	if err != nil || len(idHash) != 32 {
		badRequest(w, "invalid_input", "session id: 43 characters of base64url")
		return
	}
	if _, err := s.auth.RevokeSessions(r.Context(), actor, u, idHash); errors.Is(err, auth.ErrNoSession) {
		writeError(w, http.StatusNotFound, "no_such_session", "no session with that id for this user")
		return
	} else if err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]bool{"revoked": true})
}

func (s *Server) handleRevokeOwnSession(w http.ResponseWriter, r *http.Request, c *caller) {
	s.revokeSession(w, r, c.user, r.PathValue("id"), auth.Actor("self:"+c.user.Name))
}

func (s *Server) handleRevokeUserSession(w http.ResponseWriter, r *http.Request, c *caller) {
	u, err := s.userByName(r, r.PathValue("name"))
	if err != nil {
		s.fail(w, r, err)
		return
	}
	s.revokeSession(w, r, u, r.PathValue("id"), c.actor())
}

func (s *Server) handleRevokeUserSessions(w http.ResponseWriter, r *http.Request, c *caller) {
	u, err := s.userByName(r, r.PathValue("name"))
	if err != nil {
		s.fail(w, r, err)
		return
	}
	n, err := s.auth.RevokeSessions(r.Context(), c.actor(), u, nil)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]int64{"revoked": n})
}

// Second factor (TOTP) enrolment: start makes a secret and keeps it pending
// in memory for totpPendingFor; confirm stores it once the user proves
// their app computes the same codes.

const totpPendingFor = 10 * time.Minute

type pendingTOTP struct {
	secret  string
	expires int64 // clock instant
}

type totpStart struct {
	Secret     string `json:"secret"`
	OTPAuthURL string `json:"otpauth_url"`
	QRPNG      string `json:"qr_png"` // a data: URL
	ExpiresIn  int64  `json:"expires_in_seconds"`
}

func (s *Server) handleTOTPStart(w http.ResponseWriter, r *http.Request, c *caller) {
	if len(c.user.TOTPSecret) > 0 {
		writeError(w, http.StatusConflict, "totp_enabled", "two-factor authentication is already on: disable it first to enrol a new app")
		return
	}
	key, err := auth.NewTOTPKey("Latch NVR", c.user.Name)
	if err != nil {
		s.serverError(w, r, err)
		return
	}
	var qr string
	if img, err := key.Image(240, 240); err == nil {
		var b bytes.Buffer
		if png.Encode(&b, img) == nil {
			qr = "data:image/png;base64," + base64.StdEncoding.EncodeToString(b.Bytes())
		}
	}
	s.totpMu.Lock()
	s.totpPending[c.user.ID] = pendingTOTP{secret: key.Secret(), expires: s.clk.Instant() + int64(totpPendingFor)}
	s.totpMu.Unlock()
	writeJSON(w, http.StatusOK, totpStart{Secret: key.Secret(), OTPAuthURL: key.URL(), QRPNG: qr, ExpiresIn: int64(totpPendingFor / time.Second)})
}

type totpConfirm struct {
	Code string `json:"code"`
}

func (s *Server) handleTOTPConfirm(w http.ResponseWriter, r *http.Request, c *caller) {
	var req totpConfirm
	if !decodeJSON(w, r, &req) {
		return
	}
	s.totpMu.Lock()
	p, ok := s.totpPending[c.user.ID]
	s.totpMu.Unlock()
	if !ok || s.clk.Instant() >= p.expires {
		writeError(w, http.StatusConflict, "no_pending_enrolment", "start enrolment first: POST /api/v1/me/totp")
		return
	}
	if !s.totpMatches(p.secret, req.Code) {
		badRequest(w, "invalid_code", "that code does not match: check the app and the device clock")
		return
	}
	codes, err := s.auth.EnableTOTP(r.Context(), auth.Actor("self:"+c.user.Name), c.user.Name, p.secret)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	s.totpMu.Lock()
	delete(s.totpPending, c.user.ID)
	s.totpMu.Unlock()
	// The recovery codes are shown this once; only their hashes are kept.
	writeJSON(w, http.StatusOK, map[string]any{"totp_enabled": true, "recovery_codes": codes})
}

// totpMatches accepts the current code or one step either side.
func (s *Server) totpMatches(secret, code string) bool {
	if len(code) != 6 {
		return false
	}
	now := s.clk.Now()
	ok := 0
	for _, skew := range []time.Duration{-30 * time.Second, 0, 30 * time.Second} {
		want, err := auth.TOTPCode(secret, now.Add(skew))
		if err == nil {
			ok |= subtle.ConstantTimeCompare([]byte(want), []byte(code))
		}
	}
	return ok == 1
}

type totpDisable struct {
	Password string `json:"password"`
}

func (s *Server) handleTOTPDisable(w http.ResponseWriter, r *http.Request, c *caller) {
	var req totpDisable
	if !decodeJSON(w, r, &req) {
		return
	}
	if req.Password == "" {
		badRequest(w, "invalid_input", "password is required")
		return
	}
	if len(c.user.TOTPSecret) == 0 {
		writeError(w, http.StatusConflict, "totp_disabled", "two-factor authentication is not on")
		return
	}
	if !s.verifyOwnPassword(w, r, c, req.Password) {
		return
	}
	s.removeTOTP(w, r, auth.Actor("self:"+c.user.Name), c.user.Name)
}

func (s *Server) handleAdminTOTPRemove(w http.ResponseWriter, r *http.Request, c *caller) {
	if _, err := checkUser("user", r.PathValue("name")); err != nil {
		s.fail(w, r, err)
		return
	}
	s.removeTOTP(w, r, c.actor(), r.PathValue("name"))
}

func (s *Server) removeTOTP(w http.ResponseWriter, r *http.Request, actor auth.Actor, name string) {
	if _, err := s.auth.UpdateUser(r.Context(), actor, name, func(u *store.User) error {
		u.TOTPSecret = nil
		return nil
	}); err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]bool{"totp_enabled": false})
}
