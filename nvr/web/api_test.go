package web

import (
	"bytes"
	"context"
	"encoding/csv"
	"fmt"
	"io"
	"mime"
	"mime/multipart"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/latchnvr/latch/model"
	"github.com/latchnvr/latch/nvr/auth"
	"github.com/latchnvr/latch/nvr/store"
)

func TestActivationFlow(t *testing.T) {
	r := newRig(t)
	c := r.client("")

	resp, body := c.do("GET", "/api/v1/status", nil)
	if resp.StatusCode != 200 || !strings.Contains(string(body), `"activated":false`) {
		t.Fatalf("status: %d %s", resp.StatusCode, body)
	}
	// Before activation everything else is 409 not_activated (API) or a
	// redirect to /activate (pages); static assets still load.
	resp, body = c.do("GET", "/api/v1/users", nil)
	wantError(t, resp, body, http.StatusConflict, "not_activated")
	resp, body = c.do("POST", "/api/v1/login", map[string]string{"username": "admin", "password": adminPW})
	wantError(t, resp, body, http.StatusConflict, "not_activated")
	resp, _ = c.do("GET", "/", nil)
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/activate" {
		t.Fatalf("GET / before activation: %d %s", resp.StatusCode, resp.Header.Get("Location"))
	}
	resp, _ = c.do("GET", "/static/app.js", nil)
	if resp.StatusCode != 200 {
		t.Fatalf("static before activation: %d", resp.StatusCode)
	}
	resp, body = c.do("GET", "/activate", nil)
	if resp.StatusCode != 200 || !strings.Contains(string(body), `id="activate-form"`) {
		t.Fatalf("activate page: %d", resp.StatusCode)
	}

	// A weak password and a bad PIN are named.
	resp, body = c.do("POST", "/api/v1/activate", map[string]string{"username": "admin", "password": "password", "pin": pin})
	wantError(t, resp, body, http.StatusBadRequest, "invalid_input")
	if !strings.Contains(string(body), "password") {
		t.Fatalf("weak password message: %s", body)
	}
	resp, body = c.do("POST", "/api/v1/activate", map[string]string{"username": "admin", "password": adminPW, "pin": "12ab"})
	wantError(t, resp, body, http.StatusBadRequest, "invalid_input")

	resp, body = c.do("POST", "/api/v1/activate", map[string]string{"username": "Admin", "password": adminPW, "pin": pin})
	if resp.StatusCode != http.StatusCreated || !strings.Contains(string(body), `"user":"admin"`) {
		t.Fatalf("activate: %d %s", resp.StatusCode, body)
	}
	resp, body = c.do("POST", "/api/v1/activate", map[string]string{"username": "eve", "password": adminPW, "pin": pin})
	wantError(t, resp, body, http.StatusConflict, "already_activated")
	resp, _ = c.do("GET", "/activate", nil)
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/login" {
		t.Fatalf("activate page after activation: %d", resp.StatusCode)
	}
	c.login("ADMIN", adminPW)
}

func TestLoginSetsSessionCookie(t *testing.T) {
	r := newRig(t)
	r.activate()
	c := r.client("")
	resp, body := c.do("POST", "/api/v1/login", map[string]string{"username": adminName, "password": adminPW})
	if resp.StatusCode != 200 {
		t.Fatalf("login: %d %s", resp.StatusCode, body)
	}
	var lr loginResponse
	mustJSON(t, body, &lr)
	if lr.User != "admin" || lr.Role != "admin" || lr.MustChangePassword || lr.CSRFToken == "" {
		t.Fatalf("login body: %+v", lr)
	}
	ck := resp.Cookies()
	if len(ck) != 1 || ck[0].Name != cookieName || !ck[0].HttpOnly || ck[0].SameSite != http.SameSiteStrictMode || ck[0].Secure || ck[0].Path != "/" {
		t.Fatalf("cookie: %+v", ck)
	}
	c.csrf = lr.CSRFToken
	resp, body = c.do("GET", "/api/v1/me", nil)
	if resp.StatusCode != 200 || !strings.Contains(string(body), lr.CSRFToken) {
		t.Fatalf("me: %d %s", resp.StatusCode, body)
	}
	if r.metrics.get("success/") != 1 {
		t.Fatalf("metrics: %v", r.metrics.n)
	}

	// Logout revokes the session.
	resp, body = c.do("POST", "/api/v1/logout", nil)
	if resp.StatusCode != 200 {
		t.Fatalf("logout: %d %s", resp.StatusCode, body)
	}
	resp, body = c.do("GET", "/api/v1/me", nil)
	wantError(t, resp, body, http.StatusUnauthorized, "unauthenticated")
}

func TestSecureCookieBehindTLSProxy(t *testing.T) {
	r := newRig(t, func(c *Config) { c.SecureCookies = true })
	r.activate()
	resp, _ := r.client("").do("POST", "/api/v1/login", map[string]string{"username": adminName, "password": adminPW})
	ck := resp.Cookies()
	if len(ck) != 1 || ck[0].Name != secureCookieName || !ck[0].Secure || !ck[0].HttpOnly || ck[0].SameSite != http.SameSiteStrictMode {
		t.Fatalf("cookie: %+v", ck)
	}
}

// R-DISCLOSE: a wrong secret says how many tries this client has left; the
// client's own pair lock is a 429 with Retry-After and the scope.
func TestLoginRemainingThenPairLock(t *testing.T) {
	r := newRig(t, trustLoopback)
	r.activate()
	c := r.client("198.51.100.7")
	for want := 4; want >= 0; want-- {
		resp, m := c.try(adminName, fmt.Sprintf("wrong password %d", want)) // distinct: a repeat is not counted (R-REPLAY)
		if resp.StatusCode != 401 || m["error"] != "invalid_credentials" || m["remaining_attempts"] != float64(want) {
			t.Fatalf("attempt with %d left: %d %v", want, resp.StatusCode, m)
		}
	}
	resp, m := c.try(adminName, adminPW) // right password, refused before verification
	if resp.StatusCode != 429 || m["error"] != "locked" || m["scope"] != "pair" {
		t.Fatalf("locked: %d %v", resp.StatusCode, m)
	}
	if resp.Header.Get("Retry-After") != "60" || m["retry_after_seconds"] != float64(60) {
		t.Fatalf("Retry-After %q, body %v", resp.Header.Get("Retry-After"), m)
	}
	if r.metrics.get("refused/pair") != 1 || r.metrics.get("wrong_secret/") != 5 {
		t.Fatalf("metrics: %v", r.metrics.n)
	}
	// Another client is not affected (the pair is this client's).
	r.client("198.51.100.8").login(adminName, adminPW)
	// The lock ends with time (each refused attempt extended it to now+1m).
	r.clk.Advance(61 * time.Second)
	c.login(adminName, adminPW)
}

