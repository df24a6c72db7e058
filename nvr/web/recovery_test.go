package web

import (
	"bytes"
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/latchnvr/latch/nvr/auth"
)

const recoveredPW = "lantern quarry meadow 58"

// addUserWithEmail creates a user with an address through the API.
func (c *client) addUserWithEmail(name, pw, role, email string) {
	c.t.Helper()
	resp, body := c.do("POST", "/api/v1/users", map[string]string{"name": name, "password": pw, "role": role, "email": email})
	if resp.StatusCode != http.StatusCreated {
		c.t.Fatalf("add user %s: %d %s", name, resp.StatusCode, body)
	}
}

// lockOut locks user out of every remote way in: its pair from the
// attacker's address, and its principal key by guesses from many
// unfamiliar addresses (through a trusted proxy).
func (r *rig) lockOut(user string) {
	r.t.Helper()
	p := r.svc.Policy()
	attacker := r.client("203.0.113.7")
	for i := 0; i < p.Pair.Threshold; i++ {
		attacker.try(user, fmt.Sprintf("guess %d", i))
	}
	for i := 0; i < 1000; i++ {
		resp, m := r.client(fmt.Sprintf("198.51.%d.%d", i/200, i%200+1)).try(user, fmt.Sprintf("spray %d", i))
		if resp.StatusCode == http.StatusTooManyRequests && m["scope"] == "principal" {
			return
		}
	}
	r.t.Fatal("the principal never locked")
}

// R-RESET end to end over HTTP with a real SMTP server: while bob is
// locked out everywhere, he asks for a code, reads it from the delivered
// mail, sets a new password, and signs in from the address that was
// locked; the reset notice reaches him too.
func TestRecoveryOverHTTPWithRealSMTP(t *testing.T) {
	r := newRig(t, trustLoopback)
	admin := r.adminClient("10.0.0.1")
	admin.addUserWithEmail("bob", bobPW, "operator", "bob@example.com")
	mb := r.startMailbox()
	old := r.client("10.0.0.2")
	old.login("bob", bobPW)
	r.lockOut("bob")
	if resp, m := r.client("203.0.113.7").try("bob", bobPW); resp.StatusCode != http.StatusTooManyRequests {
		t.Fatalf("bob not locked out: %d %v", resp.StatusCode, m)
	}

	bob := r.client("203.0.113.7")
	resp, body := bob.do("POST", "/api/v1/recovery/start", map[string]string{"username": "Bob"})
	if resp.StatusCode != http.StatusAccepted || !strings.Contains(string(body), "recovery code is on its way") {
		t.Fatalf("start: %d %s", resp.StatusCode, body)
	}
	mb.deliver()
	code := mb.code("bob@example.com")

	resp, body = bob.do("POST", "/api/v1/recovery/finish", map[string]string{"username": "bob", "code": code, "new_password": recoveredPW})
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("finish: %d %s", resp.StatusCode, body)
	}
	if resp, _ := old.do("GET", "/api/v1/me", nil); resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("an old session survived recovery: %d", resp.StatusCode)
	}
	lr := bob.login("bob", recoveredPW)
	if lr.MustChangePassword {
		t.Fatal("self-service recovery forced a change")
	}
	resp, body = admin.do("GET", "/api/v1/locks", nil)
	if resp.StatusCode != 200 || strings.Contains(string(body), `"user":"bob"`) {
		t.Fatalf("bob still has locks: %s", body)
	}
	mb.deliver()
	var notice bool
	for _, m := range mb.messages() {
		notice = notice || (m.to[0] == "bob@example.com" && strings.Contains(m.subject, "password was reset"))
	}
	if !notice {
		t.Fatalf("no reset notice: %+v", mb.messages())
	}
	// The code works once.
	resp, body = r.client("10.0.0.3").do("POST", "/api/v1/recovery/finish", map[string]string{"username": "bob", "code": code, "new_password": "another fine passphrase 31"})
	wantError(t, resp, body, http.StatusUnauthorized, "invalid_code")
}

