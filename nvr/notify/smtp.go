package notify

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/mail"
	"net/smtp"
	"net/textproto"
	"slices"
	"strconv"
	"time"

	"github.com/latchnvr/latch/nvr/store"
)

// The SMTP client is net/smtp rather than go-smtp's: opportunistic STARTTLS
// needs to look at the EHLO reply and then upgrade the same session, which
// go-smtp's client offers only as "STARTTLS or fail". The tests run a real
// go-smtp server.

// maxServerBytes bounds what a (possibly hostile) server may send us in
// one conversation; replies are a few hundred bytes.
const maxServerBytes = 1 << 20

type mailer struct {
	cfg    SMTPConfig
	from   *mail.Address
	domain string // for Message-ID
}

func newMailer(cfg SMTPConfig) (*mailer, error) {
	from, err := parseAddress(cfg.From)
	if err != nil {
		return nil, fmt.Errorf("notify: smtp sender %q: %w", cfg.From, err)
	}
	return &mailer{cfg: cfg, from: from, domain: mailDomain(from.Address)}, nil
}

func (mr *mailer) addr() string {
	return net.JoinHostPort(mr.cfg.Host, strconv.Itoa(mr.cfg.port()))
}

// deliver sends m to its recipient.
func (mr *mailer) deliver(ctx context.Context, m store.OutboxMessage) error {
	to, err := parseAddress(m.Recipient)
	if err != nil {
		// Retrying cannot make the address valid.
		return &deliveryError{channel: "smtp", stage: "recipient", err: fmt.Errorf("invalid address %q: %w", headerText(m.Recipient, 100), err), permanent: true}
	}
	return mr.send(ctx, to, buildMail(mr.from, to, mr.domain, m))
}

// send runs one SMTP conversation: connect, TLS as configured, AUTH if
// configured (only over TLS), MAIL, RCPT, DATA, QUIT. The whole of it is
// bounded by the configured timeout and by ctx.
func (mr *mailer) send(ctx context.Context, to *mail.Address, msg []byte) (err error) {
	ctx, cancel := context.WithTimeout(ctx, mr.cfg.timeout())
	defer cancel()
	stage := "connect"
	fail := func(err error) error { return classifySMTP(stage, err) }

	var d net.Dialer
	raw, err := d.DialContext(ctx, "tcp", mr.addr())
	if err != nil {
		return fail(err)
	}
	defer raw.Close()
	if dl, ok := ctx.Deadline(); ok {
		_ = raw.SetDeadline(dl)
	}
	// Cancelling ctx (shutdown) unblocks a read or write in progress.
	defer context.AfterFunc(ctx, func() { raw.Close() })()
	var conn net.Conn = &budgetConn{Conn: raw, left: maxServerBytes}

	tlsCfg := mr.cfg.tlsConfig()
	sec := mr.cfg.security()
	if sec == ImplicitTLS {
		stage = "tls"
		tc := tls.Client(conn, tlsCfg)
		if err := tc.HandshakeContext(ctx); err != nil {
			return fail(err)
		}
		conn = tc
	}
	stage = "greeting"
	c, err := smtp.NewClient(conn, mr.cfg.Host)
	if err != nil {
		return fail(err)
	}
	defer c.Close()
	stage = "ehlo"
	if err := c.Hello(mr.cfg.helloName()); err != nil {
		return fail(err)
	}
	encrypted := sec == ImplicitTLS
	if sec == StartTLS || sec == Opportunistic {
		if ok, _ := c.Extension("STARTTLS"); ok {
			stage = "starttls"
			if err := c.StartTLS(tlsCfg); err != nil {
				return fail(err)
			}
			encrypted = true
		} else if sec == StartTLS {
			stage = "starttls"
			return fail(errors.New("server does not offer STARTTLS and security is starttls"))
		}
	}
	if mr.cfg.Username != "" {
		stage = "auth"
		if !encrypted {
			return fail(errors.New("refusing to send credentials over an unencrypted connection (server offers no STARTTLS)"))
		}
		if err := c.Auth(&saslAuth{user: mr.cfg.Username, pass: mr.cfg.Password}); err != nil {
			return fail(err)
		}
	}
	stage = "mail from"
	if err := c.Mail(mr.from.Address); err != nil {
		return fail(err)
	}
	stage = "rcpt to"
	if err := c.Rcpt(to.Address); err != nil {
		return fail(err)
	}
	stage = "data"
	w, err := c.Data()
	if err != nil {
		return fail(err)
	}
	if _, err := w.Write(msg); err != nil {
		return fail(err)
	}
	if err := w.Close(); err != nil { // the server's verdict on the message
		return fail(err)
	}
	// The message is accepted; a failed QUIT changes nothing.
	_ = c.Quit()
	return nil
}

