package notify

import (
	"context"
	"math"
	"mime"
	"net/http"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"
	"unicode/utf8"
)

// runner starts Run in the background and lets the test step it: after
// every pass Run reports the wait it armed its timer for.
type runner struct {
	t      *testing.T
	waits  chan time.Duration
	done   chan error
	cancel context.CancelFunc
}

func startRun(t *testing.T, n *Notifier) *runner {
	r := &runner{t: t, waits: make(chan time.Duration, 16), done: make(chan error, 1)}
	n.afterPass = func(d time.Duration) { r.waits <- d }
	ctx, cancel := context.WithCancel(t.Context())
	r.cancel = cancel
	go func() { r.done <- n.Run(ctx) }()
	t.Cleanup(r.stop)
	return r
}

// pass waits for Run to finish a pass and returns the wait it armed.
func (r *runner) pass() time.Duration {
	r.t.Helper()
	select {
	case d := <-r.waits:
		return d
	case err := <-r.done:
		r.t.Fatalf("Run returned %v", err)
	case <-time.After(30 * time.Second): // a hang, not a timing assumption
		r.t.Fatalf("Run made no pass")
	}
	return 0
}

func (r *runner) stop() {
	r.cancel()
	if err := <-r.done; err != nil {
		r.t.Errorf("Run returned %v after cancel", err)
	}
	r.done <- nil // let a second stop return
}

// TestRunFollowsTheClock: Run polls on the clock's timers, sleeps exactly
// until a retry is due, delivers then, and stops when its context ends.
func TestRunFollowsTheClock(t *testing.T) {
	e := newEnv(t)
	hs := startHook(t)
	var fail atomic.Bool
	fail.Store(true)
	hs.reply = func(int) (int, http.Header) {
		if fail.Load() {
			return 500, nil
		}
		return 200, nil
	}
	n := New(e.db, e.clk, Config{Webhook: WebhookConfig{URL: hs.URL, Secret: secret}, PollInterval: 10 * time.Second,
		MinBackoff: 2 * time.Minute, MaxBackoff: 2 * time.Minute, Rand: seeded(4)}, nil)
	r := startRun(t, n)
	if w := r.pass(); w != 10*time.Second {
		t.Fatalf("idle wait %v, want the poll interval", w)
	}

	id := e.enqueue("lock", "a@example.com", "s", "b") // no Wake: found by polling
	e.clk.Advance(10 * time.Second)
	w := r.pass()
	if len(hs.requests()) != 1 {
		t.Fatalf("%d requests after the poll", len(hs.requests()))
	}
	row := e.get(id)
	if row.Attempts != 1 || w != 10*time.Second {
		t.Fatalf("after the failed attempt: row %+v, wait %v", row, w)
	}
	// Polls keep coming until the retry is due; the last wait lands on it.
	fail.Store(false)
	due := row.NextAttemptNS
	for e.clk.Now().UnixNano() < due {
		e.clk.Advance(w)
		w = r.pass()
		if now := e.clk.Now().UnixNano(); now < due && w != min(10*time.Second, time.Duration(due-now)) {
			t.Fatalf("wait %v with the retry due in %v", w, time.Duration(due-now))
		}
	}
	if row := e.get(id); row.DeliveredNS != due {
		t.Fatalf("delivered at %v, want exactly when due (%v): %+v", row.DeliveredNS, due, row)
	}

	// Wake skips the wait.
	id = e.enqueue("lock", "b@example.com", "s", "b")
	n.Wake()
	r.pass()
	if e.get(id).DeliveredNS == 0 {
		t.Fatalf("Wake did not deliver")
	}
	r.stop()
}

