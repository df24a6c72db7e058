package notify

import (
	"crypto/tls"
	"fmt"
	"net"
	"regexp"
	"strings"
	"testing"
	"time"
)

// TestSMTPStartTLSAuthPlain is the whole happy path against a real SMTP
// server: STARTTLS with a certificate the test made, AUTH PLAIN, and a
// message whose envelope, headers and body arrive as queued.
func TestSMTPStartTLSAuthPlain(t *testing.T) {
	e := newEnv(t)
	ms := startMailServer(t, withSTARTTLS)
	ms.user, ms.pass = "nvr", "s3cret pass"
	cfg := ms.config("") // default: STARTTLS required
	cfg.Username, cfg.Password = ms.user, ms.pass
	cfg.HelloName = "nvr.latch.test"
	var results []string
	log, _ := testLog(t)
	n := New(e.db, e.clk, Config{SMTP: cfg, Observe: func(r string) { results = append(results, r) }}, log)

	subject := "NVR account zoë locked"
	body := "After failed logins, the pair key of account zoë is locked for 5m.\nSecond line."
	id := e.enqueue("lock", "Zoë Admin <zoe@example.com>", subject, body)
	e.clk.Advance(3 * time.Second)
	e.deliver(n, 1, 0)

	got := ms.messages()
	if len(got) != 1 {
		t.Fatalf("server received %d messages, want 1", len(got))
	}
	m := got[0]
	if !m.tls || m.user != "nvr" {
		t.Fatalf("received over tls=%v as user %q; want TLS and AUTH as nvr", m.tls, m.user)
	}
	if m.from != "nvr@latch.test" || len(m.to) != 1 || m.to[0] != "zoe@example.com" {
		t.Fatalf("envelope from %q to %q", m.from, m.to)
	}
	h := m.header
	if h == nil {
		t.Fatalf("unparseable message:\n%s", m.data)
	}
	from, err := h.AddressList("From")
	if err != nil || len(from) != 1 || from[0].Address != "nvr@latch.test" || from[0].Name != "Latch NVR" {
		t.Errorf("From = %q (%v)", h.Get("From"), err)
	}
	to, err := h.AddressList("To")
	if err != nil || len(to) != 1 || to[0].Address != "zoe@example.com" || to[0].Name != "Zoë Admin" {
		t.Errorf("To = %q (%v)", h.Get("To"), err)
	}
	if s := decodeSubject(t, h); s != subject {
		t.Errorf("Subject decodes to %q, want %q (raw %q)", s, subject, h.Get("Subject"))
	}
	if !strings.HasPrefix(h.Get("Subject"), "=?utf-8?q?") {
		t.Errorf("non-ASCII subject not Q-encoded: %q", h.Get("Subject"))
	}
	date, err := h.Date()
	if err != nil || !date.Equal(epoch) {
		t.Errorf("Date = %q (%v), want the event time %v", h.Get("Date"), err, epoch)
	}
	if want := fmt.Sprintf("<latch.%d.%d@latch.test>", id, epoch.UnixNano()); h.Get("Message-Id") != want {
		t.Errorf("Message-ID = %q, want %q", h.Get("Message-Id"), want)
	}
	for k, want := range map[string]string{
		"Mime-Version": "1.0", "Content-Type": `text/plain; charset="utf-8"`,
		"Content-Transfer-Encoding": "quoted-printable", "Auto-Submitted": "auto-generated", "X-Latch-Kind": "lock",
	} {
		if h.Get(k) != want {
			t.Errorf("%s = %q, want %q", k, h.Get(k), want)
		}
	}
	if want := strings.ReplaceAll(body, "\n", "\r\n") + "\r\n"; m.body != want {
		t.Errorf("body = %q, want %q", m.body, want)
	}

	row := e.get(id)
	if row.DeliveredNS != e.clk.Now().UnixNano() || row.NextAttemptNS != 0 || row.Attempts != 1 || row.LastError != "" {
		t.Fatalf("row after delivery: %+v", row)
	}
	if len(results) != 1 || results[0] != ResultDelivered {
		t.Fatalf("observed %v", results)
	}
	e.deliver(n, 0, 0) // delivered once, not again
	if len(ms.messages()) != 1 {
		t.Fatalf("delivered twice")
	}
}

