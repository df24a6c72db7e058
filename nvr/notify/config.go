package notify

import (
	"crypto/tls"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/http"
	"net/mail"
	"net/netip"
	"net/url"
	"strings"
	"time"
)

// Config says where notifications go and how hard to try. The zero value
// is valid and delivers nothing (messages stay queued). Enable e-mail by
// setting SMTP.Host and the webhook by setting Webhook.URL; both may be on.
type Config struct {
	SMTP    SMTPConfig
	Webhook WebhookConfig

	// MaxAttempts is how many times a message is tried before it is
	// abandoned. 0 means DefaultMaxAttempts.
	MaxAttempts int
	// MinBackoff is the delay before the first retry; each further retry
	// doubles it, up to MaxBackoff. Every delay is jittered down by up to a
	// half ("equal jitter"), so it lies in [d/2, d]. 0 means
	// DefaultMinBackoff and DefaultMaxBackoff.
	MinBackoff time.Duration
	MaxBackoff time.Duration
	// PollInterval is how often Run looks for new messages when nothing is
	// scheduled sooner (logins only enqueue; call Wake to skip the wait).
	// 0 means DefaultPollInterval.
	PollInterval time.Duration
	// BatchSize is how many due messages are read at a time. 0 means 32.
	BatchSize int
	// Rand is the jitter source. nil means a generator seeded from
	// crypto/rand; tests pass a seeded one for reproducible schedules. The
	// notifier serialises its use.
	Rand *rand.Rand
	// Observe, if set, is called once per message attempt with its result:
	// ResultDelivered, ResultFailed (will be retried) or ResultAbandoned.
	// (*metrics.Metrics).Delivery has this signature.
	Observe func(result string)
}

// Delivery results reported to Config.Observe.
const (
	ResultDelivered = "delivered"
	ResultFailed    = "failed"
	ResultAbandoned = "abandoned"
)

// Defaults for the zero fields of Config.
const (
	DefaultMaxAttempts  = 10
	DefaultMinBackoff   = 30 * time.Second
	DefaultMaxBackoff   = time.Hour
	DefaultPollInterval = 5 * time.Second
	DefaultSMTPTimeout  = 30 * time.Second
	DefaultHookTimeout  = 10 * time.Second
	defaultBatch        = 32
)

// Security is how the SMTP connection is protected.
type Security string

const (
	// StartTLS upgrades a plain connection with STARTTLS and refuses to go
	// on without it. The default (except on port 465).
	StartTLS Security = "starttls"
	// Opportunistic uses STARTTLS when the server offers it and sends in
	// clear otherwise. Credentials are never sent in clear: AUTH without
	// TLS fails.
	Opportunistic Security = "opportunistic"
	// ImplicitTLS speaks TLS from the first byte (SMTPS, port 465). The
	// default on port 465.
	ImplicitTLS Security = "tls"
	// Plain never encrypts, for a relay on the box or a trusted LAN. It
	// cannot be combined with a user name.
	Plain Security = "none"
)

// SMTPConfig is the mail server. Host "" disables e-mail.
type SMTPConfig struct {
	Host string
	// Port 0 means 587 (465 with ImplicitTLS).
	Port int
	// Username and Password, if set, authenticate with AUTH PLAIN (or
	// LOGIN when that is all the server offers), only ever over TLS.
	Username string
	Password string
	// From is the sender, "nvr@example.com" or "Latch NVR <nvr@example.com>".
	From string
	// Security "" means StartTLS, or ImplicitTLS on port 465.
	Security Security
	// TLSConfig, if set, is the TLS client configuration (RootCAs for a
	// private CA, client certificates); ServerName defaults to Host.
	TLSConfig *tls.Config
	// InsecureSkipVerify accepts any server certificate. For tests and
	// self-signed relays only; the connection is then encrypted but not
	// authenticated.
	InsecureSkipVerify bool
	// HelloName is the EHLO name; "" means "localhost".
	HelloName string
	// Timeout bounds one delivery (connect, TLS, the whole conversation).
	// 0 means DefaultSMTPTimeout.
	Timeout time.Duration
}

// WebhookConfig is the webhook. URL "" disables it.
type WebhookConfig struct {
	// URL receives every message as a JSON POST (see Payload).
	URL string
	// Secret is the HMAC-SHA256 key that signs each request (see Sign);
	// at least MinSecretLen bytes.
	Secret string
	// Timeout bounds one request. 0 means DefaultHookTimeout.
	Timeout time.Duration
	// Client, if set, sends the requests (tests pass an httptest client).
	// nil means a client that follows no redirects, so a signed body never
	// goes anywhere but URL.
	Client *http.Client
}

// MinSecretLen is the shortest webhook secret accepted: a short key can be
// brute-forced offline from a single signed request.
const MinSecretLen = 16

// Enabled reports whether e-mail delivery is configured.
func (c SMTPConfig) Enabled() bool { return c.Host != "" }

// Enabled reports whether webhook delivery is configured.
func (c WebhookConfig) Enabled() bool { return c.URL != "" }