// TestWallClockStepsBack: the wall clock stepping back neither delays a
// retry within the process nor strands the queue across a restart.
func TestWallClockStepsBack(t *testing.T) {
	e := newEnv(t)
	hs := startHook(t)
	var fail atomic.Bool
	fail.Store(true)
	hs.reply = func(int) (int, http.Header) {
		if fail.Load() {
			return 502, nil
		}
		return 204, nil
	}
	cfg := Config{Webhook: WebhookConfig{URL: hs.URL, Secret: secret}, MinBackoff: time.Minute, MaxBackoff: time.Minute, Rand: seeded(5)}
	n := New(e.db, e.clk, cfg, nil)
	id := e.enqueue("lock", "a@example.com", "s", "b")
	e.deliver(n, 0, 1)
	delay := time.Duration(e.get(id).NextAttemptNS - e.clk.Now().UnixNano())

	// NTP steps the clock back an hour; the retry is still due after the
	// back-off of monotonic time, not an hour later.
	e.clk.WallJump(-time.Hour)
	e.clk.Advance(delay)
	e.deliver(n, 0, 1) // still failing: proves it was attempted

	// Restart onto a clock reset to 1970 (RTC battery): the new process has
	// no memory of the old clock, but the message is scheduled further
	// ahead than any back-off could have put it, so it is tried now.
	e.clk.WallJump(time.Unix(0, 0).Sub(e.clk.Now()))
	log, logs := testLog(t)
	restarted := New(e.db, e.clk, cfg, log)
	e.deliver(restarted, 0, 1)
	if !strings.Contains(logs.String(), "wall clock must have been set back") {
		t.Fatalf("the step was not logged:\n%s", logs)
	}
	// The retry is scheduled on the clock as it now is: the rescue moved
	// the message, not the notifier's idea of the time.
	row := e.get(id)
	if ahead := time.Duration(row.NextAttemptNS - e.clk.Now().UnixNano()); ahead <= 0 || ahead > time.Minute {
		t.Fatalf("retry scheduled %v ahead of the clock", ahead)
	}
	fail.Store(false)
	e.clk.Advance(time.Minute)
	e.deliver(restarted, 1, 0)
	if row := e.get(id); row.DeliveredNS != e.clk.Now().UnixNano() {
		t.Fatalf("delivered_ns %d is not the wall clock %d", row.DeliveredNS, e.clk.Now().UnixNano())
	}
	// A message queued by the stepped clock is delivered too.
	e.enqueue("lock", "b@example.com", "s", "b")
	e.deliver(restarted, 1, 0)
	if reqs := hs.requests(); reqs[len(reqs)-1].header.Get(TimestampHeader) != strconv.FormatInt(e.clk.Now().Unix(), 10) {
		t.Fatalf("webhook timestamp %s is not the wall clock", reqs[len(reqs)-1].header.Get(TimestampHeader))
	}
}

func TestDisabledLeavesTheQueueAlone(t *testing.T) {
	e := newEnv(t)
	n := New(e.db, e.clk, Config{}, nil)
	id := e.enqueue("lock", "a@example.com", "s", "b")
	e.deliver(n, 0, 0)
	if row := e.get(id); row.Attempts != 0 || row.NextAttemptNS == 0 {
		t.Fatalf("row touched: %+v", row)
	}
	if err := n.Run(t.Context()); err != nil {
		t.Fatalf("Run with nothing configured: %v", err)
	}
	if b, err := n.Backlog(t.Context()); err != nil || b != 1 {
		t.Fatalf("Backlog = %d, %v", b, err)
	}
}

