package notify_test

import (
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/latchnvr/latch/nvr/clock"
	"github.com/latchnvr/latch/nvr/metrics"
	"github.com/latchnvr/latch/nvr/notify"
	"github.com/latchnvr/latch/nvr/store"
)

// TestWiredToMetrics wires the notifier to the metrics the way the server
// does (Observe = Delivery, SetOutboxBacklog = Backlog) and scrapes.
func TestWiredToMetrics(t *testing.T) {
	ctx := t.Context()
	db, err := store.Open(filepath.Join(t.TempDir(), "latch.db"), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	clk := clock.NewSim(time.Date(2026, 3, 14, 12, 0, 0, 0, time.UTC))
	var status atomic.Int32
	status.Store(http.StatusInternalServerError)
	hook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(int(status.Load())) }))
	defer hook.Close()

	m := metrics.New()
	n := notify.New(db, clk, notify.Config{
		Webhook: notify.WebhookConfig{URL: hook.URL, Secret: "0123456789abcdef0123"},
		Observe: m.Delivery, MinBackoff: time.Minute, MaxBackoff: time.Minute,
	}, nil)
	m.SetOutboxBacklog(n.Backlog)
	for _, who := range []string{"a@example.com", "b@example.com"} {
		err := db.WithTx(ctx, func(tx *store.Tx) error {
			now := clk.Now().UnixNano()
			_, err := tx.EnqueueOutbox(ctx, store.OutboxMessage{Kind: "lock", Recipient: who, Subject: "s", Body: "b", CreatedNS: now})
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	if _, _, err := n.DeliverDue(ctx); err != nil {
		t.Fatal(err)
	}
	expect(t, m, `latch_outbox_backlog 2`, `latch_outbox_deliveries_total{result="failed"} 2`)
	status.Store(http.StatusNoContent)
	clk.Advance(time.Minute)
	if d, _, err := n.DeliverDue(ctx); err != nil || d != 2 {
		t.Fatalf("DeliverDue = %d, %v", d, err)
	}
	expect(t, m, `latch_outbox_backlog 0`, `latch_outbox_deliveries_total{result="delivered"} 2`,
		`latch_outbox_deliveries_total{result="failed"} 2`, `latch_outbox_deliveries_total{result="abandoned"} 0`)
}

func expect(t *testing.T, m *metrics.Metrics, lines ...string) {
	t.Helper()
	srv := httptest.NewServer(m.Handler())
	defer srv.Close()
	resp, err := http.Get(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	for _, l := range lines {
		if !strings.Contains(string(b), l+"\n") {
			t.Errorf("scrape lacks %q", l)
		}
	}
}