func TestSMTPImplicitTLS(t *testing.T) {
	e := newEnv(t)
	ms := startMailServer(t, implicitTLS)
	ms.user, ms.pass = "nvr", "pw"
	cfg := ms.config(ImplicitTLS)
	cfg.Username, cfg.Password = "nvr", "pw"
	n := New(e.db, e.clk, Config{SMTP: cfg}, nil)
	e.enqueue("hold", "admin@example.com", "NVR account bob hold", "held")
	e.deliver(n, 1, 0)
	if got := ms.messages(); len(got) != 1 || !got[0].tls || got[0].user != "nvr" {
		t.Fatalf("received %+v", got)
	}
}

// TestSMTPTLSPolicy: what each security mode does against servers with
// and without STARTTLS, and that credentials never travel in clear.
func TestSMTPTLSPolicy(t *testing.T) {
	tests := []struct {
		name     string
		server   serverMode
		security Security
		auth     bool
		trust    bool // give the client the server's CA
		insecure bool
		wantOK   bool
		wantErr  string
	}{
		{"starttls required, offered", withSTARTTLS, StartTLS, true, true, false, true, ""},
		{"starttls required, not offered", noTLS, StartTLS, false, false, false, false, "does not offer STARTTLS"},
		{"opportunistic, offered", withSTARTTLS, Opportunistic, true, true, false, true, ""},
		{"opportunistic, not offered, no auth", noTLS, Opportunistic, false, false, false, true, ""},
		{"opportunistic, not offered, auth", noTLS, Opportunistic, true, false, false, false, "refusing to send credentials"},
		{"plain", noTLS, Plain, false, false, false, true, ""},
		{"untrusted certificate", withSTARTTLS, StartTLS, false, false, false, false, "certificate"},
		{"untrusted certificate, insecure", withSTARTTLS, StartTLS, true, false, true, true, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t)
			ms := startMailServer(t, tt.server)
			cfg := ms.config(tt.security)
			if tt.auth {
				ms.user, ms.pass = "nvr", "pw"
				cfg.Username, cfg.Password = "nvr", "pw"
			}
			if !tt.trust {
				cfg.TLSConfig = nil
			}
			cfg.InsecureSkipVerify = tt.insecure
			n := New(e.db, e.clk, Config{SMTP: cfg}, nil)
			id := e.enqueue("lock", "alice@example.com", "s", "b")
			if tt.wantOK {
				e.deliver(n, 1, 0)
				m := ms.messages()[0]
				if m.tls != (tt.server == withSTARTTLS) {
					t.Fatalf("tls = %v", m.tls)
				}
				return
			}
			e.deliver(n, 0, 1)
			if row := e.get(id); !strings.Contains(row.LastError, tt.wantErr) || row.NextAttemptNS == 0 {
				t.Fatalf("row %+v; want a retry and an error containing %q", row, tt.wantErr)
			}
			if len(ms.messages()) != 0 {
				t.Fatalf("a message got through")
			}
			ms.mu.Lock()
			defer ms.mu.Unlock()
			if ms.mails != 0 || ms.authFail != 0 {
				t.Fatalf("the client went on to MAIL (%d) or sent credentials (%d failures)", ms.mails, ms.authFail)
			}
		})
	}
}

func TestSMTPAuthLogin(t *testing.T) {
	e := newEnv(t)
	ms := startMailServer(t, withSTARTTLS)
	ms.user, ms.pass, ms.loginOnly = "nvr", "pw", true
	cfg := ms.config(StartTLS)
	cfg.Username, cfg.Password = "nvr", "pw"
	n := New(e.db, e.clk, Config{SMTP: cfg}, nil)
	e.enqueue("lock", "a@example.com", "s", "b")
	e.deliver(n, 1, 0)
	if got := ms.messages(); len(got) != 1 || got[0].user != "nvr" {
		t.Fatalf("received %+v", got)
	}
}