// R-ENUM: an unknown user gets the same status and body as a known one.
func TestUnknownUserSameShape(t *testing.T) {
	r := newRig(t, trustLoopback)
	r.activate()
	for i := 0; i < 6; i++ {
		guess := fmt.Sprintf("guess %d", i)
		known, kb := r.client("203.0.113.1").do("POST", "/api/v1/login", map[string]string{"username": adminName, "password": guess})
		unknown, ub := r.client("203.0.113.2").do("POST", "/api/v1/login", map[string]string{"username": "nobody", "password": guess})
		if known.StatusCode != unknown.StatusCode || !bytes.Equal(kb, ub) {
			t.Fatalf("attempt %d: known %d %s, unknown %d %s", i, known.StatusCode, kb, unknown.StatusCode, ub)
		}
		if known.Header.Get("Retry-After") != unknown.Header.Get("Retry-After") {
			t.Fatalf("Retry-After differs: %q vs %q", known.Header.Get("Retry-After"), unknown.Header.Get("Retry-After"))
		}
	}
}

// R-DISCLOSE: a principal-level lock tells an unfamiliar client only that
// the account is locked for unrecognised devices: no time, no detail; a
// familiar device still gets in (P-NODOS).
func TestPrincipalLockDisclosure(t *testing.T) {
	r := newRig(t, trustLoopback)
	r.activate()
	home := r.client("192.0.2.10")
	home.login(adminName, adminPW) // familiar from now on
	for i := 1; i <= 5; i++ {
		c := r.client("203.0.113." + string(rune('0'+i)))
		for j := 0; j < 2; j++ {
			if resp, m := c.try(adminName, fmt.Sprintf("guess %d", j)); resp.StatusCode != 401 {
				t.Fatalf("source %d guess %d: %d %v", i, j, resp.StatusCode, m)
			}
		}
	}
	resp, m := r.client("203.0.113.99").try(adminName, adminPW)
	if resp.StatusCode != 429 || m["error"] != "locked" || m["scope"] != "principal" {
		t.Fatalf("principal lock: %d %v", resp.StatusCode, m)
	}
	if resp.Header.Get("Retry-After") != "" {
		t.Fatalf("principal lock disclosed Retry-After %q", resp.Header.Get("Retry-After"))
	}
	if _, ok := m["retry_after_seconds"]; ok {
		t.Fatalf("principal lock disclosed retry_after_seconds: %v", m)
	}
	msg, _ := m["message"].(string)
	for _, want := range []string{"locked for unrecognised devices", "device you have used before", "console", "recovery"} {
		if !strings.Contains(msg, want) {
			t.Fatalf("message %q lacks %q", msg, want)
		}
	}
	r.client("192.0.2.10").login(adminName, adminPW)
}

func TestSourceLockScope(t *testing.T) {
	r := newRig(t, trustLoopback)
	r.activate()
	c := r.client("198.51.100.50")
	for u := 0; u < 4; u++ {
		for i := 0; i < 5; i++ {
			c.try("sprayed"+string(rune('a'+u)), fmt.Sprintf("Summer2026!%d", i))
		}
	}
	resp, m := c.try("another", "Summer2026!")
	if resp.StatusCode != 429 || m["scope"] != "source" || resp.Header.Get("Retry-After") != "300" {
		t.Fatalf("source lock: %d %v %q", resp.StatusCode, m, resp.Header.Get("Retry-After"))
	}
}

func TestDisabledAndTOTP(t *testing.T) {
	r := newRig(t)
	admin := r.adminClient("")
	admin.addUser("bob", bobPW, "operator")

	// Disabled: refused before verification, no time given.
	resp, body := admin.do("PATCH", "/api/v1/users/bob", map[string]bool{"disabled": true})
	if resp.StatusCode != 200 {
		t.Fatalf("disable: %d %s", resp.StatusCode, body)
	}
	resp, m := r.client("").try("bob", bobPW)
	if resp.StatusCode != 429 || m["scope"] != "disabled" || resp.Header.Get("Retry-After") != "" {
		t.Fatalf("disabled: %d %v", resp.StatusCode, m)
	}
	admin.do("PATCH", "/api/v1/users/bob", map[string]bool{"disabled": false})

	// TOTP enrolment, then login needs the code.
	bob := r.client("")
	bob.login("bob", bobPW)
	resp, body = bob.do("POST", "/api/v1/me/totp/confirm", map[string]string{"code": "123456"})
	wantError(t, resp, body, http.StatusConflict, "no_pending_enrolment")
	resp, body = bob.do("POST", "/api/v1/me/totp", nil)
	if resp.StatusCode != 200 {
		t.Fatalf("totp start: %d %s", resp.StatusCode, body)
	}
	var start totpStart
	mustJSON(t, body, &start)
	if !strings.HasPrefix(start.QRPNG, "data:image/png;base64,") || !strings.HasPrefix(start.OTPAuthURL, "otpauth://totp/") {
		t.Fatalf("totp start: %+v", start)
	}
	resp, body = bob.do("POST", "/api/v1/me/totp/confirm", map[string]string{"code": "000000"})
	wantError(t, resp, body, http.StatusBadRequest, "invalid_code")
	code, _ := auth.TOTPCode(start.Secret, r.clk.Now())
	resp, body = bob.do("POST", "/api/v1/me/totp/confirm", map[string]string{"code": code})
	if resp.StatusCode != 200 {
		t.Fatalf("totp confirm: %d %s", resp.StatusCode, body)
	}
	resp, m = r.client("").try("bob", bobPW)
	if resp.StatusCode != 401 || m["error"] != "totp_required" {
		t.Fatalf("totp required: %d %v", resp.StatusCode, m)
	}
	r.clk.Advance(30 * time.Second)
	code, _ = auth.TOTPCode(start.Secret, r.clk.Now())
	resp, body = r.client("").do("POST", "/api/v1/login", map[string]string{"username": "bob", "password": bobPW, "totp": code})
	if resp.StatusCode != 200 {
		t.Fatalf("login with code: %d %s", resp.StatusCode, body)
	}
	// A reused code fails like a wrong password.
	resp, m = r.client("").do2("bob", bobPW, code)
	if resp.StatusCode != 401 || m["error"] != "invalid_credentials" {
		t.Fatalf("reused code: %d %v", resp.StatusCode, m)
	}
	// The admin can remove it.
	resp, body = admin.do("DELETE", "/api/v1/users/bob/totp", nil)
	if resp.StatusCode != 200 {
		t.Fatalf("remove totp: %d %s", resp.StatusCode, body)
	}
	r.client("").login("bob", bobPW)
}