// R-ENUM: start answers byte for byte the same for a user with an address,
// one without, and no user; a wrong code the same for a user and no user.
func TestRecoveryAnswersDoNotEnumerate(t *testing.T) {
	r := newRig(t, trustLoopback)
	admin := r.adminClient("10.0.0.1")
	admin.addUserWithEmail("bob", bobPW, "operator", "bob@example.com")
	admin.addUser("carol", bobPW, "viewer")
	var first []byte
	for _, name := range []string{"bob", "carol", "nobody"} {
		resp, body := r.client("10.0.0.2").do("POST", "/api/v1/recovery/start", map[string]string{"username": name})
		if resp.StatusCode != http.StatusAccepted {
			t.Fatalf("%s: %d %s", name, resp.StatusCode, body)
		}
		if first == nil {
			first = body
		} else if !bytes.Equal(body, first) {
			t.Fatalf("%s: %s, bob got %s", name, body, first)
		}
	}
	first = nil
	for _, name := range []string{"bob", "nobody"} {
		resp, body := r.client("10.0.0.3").do("POST", "/api/v1/recovery/finish",
			map[string]string{"username": name, "code": strings.Repeat("A", 26), "new_password": recoveredPW})
		wantError(t, resp, body, http.StatusUnauthorized, "invalid_code")
		if first == nil {
			first = body
		} else if !bytes.Equal(body, first) {
			t.Fatalf("%s: %s, bob got %s", name, body, first)
		}
	}
}

// The recovery limits answer 429: a source's own limit with Retry-After;
// the principal's TOTP limit without a time (R-DISCLOSE).
func TestRecoveryRateLimitsOverHTTP(t *testing.T) {
	r := newRig(t, trustLoopback)
	r.activate()
	c := r.client("203.0.113.9")
	for i := 0; i < 10; i++ {
		if resp, body := c.do("POST", "/api/v1/recovery/start", map[string]string{"username": fmt.Sprint("u", i)}); resp.StatusCode != 202 {
			t.Fatalf("start %d: %d %s", i, resp.StatusCode, body)
		}
	}
	resp, body := c.do("POST", "/api/v1/recovery/start", map[string]string{"username": "u10"})
	wantError(t, resp, body, http.StatusTooManyRequests, "locked")
	if resp.Header.Get("Retry-After") == "" || !strings.Contains(string(body), `"scope":"source"`) {
		t.Fatalf("source limit: %v %s", resp.Header, body)
	}
	for i := 0; i < 5; i++ {
		resp, body := r.client(fmt.Sprintf("198.51.100.%d", i+1)).do("POST", "/api/v1/recovery/finish",
			map[string]string{"username": "admin", "code": "123456", "new_password": recoveredPW})
		wantError(t, resp, body, http.StatusUnauthorized, "invalid_code")
	}
	resp, body = r.client("198.51.100.99").do("POST", "/api/v1/recovery/finish",
		map[string]string{"username": "admin", "code": "123456", "new_password": recoveredPW})
	wantError(t, resp, body, http.StatusTooManyRequests, "locked")
	if resp.Header.Get("Retry-After") != "" || !strings.Contains(string(body), `"scope":"principal"`) || !strings.Contains(string(body), "e-mail") {
		t.Fatalf("principal limit: %v %s", resp.Header, body)
	}
}

// Two-factor enrolment hands out recovery codes once; one stands in for
// the authenticator at sign-in.
func TestTOTPRecoveryCodes(t *testing.T) {
	r := newRig(t)
	admin := r.adminClient("")
	admin.addUser("bob", bobPW, "operator")
	bob := r.client("")
	bob.login("bob", bobPW)
	resp, body := bob.do("POST", "/api/v1/me/totp", nil)
	if resp.StatusCode != 200 {
		t.Fatalf("totp start: %d %s", resp.StatusCode, body)
	}
	var start totpStart
	mustJSON(t, body, &start)
	code, _ := auth.TOTPCode(start.Secret, r.clk.Now())
	resp, body = bob.do("POST", "/api/v1/me/totp/confirm", map[string]string{"code": code})
	var confirmed struct {
		TOTPEnabled   bool     `json:"totp_enabled"`
		RecoveryCodes []string `json:"recovery_codes"`
	}
	mustJSON(t, body, &confirmed)
	if resp.StatusCode != 200 || !confirmed.TOTPEnabled || len(confirmed.RecoveryCodes) != auth.BackupCodeCount {
		t.Fatalf("confirm: %d %s", resp.StatusCode, body)
	}
	rc := confirmed.RecoveryCodes[0]
	if resp, m := r.client("").do2("bob", bobPW, rc); resp.StatusCode != 200 {
		t.Fatalf("login with a recovery code: %d %v", resp.StatusCode, m)
	}
	if resp, m := r.client("").do2("bob", bobPW, rc); resp.StatusCode != 401 || m["error"] != "invalid_credentials" {
		t.Fatalf("a recovery code twice: %d %v", resp.StatusCode, m)
	}
}

