package store_test

import (
	"context"
	"errors"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/latchnvr/latch/nvr/store"
)

// refuse aggregates one refusal of principal's pair in bucket on db and
// returns the row id and count it reports.
func refuse(t *testing.T, db *store.DB, principal string, bucket int64) (id, n int64) {
	t.Helper()
	inTx(t, db, func(tx *store.Tx) error {
		var err error
		id, n, err = tx.AppendOrAggregateRefusal(context.Background(), auditRec(bucket, principal, "refused"), bucket)
		return err
	})
	return id, n
}

// TestOpenAggregatesAfterRollback: a rolled-back insert's id is given to
// the next insert (the AUTOINCREMENT counter rolls back too), so the
// store's memory of open aggregates must forget what a rolled-back
// transaction taught it, or the next refusal of the first key would bump
// the second key's row.
func TestOpenAggregatesAfterRollback(t *testing.T) {
	db, _ := openTemp(t)
	checkOpenAggregatesAfterRollback(t, db)
}

// checkOpenAggregatesAfterRollback rolls back a transaction's first
// refusal of alice, then refuses bob and alice: alice's must start a row
// of its own with count 1, and bob's row must count on.
func checkOpenAggregatesAfterRollback(t *testing.T, db *store.DB) {
	t.Helper()
	ctx := context.Background()
	boom := errors.New("boom")
	err := db.WithTx(ctx, func(tx *store.Tx) error {
		if _, _, err := tx.AppendOrAggregateRefusal(ctx, auditRec(0, "alice", "refused"), 0); err != nil {
			return err
		}
		return boom
	})
	if !errors.Is(err, boom) {
		t.Fatalf("WithTx = %v; want boom", err)
	}
	bob, _ := refuse(t, db, "bob", 0)
	alice, n := refuse(t, db, "alice", 0)
	if alice == bob || n != 1 {
		t.Fatalf("alice's refusal after the rollback: row %d count %d; want a new row (bob's is %d) with count 1", alice, n, bob)
	}
	if _, n := refuse(t, db, "bob", 0); n != 2 {
		t.Fatalf("bob's second refusal: count %d, want 2", n)
	}
}

// TestOpenAggregatesSealedByTheConsole: the console (another DB on the
// file) seals the open aggregates, and refuses on keys of its own; the
// server's next refusal of a sealed key starts a new row instead of
// bumping the sealed one, learnt from PRAGMA data_version, and the chain
// stays whole. The same holds when the server's memory was not told
// (ForgetOthers): the bump by id misses the sealed row, and the refusal is
// written all the same.
func TestOpenAggregatesSealedByTheConsole(t *testing.T) {
	for _, told := range []bool{true, false} {
		ctx := context.Background()
		db, path := openTemp(t)
		console, err := store.Open(path, testOptions(1))
		if err != nil {
			t.Fatal(err)
		}
		defer console.Close()
		first, _ := refuse(t, db, "alice", 0)
		inTx(t, console, func(tx *store.Tx) error {
			_, err := tx.SealAllAuditAggregates(ctx)
			return err
		})
		refuse(t, console, "bob", 0)
		if !told {
			if err := db.ForgetOthers(ctx); err != nil {
				t.Fatal(err)
			}
		}
		second, n := refuse(t, db, "alice", 0)
		if second == first || n != 1 {
			t.Fatalf("told=%v: refusal after the console sealed row %d: row %d count %d; want a new row with count 1", told, first, second, n)
		}
		if _, n := refuse(t, db, "bob", 0); n != 2 {
			t.Fatalf("told=%v: bump of the console's row: count %d, want 2", told, n)
		}
		if _, n := refuse(t, console, "alice", 0); n != 2 {
			t.Fatalf("told=%v: the console's bump of the server's row: count %d, want 2", told, n)
		}
		inTx(t, db, func(tx *store.Tx) error {
			_, err := tx.SealAllAuditAggregates(ctx)
			return err
		})
		if n, err := db.VerifyAuditChain(ctx); err != nil || n != 3 {
			t.Fatalf("told=%v: VerifyAuditChain = %d, %v; want 3 rows (alice twice, bob)", told, n, err)
		}
	}
}