func (c *client) do2(user, pw, code string) (*http.Response, map[string]any) {
	resp, body := c.do("POST", "/api/v1/login", map[string]string{"username": user, "password": pw, "totp": code})
	m := map[string]any{}
	mustJSON(c.t, body, &m)
	return resp, m
}

func TestCSRF(t *testing.T) {
	r := newRig(t)
	admin := r.adminClient("")
	unlock := map[string]bool{"all": true}

	token := admin.csrf
	admin.csrf = ""
	resp, body := admin.do("POST", "/api/v1/locks/unlock", unlock)
	wantError(t, resp, body, http.StatusForbidden, "csrf_token_missing")

	admin.csrf = "forged"
	resp, body = admin.do("POST", "/api/v1/locks/unlock", unlock)
	wantError(t, resp, body, http.StatusForbidden, "csrf_token_invalid")

	// Another session's token does not fit this session.
	other := r.client("")
	other.login(adminName, adminPW)
	admin.csrf = other.csrf
	resp, body = admin.do("POST", "/api/v1/locks/unlock", unlock)
	wantError(t, resp, body, http.StatusForbidden, "csrf_token_invalid")

	admin.csrf = token
	req := admin.req("POST", "/api/v1/locks/unlock", unlock)
	req.Header.Set("Sec-Fetch-Site", "cross-site")
	resp, body = admin.send(req)
	wantError(t, resp, body, http.StatusForbidden, "cross_origin")
	req = admin.req("POST", "/api/v1/locks/unlock", unlock)
	req.Header.Set("Origin", "http://evil.example")
	resp, body = admin.send(req)
	wantError(t, resp, body, http.StatusForbidden, "cross_origin")

	resp, body = admin.do("POST", "/api/v1/locks/unlock", unlock)
	if resp.StatusCode != 200 {
		t.Fatalf("unlock with token: %d %s", resp.StatusCode, body)
	}
	// Safe methods need no token.
	admin.csrf = ""
	if resp, _ := admin.do("GET", "/api/v1/locks", nil); resp.StatusCode != 200 {
		t.Fatalf("GET without token: %d", resp.StatusCode)
	}

	// Login and activate have no session yet: they check the origin.
	c := r.client("")
	req = c.req("POST", "/api/v1/login", map[string]string{"username": adminName, "password": adminPW})
	req.Header.Set("Origin", "http://evil.example")
	resp, body = c.send(req)
	wantError(t, resp, body, http.StatusForbidden, "cross_origin")
	req = c.req("POST", "/api/v1/login", map[string]string{"username": adminName, "password": adminPW})
	req.Header.Set("Sec-Fetch-Site", "cross-site")
	resp, body = c.send(req)
	wantError(t, resp, body, http.StatusForbidden, "cross_origin")
	req = c.req("POST", "/api/v1/activate", map[string]string{"username": "x", "password": adminPW, "pin": pin})
	req.Header.Set("Sec-Fetch-Site", "cross-site")
	resp, body = c.send(req)
	wantError(t, resp, body, http.StatusForbidden, "cross_origin")
	req = c.req("POST", "/api/v1/login", map[string]string{"username": adminName, "password": adminPW})
	req.Header.Set("Sec-Fetch-Site", "same-origin")
	req.Header.Set("Origin", r.ts.URL)
	if resp, body := c.send(req); resp.StatusCode != 200 {
		t.Fatalf("same-origin login: %d %s", resp.StatusCode, body)
	}
}

func TestLocksListAndUnlock(t *testing.T) {
	r := newRig(t, trustLoopback)
	admin := r.adminClient("192.0.2.1")
	admin.addUser("bob", bobPW, "viewer")
	c := r.client("198.51.100.9")
	for i := 0; i < 5; i++ {
		c.try("bob", fmt.Sprintf("wrong %d", i))
	}
	resp, body := admin.do("GET", "/api/v1/locks", nil)
	if resp.StatusCode != 200 {
		t.Fatalf("locks: %d %s", resp.StatusCode, body)
	}
	var out struct{ Locks []lockOut }
	mustJSON(t, body, &out)
	if len(out.Locks) != 1 || out.Locks[0].Kind != "pair" || out.Locks[0].User != "bob" || out.Locks[0].Source != "198.51.100.9" ||
		out.Locks[0].Mode != "Locked" || out.Locks[0].RemainingSeconds == nil || *out.Locks[0].RemainingSeconds != 60 || out.Locks[0].Why == "" {
		t.Fatalf("locks: %s", body)
	}
	for _, bad := range []string{`{}`, `{"all":true,"user":"bob"}`, `{"source":"198.51.100.9"}`, `{"user":"bob","source":"not an ip"}`, `{"user":""}`} {
		resp, body := admin.do("POST", "/api/v1/locks/unlock", bad)
		wantError(t, resp, body, http.StatusBadRequest, "invalid_input")
	}
	resp, body = admin.do("POST", "/api/v1/locks/unlock", map[string]string{"user": "bob", "source": "198.51.100.9"})
	if resp.StatusCode != 200 || !strings.Contains(string(body), `"opened":1`) {
		t.Fatalf("unlock: %d %s", resp.StatusCode, body)
	}
	c.login("bob", bobPW)
	// Viewers and operators may not see or unlock locks.
	resp, body = c.do("GET", "/api/v1/locks", nil)
	wantError(t, resp, body, http.StatusForbidden, "forbidden")
}