func TestConfigValidation(t *testing.T) {
	good := SMTPConfig{Host: "mx.example.com", From: "nvr@example.com"}
	hook := WebhookConfig{URL: "https://hooks.example.com/latch", Secret: secret}
	tests := []struct {
		name string
		cfg  Config
		want string // "" means valid
	}{
		{"zero", Config{}, ""},
		{"smtp", Config{SMTP: good}, ""},
		{"webhook", Config{Webhook: hook}, ""},
		{"both", Config{SMTP: good, Webhook: hook}, ""},
		{"no sender", Config{SMTP: SMTPConfig{Host: "mx"}}, "sender (from) is required"},
		{"bad sender", Config{SMTP: SMTPConfig{Host: "mx", From: "nvr@example.com\r\nBcc: x@y"}}, "control characters"},
		{"bad port", Config{SMTP: SMTPConfig{Host: "mx", From: "a@b", Port: 70000}}, "port"},
		{"bad security", Config{SMTP: SMTPConfig{Host: "mx", From: "a@b", Security: "ssl3"}}, "security"},
		{"password in clear", Config{SMTP: SMTPConfig{Host: "mx", From: "a@b", Security: Plain, Username: "u"}}, "in clear"},
		{"password only", Config{SMTP: SMTPConfig{Host: "mx", From: "a@b", Password: "p"}}, "without a user name"},
		{"bad hello", Config{SMTP: SMTPConfig{Host: "mx", From: "a@b", HelloName: "x\r\nMAIL"}}, "hello name"},
		{"bad host", Config{SMTP: SMTPConfig{Host: "mx\r\n", From: "a@b"}}, "host"},
		{"hook scheme", Config{Webhook: WebhookConfig{URL: "ftp://x/y", Secret: secret}}, "http or https"},
		{"hook host", Config{Webhook: WebhookConfig{URL: "http:///y", Secret: secret}}, "no host"},
		{"hook secret", Config{Webhook: WebhookConfig{URL: "https://x", Secret: "short"}}, "secret"},
		{"backoff order", Config{MinBackoff: time.Hour, MaxBackoff: time.Minute}, "exceeds"},
		{"negative", Config{MaxAttempts: -1}, "max attempts"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.cfg.Validate()
			if tt.want == "" {
				if err != nil {
					t.Fatalf("Validate: %v", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("Validate = %v, want an error containing %q", err, tt.want)
			}
		})
	}

	// An invalid configuration delivers nothing and says why.
	e := newEnv(t)
	n := New(e.db, e.clk, Config{Webhook: WebhookConfig{URL: "https://x", Secret: "short"}}, nil)
	if _, _, err := n.DeliverDue(t.Context()); err == nil {
		t.Fatal("DeliverDue with an invalid config: nil error")
	}
	if err := n.Run(t.Context()); err == nil {
		t.Fatal("Run with an invalid config: nil error")
	}
	if n.Enabled() {
		t.Fatal("an invalid config is enabled")
	}
}

func TestBackoffBounds(t *testing.T) {
	n := New(nil, nil, Config{MinBackoff: time.Second, MaxBackoff: time.Hour, Rand: seeded(9)}, nil)
	for attempts := 1; attempts < 80; attempts++ {
		d := min(time.Second<<min(attempts-1, 20), time.Hour)
		for range 50 {
			got := n.backoffLocked(attempts, 0)
			if got < d/2 || got > d {
				t.Fatalf("attempt %d: %v outside [%v, %v]", attempts, got, d/2, d)
			}
		}
	}
	if got := n.backoffLocked(1, 5*time.Minute); got != 5*time.Minute {
		t.Fatalf("Retry-After floor ignored: %v", got)
	}
	if got := n.backoffLocked(1, 48*time.Hour); got != time.Hour {
		t.Fatalf("Retry-After not capped: %v", got)
	}
	huge := New(nil, nil, Config{MinBackoff: time.Duration(math.MaxInt64 / 3), MaxBackoff: math.MaxInt64, Rand: seeded(9)}, nil)
	if got := huge.backoffLocked(100, 0); got <= 0 {
		t.Fatalf("overflow: %v", got)
	}
}

// FuzzEncodeSubject: whatever the subject, the header value is one logical
// line (folds are CRLF + space), every line is short, and it decodes back
// to the sanitised text.
func FuzzEncodeSubject(f *testing.F) {
	for _, s := range []string{
		"", "plain", "NVR account zoë locked", "a\r\nBcc: x@y", "=?utf-8?q?spoof?=", "x =?utf-8?b?QQ==?= y",
		strings.Repeat("ö", 300), strings.Repeat("a", 300), "\x00\x7f\u0085\u2028tail", "bad \xff utf8",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		enc := encodeSubject(s)
		for i, line := range strings.Split(enc, "\r\n") {
			if strings.ContainsAny(line, "\r\n") {
				t.Fatalf("bare CR/LF in %q", enc)
			}
			if i > 0 && !strings.HasPrefix(line, " ") {
				t.Fatalf("continuation line without folding space in %q", enc)
			}
			if len(line) > 998-len("Subject: ") {
				t.Fatalf("line of %d bytes", len(line))
			}
		}
		unfolded := strings.ReplaceAll(enc, "\r\n", "")
		got, err := new(mime.WordDecoder).DecodeHeader(unfolded)
		if err != nil {
			t.Fatalf("decode %q: %v", enc, err)
		}
		want := headerText(s, maxSubjectRunes)
		if got != want {
			t.Fatalf("round trip %q -> %q -> %q, want %q", s, enc, got, want)
		}
		if utf8.RuneCountInString(want) > maxSubjectRunes {
			t.Fatalf("not truncated: %d runes", utf8.RuneCountInString(want))
		}
	})
}
