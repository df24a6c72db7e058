package notify

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/latchnvr/latch/nvr/store"
)

// Webhook request headers.
const (
	// SignatureHeader carries "sha256=" and the hex HMAC-SHA256, keyed with
	// the shared secret, of the timestamp, a ".", and the body.
	SignatureHeader = "X-Latch-Signature"
	// TimestampHeader is the Unix time (seconds) of sending. It is signed,
	// so a receiver that rejects old timestamps rejects replays.
	TimestampHeader = "X-Latch-Timestamp"
	// DeliveryHeader is the outbox id, the same on every retry of one
	// message, for receivers that deduplicate.
	DeliveryHeader = "X-Latch-Delivery"
	// KindHeader repeats the payload's kind, for routing without parsing.
	KindHeader = "X-Latch-Kind"
)

// Payload is the JSON body of a webhook request.
type Payload struct {
	ID        int64     `json:"id"`
	Kind      string    `json:"kind"`
	Recipient string    `json:"recipient"`
	Subject   string    `json:"subject"`
	Body      string    `json:"body"`
	Created   time.Time `json:"created"`
}

// Sign returns the SignatureHeader value for body sent at timestamp.
func Sign(secret []byte, timestamp int64, body []byte) string {
	mac := hmac.New(sha256.New, secret)
	mac.Write([]byte(strconv.FormatInt(timestamp, 10)))
	mac.Write([]byte{'.'})
	mac.Write(body)
	return "sha256=" + hex.EncodeToString(mac.Sum(nil))
}

// Errors from VerifySignature.
var (
	ErrBadSignature = errors.New("notify: webhook signature does not match")
	ErrStale        = errors.New("notify: webhook timestamp outside the accepted window")
)

// VerifySignature is the receiver's side: it checks the signature of body
// against header and that the signed timestamp is within tolerance of now
// (in either direction), which bounds replays to that window. Receivers
// that must reject every replay also remember DeliveryHeader values.
func VerifySignature(secret []byte, header http.Header, body []byte, now time.Time, tolerance time.Duration) error {
	ts, err := strconv.ParseInt(header.Get(TimestampHeader), 10, 64)
	if err != nil {
		return fmt.Errorf("%w: bad %s", ErrBadSignature, TimestampHeader)
	}
	want := Sign(secret, ts, body)
	if !hmac.Equal([]byte(header.Get(SignatureHeader)), []byte(want)) {
		return ErrBadSignature
	}
	if d := now.Sub(time.Unix(ts, 0)); d > tolerance || d < -tolerance {
		return fmt.Errorf("%w: signed at %s, now %s", ErrStale, time.Unix(ts, 0).UTC().Format(time.RFC3339), now.UTC().Format(time.RFC3339))
	}
	return nil
}

type webhook struct {
	cfg    WebhookConfig
	url    string
	shown  string // the URL without credentials or query, for errors and logs
	secret []byte
	client *http.Client
}

func newWebhook(cfg WebhookConfig) (*webhook, error) {
	u, err := url.Parse(cfg.URL)
	if err != nil {
		return nil, fmt.Errorf("notify: webhook url: %w", err)
	}
	client := cfg.Client
	if client == nil {
		client = &http.Client{
			Transport: http.DefaultTransport.(*http.Transport).Clone(),
			// A redirect is an answer (a failure), never a second
			// destination for a signed body.
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		}
	}
	return &webhook{cfg: cfg, url: cfg.URL, shown: redactURL(u), secret: []byte(cfg.Secret), client: client}, nil
}

// deliver POSTs m, signed at now.
func (h *webhook) deliver(ctx context.Context, m store.OutboxMessage, now time.Time) error {
	body, err := json.Marshal(Payload{
		ID: m.ID, Kind: m.Kind, Recipient: m.Recipient,
		Subject: headerText(m.Subject, maxSubjectRunes), Body: m.Body,
		Created: time.Unix(0, m.CreatedNS).UTC(),
	})
	if err != nil { // unreachable: strings and a time
		return &deliveryError{channel: "webhook", stage: "encode", err: err, permanent: true}
	}
	ctx, cancel := context.WithTimeout(ctx, h.cfg.timeout())
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, h.url, bytes.NewReader(body))
	if err != nil {
		return &deliveryError{channel: "webhook", stage: "request", err: errors.New("cannot build the request for " + h.shown), server: true}
	}
	ts := now.Unix()
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "latch-notify/1")
	req.Header.Set(TimestampHeader, strconv.FormatInt(ts, 10))
	req.Header.Set(SignatureHeader, Sign(h.secret, ts, body))
	req.Header.Set(DeliveryHeader, strconv.FormatInt(m.ID, 10))
	req.Header.Set(KindHeader, kindToken(m.Kind))

	resp, err := h.client.Do(req)
	if err != nil {
		return &deliveryError{channel: "webhook", stage: "post", err: scrubURLError(err, h.shown), server: true}
	}
	defer resp.Body.Close()
	snippet, _ := io.ReadAll(io.LimitReader(resp.Body, 256))
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10)) // let the connection be reused
	if resp.StatusCode >= 200 && resp.StatusCode < 300 {
		return nil
	}
	msg := fmt.Sprintf("%s answered HTTP %d", h.shown, resp.StatusCode)
	if s := headerText(string(snippet), 120); s != "" {
		msg += ": " + s
	}
	return &deliveryError{
		channel: "webhook", stage: "post", err: errors.New(msg),
		// Every status is retried: a 4xx from a receiver is most often
		// its configuration (a rotated secret, a route not deployed yet),
		// which someone fixes; MaxAttempts bounds the cost.
		server:     resp.StatusCode >= 500 || resp.StatusCode == http.StatusTooManyRequests || resp.StatusCode == http.StatusRequestTimeout,
		retryAfter: retryAfter(resp.Header.Get("Retry-After"), now),
	}
}

// retryAfter parses a Retry-After value (seconds or an HTTP date).
func retryAfter(v string, now time.Time) time.Duration {
	if v == "" {
		return 0
	}
	if s, err := strconv.ParseInt(strings.TrimSpace(v), 10, 64); err == nil {
		if s <= 0 {
			return 0
		}
		return time.Duration(min(s, int64(365*24*time.Hour/time.Second))) * time.Second
	}
	if t, err := http.ParseTime(v); err == nil && t.After(now) {
		return t.Sub(now)
	}
	return 0
}

// redactURL shows scheme, host and path: not user info, not the query
// (which often carries a token).
func redactURL(u *url.URL) string {
	return (&url.URL{Scheme: u.Scheme, Host: u.Host, Path: u.Path}).String()
}

// scrubURLError replaces the full URL that net/http puts in its errors.
func scrubURLError(err error, shown string) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return fmt.Errorf("%s %s: %w", ue.Op, shown, ue.Err)
	}
	return err
}