func TestUsersLifecycle(t *testing.T) {
	r := newRig(t)
	admin := r.adminClient("")
	admin.addUser("Bob", bobPW, "viewer")
	resp, body := admin.do("POST", "/api/v1/users", map[string]string{"name": "bob", "password": bobPW, "role": "viewer"})
	wantError(t, resp, body, http.StatusConflict, "exists")
	resp, body = admin.do("POST", "/api/v1/users", map[string]string{"name": "carol", "password": "carol", "role": "viewer"})
	wantError(t, resp, body, http.StatusBadRequest, "invalid_input")
	resp, body = admin.do("POST", "/api/v1/users", map[string]string{"name": "carol", "password": bobPW, "role": "root"})
	wantError(t, resp, body, http.StatusBadRequest, "invalid_input")

	resp, body = admin.do("PATCH", "/api/v1/users/bob", map[string]string{"role": "operator"})
	if resp.StatusCode != 200 || !strings.Contains(string(body), `"role":"operator"`) {
		t.Fatalf("patch: %d %s", resp.StatusCode, body)
	}
	resp, body = admin.do("GET", "/api/v1/users", nil)
	if resp.StatusCode != 200 || !strings.Contains(string(body), `"name":"bob"`) || strings.Contains(string(body), "argon2") {
		t.Fatalf("list: %d %s", resp.StatusCode, body)
	}
	resp, body = admin.do("GET", "/api/v1/users/nobody", nil)
	wantError(t, resp, body, http.StatusNotFound, "no_such_user")

	// The last admin cannot be demoted, disabled or deleted.
	resp, body = admin.do("PATCH", "/api/v1/users/admin", map[string]string{"role": "viewer"})
	wantError(t, resp, body, http.StatusConflict, "last_admin")
	resp, body = admin.do("DELETE", "/api/v1/users/admin", nil)
	wantError(t, resp, body, http.StatusConflict, "last_admin")

	// Sessions: list and revoke.
	bob := r.client("")
	bob.login("bob", bobPW)
	resp, body = admin.do("GET", "/api/v1/users/bob/sessions", nil)
	var ss struct{ Sessions []sessionOut }
	mustJSON(t, body, &ss)
	if resp.StatusCode != 200 || len(ss.Sessions) != 1 || !ss.Sessions[0].Active {
		t.Fatalf("sessions: %d %s", resp.StatusCode, body)
	}
	resp, body = admin.do("DELETE", "/api/v1/users/bob/sessions/"+ss.Sessions[0].ID, nil)
	if resp.StatusCode != 200 {
		t.Fatalf("revoke: %d %s", resp.StatusCode, body)
	}
	resp, body = bob.do("GET", "/api/v1/me", nil)
	wantError(t, resp, body, http.StatusUnauthorized, "unauthenticated")
	resp, body = admin.do("DELETE", "/api/v1/users/bob/sessions/"+strings.Repeat("A", 43), nil)
	wantError(t, resp, body, http.StatusNotFound, "no_such_session")
	// The revocation is in the audit log with who did it (R-AUDIT).
	resp, body = admin.do("GET", "/api/v1/audit?user=bob&outcome=session_revoked", nil)
	if resp.StatusCode != 200 || !strings.Contains(string(body), `"actor":"admin:admin"`) {
		t.Fatalf("audit of the revocation: %d %s", resp.StatusCode, body)
	}

	// Admin reset: the user must change the password before anything else.
	resp, body = admin.do("POST", "/api/v1/users/bob/password", map[string]string{"password": "plum orchard lantern 7"})
	if resp.StatusCode != 200 {
		t.Fatalf("reset: %d %s", resp.StatusCode, body)
	}
	lr := bob.login("bob", "plum orchard lantern 7")
	if !lr.MustChangePassword {
		t.Fatal("reset password must be changed")
	}
	resp, body = bob.do("GET", "/api/v1/cameras", nil)
	wantError(t, resp, body, http.StatusForbidden, "password_change_required")
	resp, body = bob.do("POST", "/api/v1/me/password", map[string]string{"current_password": "wrong wrong", "new_password": "quiet meadow falcon 99"})
	wantError(t, resp, body, http.StatusUnauthorized, "invalid_credentials")
	resp, body = bob.do("POST", "/api/v1/me/password", map[string]string{"current_password": "plum orchard lantern 7", "new_password": "quiet meadow falcon 99"})
	if resp.StatusCode != 200 {
		t.Fatalf("change: %d %s", resp.StatusCode, body)
	}
	lr = bob.login("bob", "quiet meadow falcon 99")
	if lr.MustChangePassword {
		t.Fatal("still must change")
	}
	if resp, _ := bob.do("GET", "/api/v1/cameras", nil); resp.StatusCode != 200 {
		t.Fatalf("cameras after change: %d", resp.StatusCode)
	}

	resp, body = admin.do("DELETE", "/api/v1/users/bob", nil)
	if resp.StatusCode != 200 {
		t.Fatalf("delete: %d %s", resp.StatusCode, body)
	}
	resp, body = bob.do("GET", "/api/v1/me", nil)
	wantError(t, resp, body, http.StatusUnauthorized, "unauthenticated")
}

