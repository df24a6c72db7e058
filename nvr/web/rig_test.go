package web

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/netip"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/latchnvr/latch/model"
	"github.com/latchnvr/latch/nvr/auth"
	"github.com/latchnvr/latch/nvr/camera"
	"github.com/latchnvr/latch/nvr/clock"
	"github.com/latchnvr/latch/nvr/store"
)

const (
	adminName = "admin"
	adminPW   = "correct horse battery staple"
	bobPW     = "violet tangerine kayak 42"
	pin       = "482915"
)

var epoch = time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC)

// countingMetrics records MetricsHook calls.
type countingMetrics struct {
	mu sync.Mutex
	n  map[string]int
}

func (m *countingMetrics) Attempt(outcome, scope string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.n == nil {
		m.n = map[string]int{}
	}
	m.n[outcome+"/"+scope]++
}

func (m *countingMetrics) get(k string) int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.n[k]
}

// rig is a real server on loopback over a real SQLite database, with a
// simulated clock and one simulated camera.
type rig struct {
	t       testing.TB
	clk     *clock.Sim
	db      *store.DB
	svc     *auth.Service
	srv     *Server
	ts      *httptest.Server
	dataDir string
	cam     *camera.Camera
	metrics *countingMetrics
	proveFn func(model.Policy) (string, bool)
}

type rigOption func(*Config)

// trustLoopback makes 127.0.0.1 a trusted proxy, so each test client can
// be its own source through X-Forwarded-For.
func trustLoopback(c *Config) {
	c.TrustedProxies = []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32")}
}

