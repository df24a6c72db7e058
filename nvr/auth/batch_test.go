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
	release, started := make(chan struct{}), make(chan struct{})
	first := make(chan error)
	go func() {
		first <- c.do(func(tx *store.Tx) error {
			close(started)
			<-release
			return audit("first")(tx)
		})
	}()
	queued := func(n int) bool {
		c.mu.Lock()
		defer c.mu.Unlock()
		return len(c.queue) == n
	}
	// The leader takes its batch once its transaction has begun: wait
	// until the first request runs, so the next ones queue behind it.
	<-started
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

// R-AUDIT under group commit: the refusals that share a batch are merged
// per aggregate row, so N refusals of a key become one write with count N;
// every refusal is counted exactly once, also when the batch fails because
// of another request and each request is retried on its own.
func TestCommitterMergesRefusals(t *testing.T) {
	db, err := store.Open(filepath.Join(t.TempDir(), "latch.db"), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	ctx := context.Background()
	c := &committer{db: db}
	refuse := func(user string, sec int64) func(tx *store.Tx) error {
		return func(tx *store.Tx) error {
			wall := epoch.UnixNano() + sec*1e9
			_, _, err := tx.AppendOrAggregateRefusal(ctx, store.AuditRecord{WallNS: wall, Principal: user,
				Source: "192.0.2.1", KeyKind: store.KindPair, Channel: store.ChannelRemote, Outcome: "refused"}, 0)
			return err
		}
	}
	boom := errors.New("boom")
	failing := func(tx *store.Tx) error {
		if err := refuse("alice", 0)(tx); err != nil {
			return err
		}
		return boom
	}
	// batch commits the first request alone, holding its transaction open
	// until the rest have queued, so that they form the next batch.
	batch := func(fns ...func(tx *store.Tx) error) []error {
		release, started := make(chan struct{}), make(chan struct{})
		first := make(chan error)
		go func() {
			first <- c.do(func(tx *store.Tx) error {
				close(started)
				<-release
				return refuse("carol", 0)(tx)
			})
		}()
		<-started
		results := make([]chan error, len(fns))
		for i, fn := range fns {
			results[i] = make(chan error, 1)
			go func() { results[i] <- c.do(fn) }()
			for !c.queued(i + 1) {
				runtime.Gosched()
			}
		}
		close(release)
		if err := <-first; err != nil {
			t.Fatal(err)
		}
		errs := make([]error, len(fns))
		for i := range fns {
			errs[i] = <-results[i]
		}
		return errs
	}
	counts := func() map[string]int64 {
		recs, err := db.ListAudit(ctx, store.AuditFilter{Outcome: "refused"})
		if err != nil {
			t.Fatal(err)
		}
		n := map[string]int64{}
		for _, r := range recs {
			if n[r.Principal] != 0 {
				t.Fatalf("%s has two rows in one minute: %+v", r.Principal, recs)
			}
			n[r.Principal] = r.Count
		}
		return n
	}

	batches := c.batches.Load()
	for i, err := range batch(refuse("alice", 1), refuse("bob", 2), refuse("alice", 3), refuse("alice", 4), refuse("bob", 5)) {
		if err != nil {
			t.Fatalf("refusal %d: %v", i, err)
		}
	}
	if got := c.batches.Load() - batches; got != 2 {
		t.Fatalf("%d commits, want 2 (the first request, then the other five together)", got)
	}
	if n := counts(); n["alice"] != 3 || n["bob"] != 2 || n["carol"] != 1 {
		t.Fatalf("counts %v, want alice 3, bob 2, carol 1", n)
	}
	recs, err := db.ListAudit(ctx, store.AuditFilter{Principal: "alice"})
	if err != nil || len(recs) != 1 || recs[0].FirstWallNS != epoch.UnixNano()+1e9 || recs[0].LastWallNS != epoch.UnixNano()+4e9 {
		t.Fatalf("alice's aggregate = %+v, %v; want first +1s, last +4s", recs, err)
	}

	errs := batch(refuse("alice", 5), failing, refuse("bob", 6), refuse("alice", 7))
	for i, err := range errs {
		if want := i == 1; errors.Is(err, boom) != want || (!want && err != nil) {
			t.Fatalf("request %d of the failing batch: %v", i, err)
		}
	}
	if n := counts(); n["alice"] != 5 || n["bob"] != 3 || n["carol"] != 2 {
		t.Fatalf("after the failing batch: counts %v, want alice 5, bob 3, carol 2", n)
	}
	err = db.WithTx(ctx, func(tx *store.Tx) error {
		_, err := tx.SealAllAuditAggregates(ctx)
		return err
	})
	if n, verr := db.VerifyAuditChain(ctx); err != nil || verr != nil || n != 3 {
		t.Fatalf("VerifyAuditChain = %d, %v (seal: %v); want the 3 aggregates", n, verr, err)
	}
}

// queued reports whether n requests wait for the next batch.
func (c *committer) queued(n int) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.queue) == n
}