func TestPolicyEndpoints(t *testing.T) {
	r := newRig(t)
	admin := r.adminClient("")
	resp, body := admin.do("GET", "/api/v1/policy", nil)
	var p policyOut
	mustJSON(t, body, &p)
	if resp.StatusCode != 200 || !p.Enabled || !strings.Contains(p.YAML, "pair:") || len(p.Fields) == 0 {
		t.Fatalf("policy: %d %s", resp.StatusCode, body)
	}

	resp, body = admin.do("POST", "/api/v1/policy/validate", map[string]string{"yaml": "preset: latch\npair:\n  cap: 1s\n  base: 1m\n"})
	var ip invalidPolicy
	mustJSON(t, body, &ip)
	if resp.StatusCode != 400 || ip.Error != "invalid_policy" || len(ip.Problems) == 0 || ip.Problems[0].Field == "" {
		t.Fatalf("invalid policy: %d %s", resp.StatusCode, body)
	}
	// A raw YAML body works too.
	req := admin.req("POST", "/api/v1/policy/validate", "preset: annke\n")
	req.Header.Set("Content-Type", "application/yaml")
	if resp, body := admin.send(req); resp.StatusCode != 200 {
		t.Fatalf("yaml body: %d %s", resp.StatusCode, body)
	}

	// A failing proof blocks saving unless accepted.
	r.proveFn = func(model.Policy) (string, bool) { return "P-NODOS fails: shortest attack …", false }
	resp, body = admin.do("PUT", "/api/v1/policy", map[string]string{"yaml": "preset: keycloak\n"})
	if resp.StatusCode != 409 || !strings.Contains(string(body), "proof_failed") || !strings.Contains(string(body), "P-NODOS fails") {
		t.Fatalf("failed proof: %d %s", resp.StatusCode, body)
	}
	if r.svc.Policy().Preset != "latch" {
		t.Fatal("policy saved despite failed proof")
	}
	resp, body = admin.do("PUT", "/api/v1/policy", map[string]any{"yaml": "preset: keycloak\n", "accept_failed_proof": true})
	if resp.StatusCode != 200 || r.svc.Policy().Preset != "keycloak" {
		t.Fatalf("accepted: %d %s", resp.StatusCode, body)
	}
	r.proveFn = nil

	// Disabling protection is allowed, and warned about everywhere.
	resp, body = admin.do("PUT", "/api/v1/policy", map[string]string{"yaml": "preset: latch\nenabled: false\n"})
	if resp.StatusCode != 200 || !strings.Contains(string(body), "protection is disabled") {
		t.Fatalf("disable: %d %s", resp.StatusCode, body)
	}
	for _, page := range []string{"/settings", "/", "/system"} {
		_, html := admin.do("GET", page, nil)
		if !strings.Contains(string(html), `id="protection-banner"`) {
			t.Fatalf("%s lacks the protection banner", page)
		}
	}
	_, html := admin.do("GET", "/settings", nil)
	if !strings.Contains(string(html), `id="settings-disabled-warning"`) {
		t.Fatal("settings lacks the disabled warning")
	}
	resp, body = admin.do("POST", "/api/v1/policy/prove", map[string]string{"yaml": "preset: latch\n"})
	if resp.StatusCode != 200 || !strings.Contains(string(body), `"holds":true`) {
		t.Fatalf("prove: %d %s", resp.StatusCode, body)
	}
}

