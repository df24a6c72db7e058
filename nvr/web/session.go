package web

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"net/http"

	"github.com/latchnvr/latch/nvr/auth"
	"github.com/latchnvr/latch/nvr/store"
)

// Cookie names. Over TLS (or with SecureCookies) the __Host- prefix makes
// the browser refuse the cookie unless it is Secure, host-only and Path=/.
const (
	cookieName       = "latch_session"
	secureCookieName = "__Host-latch_session"
	// CSRFHeader carries the CSRF token on every state-changing request
	// that a session cookie authenticates.
	CSRFHeader = "X-CSRF-Token"
	// csrfField is the hidden form field that holds the token in pages.
	csrfField = "csrf_token"
)

// caller is the authenticated client of a request.
type caller struct {
	user  store.User
	sess  store.Session
	token string
	csrf  string
}

// actor names the caller in the audit log.
func (c *caller) actor() auth.Actor { return auth.Actor(string(c.user.Role) + ":" + c.user.Name) }

type sessionHandler func(w http.ResponseWriter, r *http.Request, c *caller)

func roleRank(r store.Role) int {
	switch r {
	case store.RoleAdmin:
		return 3
	case store.RoleOperator:
		return 2
	case store.RoleViewer:
		return 1
	}
	return 0
}

func (s *Server) secure(r *http.Request) bool { return r.TLS != nil || s.cfg.SecureCookies }

// sessionToken returns the session cookie's value, or "".
func sessionToken(r *http.Request) string {
	for _, name := range []string{secureCookieName, cookieName} {
		if c, err := r.Cookie(name); err == nil && c.Value != "" {
			return c.Value
		}
	}
	return ""
}

func (s *Server) setSessionCookie(w http.ResponseWriter, r *http.Request, token string) {
	name := cookieName
	if s.secure(r) {
		name = secureCookieName
	}
	http.SetCookie(w, &http.Cookie{Name: name, Value: token, Path: "/", HttpOnly: true,
		SameSite: http.SameSiteStrictMode, Secure: s.secure(r)})
}

func (s *Server) clearSessionCookie(w http.ResponseWriter, r *http.Request) {
	for _, name := range []string{cookieName, secureCookieName} {
		if name == secureCookieName && !s.secure(r) {
			continue
		}
		http.SetCookie(w, &http.Cookie{Name: name, Value: "", Path: "/", MaxAge: -1, HttpOnly: true,
			SameSite: http.SameSiteStrictMode, Secure: s.secure(r)})
	}
}

// csrfToken is the session's CSRF token: an HMAC of the session token under
// a key derived from the device secret. It cannot be computed without the
// session token, which the browser keeps in an HttpOnly cookie, so a page on
// another origin can neither read nor forge it.
func (s *Server) csrfToken(sessionToken string) string {
	m := hmac.New(sha256.New, *s.csrfKey.Load())
	m.Write([]byte(sessionToken))
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

var errNoCookie = errors.New("no session cookie")

// caller authenticates a request by its session cookie.
func (s *Server) caller(r *http.Request) (*caller, error) {
	token := sessionToken(r)
	if token == "" {
		return nil, errNoCookie
	}
	u, sess, err := s.auth.Session(r.Context(), token)
	if err != nil {
		return nil, err
	}
	return &caller{user: u, sess: sess, token: token, csrf: s.csrfToken(token)}, nil
}

func safeMethod(m string) bool {
	return m == http.MethodGet || m == http.MethodHead || m == http.MethodOptions
}

// checkCSRF refuses a state-changing request that is cross-origin (Fetch
// metadata and Origin, via http.CrossOriginProtection) or that lacks the
// session's CSRF token in the X-CSRF-Token header.
func (s *Server) checkCSRF(w http.ResponseWriter, r *http.Request, c *caller) bool {
	if safeMethod(r.Method) {
		return true
	}
	if err := s.cop.Check(r); err != nil {
		writeError(w, http.StatusForbidden, "cross_origin", "cross-origin request refused")
		return false
	}
	got := r.Header.Get(CSRFHeader)
	if got == "" {
		writeError(w, http.StatusForbidden, "csrf_token_missing", "send the session's CSRF token in the "+CSRFHeader+" header (GET /api/v1/me returns it)")
		return false
	}
	if !hmac.Equal([]byte(got), []byte(c.csrf)) {
		writeError(w, http.StatusForbidden, "csrf_token_invalid", "the "+CSRFHeader+" header does not match this session's CSRF token")
		return false
	}
	return true
}

// withSession requires a valid session of at least role min, and the CSRF
// token on state-changing methods. A session whose password must be changed
// reaches only the routes marked pending.
func (s *Server) withSession(min store.Role, pending bool, h sessionHandler) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		c, err := s.caller(r)
		if err != nil {
			if errors.Is(err, errNoCookie) || errors.Is(err, auth.ErrNoSession) {
				writeError(w, http.StatusUnauthorized, "unauthenticated", "sign in first: POST /api/v1/login")
				return
			}
			s.fail(w, r, err)
			return
		}
		if !s.checkCSRF(w, r, c) {
			return
		}
		if c.user.MustChangePassword && !pending {
			writeError(w, http.StatusForbidden, "password_change_required", "change your password first: POST /api/v1/me/password")
			return
		}
		if roleRank(c.user.Role) < roleRank(min) {
			writeError(w, http.StatusForbidden, "forbidden", "this needs the "+string(min)+" role or higher")
			return
		}
		h(w, r, c)
	}
}
