package notify

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	crand "crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"io"
	"log"
	"log/slog"
	"math/big"
	mrand "math/rand/v2"
	"mime"
	"mime/quotedprintable"
	"net"
	"net/mail"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"

	"github.com/latchnvr/latch/nvr/clock"
	"github.com/latchnvr/latch/nvr/store"
)

var epoch = time.Date(2026, 3, 14, 12, 0, 0, 0, time.UTC)

// env is one test's database and simulated clock.
type env struct {
	t   *testing.T
	db  *store.DB
	clk *clock.Sim
	ctx context.Context
}

func newEnv(t *testing.T) *env {
	t.Helper()
	db, err := store.Open(filepath.Join(t.TempDir(), "latch.db"), store.Options{Rand: mrand.NewChaCha8([32]byte{1})})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return &env{t: t, db: db, clk: clock.NewSim(epoch), ctx: t.Context()}
}

// enqueue queues a message due now, the way the auth service does.
func (e *env) enqueue(kind, recipient, subject, body string) int64 {
	e.t.Helper()
	now := e.clk.Now().UnixNano()
	var id int64
	err := e.db.WithTx(e.ctx, func(tx *store.Tx) error {
		var err error
		id, err = tx.EnqueueOutbox(e.ctx, store.OutboxMessage{Kind: kind, Recipient: recipient,
			Subject: subject, Body: body, CreatedNS: now, NextAttemptNS: now})
		return err
	})
	if err != nil {
		e.t.Fatal(err)
	}
	return id
}

func (e *env) get(id int64) store.OutboxMessage {
	e.t.Helper()
	m, err := e.db.GetOutbox(e.ctx, id)
	if err != nil {
		e.t.Fatal(err)
	}
	return m
}

// deliver runs DeliverDue and checks its counts.
func (e *env) deliver(n *Notifier, wantDelivered, wantFailed int) {
	e.t.Helper()
	d, f, err := n.DeliverDue(e.ctx)
	if err != nil {
		e.t.Fatalf("DeliverDue: %v", err)
	}
	if d != wantDelivered || f != wantFailed {
		e.t.Fatalf("DeliverDue = %d delivered, %d failed; want %d, %d", d, f, wantDelivered, wantFailed)
	}
}

// logBuffer collects a notifier's log lines (and echoes them to the test
// output) so tests can check what the operator is told.
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
	out io.Writer
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.buf.Write(p)
	return l.out.Write(p)
}

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.String()
}

func testLog(t *testing.T) (*slog.Logger, *logBuffer) {
	lb := &logBuffer{out: t.Output()}
	return slog.New(slog.NewTextHandler(lb, &slog.HandlerOptions{Level: slog.LevelDebug})), lb
}

// seeded is a reproducible jitter source.
func seeded(seed uint64) *mrand.Rand { return mrand.New(mrand.NewPCG(seed, 0)) }

// selfSigned makes a certificate for 127.0.0.1 and a pool that trusts it.
func selfSigned(t *testing.T) (tls.Certificate, *x509.CertPool) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), crand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: "mx.test"},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
		DNSNames:     []string{"mx.test", "localhost"},
		IPAddresses:  []net.IP{net.IPv4(127, 0, 0, 1)},
		KeyUsage:     x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		IsCA:         true, BasicConstraintsValid: true,
	}
	der, err := x509.CreateCertificate(crand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(cert)
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: cert}, pool
}

// mailServer is a real SMTP server (github.com/emersion/go-smtp) on
// 127.0.0.1 that records what it receives.
type mailServer struct {
	host string
	port int
	pool *x509.CertPool // trusts the server's certificate (TLS servers)

	// Set before use:
	user, pass string                         // AUTH required when set
	loginOnly  bool                           // offer AUTH LOGIN instead of PLAIN
	rcptReply  func(n int, to string) error   // the n-th RCPT's answer (1-based)
	mailReply  func(n int, from string) error // the n-th MAIL's answer
	onData     func(m *receivedMail)          // called with each accepted message

	mu       sync.Mutex
	sessions int
	mails    int
	rcpts    int
	authFail int
	got      []*receivedMail
}

type receivedMail struct {
	from   string
	to     []string
	data   []byte
	tls    bool
	user   string
	header mail.Header
	body   string // decoded quoted-printable
}

type serverMode int

const (
	noTLS serverMode = iota
	withSTARTTLS
	implicitTLS
)

func startMailServer(t *testing.T, mode serverMode) *mailServer {
	t.Helper()
	ms := &mailServer{}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := smtp.NewServer(smtp.BackendFunc(func(c *smtp.Conn) (smtp.Session, error) {
		ms.mu.Lock()
		ms.sessions++
		ms.mu.Unlock()
		return &mailSession{ms: ms, conn: c}, nil
	}))
	s.Domain = "mx.test"
	s.ReadTimeout, s.WriteTimeout = 10*time.Second, 10*time.Second
	s.MaxMessageBytes = 1 << 20
	s.ErrorLog = log.New(io.Discard, "", 0)
	if mode != noTLS {
		cert, pool := selfSigned(t)
		s.TLSConfig = &tls.Config{Certificates: []tls.Certificate{cert}}
		ms.pool = pool
		if mode == implicitTLS {
			ln = tls.NewListener(ln, s.TLSConfig)
		}
	}
	go func() { _ = s.Serve(ln) }()
	t.Cleanup(func() { s.Close() })
	addr := ln.Addr().(*net.TCPAddr)
	ms.host, ms.port = addr.IP.String(), addr.Port
	return ms
}