// Validate reports every problem with c, so a misconfigured server fails
// at start-up instead of at the first lockout.
func (c Config) Validate() error {
	var errs []error
	bad := func(format string, a ...any) { errs = append(errs, fmt.Errorf(format, a...)) }
	if c.MaxAttempts < 0 {
		bad("notify: max attempts %d: want 0 (default) or more", c.MaxAttempts)
	}
	if c.MinBackoff < 0 || c.MaxBackoff < 0 || c.PollInterval < 0 || c.BatchSize < 0 {
		bad("notify: back-off, poll interval and batch size must not be negative")
	}
	if c.MinBackoff > 0 && c.MaxBackoff > 0 && c.MinBackoff > c.MaxBackoff {
		bad("notify: min back-off %v exceeds max back-off %v", c.MinBackoff, c.MaxBackoff)
	}
	if s := c.SMTP; s.Enabled() {
		if strings.ContainsAny(s.Host, " \t\r\n/") {
			bad("notify: smtp host %q: want a host name or address", s.Host)
		}
		if s.Port < 0 || s.Port > 65535 {
			bad("notify: smtp port %d: want 1-65535", s.Port)
		}
		switch s.security() {
		case StartTLS, Opportunistic, ImplicitTLS:
		case Plain:
			if s.Username != "" {
				bad("notify: smtp security %q with a user name would send the password in clear; use starttls or tls", Plain)
			}
		default:
			bad("notify: smtp security %q: want starttls, opportunistic, tls or none", s.Security)
		}
		if s.Password != "" && s.Username == "" {
			bad("notify: smtp password without a user name")
		}
		if strings.ContainsAny(s.Username+s.Password, "\x00\r\n") {
			bad("notify: smtp user name or password contains NUL, CR or LF")
		}
		if s.From == "" {
			bad("notify: smtp sender (from) is required")
		} else if _, err := parseAddress(s.From); err != nil {
			bad("notify: smtp sender %q: %v", s.From, err)
		}
		if s.HelloName != "" && !isHostname(s.HelloName) {
			bad("notify: smtp hello name %q: want a host name", s.HelloName)
		}
		if s.Timeout < 0 {
			bad("notify: smtp timeout must not be negative")
		}
	}
	if w := c.Webhook; w.Enabled() {
		u, err := url.Parse(w.URL)
		switch {
		case err != nil:
			bad("notify: webhook url: %v", err)
		case u.Scheme != "http" && u.Scheme != "https":
			bad("notify: webhook url %s: want http or https", redactURL(u))
		case u.Host == "":
			bad("notify: webhook url %s: no host", redactURL(u))
		}
		if len(w.Secret) < MinSecretLen {
			bad("notify: webhook secret: want at least %d bytes (got %d)", MinSecretLen, len(w.Secret))
		}
		if w.Timeout < 0 {
			bad("notify: webhook timeout must not be negative")
		}
	}
	return errors.Join(errs...)
}

func (c SMTPConfig) security() Security {
	if c.Security == "" {
		if c.Port == 465 {
			return ImplicitTLS
		}
		return StartTLS
	}
	return Security(strings.ToLower(string(c.Security)))
}

func (c SMTPConfig) port() int {
	switch {
	case c.Port != 0:
		return c.Port
	case c.security() == ImplicitTLS:
		return 465
	}
	return 587
}

func (c SMTPConfig) timeout() time.Duration {
	if c.Timeout > 0 {
		return c.Timeout
	}
	return DefaultSMTPTimeout
}

func (c SMTPConfig) helloName() string {
	if c.HelloName != "" {
		return c.HelloName
	}
	return "localhost"
}

func (c SMTPConfig) tlsConfig() *tls.Config {
	var tc *tls.Config
	if c.TLSConfig != nil {
		tc = c.TLSConfig.Clone()
	} else {
		tc = &tls.Config{}
	}
	if tc.ServerName == "" {
		tc.ServerName = c.Host
	}
	if tc.MinVersion < tls.VersionTLS12 {
		tc.MinVersion = tls.VersionTLS12
	}
	if c.InsecureSkipVerify {
		tc.InsecureSkipVerify = true
	}
	return tc
}

func (c WebhookConfig) timeout() time.Duration {
	if c.Timeout > 0 {
		return c.Timeout
	}
	return DefaultHookTimeout
}

// withDefaults fills the zero fields.
func (c Config) withDefaults() Config {
	if c.MaxAttempts == 0 {
		c.MaxAttempts = DefaultMaxAttempts
	}
	if c.MinBackoff == 0 {
		c.MinBackoff = DefaultMinBackoff
	}
	if c.MaxBackoff == 0 {
		c.MaxBackoff = max(DefaultMaxBackoff, c.MinBackoff)
	}
	if c.PollInterval == 0 {
		c.PollInterval = DefaultPollInterval
	}
	if c.BatchSize == 0 {
		c.BatchSize = defaultBatch
	}
	return c
}

// isHostname accepts letters, digits, '-', '.' and an address literal in
// brackets: what may follow EHLO.
func isHostname(s string) bool {
	if s == "" || len(s) > 255 {
		return false
	}
	if strings.HasPrefix(s, "[") && strings.HasSuffix(s, "]") {
		_, err := netip.ParseAddr(strings.TrimPrefix(s[1:len(s)-1], "IPv6:"))
		return err == nil
	}
	for _, r := range s {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '.') {
			return false
		}
	}
	return true
}

// parseAddress parses one RFC 5322 address and refuses anything a header or
// an SMTP command could be split on.
func parseAddress(s string) (*mail.Address, error) {
	if strings.ContainsFunc(s, isControl) {
		return nil, errors.New("contains control characters")
	}
	a, err := mail.ParseAddress(s)
	if err != nil {
		return nil, err
	}
	if strings.ContainsFunc(a.Address, func(r rune) bool { return isControl(r) || r == ' ' || r == '<' || r == '>' }) {
		return nil, errors.New("malformed address")
	}
	return a, nil
}
