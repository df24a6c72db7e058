package web

import (
	"bytes"
	"context"
	"io"
	"log"
	"log/slog"
	"mime/quotedprintable"
	"net"
	"net/mail"
	"regexp"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-smtp"

	"github.com/latchnvr/latch/nvr/notify"
)

// mailbox is a real SMTP server (github.com/emersion/go-smtp, as in the
// notify package's tests) on 127.0.0.1 that keeps every message, and the
// notifier that delivers the rig's outbox to it. Tests deliver explicitly
// (deliver), so nothing waits on a background loop.
type mailbox struct {
	t        testing.TB
	host     string
	port     int
	notifier *notify.Notifier

	mu  sync.Mutex
	got []receivedMail
}

type receivedMail struct {
	to      []string
	subject string
	body    string // decoded
}

func (r *rig) startMailbox() *mailbox {
	r.t.Helper()
	mb := &mailbox{t: r.t}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		r.t.Fatal(err)
	}
	srv := smtp.NewServer(smtp.BackendFunc(func(*smtp.Conn) (smtp.Session, error) { return &mailSession{mb: mb}, nil }))
	srv.Domain = "mx.test"
	srv.ReadTimeout, srv.WriteTimeout = 10*time.Second, 10*time.Second
	srv.ErrorLog = log.New(io.Discard, "", 0)
	go func() { _ = srv.Serve(ln) }()
	r.t.Cleanup(func() { srv.Close() })
	addr := ln.Addr().(*net.TCPAddr)
	mb.host, mb.port = addr.IP.String(), addr.Port
	mb.notifier = notify.New(r.db, r.clk, notify.Config{SMTP: notify.SMTPConfig{Host: mb.host, Port: mb.port,
		From: "Latch NVR <nvr@latch.test>", Security: notify.Plain, Timeout: 10 * time.Second}}, slog.New(slog.DiscardHandler))
	return mb
}

// deliver sends every due outbox message now.
func (mb *mailbox) deliver() {
	mb.t.Helper()
	if _, failed, err := mb.notifier.DeliverDue(context.Background()); err != nil || failed != 0 {
		mb.t.Fatalf("DeliverDue: %d failed, %v", failed, err)
	}
}

func (mb *mailbox) messages() []receivedMail {
	mb.mu.Lock()
	defer mb.mu.Unlock()
	return append([]receivedMail(nil), mb.got...)
}

var mailedCode = regexp.MustCompile(`Recovery code: ([A-Z2-7-]+)`)

// code returns the recovery code of the newest mail to addr.
func (mb *mailbox) code(addr string) string {
	mb.t.Helper()
	msgs := mb.messages()
	for i := len(msgs) - 1; i >= 0; i-- {
		if len(msgs[i].to) == 1 && msgs[i].to[0] == addr {
			if m := mailedCode.FindStringSubmatch(msgs[i].body); m != nil {
				return m[1]
			}
		}
	}
	mb.t.Fatalf("no recovery code mailed to %s: %+v", addr, msgs)
	return ""
}

type mailSession struct {
	mb *mailbox
	to []string
}

func (s *mailSession) Mail(string, *smtp.MailOptions) error { return nil }
func (s *mailSession) Rcpt(to string, _ *smtp.RcptOptions) error {
	s.to = append(s.to, to)
	return nil
}

func (s *mailSession) Data(r io.Reader) error {
	data, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	msg, err := mail.ReadMessage(bytes.NewReader(data))
	if err != nil {
		return err
	}
	body, err := io.ReadAll(quotedprintable.NewReader(msg.Body))
	if err != nil {
		return err
	}
	s.mb.mu.Lock()
	s.mb.got = append(s.mb.got, receivedMail{to: s.to, subject: msg.Header.Get("Subject"), body: string(body)})
	s.mb.mu.Unlock()
	return nil
}

func (s *mailSession) Reset()        { s.to = nil }
func (s *mailSession) Logout() error { return nil }