func newRig(t testing.TB, opts ...rigOption) *rig {
	t.Helper()
	dir := t.TempDir()
	db, err := store.Open(filepath.Join(dir, "latch.db"), store.Options{FirmwareVersion: "test-1.0"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	r := &rig{t: t, clk: clock.NewSim(epoch), db: db, dataDir: dir, metrics: &countingMetrics{}}
	r.svc, err = auth.New(db, auth.Config{Clock: r.clk, Hasher: auth.NewHasher(auth.CheapParams, 2), Policy: model.Default(), BootID: 1})
	if err != nil {
		t.Fatal(err)
	}
	r.cam, err = camera.New(camera.Config{ID: "cam1", Name: "Front door", Width: 64, Height: 48}, r.clk)
	if err != nil {
		t.Fatal(err)
	}
	if err := r.cam.Start(nil); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(r.cam.Stop)
	cfg := Config{Auth: r.svc, DB: db, Cameras: func() []*camera.Camera { return []*camera.Camera{r.cam} }, DataDir: dir,
		Version: "1.2.3-test", Metrics: r.metrics,
		Prove: func(p model.Policy) (string, bool) {
			if r.proveFn != nil {
				return r.proveFn(p)
			}
			return "P-NODOS holds; P-BUDGET 5 guesses per source per day", true
		}}
	for _, o := range opts {
		o(&cfg)
	}
	r.srv, err = New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	r.ts = httptest.NewServer(r.srv.Handler())
	t.Cleanup(r.ts.Close)
	t.Cleanup(r.srv.Close) // runs first: ends streams so ts.Close does not wait
	return r
}

// activate activates the device through the API.
func (r *rig) activate() {
	r.t.Helper()
	c := r.client("")
	resp, body := c.do("POST", "/api/v1/activate", map[string]string{"username": adminName, "password": adminPW, "pin": pin})
	if resp.StatusCode != http.StatusCreated {
		r.t.Fatalf("activate: %d %s", resp.StatusCode, body)
	}
}

// client is one HTTP client with its own cookies, CSRF token and (behind
// trustLoopback) its own source address.
type client struct {
	t    testing.TB
	r    *rig
	hc   *http.Client
	csrf string
	xff  string
}

func (r *rig) client(xff string) *client {
	jar, _ := cookiejar.New(nil)
	return &client{t: r.t, r: r, xff: xff, hc: &http.Client{Jar: jar, Timeout: 30 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}}
}

// req builds a request; body may be nil, a string or []byte (sent as is
// with Content-Type application/json), or a value to marshal.
func (c *client) req(method, path string, body any) *http.Request {
	c.t.Helper()
	var rd io.Reader
	ct := ""
	switch b := body.(type) {
	case nil:
	case string:
		rd, ct = strings.NewReader(b), "application/json"
	case []byte:
		rd, ct = bytes.NewReader(b), "application/json"
	default:
		j, err := json.Marshal(b)
		if err != nil {
			c.t.Fatal(err)
		}
		rd, ct = bytes.NewReader(j), "application/json"
	}
	req, err := http.NewRequestWithContext(context.Background(), method, c.r.ts.URL+path, rd)
	if err != nil {
		c.t.Fatal(err)
	}
	if ct != "" {
		req.Header.Set("Content-Type", ct)
	}
	if c.xff != "" {
		req.Header.Set("X-Forwarded-For", c.xff)
	}
	if c.csrf != "" && method != "GET" {
		req.Header.Set(CSRFHeader, c.csrf)
	}
	return req
}

func (c *client) send(req *http.Request) (*http.Response, []byte) {
	c.t.Helper()
	resp, err := c.hc.Do(req)
	if err != nil {
		c.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		c.t.Fatal(err)
	}
	return resp, b
}

func (c *client) do(method, path string, body any) (*http.Response, []byte) {
	c.t.Helper()
	return c.send(c.req(method, path, body))
}

// login signs in and keeps the CSRF token; it fails the test unless 200.
func (c *client) login(user, pw string) loginResponse {
	c.t.Helper()
	resp, body := c.do("POST", "/api/v1/login", map[string]string{"username": user, "password": pw})
	if resp.StatusCode != http.StatusOK {
		c.t.Fatalf("login %s: %d %s", user, resp.StatusCode, body)
	}
	var lr loginResponse
	mustJSON(c.t, body, &lr)
	c.csrf = lr.CSRFToken
	return lr
}

// try is one login attempt; it returns the status and the decoded body.
func (c *client) try(user, pw string) (*http.Response, map[string]any) {
	c.t.Helper()
	resp, body := c.do("POST", "/api/v1/login", map[string]string{"username": user, "password": pw})
	m := map[string]any{}
	mustJSON(c.t, body, &m)
	return resp, m
}

func mustJSON(t testing.TB, b []byte, v any) {
	t.Helper()
	if err := json.Unmarshal(b, v); err != nil {
		t.Fatalf("not JSON (%v): %q", err, b)
	}
}

// adminClient activates the device and signs the admin in.
func (r *rig) adminClient(xff string) *client {
	r.t.Helper()
	r.activate()
	c := r.client(xff)
	c.login(adminName, adminPW)
	return c
}

// addUser creates a user through the API.
func (c *client) addUser(name, pw, role string) {
	c.t.Helper()
	resp, body := c.do("POST", "/api/v1/users", map[string]string{"name": name, "password": pw, "role": role})
	if resp.StatusCode != http.StatusCreated {
		c.t.Fatalf("add user %s: %d %s", name, resp.StatusCode, body)
	}
}

// wantError checks a JSON error response's status and code.
func wantError(t testing.TB, resp *http.Response, body []byte, status int, code string) {
	t.Helper()
	if resp.StatusCode != status {
		t.Fatalf("status %d, want %d: %s", resp.StatusCode, status, body)
	}
	var e apiError
	mustJSON(t, body, &e)
	if code != "" && e.Error != code {
		t.Fatalf("error %q, want %q: %s", e.Error, code, body)
	}
	if !strings.HasPrefix(resp.Header.Get("Content-Type"), "application/json") {
		t.Fatalf("error response Content-Type %q", resp.Header.Get("Content-Type"))
	}
}
