package soak

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/netip"
	"strconv"
	"strings"
)

// sessionCookie is the session cookie over plain HTTP (docs/API.md).
const sessionCookie = "latch_session"

// loginAnswer is what POST /api/v1/login said.
type loginAnswer struct {
	status        int
	instant, wall int64 // X-Latch-Instant, X-Latch-Wall (--debug-clock)
	errCode       string
	scope         string
	remaining     *int
	retryAfter    *int64
	retryHeader   string
	csrf          string
	cookie        string
	raw           string
}

type loginBody struct {
	Error             string `json:"error"`
	Scope             string `json:"scope"`
	RemainingAttempts *int   `json:"remaining_attempts"`
	RetryAfterSeconds *int64 `json:"retry_after_seconds"`
	CSRFToken         string `json:"csrf_token"`
}

// login sends one attempt from source src (carried in X-Forwarded-For; the
// server trusts 127.0.0.1 as a proxy).
func (e *Engine) login(base, user, password, src string) (*loginAnswer, error) {
	body, err := json.Marshal(map[string]string{"username": user, "password": password})
	if err != nil {
		return nil, err
	}
	req, err := http.NewRequest("POST", base+"/api/v1/login", bytes.NewReader(body))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-Forwarded-For", src)
	resp, err := e.http.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	if err != nil {
		return nil, err
	}
	a := &loginAnswer{status: resp.StatusCode, raw: strings.TrimSpace(string(b)), retryHeader: resp.Header.Get("Retry-After")}
	if a.instant, err = strconv.ParseInt(resp.Header.Get("X-Latch-Instant"), 10, 64); err != nil {
		return nil, fmt.Errorf("answer %d %s without X-Latch-Instant (is --debug-clock on?)", resp.StatusCode, a.raw)
	}
	if a.wall, err = strconv.ParseInt(resp.Header.Get("X-Latch-Wall"), 10, 64); err != nil {
		return nil, fmt.Errorf("answer %d without X-Latch-Wall", resp.StatusCode)
	}
	var lb loginBody
	if err := json.Unmarshal(b, &lb); err != nil {
		return nil, fmt.Errorf("answer %d: %v: %s", resp.StatusCode, err, a.raw)
	}
	a.errCode, a.scope, a.remaining, a.retryAfter, a.csrf = lb.Error, lb.Scope, lb.RemainingAttempts, lb.RetryAfterSeconds, lb.CSRFToken
	for _, c := range resp.Cookies() {
		if c.Name == sessionCookie || c.Name == "__Host-"+sessionCookie {
			a.cookie = c.Value
		}
	}
	return a, nil
}

// adminSession is the engine's own admin (the activation account, from its
// own source): it unlocks and resets for the simulator's helpdesk.
type adminSession struct {
	cookie, csrf string
}

// adminLogin signs the engine's admin in. It is an attempt like any other:
// the shadow decides it too.
func (e *Engine) adminLogin() error {
	d, ans := e.attempt(adminUser, adminSource, "(soakadmin password)", e.simInstant(), true)
	if ans == nil {
		return fmt.Errorf("boot %d: admin login failed", e.boot)
	}
	if ans.status != http.StatusOK || ans.cookie == "" {
		return fmt.Errorf("boot %d: admin login: %d %s (model: %s)", e.boot, ans.status, ans.raw, describe(d))
	}
	e.admin = adminSession{cookie: ans.cookie, csrf: ans.csrf}
	return nil
}

// adminDo calls the admin API, signing in again when the session ended
// (sessions expire by the warped wall clock within seconds of real time).
func (e *Engine) adminDo(method, path string, body any) (int, []byte, error) {
	var (
		code int
		b    []byte
		err  error
	)
	for try := 0; try < 3; try++ {
		if e.admin.cookie == "" {
			if err := e.adminLogin(); err != nil {
				return 0, nil, err
			}
		}
		code, b, err = e.do(method, e.srv.url+path, e.admin.cookie, e.admin.csrf, body)
		if err != nil {
			return code, b, err
		}
		if code == http.StatusUnauthorized || (code == http.StatusForbidden && bytes.Contains(b, []byte("csrf"))) {
			e.admin = adminSession{}
			continue
		}
		return code, b, nil
	}
	return code, b, err
}

func mustAddr(s string) netip.Addr { return netip.MustParseAddr(s) }