func TestSMTPWrongPassword(t *testing.T) {
	e := newEnv(t)
	ms := startMailServer(t, withSTARTTLS)
	ms.user, ms.pass = "nvr", "right"
	cfg := ms.config("")
	cfg.Username, cfg.Password = "nvr", "wrong"
	n := New(e.db, e.clk, Config{SMTP: cfg}, nil)
	id := e.enqueue("lock", "alice@example.com", "s", "b")
	e.deliver(n, 0, 1)
	row := e.get(id)
	// A configuration problem: retried (someone may fix it), not abandoned.
	if !strings.Contains(row.LastError, "smtp auth") || !strings.Contains(row.LastError, "535") || row.NextAttemptNS == 0 {
		t.Fatalf("row %+v", row)
	}
	if strings.Contains(row.LastError, "wrong") {
		t.Fatalf("the password leaked into the error: %q", row.LastError)
	}
}

// schedule drives one message against a server that always answers RCPT
// with 451 until it is abandoned, and returns the delays chosen.
func schedule(t *testing.T, seed uint64) []time.Duration {
	e := newEnv(t)
	ms := startMailServer(t, noTLS)
	ms.rcptReply = func(int, string) error { return smtpReply(451, "mailbox busy, try later") }
	var results []string
	log, logs := testLog(t)
	cfg := Config{SMTP: ms.config(Plain), MaxAttempts: 5, MinBackoff: time.Minute, MaxBackoff: 3 * time.Minute,
		Rand: seeded(seed), Observe: func(r string) { results = append(results, r) }}
	n := New(e.db, e.clk, cfg, log)
	id := e.enqueue("lock", "alice@example.com", "locked", "body")

	var delays []time.Duration
	for attempt := 1; attempt <= 5; attempt++ {
		e.deliver(n, 0, 1)
		row := e.get(id)
		if row.Attempts != attempt || !strings.Contains(row.LastError, "451") || !strings.Contains(row.LastError, "rcpt to") {
			t.Fatalf("attempt %d: row %+v", attempt, row)
		}
		if attempt == 5 {
			if row.NextAttemptNS != 0 || row.DeliveredNS != 0 {
				t.Fatalf("not abandoned after %d attempts: %+v", attempt, row)
			}
			break
		}
		delay := time.Duration(row.NextAttemptNS - e.clk.Now().UnixNano())
		// Exponential, capped, jittered into [d/2, d].
		d := min(time.Minute<<(attempt-1), 3*time.Minute)
		if delay < d/2 || delay > d {
			t.Fatalf("attempt %d: retry in %v, want within [%v, %v]", attempt, delay, d/2, d)
		}
		delays = append(delays, delay)

		// Not a moment early: nothing is sent before the retry is due.
		_, rcpts := ms.counts()
		e.clk.Advance(delay - 1)
		e.deliver(n, 0, 0)
		if _, r := ms.counts(); r != rcpts {
			t.Fatalf("attempt %d: retried %v early", attempt, time.Nanosecond)
		}
		e.clk.Advance(1)
	}
	// Abandoned for good.
	e.clk.Advance(24 * time.Hour)
	e.deliver(n, 0, 0)
	if _, rcpts := ms.counts(); rcpts != 5 {
		t.Fatalf("server saw %d RCPTs, want 5", rcpts)
	}
	if want := []string{ResultFailed, ResultFailed, ResultFailed, ResultFailed, ResultAbandoned}; fmt.Sprint(results) != fmt.Sprint(want) {
		t.Fatalf("observed %v, want %v", results, want)
	}
	if !strings.Contains(logs.String(), "notification abandoned") || !strings.Contains(logs.String(), "too many attempts") {
		t.Fatalf("abandonment not logged:\n%s", logs)
	}
	return delays
}