func TestSnapshotAndLive(t *testing.T) {
	r := newRig(t)
	admin := r.adminClient("")
	admin.addUser("vera", bobPW, "viewer")
	v := r.client("")
	v.login("vera", bobPW)

	resp, body := v.do("GET", "/api/v1/cameras", nil)
	if resp.StatusCode != 200 || !strings.Contains(string(body), `"id":"cam1"`) || !strings.Contains(string(body), `"has_frame":true`) {
		t.Fatalf("cameras: %d %s", resp.StatusCode, body)
	}
	resp, body = v.do("GET", "/api/v1/cameras/cam1/snapshot", nil)
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "image/jpeg" || !bytes.HasPrefix(body, []byte{0xFF, 0xD8}) {
		t.Fatalf("snapshot: %d %s", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	resp, body = v.do("GET", "/api/v1/cameras/nope/snapshot", nil)
	wantError(t, resp, body, http.StatusNotFound, "no_such_camera")

	// Live: the first part is the latest frame, the next the camera's next.
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	req := v.req("GET", "/api/v1/cameras/cam1/live", nil).WithContext(ctx)
	live, err := v.hc.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer live.Body.Close()
	mt, params, _ := mime.ParseMediaType(live.Header.Get("Content-Type"))
	if mt != "multipart/x-mixed-replace" {
		t.Fatalf("live content type %q", live.Header.Get("Content-Type"))
	}
	mr := multipart.NewReader(live.Body, params["boundary"])
	first := readPart(t, mr)
	if !bytes.Equal(first, r.cam.Latest()) {
		t.Fatal("first live part is not the latest frame")
	}
	r.clk.Advance(time.Second) // the camera captures its next frame
	second := readPart(t, mr)
	if !bytes.HasPrefix(second, []byte{0xFF, 0xD8}) || bytes.Equal(first, second) {
		t.Fatal("second live part is not the new frame")
	}
}

func readPart(t *testing.T, mr *multipart.Reader) []byte {
	t.Helper()
	p, err := mr.NextPart()
	if err != nil {
		t.Fatal(err)
	}
	if p.Header.Get("Content-Type") != "image/jpeg" {
		t.Fatalf("part type %q", p.Header.Get("Content-Type"))
	}
	b, err := io.ReadAll(p)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// addSegment indexes a two-frame segment at rel, writing the file when
// write is set.
func (r *rig) addSegment(rel string, write bool) (int64, []byte) {
	r.t.Helper()
	f1 := r.cam.Latest()
	r.clk.Advance(time.Second)
	f2 := r.cam.Latest()
	data := append(append([]byte{}, f1...), f2...)
	if write {
		p := filepath.Join(r.dataDir, filepath.FromSlash(rel))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			r.t.Fatal(err)
		}
		if err := os.WriteFile(p, data, 0o644); err != nil {
			r.t.Fatal(err)
		}
	}
	ctx := context.Background()
	var id int64
	err := r.db.WithTx(ctx, func(tx *store.Tx) error {
		cams, err := tx.ListCameras(ctx)
		if err != nil {
			return err
		}
		var camID int64
		if len(cams) == 0 {
			if camID, err = tx.InsertCamera(ctx, store.Camera{Name: "cam1", FPS: 1, Width: 64, Height: 48, Enabled: true}); err != nil {
				return err
			}
		} else {
			camID = cams[0].ID
		}
		start := r.clk.Now().Add(-2 * time.Second)
		id, err = tx.InsertSegment(ctx, store.Segment{CameraID: camID, StartWallNS: start.UnixNano(), EndWallNS: start.Add(2 * time.Second).UnixNano(),
			StartInstantNS: r.clk.Instant(), DurationNS: int64(2 * time.Second), Bytes: int64(len(data)), Frames: 2, Path: rel})
		return err
	})
	if err != nil {
		r.t.Fatal(err)
	}
	return id, data
}

func TestRecordingsRoles(t *testing.T) {
	r := newRig(t)
	admin := r.adminClient("")
	id, data := r.addSegment("recordings/cam1/20261126T120000.000Z.mjpeg", true)
	sid := itoa(id)
	admin.addUser("vera", bobPW, "viewer")
	admin.addUser("otto", bobPW, "operator")

	// Viewers see live views only.
	v := r.client("")
	v.login("vera", bobPW)
	for _, p := range []string{"/api/v1/recordings", "/api/v1/recordings/" + sid, "/api/v1/recordings/" + sid + "/download", "/api/v1/recordings/" + sid + "/play"} {
		resp, body := v.do("GET", p, nil)
		wantError(t, resp, body, http.StatusForbidden, "forbidden")
	}
	if resp, _ := v.do("GET", "/recordings", nil); resp.StatusCode != http.StatusForbidden {
		t.Fatalf("viewer recordings page: %d", resp.StatusCode)
	}

	o := r.client("")
	o.login("otto", bobPW)
	resp, body := o.do("GET", "/api/v1/recordings?camera=cam1", nil)
	if resp.StatusCode != 200 || !strings.Contains(string(body), `"id":`+sid) {
		t.Fatalf("list: %d %s", resp.StatusCode, body)
	}
	resp, body = o.do("GET", "/api/v1/recordings?camera=cam1&from=2020-01-01&to=2020-01-02", nil)
	if resp.StatusCode != 200 || strings.Contains(string(body), `"id":`+sid) {
		t.Fatalf("list out of range: %d %s", resp.StatusCode, body)
	}
	resp, body = o.do("GET", "/api/v1/recordings/"+sid+"/download", nil)
	if resp.StatusCode != 200 || !bytes.Equal(body, data) || !strings.HasPrefix(resp.Header.Get("Content-Disposition"), "attachment;") {
		t.Fatalf("download: %d %q", resp.StatusCode, resp.Header.Get("Content-Disposition"))
	}
	req := o.req("GET", "/api/v1/recordings/"+sid+"/download", nil)
	req.Header.Set("Range", "bytes=0-1")
	if resp, body := o.send(req); resp.StatusCode != http.StatusPartialContent || !bytes.Equal(body, data[:2]) {
		t.Fatalf("range: %d", resp.StatusCode)
	}

	// Playback: the segment's frames as multipart parts.
	ctx, cancel := context.WithCancel(context.Background())
	play, err := o.hc.Do(o.req("GET", "/api/v1/recordings/"+sid+"/play?speed=16", nil).WithContext(ctx))
	if err != nil {
		t.Fatal(err)
	}
	_, params, _ := mime.ParseMediaType(play.Header.Get("Content-Type"))
	part := readPart(t, multipart.NewReader(play.Body, params["boundary"]))
	cancel()
	play.Body.Close()
	if !bytes.HasPrefix(data, part) {
		t.Fatal("first played frame is not the segment's first")
	}

	// A signed-out operator gets nothing.
	o.do("POST", "/api/v1/logout", nil)
	resp, body = o.do("GET", "/api/v1/recordings/"+sid+"/download", nil)
	wantError(t, resp, body, http.StatusUnauthorized, "unauthenticated")
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }

// Path traversal: recordings are served by id only, the file is opened
// inside the data directory, and a poisoned index row cannot escape it.
func TestPathTraversal(t *testing.T) {
	r := newRig(t)
	admin := r.adminClient("")
	secret := "TOP-SECRET-" + t.Name()
	outside := filepath.Join(filepath.Dir(r.dataDir), "secret.mjpeg")
	if err := os.WriteFile(outside, []byte(secret), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(r.dataDir, "secret.txt"), []byte(secret), 0o644); err != nil {
		t.Fatal(err)
	}
	// Index rows a bug or a tampered database might hold.
	evil1, _ := r.addSegment("recordings/../../secret.mjpeg", false)
	evil2, _ := r.addSegment("/etc/passwd", false)
	if err := os.MkdirAll(filepath.Join(r.dataDir, "recordings", "cam1"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(outside, filepath.Join(r.dataDir, "recordings", "cam1", "link.mjpeg")); err != nil {
		t.Fatal(err)
	}
	evil3, _ := r.addSegment("recordings/cam1/link.mjpeg", false)

	follow := &http.Client{Jar: admin.hc.Jar}
	paths := []string{
		"/api/v1/recordings/" + itoa(evil1) + "/download",
		"/api/v1/recordings/" + itoa(evil2) + "/download",
		"/api/v1/recordings/" + itoa(evil3) + "/download",
		"/api/v1/recordings/" + itoa(evil1) + "/play",
		"/api/v1/recordings/..%2F..%2Fsecret.txt/download",
		"/api/v1/recordings/../../secret.txt",
		"/api/v1/recordings/%2e%2e%2fsecret.txt/download",
		"/api/v1/recordings/1%00/download",
		"/api/v1/recordings/-1/download",
		"/api/v1/recordings/99999999999999999999/download",
		"/api/v1/cameras/..%2F..%2Fsecret.txt/snapshot",
		"/api/v1/cameras/cam1%2F..%2F..%2Fsecret.txt/live",
		"/static/../secret.txt",
		"/static/..%2f..%2fsecret.txt",
		"/static/%2e%2e/%2e%2e/secret.txt",
		"/static/",
		"/api/v1/recordings?camera=../../secret",
	}
	for _, p := range paths {
		req, err := http.NewRequest("GET", r.ts.URL+p, nil)
		if err != nil {
			t.Fatal(err)
		}
		resp, err := follow.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 404 && resp.StatusCode != 400 {
			t.Errorf("%s: status %d, want 404 or 400: %s", p, resp.StatusCode, body)
		}
		if bytes.Contains(body, []byte(secret)) || bytes.Contains(body, []byte("root:")) {
			t.Errorf("%s: leaked a file outside the recordings", p)
		}
	}
}

func TestAuditCSVAndVerify(t *testing.T) {
	r := newRig(t)
	admin := r.adminClient("")
	r.client("").try("=1+2", "wrong wrong")
	r.client("").try(adminName, "wrong wrong")
	if err := r.svc.Maintain(context.Background()); err != nil {
		t.Fatal(err)
	}

	resp, body := admin.do("GET", "/api/v1/audit?outcome=wrong_secret", nil)
	var out struct {
		Records []auditOut
	}
	mustJSON(t, body, &out)
	if resp.StatusCode != 200 || len(out.Records) != 2 {
		t.Fatalf("audit json: %d %s", resp.StatusCode, body)
	}
	resp, body = admin.do("GET", "/api/v1/audit?user=ADMIN&format=json", nil)
	mustJSON(t, body, &out)
	for _, rec := range out.Records {
		if rec.User != "admin" {
			t.Fatalf("filtered by user: %+v", rec)
		}
	}

	resp, body = admin.do("GET", "/api/v1/audit?format=csv&since=2026-11-26&until=2026-11-27T00:00:00Z", nil)
	if resp.StatusCode != 200 || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/csv") {
		t.Fatalf("csv: %d %s", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	rows, err := csv.NewReader(bytes.NewReader(body)).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	if len(rows) < 4 || rows[0][0] != "id" || rows[0][8] != "outcome" {
		t.Fatalf("csv rows: %v", rows)
	}
	injected := false
	for _, row := range rows[1:] {
		if row[3] == "=1+2" {
			t.Fatal("formula not defused in CSV")
		}
		injected = injected || row[3] == "'=1+2"
	}
	if !injected {
		t.Fatalf("CSV lacks the defused user name: %v", rows)
	}

	resp, body = admin.do("GET", "/api/v1/audit/verify", nil)
	if resp.StatusCode != 200 || !strings.Contains(string(body), `"verified":true`) {
		t.Fatalf("verify: %d %s", resp.StatusCode, body)
	}
	_, html := admin.do("GET", "/audit", nil)
	if !regexp.MustCompile(`id="chain-badge">Chain verified: \d+ sealed records`).Match(html) {
		t.Fatal("audit page lacks the verified badge")
	}
}

func TestFactoryReset(t *testing.T) {
	r := newRig(t)
	admin := r.adminClient("")
	id, _ := r.addSegment("recordings/cam1/20261126T120000.000Z.mjpeg", true)
	resp, body := admin.do("POST", "/api/v1/system/factory-reset", map[string]any{"pin": pin})
	wantError(t, resp, body, http.StatusBadRequest, "confirmation_required")
	for i := 0; i < pinThreshold; i++ {
		resp, body = admin.do("POST", "/api/v1/system/factory-reset", map[string]any{"pin": "000000", "confirm": true})
		wantError(t, resp, body, http.StatusForbidden, "wrong_pin")
	}
	resp, body = admin.do("POST", "/api/v1/system/factory-reset", map[string]any{"pin": pin, "confirm": true})
	wantError(t, resp, body, http.StatusTooManyRequests, "locked")
	if resp.Header.Get("Retry-After") != "300" {
		t.Fatalf("Retry-After %q", resp.Header.Get("Retry-After"))
	}
	r.clk.Advance(pinBase)
	resp, body = admin.do("POST", "/api/v1/system/factory-reset", map[string]any{"pin": pin, "confirm": true})
	if resp.StatusCode != 200 {
		t.Fatalf("reset: %d %s", resp.StatusCode, body)
	}
	resp, body = admin.do("GET", "/api/v1/me", nil)
	wantError(t, resp, body, http.StatusConflict, "not_activated")
	if _, err := r.db.GetSegment(context.Background(), id); err != nil {
		t.Fatalf("recording lost in factory reset: %v", err)
	}
	r.activate()
}

func TestSystemClockWarning(t *testing.T) {
	r := newRig(t)
	admin := r.adminClient("")
	resp, body := admin.do("GET", "/api/v1/system", nil)
	if resp.StatusCode != 200 || !strings.Contains(string(body), `"version":"1.2.3-test"`) || !strings.Contains(string(body), `"looks_unset":false`) {
		t.Fatalf("system: %d %s", resp.StatusCode, body)
	}
	r.clk.WallJump(-57 * 365 * 24 * time.Hour) // an RTC reset to about 1970
	resp, body = admin.do("GET", "/api/v1/system", nil)
	if !strings.Contains(string(body), `"looks_unset":true`) {
		t.Fatalf("system after RTC reset: %s", body)
	}
	_, html := admin.do("GET", "/system", nil)
	if !strings.Contains(string(html), `id="clock-warning"`) {
		t.Fatal("system page lacks the clock warning")
	}
}

func TestSecurityHeadersAndNoInlineScript(t *testing.T) {
	r := newRig(t)
	admin := r.adminClient("")
	admin.addUser("bob", bobPW, "viewer")
	inlineScript := regexp.MustCompile(`<script(?:\s[^>]*)?>\s*[^<\s]`)
	for _, p := range []string{"/login", "/", "/recordings", "/users", "/locks", "/audit", "/settings", "/system", "/account", "/api/v1/me", "/nowhere"} {
		resp, body := admin.do("GET", p, nil)
		if p == "/login" && resp.StatusCode == http.StatusSeeOther {
			resp, body = r.client("").do("GET", p, nil)
		}
		h := resp.Header
		csp := h.Get("Content-Security-Policy")
		if !strings.Contains(csp, "script-src 'self'") || strings.Contains(csp, "unsafe-inline") || !strings.Contains(csp, "frame-ancestors 'none'") {
			t.Errorf("%s: CSP %q", p, csp)
		}
		for k, v := range map[string]string{"X-Content-Type-Options": "nosniff", "X-Frame-Options": "DENY", "Referrer-Policy": "no-referrer"} {
			if h.Get(k) != v {
				t.Errorf("%s: %s = %q", p, k, h.Get(k))
			}
		}
		if h.Get("Permissions-Policy") == "" {
			t.Errorf("%s: no Permissions-Policy", p)
		}
		if inlineScript.Match(body) || bytes.Contains(body, []byte(" style=")) || bytes.Contains(body, []byte("onclick=")) {
			t.Errorf("%s: inline script or style", p)
		}
		if strings.HasPrefix(h.Get("Content-Type"), "text/html") && p != "/login" && p != "/nowhere" && !bytes.Contains(body, []byte(`name="csrf-token" content="`+admin.csrf+`"`)) {
			t.Errorf("%s: page lacks the session's CSRF token", p)
		}
	}
	// Every state-changing form carries the CSRF token.
	for _, p := range []string{"/users", "/settings", "/system", "/account"} {
		_, body := admin.do("GET", p, nil)
		forms := regexp.MustCompile(`(?s)<form[^>]*data-api[^>]*>.*?</form>`).FindAll(body, -1)
		if len(forms) == 0 && p != "/settings" {
			t.Errorf("%s: no API forms", p)
		}
		for _, f := range forms {
			if !bytes.Contains(f, []byte(`name="csrf_token" value="`+admin.csrf+`"`)) {
				t.Errorf("%s: form without CSRF token: %.120s", p, f)
			}
		}
	}
}

func TestPagesNeedSessionAndRole(t *testing.T) {
	r := newRig(t)
	admin := r.adminClient("")
	admin.addUser("vera", bobPW, "viewer")
	anon := r.client("")
	resp, _ := anon.do("GET", "/users", nil)
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/login?next=%2Fusers" {
		t.Fatalf("anonymous /users: %d %s", resp.StatusCode, resp.Header.Get("Location"))
	}
	v := r.client("")
	v.login("vera", bobPW)
	for p, want := range map[string]int{"/": 200, "/system": 200, "/account": 200, "/users": 403, "/locks": 403, "/audit": 403, "/settings": 403, "/recordings": 403} {
		req := v.req("GET", p, nil)
		req.Header.Set("Accept", "text/html")
		if resp, _ := v.send(req); resp.StatusCode != want {
			t.Errorf("viewer %s: %d, want %d", p, resp.StatusCode, want)
		}
	}
	// Open redirects are refused.
	for _, bad := range []string{"//evil.example/", "/\t/evil.example", "/\\evil.example", "https://evil.example", "/\n/evil", "evil"} {
		if got := safeNext(bad); got != "/" {
			t.Fatalf("safeNext(%q) = %q", bad, got)
		}
	}
	if got := safeNext("/recordings?camera=cam1"); got != "/recordings?camera=cam1" {
		t.Fatalf("safeNext kept %q", got)
	}
	resp, _ = v.do("GET", "/login?next=https://evil.example/", nil)
	if resp.Header.Get("Location") != "/" {
		t.Fatalf("login next: %q", resp.Header.Get("Location"))
	}
}

func TestMethodNotAllowedAndNotFound(t *testing.T) {
	r := newRig(t)
	admin := r.adminClient("")
	resp, body := admin.do("PUT", "/api/v1/login", "{}")
	wantError(t, resp, body, http.StatusMethodNotAllowed, "method_not_allowed")
	resp, body = admin.do("GET", "/api/v1/nothing", nil)
	wantError(t, resp, body, http.StatusNotFound, "not_found")
}

func TestPanicBecomes500JSON(t *testing.T) {
	r := newRig(t)
	h := r.srv.recoverer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) { panic("bug") }))
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest("GET", "/x", nil))
	if rec.Code != 500 || !strings.Contains(rec.Body.String(), `"error":"internal"`) {
		t.Fatalf("panic: %d %s", rec.Code, rec.Body)
	}
}