// The concurrent-session policy is a device setting an admin reads and
// changes; replace-oldest then keeps one session per user.
func TestSessionsPolicySettingAPI(t *testing.T) {
	r := newRig(t, trustLoopback)
	admin := r.adminClient("10.0.0.1")
	admin.addUser("bob", bobPW, "viewer")
	resp, body := admin.do("GET", "/api/v1/settings", nil)
	if resp.StatusCode != 200 || !strings.Contains(string(body), `"sessions_policy":"notify"`) || !strings.Contains(string(body), `"sessions_policy_source":"default"`) {
		t.Fatalf("settings: %d %s", resp.StatusCode, body)
	}
	for _, tc := range []struct {
		body   string
		status int
		code   string
	}{
		{`{"sessions_policy":"sometimes"}`, 400, "invalid_input"},
		{`{}`, 400, "invalid_input"},
		{`{"sessions_policy":1}`, 400, "invalid_field"},
		{`{"sessions_policy":"allow","theme":"dark"}`, 400, "unknown_field"},
	} {
		resp, body := admin.do("PATCH", "/api/v1/settings", tc.body)
		wantError(t, resp, body, tc.status, tc.code)
	}
	viewer := r.client("10.0.0.5")
	viewer.login("bob", bobPW)
	resp, body = viewer.do("PATCH", "/api/v1/settings", map[string]string{"sessions_policy": "allow"})
	wantError(t, resp, body, http.StatusForbidden, "forbidden")

	resp, body = admin.do("PATCH", "/api/v1/settings", map[string]string{"sessions_policy": "replace-oldest"})
	if resp.StatusCode != 200 || !strings.Contains(string(body), `"sessions_policy":"replace-oldest"`) || !strings.Contains(string(body), `"sessions_policy_source":"device"`) {
		t.Fatalf("patch: %d %s", resp.StatusCode, body)
	}
	// bob's newest sign-in wins; the older session is signed out.
	phone := r.client("192.0.2.50")
	phone.login("bob", bobPW)
	if resp, _ := viewer.do("GET", "/api/v1/me", nil); resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("the older session is still valid: %d", resp.StatusCode)
	}
	resp, body = phone.do("GET", "/api/v1/me/sessions", nil)
	if resp.StatusCode != 200 || !strings.Contains(string(body), `"source":"192.0.2.50"`) || !strings.Contains(string(body), "replace-oldest") {
		t.Fatalf("sessions: %s", body)
	}
	// The settings page shows and changes it.
	resp, body = admin.do("GET", "/settings", nil)
	if resp.StatusCode != 200 || !strings.Contains(string(body), `<option value="replace-oldest" selected>`) || !strings.Contains(string(body), `id="sessions-form"`) {
		t.Fatalf("settings page: %d", resp.StatusCode)
	}
	if p, _ := r.svc.SessionPolicy(); p != auth.SessionsReplaceOldest {
		t.Fatalf("in force: %s", p)
	}
}

func TestRecoveryPagesAndLinks(t *testing.T) {
	r := newRig(t)
	r.activate()
	c := r.client("")
	resp, body := c.do("GET", "/login", nil)
	if resp.StatusCode != 200 || !strings.Contains(string(body), `href="/recover"`) {
		t.Fatalf("login page has no recovery link: %d", resp.StatusCode)
	}
	resp, body = c.do("GET", "/recover?user=bob", nil)
	if resp.StatusCode != 200 || !strings.Contains(string(body), `id="recover-start"`) || !strings.Contains(string(body), `id="recover-finish"`) ||
		!strings.Contains(string(body), `value="bob"`) {
		t.Fatalf("recover page: %d %s", resp.StatusCode, body)
	}
	resp, body = c.do("GET", "/login?recovered=1", nil)
	if !strings.Contains(string(body), `id="recovered"`) {
		t.Fatalf("login after recovery: %s", body)
	}
}