// TestRetryBackoffThenAbandon: a server that rejects RCPT with a temporary
// error gets retries on an exponential, jittered schedule driven by the
// simulated clock, then the message is abandoned. The jitter comes from the
// injected source: the same seed, the same schedule.
func TestRetryBackoffThenAbandon(t *testing.T) {
	a := schedule(t, 7)
	b := schedule(t, 7)
	c := schedule(t, 8)
	if fmt.Sprint(a) != fmt.Sprint(b) {
		t.Fatalf("same seed, different schedules: %v vs %v", a, b)
	}
	if fmt.Sprint(a) == fmt.Sprint(c) {
		t.Fatalf("different seeds, same schedule %v: is the jitter used?", a)
	}
	t.Logf("retry delays (seed 7): %v", a)
}

// TestServerDownRetriesThenAbandons: nothing listens; every attempt fails
// to connect until the message is abandoned.
func TestServerDownRetriesThenAbandons(t *testing.T) {
	e := newEnv(t)
	cfg := Config{
		SMTP:        SMTPConfig{Host: "127.0.0.1", Port: closedPort(t), From: "nvr@latch.test", Security: Plain},
		MaxAttempts: 3, MinBackoff: 10 * time.Second, MaxBackoff: time.Minute, Rand: seeded(1),
	}
	n := New(e.db, e.clk, cfg, nil)
	id := e.enqueue("new_device", "bob@example.com", "New sign-in to your NVR", "b")
	var prev time.Duration
	for attempt := 1; attempt <= 3; attempt++ {
		e.deliver(n, 0, 1)
		row := e.get(id)
		if !strings.Contains(row.LastError, "smtp connect") {
			t.Fatalf("attempt %d: last error %q", attempt, row.LastError)
		}
		if attempt == 3 {
			if row.NextAttemptNS != 0 || row.Attempts != 3 {
				t.Fatalf("not abandoned: %+v", row)
			}
			return
		}
		delay := time.Duration(row.NextAttemptNS - e.clk.Now().UnixNano())
		if attempt > 1 && delay < prev/2 {
			t.Fatalf("back-off shrank: %v after %v", delay, prev)
		}
		prev = delay
		e.clk.Advance(delay)
	}
}

// TestDeadServerTriedOncePerPass: when the server fails before RCPT, the
// other due messages of the pass are charged the same failure instead of
// each waiting out the same timeout.
func TestDeadServerTriedOncePerPass(t *testing.T) {
	e := newEnv(t)
	ms := startMailServer(t, noTLS)
	ms.mailReply = func(int, string) error { return smtpReply(421, "shutting down") }
	n := New(e.db, e.clk, Config{SMTP: ms.config(Plain), Rand: seeded(1)}, nil)
	ids := []int64{e.enqueue("lock", "a@example.com", "1", ""), e.enqueue("lock", "b@example.com", "2", ""), e.enqueue("lock", "c@example.com", "3", "")}
	e.deliver(n, 0, 3)
	if s, _ := ms.counts(); s != 1 {
		t.Fatalf("%d sessions for one pass, want 1", s)
	}
	for _, id := range ids[1:] {
		if row := e.get(id); !strings.Contains(row.LastError, "not attempted") || !strings.Contains(row.LastError, "421") || row.NextAttemptNS == 0 {
			t.Fatalf("row %+v", row)
		}
	}
}