func TestHTTPServerTimeouts(t *testing.T) {
	r := newRig(t)
	srv := HTTPServer("127.0.0.1:0", r.srv.Handler())
	if srv.ReadHeaderTimeout == 0 || srv.ReadTimeout == 0 || srv.WriteTimeout == 0 || srv.IdleTimeout == 0 || srv.MaxHeaderBytes == 0 {
		t.Fatalf("timeouts: %+v", srv)
	}
}

// A live stream outlives the server's WriteTimeout (it extends its write
// deadline frame by frame) while ordinary responses keep it. A timeout of
// 1ns has expired before any handler writes, so no waiting is needed.
func TestStreamOutlivesServerTimeouts(t *testing.T) {
	r := newRig(t)
	admin := r.adminClient("")
	ts := httptest.NewUnstartedServer(r.srv.Handler())
	ts.Config.WriteTimeout = time.Nanosecond
	ts.Start()
	defer ts.Close()
	defer r.srv.Close()
	get := func(path string) (*http.Response, error) {
		req, _ := http.NewRequest("GET", ts.URL+path, nil)
		for _, c := range admin.hc.Jar.Cookies(mustURL(t, r.ts.URL)) {
			req.AddCookie(c)
		}
		return (&http.Transport{}).RoundTrip(req)
	}
	if resp, err := get("/api/v1/cameras"); err == nil {
		resp.Body.Close()
		t.Fatal("an ordinary response outlived WriteTimeout")
	}
	resp, err := get("/api/v1/cameras/cam1/live")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	_, params, _ := mime.ParseMediaType(resp.Header.Get("Content-Type"))
	mr := multipart.NewReader(resp.Body, params["boundary"])
	readPart(t, mr)
	r.clk.Advance(time.Second)
	if part := readPart(t, mr); !bytes.HasPrefix(part, []byte{0xFF, 0xD8}) {
		t.Fatal("no second frame")
	}
}

func mustURL(t *testing.T, s string) *url.URL {
	u, err := url.Parse(s)
	if err != nil {
		t.Fatal(err)
	}
	return u
}
