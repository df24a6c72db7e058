package metrics_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil/promlint"

	"github.com/latchnvr/latch/nvr/metrics"
)

func TestAttemptsNormaliseLabels(t *testing.T) {
	m := metrics.New()
	m.Attempt("success", "")
	m.Attempt("success", "none")
	m.Attempt("wrong_secret", "")
	m.Attempt("refused", "pair")
	m.Attempt("refused", "pair")
	m.Attempt("refused", "held")
	// Unknown values and attacker-shaped input collapse into "other".
	m.Attempt("refused", "mars")
	m.Attempt("SUCCESS", "")
	m.Attempt("'; DROP TABLE users; --", "x\n")
	m.Attempt(strings.Repeat("a", 10000), "pair")

	want := `
# HELP latch_login_attempts_total Login attempts by outcome and, for refusals, the scope of the key that refused.
# TYPE latch_login_attempts_total counter
latch_login_attempts_total{outcome="error",scope="none"} 0
latch_login_attempts_total{outcome="other",scope="none"} 1
latch_login_attempts_total{outcome="other",scope="other"} 1
latch_login_attempts_total{outcome="other",scope="pair"} 1
latch_login_attempts_total{outcome="refused",scope="console"} 0
latch_login_attempts_total{outcome="refused",scope="disabled"} 0
latch_login_attempts_total{outcome="refused",scope="held"} 1
latch_login_attempts_total{outcome="refused",scope="other"} 1
latch_login_attempts_total{outcome="refused",scope="pair"} 2
latch_login_attempts_total{outcome="refused",scope="principal"} 0
latch_login_attempts_total{outcome="refused",scope="source"} 0
latch_login_attempts_total{outcome="repeat",scope="none"} 0
latch_login_attempts_total{outcome="success",scope="none"} 2
latch_login_attempts_total{outcome="totp_required",scope="none"} 0
latch_login_attempts_total{outcome="wrong_secret",scope="none"} 1
`
	gatherAndCompare(t, m.Registry(), want, "latch_login_attempts_total")
}

func TestLocksFromCallback(t *testing.T) {
	m := metrics.New()
	calls := 0
	m.SetLockSource(func(ctx context.Context) (map[metrics.LockKey]int, error) {
		calls++
		if _, ok := ctx.Deadline(); !ok {
			t.Errorf("lock source called without a deadline")
		}
		return map[metrics.LockKey]int{
			{Kind: "pair", Mode: "locked"}:      3,
			{Kind: "principal", Mode: "held"}:   1,
			{Kind: "source", Mode: "open"}:      7, // open keys are not locks
			{Kind: "weird", Mode: "locked"}:     2, // unknown kinds and modes are summed
			{Kind: "stranger", Mode: "locked"}:  1,
			{Kind: "pair", Mode: "frozen"}:      4,
			{Kind: "console", Mode: "locked"}:   0,
			{Kind: "console", Mode: "held"}:     -5, // nonsense counts are ignored
			{Kind: "principal", Mode: "locked"}: 2,
		}, nil
	})
	want := `
# HELP latch_locks Lock machines currently not open, by key kind and mode.
# TYPE latch_locks gauge
latch_locks{kind="console",mode="held"} 0
latch_locks{kind="console",mode="locked"} 0
latch_locks{kind="other",mode="locked"} 3
latch_locks{kind="pair",mode="held"} 0
latch_locks{kind="pair",mode="locked"} 3
latch_locks{kind="pair",mode="other"} 4
latch_locks{kind="principal",mode="held"} 1
latch_locks{kind="principal",mode="locked"} 2
latch_locks{kind="source",mode="held"} 0
latch_locks{kind="source",mode="locked"} 0
`
	gatherAndCompare(t, m.Registry(), want, "latch_locks")
	if calls != 1 {
		t.Fatalf("lock source called %d times per scrape, want 1", calls)
	}

	// Removing the source removes the gauge.
	m.SetLockSource(nil)
	if n := countFamily(t, m, "latch_locks"); n != 0 {
		t.Fatalf("latch_locks still has %d series after SetLockSource(nil)", n)
	}
}