// TestPermanentRejectAbandonsAtOnce: a 5xx answer to RCPT will not change
// with retries (RFC 5321); neither will an address that does not parse.
func TestPermanentRejectAbandonsAtOnce(t *testing.T) {
	e := newEnv(t)
	ms := startMailServer(t, noTLS)
	ms.rcptReply = func(_ int, to string) error {
		if to == "gone@example.com" {
			return smtpReply(550, "no such user")
		}
		return nil
	}
	var results []string
	n := New(e.db, e.clk, Config{SMTP: ms.config(Plain), Observe: func(r string) { results = append(results, r) }}, nil)
	gone := e.enqueue("lock", "gone@example.com", "s", "b")
	bad := e.enqueue("lock", "not an address", "s", "b")
	ok := e.enqueue("lock", "ok@example.com", "s", "b")
	e.deliver(n, 1, 2)
	for id, want := range map[int64]string{gone: "550", bad: "invalid address"} {
		if row := e.get(id); row.NextAttemptNS != 0 || row.Attempts != 1 || !strings.Contains(row.LastError, want) {
			t.Fatalf("row %+v; want abandoned with %q", row, want)
		}
	}
	if e.get(ok).DeliveredNS == 0 {
		t.Fatalf("a permanent failure of one message stopped another")
	}
	if fmt.Sprint(results) != "[abandoned abandoned delivered]" {
		t.Fatalf("observed %v", results)
	}
}

func TestTransientFailuresThenDelivery(t *testing.T) {
	e := newEnv(t)
	ms := startMailServer(t, noTLS)
	ms.rcptReply = func(n int, _ string) error {
		if n <= 2 {
			return smtpReply(451, "greylisted")
		}
		return nil
	}
	n := New(e.db, e.clk, Config{SMTP: ms.config(Plain), Rand: seeded(3)}, nil)
	id := e.enqueue("password_reset", "carol@example.com", "Password reset", "Your password was reset.")
	for range 2 {
		e.deliver(n, 0, 1)
		e.clk.AdvanceTo(e.get(id).NextAttemptNS - epoch.UnixNano())
	}
	e.deliver(n, 1, 0)
	if row := e.get(id); row.Attempts != 3 || row.DeliveredNS == 0 || row.LastError != "" {
		t.Fatalf("row %+v", row)
	}
	if got := ms.messages(); len(got) != 1 || got[0].header.Get("X-Latch-Kind") != "password_reset" {
		t.Fatalf("received %+v", got)
	}
}

// TestHeaderInjection: CR/LF and encoded-word tricks in the subject, a
// recipient that tries to add a header or a second recipient, and a body
// that tries to end DATA early, against the real server.
func TestHeaderInjection(t *testing.T) {
	e := newEnv(t)
	ms := startMailServer(t, noTLS)
	n := New(e.db, e.clk, Config{SMTP: ms.config(Plain)}, nil)

	subject := "locked\r\nBcc: evil@attacker.test\r\n\r\nfake body"
	body := "line one\r\n.\r\nMAIL FROM:<evil@attacker.test>\r\n..\n.\nend"
	e.enqueue("lock", "alice@example.com", subject, body)
	e.enqueue("lock", "alice@example.com", "=?utf-8?q?Your_NVR_was_updated?=", "b")
	badRcpt := []int64{
		e.enqueue("lock", "alice@example.com\r\nBcc: evil@attacker.test", "s", "b"),
		e.enqueue("lock", "alice@example.com>\r\nRCPT TO:<evil@attacker.test", "s", "b"),
		e.enqueue("lock", "Alice\n <alice@example.com>", "s", "b"),
		e.enqueue("lock", "alice@example.com, evil@attacker.test", "s", "b"),
	}
	e.deliver(n, 2, len(badRcpt))

	got := ms.messages()
	if len(got) != 2 {
		t.Fatalf("server received %d messages, want 2", len(got))
	}
	for _, m := range got {
		if len(m.to) != 1 || m.to[0] != "alice@example.com" {
			t.Fatalf("envelope recipients %q", m.to)
		}
		if m.header.Get("Bcc") != "" || strings.Contains(string(m.data), "\nBcc:") {
			t.Fatalf("a Bcc header got in:\n%s", m.data)
		}
		head, qp, _ := strings.Cut(string(m.data), "\r\n\r\n")
		for _, line := range strings.Split(head, "\r\n") {
			if strings.ContainsAny(line, "\r\n") || len(line) > 998 {
				t.Fatalf("bad header line %q", line)
			}
		}
		for _, line := range strings.Split(qp, "\r\n") {
			if strings.ContainsAny(line, "\r\n") || len(line) > 76 {
				t.Fatalf("bad body line %q", line)
			}
		}
	}
	if s := decodeSubject(t, got[0].header); s != "locked Bcc: evil@attacker.test fake body" {
		t.Fatalf("subject %q", s)
	}
	if want := "line one\r\n.\r\nMAIL FROM:<evil@attacker.test>\r\n..\r\n.\r\nend\r\n"; got[0].body != want {
		t.Fatalf("body %q, want %q", got[0].body, want)
	}
	// The encoded word arrives as the literal text, not as what it encodes.
	raw := got[1].header.Get("Subject")
	if s := decodeSubject(t, got[1].header); s != "=?utf-8?q?Your_NVR_was_updated?=" {
		t.Fatalf("spoof subject decodes to %q (raw %q)", s, raw)
	}
	for _, id := range badRcpt {
		if row := e.get(id); row.NextAttemptNS != 0 || !strings.Contains(row.LastError, "invalid address") {
			t.Fatalf("recipient %q: row %+v", row.Recipient, row)
		}
	}
}