func (ms *mailServer) messages() []*receivedMail {
	ms.mu.Lock()
	defer ms.mu.Unlock()
	return append([]*receivedMail(nil), ms.got...)
}

func (ms *mailServer) counts() (sessions, rcpts int) {
	ms.mu.Lock()
	defer ms.mu.Unlock()
	return ms.sessions, ms.rcpts
}

type mailSession struct {
	ms   *mailServer
	conn *smtp.Conn
	user string
	from string
	to   []string
}

func (s *mailSession) AuthMechanisms() []string {
	if s.ms.loginOnly {
		return []string{"LOGIN"}
	}
	return []string{"PLAIN"}
}

func (s *mailSession) Auth(mech string) (sasl.Server, error) {
	check := func(user, pass string) error {
		if user != s.ms.user || pass != s.ms.pass || s.ms.user == "" {
			s.ms.mu.Lock()
			s.ms.authFail++
			s.ms.mu.Unlock()
			return smtp.ErrAuthFailed
		}
		s.user = user
		return nil
	}
	if mech == "LOGIN" {
		return &loginServer{check: check}, nil
	}
	return sasl.NewPlainServer(func(_, user, pass string) error { return check(user, pass) }), nil
}

// loginServer is the server side of the (obsolete but common) AUTH LOGIN.
type loginServer struct {
	check      func(user, pass string) error
	step       int
	user, pass string
}

func (l *loginServer) Next(response []byte) ([]byte, bool, error) {
	l.step++
	switch l.step {
	case 1:
		if response != nil { // initial response: the user name
			l.user = string(response)
			l.step++
			return []byte("Password:"), false, nil
		}
		return []byte("Username:"), false, nil
	case 2:
		l.user = string(response)
		return []byte("Password:"), false, nil
	default:
		return nil, true, l.check(l.user, string(response))
	}
}

func (s *mailSession) Mail(from string, _ *smtp.MailOptions) error {
	if s.ms.user != "" && s.user == "" {
		return smtp.ErrAuthRequired
	}
	s.ms.mu.Lock()
	s.ms.mails++
	n, reply := s.ms.mails, s.ms.mailReply
	s.ms.mu.Unlock()
	if reply != nil {
		if err := reply(n, from); err != nil {
			return err
		}
	}
	s.from = from
	return nil
}

func (s *mailSession) Rcpt(to string, _ *smtp.RcptOptions) error {
	s.ms.mu.Lock()
	s.ms.rcpts++
	n, reply := s.ms.rcpts, s.ms.rcptReply
	s.ms.mu.Unlock()
	if reply != nil {
		if err := reply(n, to); err != nil {
			return err
		}
	}
	s.to = append(s.to, to)
	return nil
}

func (s *mailSession) Data(r io.Reader) error {
	data, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	_, isTLS := s.conn.TLSConnectionState()
	m := &receivedMail{from: s.from, to: s.to, data: data, tls: isTLS, user: s.user}
	if msg, err := mail.ReadMessage(bytes.NewReader(data)); err == nil {
		m.header = msg.Header
		b, _ := io.ReadAll(quotedprintable.NewReader(msg.Body))
		m.body = string(b)
	}
	s.ms.mu.Lock()
	s.ms.got = append(s.ms.got, m)
	onData := s.ms.onData
	s.ms.mu.Unlock()
	if onData != nil {
		onData(m)
	}
	return nil
}

func (s *mailSession) Reset()        { s.from, s.to = "", nil }
func (s *mailSession) Logout() error { return nil }

// smtpConfig is a notifier configuration for ms.
func (ms *mailServer) config(sec Security) SMTPConfig {
	c := SMTPConfig{Host: ms.host, Port: ms.port, From: "Latch NVR <nvr@latch.test>", Security: sec, Timeout: 10 * time.Second}
	if ms.pool != nil {
		c.TLSConfig = &tls.Config{RootCAs: ms.pool}
	}
	return c
}

// decodeSubject decodes a received Subject header.
func decodeSubject(t *testing.T, h mail.Header) string {
	t.Helper()
	s, err := new(mime.WordDecoder).DecodeHeader(h.Get("Subject"))
	if err != nil {
		t.Fatalf("decode subject %q: %v", h.Get("Subject"), err)
	}
	return s
}

func smtpReply(code int, msg string) error {
	return &smtp.SMTPError{Code: code, EnhancedCode: smtp.EnhancedCode{code / 100, 0, 0}, Message: msg}
}

// closedPort returns a 127.0.0.1 port nothing listens on.
func closedPort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	return port
}

func contextWithCancel(t *testing.T) (context.Context, context.CancelFunc) {
	return context.WithCancel(t.Context())
}

func storeMsg(id, created int64) store.OutboxMessage {
	return store.OutboxMessage{ID: id, Kind: "lock", Recipient: "a@example.com", CreatedNS: created}
}