func TestBacklogAndDeliveries(t *testing.T) {
	m := metrics.New()
	backlog := 0
	m.SetOutboxBacklog(func(context.Context) (int, error) { return backlog, nil })
	m.Delivery("delivered")
	m.Delivery("delivered")
	m.Delivery("failed")
	m.Delivery("abandoned")
	m.Delivery("exploded")
	backlog = 5

	want := `
# HELP latch_outbox_backlog Notifications waiting for delivery (including ones waiting to be retried).
# TYPE latch_outbox_backlog gauge
latch_outbox_backlog 5
# HELP latch_outbox_deliveries_total Notification delivery attempts by result (delivered, failed and to be retried, abandoned).
# TYPE latch_outbox_deliveries_total counter
latch_outbox_deliveries_total{result="abandoned"} 1
latch_outbox_deliveries_total{result="delivered"} 2
latch_outbox_deliveries_total{result="failed"} 1
latch_outbox_deliveries_total{result="other"} 1
`
	gatherAndCompare(t, m.Registry(), want, "latch_outbox_backlog", "latch_outbox_deliveries_total")
}

func TestSegmentsCameraCardinalityIsBounded(t *testing.T) {
	m := metrics.New()
	m.SegmentWritten("cam1")
	m.SegmentWritten("cam1")
	m.SegmentWritten("cam2")
	m.SegmentWritten("")                    // not a camera ID
	m.SegmentWritten("cam\"1\"\n{x=\"y\"}") // not a camera ID
	if got := value(t, m, "latch_recording_segments_total", "cam1"); got != 2 {
		t.Fatalf("cam1 = %v, want 2", got)
	}
	for i := range 1000 {
		m.SegmentWritten(fmt.Sprintf("flood%d", i))
	}
	n := countFamily(t, m, "latch_recording_segments_total")
	if n != metrics.MaxCameras+1 {
		t.Fatalf("latch_recording_segments_total has %d series, want %d cameras + other", n, metrics.MaxCameras+1)
	}
	// cam1 and cam2 keep their own series; the flood overflowed into "other".
	other := value(t, m, "latch_recording_segments_total", "other")
	if want := float64(2 + 1000 - (metrics.MaxCameras - 2)); other != want {
		t.Fatalf("other = %v, want %v", other, want)
	}
	m.SegmentWritten("cam2")
	if got := value(t, m, "latch_recording_segments_total", "cam2"); got != 2 {
		t.Fatalf("cam2 = %v after the budget was spent, want 2", got)
	}
}

// TestHandlerScrape scrapes the real handler over HTTP: the exposition
// format, the Go and process collectors, a failing callback that costs only
// its own series.
func TestHandlerScrape(t *testing.T) {
	m := metrics.New()
	m.Attempt("refused", "source")
	m.SegmentWritten("cam1")
	m.SetOutboxBacklog(func(context.Context) (int, error) { return 0, errors.New("database is locked") })
	m.SetLockSource(func(context.Context) (map[metrics.LockKey]int, error) {
		return map[metrics.LockKey]int{{Kind: "source", Mode: "locked"}: 1}, nil
	})
	srv := httptest.NewServer(m.Handler())
	defer srv.Close()

	body := scrape(t, srv.URL)
	for _, want := range []string{
		`latch_login_attempts_total{outcome="refused",scope="source"} 1`,
		`latch_recording_segments_total{camera="cam1"} 1`,
		`latch_locks{kind="source",mode="locked"} 1`,
		`go_goroutines `,
		`process_resident_memory_bytes `,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("scrape lacks %q", want)
		}
	}
	if strings.Contains(body, "latch_outbox_backlog") {
		t.Errorf("the failing backlog callback produced a value:\n%s", body)
	}
	// The error is counted (visible on the next scrape).
	body = scrape(t, srv.URL)
	if !strings.Contains(body, `promhttp_metric_handler_errors_total{cause="gathering"} 1`) {
		t.Errorf("gathering error not counted")
	}

	m.SetOutboxBacklog(func(context.Context) (int, error) { return 3, nil })
	want := `
# HELP latch_outbox_backlog Notifications waiting for delivery (including ones waiting to be retried).
# TYPE latch_outbox_backlog gauge
latch_outbox_backlog 3
`
	scrapeAndCompare(t, srv.URL, want, "latch_outbox_backlog")
}