// TestDeliveryNeverBlocksTheDatabase: while a delivery hangs on a server
// that never answers, the write path (what a login uses) stays free, and
// shutting down interrupts the hung delivery without charging an attempt.
func TestDeliveryNeverBlocksTheDatabase(t *testing.T) {
	e := newEnv(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	accepted := make(chan net.Conn, 1)
	go func() {
		c, err := ln.Accept()
		if err == nil {
			accepted <- c // hold it open, say nothing
		}
	}()
	cfg := Config{SMTP: SMTPConfig{Host: "127.0.0.1", Port: ln.Addr().(*net.TCPAddr).Port, From: "nvr@latch.test",
		Security: Plain, Timeout: time.Hour}}
	n := New(e.db, e.clk, cfg, nil)
	id := e.enqueue("lock", "alice@example.com", "s", "b")

	ctx, cancel := contextWithCancel(t)
	done := make(chan error, 1)
	go func() {
		_, _, err := n.DeliverDue(ctx)
		done <- err
	}()
	conn := <-accepted // the delivery is now waiting for a greeting
	defer conn.Close()

	// A login's transaction commits meanwhile.
	other := e.enqueue("lock", "bob@example.com", "s", "b")
	if e.get(other).ID != other {
		t.Fatal("enqueue during delivery failed")
	}
	select {
	case err := <-done:
		t.Fatalf("DeliverDue returned early: %v", err)
	default:
	}
	cancel()
	if err := <-done; err == nil {
		t.Fatalf("DeliverDue after cancel: nil error")
	}
	if row := e.get(id); row.Attempts != 0 || row.NextAttemptNS != epoch.UnixNano() {
		t.Fatalf("an interrupted attempt was charged: %+v", row)
	}
}

func TestMessageIDDomainAndDefaults(t *testing.T) {
	for addr, want := range map[string]string{
		"nvr@Latch.Test": "latch.test", "nvr@[127.0.0.1]": "latch.invalid", "nvr": "latch.invalid",
	} {
		if got := mailDomain(addr); got != want {
			t.Errorf("mailDomain(%q) = %q, want %q", addr, got, want)
		}
	}
	c := SMTPConfig{Host: "mx"}
	if c.port() != 587 || c.security() != StartTLS {
		t.Errorf("defaults: port %d security %s", c.port(), c.security())
	}
	c.Port = 465
	if c.security() != ImplicitTLS {
		t.Errorf("port 465 defaults to %s", c.security())
	}
	tc := (SMTPConfig{Host: "mx.example.com"}).tlsConfig()
	if tc.ServerName != "mx.example.com" || tc.MinVersion != tls.VersionTLS12 || tc.InsecureSkipVerify {
		t.Errorf("tls config %+v", tc)
	}
	if !regexp.MustCompile(`^<latch\.5\.7@x\.test>$`).MatchString(messageID(storeMsg(5, 7), "x.test")) {
		t.Errorf("message id %s", messageID(storeMsg(5, 7), "x.test"))
	}
}
