package auth

import (
	"context"
	"errors"
	"path/filepath"
	"runtime"
	"testing"

	"github.com/latchnvr/latch/nvr/store"
)

// R-ATOMIC under group commit: requests that share a transaction commit
// together, and one that fails rolls back alone: the others are retried
// each in its own transaction and commit; the failing one leaves nothing.
func TestCommitterIsolatesAFailingRequest(t *testing.T) {
	db, err := store.Open(filepath.Join(t.TempDir(), "latch.db"), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	ctx := context.Background()
	c := &committer{db: db}
	audit := func(reason string) func(tx *store.Tx) error {
		return func(tx *store.Tx) error {
			_, err := tx.AppendAudit(ctx, store.AuditRecord{Channel: store.ChannelSystem, Outcome: "test", Reason: reason})
			return err
		}
	}
	boom := errors.New("boom")
	// The first request holds its transaction open until the others queue,
	// so that they form the next batch together.
	release := make(chan struct{})
	first := make(chan error)
	go func() {
		first <- c.do(func(tx *store.Tx) error {
			<-release
			return audit("first")(tx)
		})
	}()
	queued := func(n int) bool {
		c.mu.Lock()
		defer c.mu.Unlock()
		return len(c.queue) == n
	}
	for !c.leadingNow() {
		runtime.Gosched()
	}
	results := make(chan error, 3)
	go func() { results <- c.do(audit("second")) }()
	for !queued(1) {
		runtime.Gosched()
	}
	go func() {
		results <- c.do(func(tx *store.Tx) error {
			if err := audit("failing")(tx); err != nil {
				return err
			}
			return boom
		})
	}()
	for !queued(2) {
		runtime.Gosched()
	}
	go func() { results <- c.do(audit("third")) }()
	for !queued(3) {
		runtime.Gosched()
	}
	close(release)
	if err := <-first; err != nil {
		t.Fatal(err)
	}
	var failed int
	for i := 0; i < 3; i++ {
		switch err := <-results; {
		case errors.Is(err, boom):
			failed++
		case err != nil:
			t.Fatal(err)
		}
	}
	recs, err := db.ListAudit(ctx, store.AuditFilter{Outcome: "test"})
	if err != nil {
		t.Fatal(err)
	}
	var reasons []string
	for _, r := range recs {
		reasons = append(reasons, r.Reason)
	}
	if failed != 1 || len(reasons) != 3 || reasons[0] != "third" || reasons[1] != "second" || reasons[2] != "first" {
		t.Fatalf("failed %d, committed %v (newest first)", failed, reasons)
	}
	if _, err := db.VerifyAuditChain(ctx); err != nil {
		t.Fatal(err)
	}
}

// leadingNow reports whether a batch is being committed.
func (c *committer) leadingNow() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.leading
}
