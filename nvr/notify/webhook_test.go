package notify

import (
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

const secret = "0123456789abcdef-webhook-secret"

// hookServer records what an httptest server receives and answers with
// the status its reply function chooses.
type hookServer struct {
	*httptest.Server
	mu    sync.Mutex
	reqs  []hookRequest
	reply func(n int) (status int, header http.Header)
}

type hookRequest struct {
	header http.Header
	body   []byte
}

func startHook(t *testing.T) *hookServer {
	h := &hookServer{}
	h.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		h.mu.Lock()
		h.reqs = append(h.reqs, hookRequest{r.Header.Clone(), body})
		n, reply := len(h.reqs), h.reply
		h.mu.Unlock()
		if r.Method != http.MethodPost || r.Header.Get("Content-Type") != "application/json" {
			http.Error(w, "bad request", http.StatusBadRequest)
			return
		}
		status := http.StatusNoContent
		if reply != nil {
			var hdr http.Header
			status, hdr = reply(n)
			for k, v := range hdr {
				w.Header()[k] = v
			}
		}
		w.WriteHeader(status)
	}))
	t.Cleanup(h.Close)
	return h
}

func (h *hookServer) requests() []hookRequest {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]hookRequest(nil), h.reqs...)
}

func TestWebhookSignedDelivery(t *testing.T) {
	e := newEnv(t)
	hs := startHook(t)
	n := New(e.db, e.clk, Config{Webhook: WebhookConfig{URL: hs.URL + "/hooks/latch", Secret: secret}}, nil)
	id := e.enqueue("recovery_code", "dave@example.com", "Recovery code used", "A recovery code was used.\nEight remain.")
	e.clk.Advance(2 * time.Second)
	e.deliver(n, 1, 0)

	reqs := hs.requests()
	if len(reqs) != 1 {
		t.Fatalf("%d requests, want 1", len(reqs))
	}
	r := reqs[0]
	now := e.clk.Now()
	if err := VerifySignature([]byte(secret), r.header, r.body, now, 5*time.Minute); err != nil {
		t.Fatalf("signature: %v (headers %v)", err, r.header)
	}
	if ts := r.header.Get(TimestampHeader); ts != strconv.FormatInt(now.Unix(), 10) {
		t.Fatalf("timestamp %s, want the clock's %d", ts, now.Unix())
	}
	if r.header.Get(DeliveryHeader) != strconv.FormatInt(id, 10) || r.header.Get(KindHeader) != "recovery_code" {
		t.Fatalf("headers %v", r.header)
	}
	var p Payload
	dec := json.NewDecoder(strings.NewReader(string(r.body)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&p); err != nil {
		t.Fatal(err)
	}
	want := Payload{ID: id, Kind: "recovery_code", Recipient: "dave@example.com", Subject: "Recovery code used",
		Body: "A recovery code was used.\nEight remain.", Created: epoch}
	if p != want {
		t.Fatalf("payload %+v, want %+v", p, want)
	}
	var raw map[string]any
	_ = json.Unmarshal(r.body, &raw)
	for _, k := range []string{"kind", "recipient", "subject", "body", "created"} {
		if _, ok := raw[k]; !ok {
			t.Errorf("payload lacks %q: %s", k, r.body)
		}
	}

	// What a receiver must refuse: a tampered body, the wrong key, a
	// replay outside the window, a missing or forged timestamp.
	tampered := []byte(strings.Replace(string(r.body), "dave", "mallory", 1))
	if err := VerifySignature([]byte(secret), r.header, tampered, now, 5*time.Minute); !errors.Is(err, ErrBadSignature) {
		t.Errorf("tampered body: %v", err)
	}
	if err := VerifySignature([]byte("another-secret-entirely"), r.header, r.body, now, 5*time.Minute); !errors.Is(err, ErrBadSignature) {
		t.Errorf("wrong secret: %v", err)
	}
	if err := VerifySignature([]byte(secret), r.header, r.body, now.Add(10*time.Minute), 5*time.Minute); !errors.Is(err, ErrStale) {
		t.Errorf("replay 10 minutes later: %v", err)
	}
	moved := r.header.Clone()
	moved.Set(TimestampHeader, strconv.FormatInt(now.Add(10*time.Minute).Unix(), 10))
	if err := VerifySignature([]byte(secret), moved, r.body, now.Add(10*time.Minute), 5*time.Minute); !errors.Is(err, ErrBadSignature) {
		t.Errorf("re-stamped replay: %v", err)
	}
	moved.Del(TimestampHeader)
	if err := VerifySignature([]byte(secret), moved, r.body, now, 5*time.Minute); !errors.Is(err, ErrBadSignature) {
		t.Errorf("no timestamp: %v", err)
	}
}

// TestWebhookRetryAfter: a 503 with Retry-After postpones the retry at
// least that long; then the delivery succeeds.
func TestWebhookRetryAfter(t *testing.T) {
	e := newEnv(t)
	hs := startHook(t)
	hs.reply = func(n int) (int, http.Header) {
		if n == 1 {
			return http.StatusServiceUnavailable, http.Header{"Retry-After": {"600"}}
		}
		return http.StatusOK, nil
	}
	var results []string
	n := New(e.db, e.clk, Config{Webhook: WebhookConfig{URL: hs.URL, Secret: secret}, MinBackoff: time.Minute,
		Rand: seeded(1), Observe: func(r string) { results = append(results, r) }}, nil)
	id := e.enqueue("lock", "a@example.com", "s", "b")
	e.deliver(n, 0, 1)
	row := e.get(id)
	if delay := time.Duration(row.NextAttemptNS - e.clk.Now().UnixNano()); delay != 10*time.Minute {
		t.Fatalf("retry in %v, want the server's 10m", delay)
	}
	if !strings.Contains(row.LastError, "HTTP 503") {
		t.Fatalf("last error %q", row.LastError)
	}
	e.clk.Advance(10*time.Minute - time.Second)
	e.deliver(n, 0, 0)
	e.clk.Advance(time.Second)
	e.deliver(n, 1, 0)
	if len(hs.requests()) != 2 || strings.Join(results, ",") != "failed,delivered" {
		t.Fatalf("%d requests, results %v", len(hs.requests()), results)
	}
}

// TestBothChannelsRetryOnlyTheFailedOne: the webhook accepted, the mail
// server did not; the retry goes to the mail server only.
func TestBothChannelsRetryOnlyTheFailedOne(t *testing.T) {
	e := newEnv(t)
	hs := startHook(t)
	ms := startMailServer(t, noTLS)
	ms.rcptReply = func(n int, _ string) error {
		if n == 1 {
			return smtpReply(452, "insufficient storage")
		}
		return nil
	}
	n := New(e.db, e.clk, Config{SMTP: ms.config(Plain), Webhook: WebhookConfig{URL: hs.URL, Secret: secret}, Rand: seeded(2)}, nil)
	id := e.enqueue("hold", "admin@example.com", "NVR account bob hold", "held")
	e.deliver(n, 0, 1)
	if row := e.get(id); !strings.Contains(row.LastError, "smtp rcpt to: 452") || strings.Contains(row.LastError, "webhook") {
		t.Fatalf("last error %q", row.LastError)
	}
	e.clk.AdvanceTo(e.get(id).NextAttemptNS - epoch.UnixNano())
	e.deliver(n, 1, 0)
	if len(hs.requests()) != 1 || len(ms.messages()) != 1 {
		t.Fatalf("webhook got %d requests, mail server %d messages; want 1 each", len(hs.requests()), len(ms.messages()))
	}
}

// TestWebhookFollowsNoRedirect: a signed body goes to the configured URL
// and nowhere else.
func TestWebhookFollowsNoRedirect(t *testing.T) {
	e := newEnv(t)
	elsewhere := startHook(t)
	redirector := startHook(t)
	redirector.reply = func(int) (int, http.Header) {
		return http.StatusTemporaryRedirect, http.Header{"Location": {elsewhere.URL}}
	}
	n := New(e.db, e.clk, Config{Webhook: WebhookConfig{URL: redirector.URL, Secret: secret}}, nil)
	id := e.enqueue("lock", "a@example.com", "s", "b")
	e.deliver(n, 0, 1)
	if len(elsewhere.requests()) != 0 {
		t.Fatalf("the redirect was followed")
	}
	if row := e.get(id); !strings.Contains(row.LastError, "HTTP 307") {
		t.Fatalf("last error %q", row.LastError)
	}
}

// TestWebhookErrorsHideTheURLsSecrets: tokens in the URL never reach the
// stored error or the log.
func TestWebhookErrorsHideTheURLsSecrets(t *testing.T) {
	e := newEnv(t)
	log, logs := testLog(t)
	url := "http://user:hunter2@127.0.0.1:" + strconv.Itoa(closedPort(t)) + "/hook?token=tok-SECRET"
	n := New(e.db, e.clk, Config{Webhook: WebhookConfig{URL: url, Secret: secret}}, log)
	id := e.enqueue("lock", "a@example.com", "s", "b")
	e.deliver(n, 0, 1)
	row := e.get(id)
	if !strings.Contains(row.LastError, "127.0.0.1") {
		t.Fatalf("last error %q does not say where", row.LastError)
	}
	for _, leak := range []string{"tok-SECRET", "hunter2"} {
		if strings.Contains(row.LastError, leak) || strings.Contains(logs.String(), leak) {
			t.Fatalf("%q leaked: %q\n%s", leak, row.LastError, logs)
		}
	}
}

func TestRetryAfterParsing(t *testing.T) {
	now := epoch
	for v, want := range map[string]time.Duration{
		"": 0, "0": 0, "-5": 0, "120": 2 * time.Minute, "soon": 0,
		now.Add(90 * time.Second).Format(http.TimeFormat): 90 * time.Second,
		now.Add(-time.Hour).Format(http.TimeFormat):       0,
	} {
		if got := retryAfter(v, now); got != want {
			t.Errorf("retryAfter(%q) = %v, want %v", v, got, want)
		}
	}
}