func TestPrivateRegistry(t *testing.T) {
	a, b := metrics.New(), metrics.New() // would panic on a shared registry
	a.Attempt("success", "")
	if got := value(t, b, "latch_login_attempts_total", "success", "none"); got != 0 {
		t.Fatalf("instances share counters: b sees %v", got)
	}
	mfs, err := prometheus.DefaultGatherer.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if strings.HasPrefix(mf.GetName(), "latch_") {
			t.Fatalf("%s registered on the global registry", mf.GetName())
		}
	}
}

func TestLint(t *testing.T) {
	m := metrics.New()
	m.SetLockSource(func(context.Context) (map[metrics.LockKey]int, error) { return nil, nil })
	m.SetOutboxBacklog(func(context.Context) (int, error) { return 1, nil })
	m.SegmentWritten("cam1")
	mfs, err := m.Registry().Gather()
	if err != nil {
		t.Fatal(err)
	}
	problems, err := promlint.NewWithMetricFamilies(mfs).Lint()
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range problems {
		if strings.HasPrefix(p.Metric, "latch_") {
			t.Errorf("lint: %s: %s", p.Metric, p.Text)
		}
	}
}

func TestNilMetricsIsANoOp(t *testing.T) {
	var m *metrics.Metrics
	m.Attempt("success", "")
	m.SegmentWritten("cam1")
	m.Delivery("delivered")
	m.SetLockSource(nil)
	m.SetOutboxBacklog(nil)
	rec := httptest.NewRecorder()
	m.Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	if rec.Code != http.StatusNotFound {
		t.Fatalf("nil handler answered %d", rec.Code)
	}
}

func TestConcurrentUseAndScrape(t *testing.T) {
	m := metrics.New()
	m.SetLockSource(func(context.Context) (map[metrics.LockKey]int, error) {
		return map[metrics.LockKey]int{{Kind: "pair", Mode: "locked"}: 1}, nil
	})
	srv := httptest.NewServer(m.Handler())
	defer srv.Close()
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Go(func() {
			for j := range 200 {
				m.Attempt("wrong_secret", "")
				m.SegmentWritten(fmt.Sprintf("cam%d", (i+j)%100))
				m.Delivery("failed")
			}
		})
	}
	wg.Go(func() {
		for range 5 {
			scrape(t, srv.URL)
			m.SetOutboxBacklog(func(context.Context) (int, error) { return 2, nil })
		}
	})
	wg.Wait()
	if got := value(t, m, "latch_login_attempts_total", "wrong_secret", "none"); got != 1600 {
		t.Fatalf("wrong_secret = %v, want 1600", got)
	}
	if n := countFamily(t, m, "latch_recording_segments_total"); n > metrics.MaxCameras+1 {
		t.Fatalf("%d camera series", n)
	}
}

func scrape(t *testing.T, url string) string {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Error(err)
		return ""
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Errorf("scrape: %d %v\n%s", resp.StatusCode, err, b)
	}
	return string(b)
}

func countFamily(t *testing.T, m *metrics.Metrics, name string) int {
	t.Helper()
	mfs, err := m.Registry().Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == name {
			return len(mf.GetMetric())
		}
	}
	return 0
}
