package web

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
)

// checkClientAnswer is the property both fuzz targets check: the server
// answers a client's input with 2xx, 3xx or a 4xx carrying a JSON error,
// never a 5xx (a panic would be a 500 through the recover middleware).
func checkClientAnswer(t *testing.T, what string, resp *http.Response, body []byte) {
	t.Helper()
	if resp.StatusCode >= 500 {
		t.Fatalf("%s: %d %s", what, resp.StatusCode, body)
	}
	if resp.StatusCode >= 400 && strings.HasPrefix(resp.Header.Get("Content-Type"), "application/json") {
		var e apiError
		if err := json.Unmarshal(body, &e); err != nil || e.Error == "" {
			t.Fatalf("%s: %d with a malformed JSON error %q", what, resp.StatusCode, body)
		}
	}
	if resp.StatusCode >= 400 && !strings.HasPrefix(resp.Header.Get("Content-Type"), "application/json") &&
		!strings.HasPrefix(resp.Header.Get("Content-Type"), "text/html") {
		t.Fatalf("%s: %d with Content-Type %q", what, resp.StatusCode, resp.Header.Get("Content-Type"))
	}
}

var fuzzMethods = []string{"GET", "POST", "PUT", "PATCH", "DELETE"}

// FuzzAPI sends arbitrary bodies, content types, queries and paths to
// login, activate, unlock, policy put, the audit query and any API path.
func FuzzAPI(f *testing.F) {
	seeds := []struct {
		kind, method uint8
		path, ctype  string
		body         string
	}{
		{0, 1, "", "application/json", `{"username":"admin","password":"x"}`},
		{0, 1, "", "application/json", `{"username":"\u0000admin","password":"x","totp":"1"}`},
		{0, 1, "", "application/json", "{\"username\":\"\xff\",\"password\":\"x\"}"},
		{0, 1, "", "text/plain", `{}`},
		{0, 1, "", "application/json; charset=latin1", `{"username":"a","password":"b"}`},
		{0, 1, "", "application/json", `[1,2,3]`},
		{0, 1, "", "application/json", `{"username":"a","password":"b"} trailing`},
		{1, 1, "", "application/json", `{"username":"root","password":"correct horse battery staple","pin":"123456"}`},
		{1, 1, "", "application/json", `{"username":"root","password":"x","pin":"１２３４５６"}`},
		{2, 1, "", "application/json", `{"all":true}`},
		{2, 1, "", "application/json", `{"user":"bob","source":"2001:db8::1"}`},
		{2, 1, "", "application/json", `{"user":"bob","source":"::ffff:1.2.3.4%eth0"}`},
		{3, 2, "", "application/json", `{"yaml":"preset: latch\n"}`},
		{3, 2, "", "application/yaml", "preset: annke\npair:\n  threshold: 99\n"},
		{3, 2, "", "application/yaml", "a: &a [*a]\n"},
		{3, 2, "", "application/json", `{"yaml":"preset: latch\npair: {cap: 1ns}"}`},
		{4, 0, "user=admin&since=2026-11-26&format=csv", "", ""},
		{4, 0, "limit=-1&before=abc&source=not-an-ip", "", ""},
		{4, 0, "since=99999999999999999999&until=0", "", ""},
		{5, 0, "recordings/..%2F..%2Fetc%2Fpasswd/download", "", ""},
		{5, 3, "users/admin", "application/json", `{"role":"god"}`},
		{5, 1, "users", "application/json", `{"name":"` + strings.Repeat("a", 300) + `","password":"x","role":"viewer"}`},
		{5, 0, "recordings?camera=cam1&from=x", "", ""},
		{5, 1, "me/totp/confirm", "application/json", `{"code":"12345678901234567890"}`},
		{5, 1, "system/factory-reset", "application/json", `{"pin":"000000","confirm":true}`},
	}
	for _, s := range seeds {
		f.Add(s.kind, s.method, s.path, s.ctype, []byte(s.body))
	}
	r := newRig(f, trustLoopback)
	admin := r.adminClient("192.0.2.1")
	inactive := newRig(f)
	relogin := func() {
		resp, body := admin.do("POST", "/api/v1/login", map[string]string{"username": adminName, "password": adminPW})
		if resp.StatusCode == 200 {
			var lr loginResponse
			if json.Unmarshal(body, &lr) == nil {
				admin.csrf = lr.CSRFToken
			}
		}
	}

	f.Fuzz(func(t *testing.T, kind, method uint8, path, ctype string, body []byte) {
		if len(body) > 2*MaxBodyBytes {
			body = body[:2*MaxBodyBytes]
		}
		base, m, target, asAdmin := r.ts.URL, "POST", "", true
		switch kind % 6 {
		case 0:
			target, asAdmin = "/api/v1/login", false
		case 1:
			base, target, asAdmin = inactive.ts.URL, "/api/v1/activate", false
		case 2:
			target = "/api/v1/locks/unlock"
		case 3:
			m, target = "PUT", "/api/v1/policy"
		case 4:
			m, target = "GET", "/api/v1/audit?"+path
		default:
			if strings.Contains(path, "logout") {
				return
			}
			m, target = fuzzMethods[int(method)%len(fuzzMethods)], "/api/v1/"+path
		}
		if strings.ContainsFunc(target, func(r rune) bool { return r <= ' ' || r == 0x7f }) {
			return // not a request line (net/http itself answers 400 text/plain)
		}
		var rd io.Reader
		if m != "GET" {
			rd = bytes.NewReader(body)
		}
		req, err := http.NewRequest(m, base+target, rd)
		if err != nil {
			return // not a URL a client could send
		}
		if ctype != "" {
			req.Header["Content-Type"] = []string{ctype}
		}
		req.Header.Set("X-Forwarded-For", "198.51.100.77")
		hc := http.DefaultClient
		if asAdmin {
			hc = admin.hc
			req.Header.Set("X-Forwarded-For", "192.0.2.1")
			req.Header.Set(CSRFHeader, admin.csrf)
		}
		resp, err := hc.Do(req)
		if err != nil {
			return // the client refused to send it (bad header bytes)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		checkClientAnswer(t, m+" "+target, resp, b)
		if asAdmin && resp.StatusCode == http.StatusUnauthorized {
			relogin() // the input revoked the admin's sessions
		}
	})
}

// FuzzSessionCookie sends arbitrary Cookie headers to an API route, a page
// and a state-changing route: never a 5xx, never a session from garbage.
func FuzzSessionCookie(f *testing.F) {
	r := newRig(f)
	admin := r.adminClient("")
	u, _ := url.Parse(r.ts.URL)
	var token string
	for _, c := range admin.hc.Jar.Cookies(u) {
		if c.Name == cookieName {
			token = c.Value
		}
	}
	for _, s := range []string{
		cookieName + "=" + token,
		secureCookieName + "=" + token,
		cookieName + "=" + token + "x",
		cookieName + "=" + token[:42] + "!",
		cookieName + "=" + strings.Repeat("A", 43),
		cookieName + "=" + strings.Repeat("A", 5000),
		cookieName + "=\"" + token + "\"",
		cookieName + "=; " + cookieName + "=" + token,
		cookieName + "=%00%ff",
		cookieName + "=\xff\xfe",
		"a=b; c=d; " + cookieName,
		";;;===",
		"",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, cookie string) {
		for _, tc := range []struct{ method, path string }{{"GET", "/api/v1/me"}, {"GET", "/account"}, {"POST", "/api/v1/locks/unlock"}} {
			req, err := http.NewRequest(tc.method, r.ts.URL+tc.path, strings.NewReader(`{"all":true}`))
			if err != nil {
				t.Fatal(err)
			}
			req.Header.Set("Content-Type", "application/json")
			req.Header.Set("Cookie", cookie)
			resp, err := (&http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}).Do(req)
			if err != nil {
				return
			}
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			checkClientAnswer(t, tc.method+" "+tc.path, resp, b)
			if resp.StatusCode == 200 && tc.method == "GET" && !strings.Contains(cookie, token) {
				t.Fatalf("cookie %q without the session token was accepted", cookie)
			}
		}
	})
}