// TestOpenAggregatesTwoWriters: a server and a console on one file
// refuse, merge, seal and roll back at random; every key and minute ends
// with exactly the refusals that committed, whichever connection wrote
// them, and the chain verifies.
func TestOpenAggregatesTwoWriters(t *testing.T) {
	ctx := context.Background()
	db, path := openTemp(t)
	console, err := store.Open(path, testOptions(1))
	if err != nil {
		t.Fatal(err)
	}
	defer console.Close()
	rng := rand.New(rand.NewPCG(6, 15))
	type cell struct {
		principal string
		bucket    int64
	}
	want := map[cell]int64{}
	bucket := int64(0)
	boom := errors.New("boom")
	for i := 0; i < 400; i++ {
		on := db
		if rng.IntN(5) == 0 {
			on = console
		}
		if rng.IntN(30) == 0 {
			bucket++
		}
		fail := rng.IntN(8) == 0
		merged := rng.IntN(3) == 0
		add := map[cell]int64{}
		write := func(tx *store.Tx) error {
			for range 1 + rng.IntN(4) {
				if rng.IntN(20) == 0 {
					if _, err := tx.SealAuditAggregates(ctx, bucket); err != nil {
						return err
					}
					continue
				}
				p := []string{"alice", "bob", "carol"}[rng.IntN(3)]
				rec := auditRec(bucket, p, "refused")
				rec.Count = 1 + rng.Int64N(5)
				if _, _, err := tx.AppendOrAggregateRefusal(ctx, rec, bucket); err != nil {
					return err
				}
				add[cell{p, bucket}] += rec.Count
			}
			return nil
		}
		err := on.WithTx(ctx, func(tx *store.Tx) error {
			if merged {
				if err := tx.MergeRefusals(ctx, func() error { return write(tx) }); err != nil {
					return err
				}
			} else if err := write(tx); err != nil {
				return err
			}
			if fail {
				return boom
			}
			return nil
		})
		if fail != errors.Is(err, boom) || (!fail && err != nil) {
			t.Fatalf("step %d: WithTx = %v (fail %v)", i, err, fail)
		}
		if !fail {
			for c, n := range add {
				want[c] += n
			}
		}
		rows, err := db.ListAudit(ctx, store.AuditFilter{Outcome: "refused", Limit: 1 << 20})
		if err != nil {
			t.Fatal(err)
		}
		got := map[cell]int64{}
		for _, r := range rows {
			got[cell{r.Principal, r.MinuteBucket}] += r.Count
		}
		for c, n := range want {
			if got[c] != n {
				t.Fatalf("step %d: %s has %d refusals in minute %d, want %d", i, c.principal, got[c], c.bucket, n)
			}
		}
		if len(got) != len(want) {
			t.Fatalf("step %d: %d key-minutes, want %d", i, len(got), len(want))
		}
	}
	inTx(t, db, func(tx *store.Tx) error {
		_, err := tx.SealAllAuditAggregates(ctx)
		return err
	})
	if _, err := db.VerifyAuditChain(ctx); err != nil {
		t.Fatal(err)
	}
}

// TestOpenAggregatesWrongID: should the memory of open aggregates ever name
// a row that is not the open aggregate of its key (a sealed row, a row of
// another key), a refusal still lands on the right row: the bump by id
// matches only open rows, and a miss learns again from the file. Alone
// and bumped two at a time in a merged batch, where the other row's bump
// must count once.
func TestOpenAggregatesWrongID(t *testing.T) {
	ctx := context.Background()
	for _, merged := range []bool{false, true} {
		db, _ := openTemp(t)
		sealed := mustAppend(t, db, auditRec(0, "zed", "login"))[0]
		alice, _ := refuse(t, db, "alice", 0)
		bob, _ := refuse(t, db, "bob", 0)
		if err := db.SetOpenAggregateID(ctx, auditRec(0, "alice", "refused"), 0, sealed); err != nil {
			t.Fatal(err)
		}
		inTx(t, db, func(tx *store.Tx) error {
			write := func() error {
				for _, p := range []string{"alice", "bob"} {
					rec := auditRec(0, p, "refused")
					rec.Count = 5
					if _, _, err := tx.AppendOrAggregateRefusal(ctx, rec, 0); err != nil {
						return err
					}
				}
				return nil
			}
			if merged {
				return tx.MergeRefusals(ctx, write)
			}
			return write()
		})
		rows, err := db.ListAudit(ctx, store.AuditFilter{Limit: 100})
		if err != nil {
			t.Fatal(err)
		}
		got := map[int64]int64{}
		for _, r := range rows {
			got[r.ID] = r.Count
		}
		if len(rows) != 3 || got[alice] != 6 || got[bob] != 6 || got[sealed] != 1 {
			t.Fatalf("merged=%v: counts by row %v; want alice's row %d and bob's %d at 6, the sealed row %d at 1", merged, got, alice, bob, sealed)
		}
	}
}

// TestSealRefusesACopyThatDiffers: sealing hashes the open rows as the DB
// remembers writing them; should that copy ever differ from the row, the
// seal fails (its UPDATE requires the count and last time it hashed)
// instead of chaining a hash the row does not match, and the next
// transaction, which learns the rows again from the file, seals them
// right.
func TestSealRefusesACopyThatDiffers(t *testing.T) {
	ctx := context.Background()
	db, _ := openTemp(t)
	alice, _ := refuse(t, db, "alice", 0)
	db.MiscountOpenAggregate(alice)
	err := db.WithTx(ctx, func(tx *store.Tx) error {
		_, _, err := tx.AppendOrAggregateRefusal(ctx, auditRec(1, "bob", "refused"), 1)
		return err
	})
	if err == nil || !strings.Contains(err.Error(), "differs from what this database wrote") {
		t.Fatalf("sealing a miscounted copy: %v; want the seal refused", err)
	}
	refuse(t, db, "bob", 1)
	inTx(t, db, func(tx *store.Tx) error {
		_, err := tx.SealAllAuditAggregates(ctx)
		return err
	})
	if n, err := db.VerifyAuditChain(ctx); err != nil || n != 2 {
		t.Fatalf("VerifyAuditChain = %d, %v; want alice's and bob's rows chained", n, err)
	}
	rows, err := db.ListAudit(ctx, store.AuditFilter{})
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range rows {
		if r.Count != 1 {
			t.Fatalf("row %d (%s) counts %d, want 1", r.ID, r.Principal, r.Count)
		}
	}
}