// classifySMTP decides what a failure at stage means:
//   - a 5xx reply to RCPT or to the message itself is permanent (RFC 5321:
//     the server will not take this message, however often we ask);
//   - any other reply (4xx anywhere; 5xx to MAIL or AUTH, usually a
//     configuration problem someone can fix) is retried;
//   - failures before RCPT, and network failures anywhere, are the server's,
//     so the rest of the pass does not wait for it again.
func classifySMTP(stage string, err error) error {
	de := &deliveryError{channel: "smtp", stage: stage, err: err}
	var reply *textproto.Error
	if errors.As(err, &reply) {
		switch stage {
		case "rcpt to", "data":
			de.permanent = reply.Code >= 500
		default:
			de.server = true
		}
		return de
	}
	de.server = true
	return de
}

// saslAuth is AUTH PLAIN, or LOGIN when that is all the server offers. It
// refuses to run without TLS, whatever the server says.
type saslAuth struct {
	user, pass string
	mech       string
	step       int
}

func (a *saslAuth) Start(si *smtp.ServerInfo) (string, []byte, error) {
	if !si.TLS {
		return "", nil, errors.New("refusing AUTH without TLS")
	}
	switch {
	case slices.Contains(si.Auth, "PLAIN"):
		a.mech = "PLAIN"
		return a.mech, []byte("\x00" + a.user + "\x00" + a.pass), nil
	case slices.Contains(si.Auth, "LOGIN"):
		a.mech = "LOGIN"
		return a.mech, nil, nil
	}
	return "", nil, fmt.Errorf("server offers no AUTH mechanism we support (PLAIN, LOGIN); it offers %q", si.Auth)
}

func (a *saslAuth) Next(fromServer []byte, more bool) ([]byte, error) {
	if !more {
		return nil, nil
	}
	if a.mech != "LOGIN" || a.step > 1 {
		return nil, fmt.Errorf("unexpected %s challenge %q", a.mech, headerText(string(fromServer), 64))
	}
	a.step++
	if a.step == 1 {
		return []byte(a.user), nil
	}
	return []byte(a.pass), nil
}

// budgetConn fails reads once the server has sent more than left bytes, so
// a hostile server cannot stream an endless reply line into memory.
type budgetConn struct {
	net.Conn
	left int64
}

func (c *budgetConn) Read(p []byte) (int, error) {
	if c.left <= 0 {
		return 0, errors.New("server sent more than a notification conversation needs")
	}
	if int64(len(p)) > c.left {
		p = p[:c.left]
	}
	n, err := c.Conn.Read(p)
	c.left -= int64(n)
	return n, err
}

// deliveryError is one channel's failure to deliver one message.
type deliveryError struct {
	channel string // "smtp" or "webhook"
	stage   string
	err     error
	// permanent: retrying cannot help; the message is abandoned.
	permanent bool
	// server: the server, not this message, failed; later messages in the
	// same pass are not sent to it.
	server bool
	// retryAfter is the server's requested minimum delay (webhook
	// Retry-After).
	retryAfter time.Duration
}

func (e *deliveryError) Error() string {
	return e.channel + " " + e.stage + ": " + e.err.Error()
}

func (e *deliveryError) Unwrap() error { return e.err }

// skipped is the failure recorded for a message not tried because its
// server already failed in this pass.
func (e *deliveryError) skipped() *deliveryError {
	c := *e
	c.err = fmt.Errorf("not attempted, server failed earlier in this pass: %w", e.err)
	c.permanent = false
	return &c
}
