package store_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"strings"
	"testing"

	"github.com/latchnvr/latch/nvr/store"
)

func TestAuditAppendAndVerify(t *testing.T) {
	ctx := context.Background()
	db, _ := openTemp(t)
	if n, err := db.VerifyAuditChain(ctx); err != nil || n != 0 {
		t.Fatalf("empty chain = %d, %v", n, err)
	}
	rec := auditRec(0, "alice", "success")
	rec.Detail = json.RawMessage(`{"modes":{"pair":"open"}}`)
	ids := mustAppend(t, db, rec, auditRec(1, "alice", "wrong_secret"), auditRec(2, "bob", "lock"))
	if n, err := db.VerifyAuditChain(ctx); err != nil || n != 3 {
		t.Fatalf("VerifyAuditChain = %d, %v; want 3, nil", n, err)
	}
	got, err := db.ListAudit(ctx, store.AuditFilter{Principal: "alice"})
	if err != nil || len(got) != 2 {
		t.Fatalf("ListAudit(alice) = %d rows, %v", len(got), err)
	}
	// Newest first; fields round-trip; the chain links.
	if got[0].ID != ids[1] || got[1].ID != ids[0] || string(got[1].Detail) != string(rec.Detail) ||
		got[1].Seq != 1 || got[0].Seq != 2 || string(got[0].PrevHash) != string(got[1].Hash) || got[1].Count != 1 {
		t.Fatalf("ListAudit rows = %+v", got)
	}
	if page, _ := db.ListAudit(ctx, store.AuditFilter{BeforeID: ids[2], Limit: 1}); len(page) != 1 || page[0].ID != ids[1] {
		t.Fatalf("paging = %+v", page)
	}
	if r, _ := db.ListAudit(ctx, store.AuditFilter{FromNS: t0 + minute, ToNS: t0 + 2*minute}); len(r) != 1 || r[0].ID != ids[1] {
		t.Fatalf("time filter = %+v", r)
	}
}

func TestAuditRejectsBadRecords(t *testing.T) {
	ctx := context.Background()
	db, _ := openTemp(t)
	tests := []struct {
		name   string
		change func(r *store.AuditRecord)
	}{
		{"unknown channel", func(r *store.AuditRecord) { r.Channel = "carrier-pigeon" }},
		{"empty outcome", func(r *store.AuditRecord) { r.Outcome = "" }},
		{"unknown key kind", func(r *store.AuditRecord) { r.KeyKind = "subnet" }},
		{"detail not JSON", func(r *store.AuditRecord) { r.Detail = json.RawMessage(`{oops`) }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := auditRec(0, "alice", "success")
			tt.change(&r)
			err := db.WithTx(ctx, func(tx *store.Tx) error { _, err := tx.AppendAudit(ctx, r); return err })
			if !errors.Is(err, store.ErrConstraint) {
				t.Fatalf("AppendAudit = %v, want ErrConstraint", err)
			}
		})
	}
	if n, err := db.VerifyAuditChain(ctx); err != nil || n != 0 {
		t.Fatalf("rejected records left a trace: %d, %v", n, err)
	}
}

// dropAuditGuards removes the triggers that stop UPDATE and DELETE, as
// someone tampering with the file would; the chain must still notice.
func dropAuditGuards(t *testing.T, db *store.DB) {
	t.Helper()
	rawExec(t, db.Writer(), `DROP TRIGGER audit_sealed_no_update`)
	rawExec(t, db.Writer(), `DROP TRIGGER audit_no_delete`)
}

func TestAuditChainDetectsTampering(t *testing.T) {
	ctx := context.Background()
	tests := []struct {
		name    string
		tamper  func(t *testing.T, db *store.DB, ids []int64)
		wantRow func(ids []int64) int64
		wantMsg string
	}{
		{
			name: "edited outcome",
			tamper: func(t *testing.T, db *store.DB, ids []int64) {
				rawExec(t, db.Writer(), `UPDATE audit_log SET outcome = 'success' WHERE id = ?`, ids[2])
			},
			wantRow: func(ids []int64) int64 { return ids[2] },
			wantMsg: "hash does not match",
		},
		{
			name: "hash overwritten",
			tamper: func(t *testing.T, db *store.DB, ids []int64) {
				rawExec(t, db.Writer(), `UPDATE audit_log SET hash = zeroblob(32) WHERE id = ?`, ids[2])
			},
			wantRow: func(ids []int64) int64 { return ids[2] },
			wantMsg: "hash does not match",
		},
		{
			name: "deleted row in the middle",
			tamper: func(t *testing.T, db *store.DB, ids []int64) {
				rawExec(t, db.Writer(), `DELETE FROM audit_log WHERE id = ?`, ids[2])
			},
			wantRow: func(ids []int64) int64 { return ids[3] },
			wantMsg: "rows are missing",
		},
		{
			name: "deleted row renumbered",
			tamper: func(t *testing.T, db *store.DB, ids []int64) {
				rawExec(t, db.Writer(), `DELETE FROM audit_log WHERE id = ?`, ids[2])
				rawExec(t, db.Writer(), `UPDATE audit_log SET seq = seq - 1 WHERE id > ?`, ids[2])
			},
			wantRow: func(ids []int64) int64 { return ids[3] },
			wantMsg: "prev_hash does not match",
		},
		{
			name: "deleted tail",
			tamper: func(t *testing.T, db *store.DB, ids []int64) {
				rawExec(t, db.Writer(), `DELETE FROM audit_log WHERE id = ?`, ids[len(ids)-1])
			},
			wantRow: func(ids []int64) int64 { return ids[len(ids)-1] },
			wantMsg: "removed from the end",
		},
		{
			name: "aggregate count lowered after sealing",
			tamper: func(t *testing.T, db *store.DB, ids []int64) {
				rawExec(t, db.Writer(), `UPDATE audit_log SET count = 1 WHERE minute_bucket IS NOT NULL`)
			},
			wantRow: func(ids []int64) int64 { return ids[1] },
			wantMsg: "hash does not match",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			db, _ := openTemp(t)
			// Row ids[1] is a sealed aggregate of three refusals.
			var ids []int64
			ids = append(ids, mustAppend(t, db, auditRec(0, "alice", "lock"))...)
			inTx(t, db, func(tx *store.Tx) error {
				for range 3 {
					id, _, err := tx.AppendOrAggregateRefusal(ctx, auditRec(0, "alice", "refused"), 0)
					if err != nil {
						return err
					}
					if len(ids) == 1 {
						ids = append(ids, id)
					}
				}
				_, err := tx.SealAllAuditAggregates(ctx)
				return err
			})
			ids = append(ids, mustAppend(t, db, auditRec(1, "alice", "wrong_secret"), auditRec(2, "bob", "lock"), auditRec(3, "carol", "success"))...)
			if n, err := db.VerifyAuditChain(ctx); err != nil || n != 5 {
				t.Fatalf("before tampering: %d, %v", n, err)
			}

			// The guards refuse a plain UPDATE or DELETE of sealed rows.
			if _, err := db.Writer().Exec(`UPDATE audit_log SET outcome = 'x' WHERE id = ?`, ids[0]); err == nil ||
				!strings.Contains(err.Error(), "immutable") {
				t.Fatalf("UPDATE of a sealed row = %v, want refused", err)
			}
			if _, err := db.Writer().Exec(`DELETE FROM audit_log WHERE id = ?`, ids[0]); err == nil {
				t.Fatal("DELETE of an audit row succeeded")
			}

			dropAuditGuards(t, db)
			tt.tamper(t, db, ids)
			_, err := db.VerifyAuditChain(ctx)
			var ce *store.AuditChainError
			if !errors.Is(err, store.ErrAuditChain) || !errors.As(err, &ce) {
				t.Fatalf("VerifyAuditChain = %v, want an *AuditChainError", err)
			}
			if want := tt.wantRow(ids); ce.RowID != want || !strings.Contains(err.Error(), tt.wantMsg) {
				t.Fatalf("VerifyAuditChain = %q (row %d); want row %d and %q", err, ce.RowID, want, tt.wantMsg)
			}
		})
	}
}

// TestAggregateRefusals follows SPEC R-AUDIT: refusals on a locked key are
// one row per key per minute, with count, first and last.
func TestAggregateRefusals(t *testing.T) {
	ctx := context.Background()
	db, _ := openTemp(t)
	type step struct {
		principal string
		bucket    int64
		wall      int64 // seconds after t0
		wantCount int64
	}
	steps := []step{
		{"alice", 0, 1, 1},
		{"alice", 0, 2, 2},
		{"bob", 0, 3, 1}, // another key: its own row
		{"alice", 0, 59, 3},
		{"alice", 1, 61, 1}, // next minute: alice's and bob's minute-0 rows are sealed
		{"alice", 1, 62, 2},
		{"bob", 1, 63, 1},
	}
	ids := map[string]int64{}
	for i, s := range steps {
		rec := auditRec(0, s.principal, "refused")
		rec.WallNS = t0 + s.wall*1_000_000_000
		rec.Reason = "pair locked"
		var id, n int64
		inTx(t, db, func(tx *store.Tx) error {
			var err error
			id, n, err = tx.AppendOrAggregateRefusal(ctx, rec, s.bucket)
			return err
		})
		if n != s.wantCount {
			t.Fatalf("step %d: count %d, want %d", i, n, s.wantCount)
		}
		key := s.principal + string(rune('0'+s.bucket))
		if prev, ok := ids[key]; ok && prev != id {
			t.Fatalf("step %d: new row %d, want bump of %d", i, id, prev)
		}
		ids[key] = id
	}

	rows, err := db.ListAudit(ctx, store.AuditFilter{})
	if err != nil || len(rows) != 4 {
		t.Fatalf("ListAudit = %d rows, %v; want 4", len(rows), err)
	}
	byID := map[int64]store.AuditRecord{}
	for _, r := range rows {
		byID[r.ID] = r
	}
	a0 := byID[ids["alice0"]]
	if a0.Count != 3 || a0.FirstWallNS != t0+1e9 || a0.LastWallNS != t0+59e9 || a0.Seq == 0 || !a0.Aggregate || a0.MinuteBucket != 0 {
		t.Fatalf("alice minute 0 = %+v; want sealed, count 3, first +1s, last +59s", a0)
	}
	if a1 := byID[ids["alice1"]]; a1.Seq != 0 || a1.Count != 2 || a1.Hash != nil {
		t.Fatalf("alice minute 1 = %+v; want open with count 2", a1)
	}
	if n, err := db.VerifyAuditChain(ctx); err != nil || n != 2 {
		t.Fatalf("VerifyAuditChain = %d, %v; want the 2 sealed rows", n, err)
	}

	// Sealing minute 1 (the caller's minute tick) closes the rest, in id order.
	var sealed int
	inTx(t, db, func(tx *store.Tx) error {
		var err error
		if sealed, err = tx.SealAuditAggregates(ctx, 1); err != nil || sealed != 0 {
			return err
		}
		sealed, err = tx.SealAuditAggregates(ctx, 2)
		return err
	})
	if sealed != 2 {
		t.Fatalf("sealed %d rows, want 2", sealed)
	}
	if n, err := db.VerifyAuditChain(ctx); err != nil || n != 4 {
		t.Fatalf("VerifyAuditChain = %d, %v; want 4", n, err)
	}
	// A sealed aggregate is never bumped again: the same minute now starts a new row.
	inTx(t, db, func(tx *store.Tx) error {
		id, n, err := tx.AppendOrAggregateRefusal(ctx, auditRec(0, "bob", "refused"), 1)
		if err == nil && (n != 1 || id == ids["bob1"]) {
			t.Errorf("refusal after sealing bumped row %d to %d", id, n)
		}
		return err
	})
	// Refusals must name a key.
	err = db.WithTx(ctx, func(tx *store.Tx) error {
		r := auditRec(0, "alice", "refused")
		r.KeyKind = ""
		_, _, err := tx.AppendOrAggregateRefusal(ctx, r, 5)
		return err
	})
	if !errors.Is(err, store.ErrConstraint) {
		t.Fatalf("refusal without a key = %v, want ErrConstraint", err)
	}
}

// TestAuditInterleavedWithAggregates: plain records appended while an
// aggregate is open keep the chain valid once it is sealed.
func TestAuditInterleavedWithAggregates(t *testing.T) {
	ctx := context.Background()
	db, _ := openTemp(t)
	inTx(t, db, func(tx *store.Tx) error {
		for i := range int64(10) {
			if _, _, err := tx.AppendOrAggregateRefusal(ctx, auditRec(i, "mallory", "refused"), i/4); err != nil {
				return err
			}
			if _, err := tx.AppendAudit(ctx, auditRec(i, "alice", "success")); err != nil {
				return err
			}
		}
		_, err := tx.SealAllAuditAggregates(ctx)
		return err
	})
	if n, err := db.VerifyAuditChain(ctx); err != nil || n != 13 {
		t.Fatalf("VerifyAuditChain = %d, %v; want 10 plain + 3 aggregates", n, err)
	}
}

// TestAggregateRefusalAddsCount: a caller that merged N refusals of one
// key and minute (the auth service's group commit does) hands them over as
// one record with Count N, first and last; the row counts every one of
// them exactly once (R-AUDIT).
func TestAggregateRefusalAddsCount(t *testing.T) {
	ctx := context.Background()
	db, _ := openTemp(t)
	sec := int64(1_000_000_000)
	merged := func(n, first, last int64) store.AuditRecord {
		r := auditRec(0, "alice", "refused")
		r.WallNS, r.Count, r.FirstWallNS, r.LastWallNS = t0+first*sec, n, t0+first*sec, t0+last*sec
		return r
	}
	var id1, id2, n int64
	inTx(t, db, func(tx *store.Tx) error {
		var err error
		if id1, n, err = tx.AppendOrAggregateRefusal(ctx, merged(5, 1, 9), 0); err != nil || n != 5 {
			return fmt.Errorf("first batch: count %d, %v", n, err)
		}
		if id2, n, err = tx.AppendOrAggregateRefusal(ctx, merged(3, 10, 20), 0); err != nil || n != 8 || id2 != id1 {
			return fmt.Errorf("second batch: row %d (want %d), count %d, %v", id2, id1, n, err)
		}
		// Count 0 is one refusal at WallNS, as before batches existed.
		single := auditRec(0, "alice", "refused")
		single.WallNS = t0 + 30*sec
		_, n, err = tx.AppendOrAggregateRefusal(ctx, single, 0)
		if err == nil && n != 9 {
			err = fmt.Errorf("single refusal: count %d, want 9", n)
		}
		return err
	})
	rows, err := db.ListAudit(ctx, store.AuditFilter{Outcome: "refused"})
	if err != nil || len(rows) != 1 {
		t.Fatalf("ListAudit = %d rows, %v; want 1", len(rows), err)
	}
	if r := rows[0]; r.Count != 9 || r.FirstWallNS != t0+sec || r.LastWallNS != t0+30*sec || r.WallNS != t0+sec {
		t.Fatalf("aggregate = %+v; want count 9, first +1s, last +30s", r)
	}
	for _, bad := range []int64{-1} {
		err := db.WithTx(ctx, func(tx *store.Tx) error {
			_, _, err := tx.AppendOrAggregateRefusal(ctx, merged(bad, 1, 1), 0)
			return err
		})
		if !errors.Is(err, store.ErrConstraint) {
			t.Fatalf("Count %d = %v, want ErrConstraint", bad, err)
		}
	}
}

// TestAggregateRefusalsAgainstAModel drives AppendOrAggregateRefusal with
// random keys, counts and minutes (including a minute that comes back, as
// after a wall-clock step or a refusal decided just before the minute
// turned), one transaction per refusal and in merged batches as the auth
// service's group commit writes them, and checks after every transaction
// what R-AUDIT and the chain promise: the counts of each key's rows in
// each minute add up to its refusals, never more, never fewer; every open
// row belongs to the newest minute of the last transaction (an open row is
// sealed when another minute's first refusal arrives; a merged batch is
// written oldest minute first); and the chain verifies,
// covering every row once everything is sealed.
func TestAggregateRefusalsAgainstAModel(t *testing.T) {
	for _, merged := range []bool{false, true} {
		t.Run(fmt.Sprintf("merged=%v", merged), func(t *testing.T) {
			ctx := context.Background()
			db, _ := openTemp(t)
			rng := rand.New(rand.NewPCG(11, 0))
			principals := []string{"alice", "bob", "carol"}
			type cell struct {
				principal string
				bucket    int64
			}
			want := map[cell]int64{}
			bucket := int64(0)
			for i := 0; i < 200; i++ {
				batch := 1
				if merged {
					batch = 1 + rng.IntN(12)
				}
				newest := int64(-1) // the newest minute this transaction writes
				write := func(tx *store.Tx) error {
					for range batch {
						switch r := rng.IntN(40); {
						case r == 0:
							bucket++
						case r == 1 && bucket > 0:
							bucket-- // a straggler from the minute before
						}
						p := principals[rng.IntN(len(principals))]
						rec := auditRec(bucket, p, "refused")
						rec.Count = 1 + rng.Int64N(8)
						rec.FirstWallNS, rec.LastWallNS = rec.WallNS, rec.WallNS+rng.Int64N(minute/2)
						if _, _, err := tx.AppendOrAggregateRefusal(ctx, rec, bucket); err != nil {
							return err
						}
						want[cell{p, bucket}] += rec.Count
						if merged {
							newest = max(newest, bucket)
						} else {
							newest = bucket
						}
					}
					return nil
				}
				inTx(t, db, func(tx *store.Tx) error {
					if merged {
						return tx.MergeRefusals(ctx, func() error { return write(tx) })
					}
					return write(tx)
				})
				rows, err := db.ListAudit(ctx, store.AuditFilter{Outcome: "refused", Limit: 1 << 20})
				if err != nil {
					t.Fatal(err)
				}
				got := map[cell]int64{}
				for _, r := range rows {
					got[cell{r.Principal, r.MinuteBucket}] += r.Count
					if r.Seq == 0 && r.MinuteBucket != newest {
						t.Fatalf("transaction %d (minute %d): row %d of minute %d is still open", i, newest, r.ID, r.MinuteBucket)
					}
				}
				for c, n := range want {
					if got[c] != n {
						t.Fatalf("transaction %d: %s has %d refusals in minute %d, want %d", i, c.principal, got[c], c.bucket, n)
					}
				}
				if len(got) != len(want) {
					t.Fatalf("transaction %d: rows for %d key-minutes, want %d", i, len(got), len(want))
				}
			}
			if _, err := db.VerifyAuditChain(ctx); err != nil {
				t.Fatal(err)
			}
			var sealed int
			inTx(t, db, func(tx *store.Tx) error {
				var err error
				sealed, err = tx.SealAllAuditAggregates(ctx)
				return err
			})
			rows, err := db.ListAudit(ctx, store.AuditFilter{Limit: 1 << 20})
			if err != nil {
				t.Fatal(err)
			}
			if n, err := db.VerifyAuditChain(ctx); err != nil || n != len(rows) || sealed == 0 {
				t.Fatalf("VerifyAuditChain = %d, %v; want all %d rows (%d sealed at the end)", n, err, len(rows), sealed)
			}
		})
	}
}

// TestMergeRefusals: N refusals of one key and minute handed to one
// transaction become one row with count N (R-AUDIT), first and last from
// the first and last refusal; nothing is written if the transaction's
// work fails, and merging is scoped to the call.
func TestMergeRefusals(t *testing.T) {
	ctx := context.Background()
	db, _ := openTemp(t)
	sec := int64(1_000_000_000)
	refusal := func(p string, s int64) store.AuditRecord {
		r := auditRec(0, p, "refused")
		r.WallNS = t0 + s*sec
		return r
	}
	inTx(t, db, func(tx *store.Tx) error {
		return tx.MergeRefusals(ctx, func() error {
			for i, s := range []int64{1, 2, 3, 4, 5} {
				id, n, err := tx.AppendOrAggregateRefusal(ctx, refusal("alice", s), 0)
				if err != nil || id != 0 || n != int64(i+1) {
					return fmt.Errorf("merged refusal %d: id %d, count %d, %v", i, id, n, err)
				}
				if i < 3 {
					if _, _, err := tx.AppendOrAggregateRefusal(ctx, refusal("bob", s), 0); err != nil {
						return err
					}
				}
			}
			_, err := tx.AppendAudit(ctx, auditRec(0, "carol", "success"))
			return err
		})
	})
	rows, err := db.ListAudit(ctx, store.AuditFilter{Outcome: "refused"})
	if err != nil || len(rows) != 2 {
		t.Fatalf("ListAudit = %+v, %v; want 2 rows", rows, err)
	}
	byName := map[string]store.AuditRecord{rows[0].Principal: rows[0], rows[1].Principal: rows[1]}
	if a := byName["alice"]; a.Count != 5 || a.FirstWallNS != t0+sec || a.LastWallNS != t0+5*sec || a.WallNS != t0+sec || a.Seq != 0 {
		t.Fatalf("alice = %+v; want one open row, count 5, first +1s, last +5s", a)
	}
	if b := byName["bob"]; b.Count != 3 || b.LastWallNS != t0+3*sec {
		t.Fatalf("bob = %+v; want count 3, last +3s", b)
	}

	// A later transaction bumps the same open row; outside MergeRefusals
	// refusals are written at once again.
	inTx(t, db, func(tx *store.Tx) error {
		if err := tx.MergeRefusals(ctx, func() error {
			_, _, err := tx.AppendOrAggregateRefusal(ctx, refusal("alice", 6), 0)
			return err
		}); err != nil {
			return err
		}
		id, n, err := tx.AppendOrAggregateRefusal(ctx, refusal("alice", 7), 0)
		if err == nil && (id != byName["alice"].ID || n != 7) {
			err = fmt.Errorf("refusal after merging: row %d count %d; want row %d count 7", id, n, byName["alice"].ID)
		}
		return err
	})

	// Work that fails writes none of its merged refusals.
	boom := errors.New("boom")
	err = db.WithTx(ctx, func(tx *store.Tx) error {
		err := tx.MergeRefusals(ctx, func() error {
			if _, _, err := tx.AppendOrAggregateRefusal(ctx, refusal("alice", 8), 0); err != nil {
				return err
			}
			return boom
		})
		if !errors.Is(err, boom) {
			return fmt.Errorf("MergeRefusals = %v, want boom", err)
		}
		rows, err := tx.ListAudit(ctx, store.AuditFilter{Principal: "alice", Outcome: "refused"})
		if err == nil && (len(rows) != 1 || rows[0].Count != 7) {
			err = fmt.Errorf("after failed work: %+v", rows)
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	// A bad refusal fails the transaction when the merge is written.
	err = db.WithTx(ctx, func(tx *store.Tx) error {
		return tx.MergeRefusals(ctx, func() error {
			r := refusal("dave", 9)
			r.Channel = "carrier-pigeon"
			_, _, err := tx.AppendOrAggregateRefusal(ctx, r, 0)
			return err
		})
	})
	if !errors.Is(err, store.ErrConstraint) {
		t.Fatalf("merged bad refusal = %v, want ErrConstraint", err)
	}
	if n, err := db.VerifyAuditChain(ctx); err != nil || n != 1 {
		t.Fatalf("VerifyAuditChain = %d, %v; want carol's record", n, err)
	}
}

// TestOpenAggregatesAfterACrash: a process that dies with aggregates open
// (SIGKILL: no shutdown seal) leaves rows whose counts are every committed
// refusal; the chain verifies without them, and once they are sealed
// (the next minute's first refusal, or the service's minute tick) it covers
// their final counts, so lowering a count afterwards is caught.
func TestOpenAggregatesAfterACrash(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "latch.db")
	db, err := store.Open(path, testOptions(1))
	if err != nil {
		t.Fatal(err)
	}
	mustAppend(t, db, auditRec(0, "alice", "lock"))
	for i := 0; i < 5; i++ {
		inTx(t, db, func(tx *store.Tx) error {
			_, _, err := tx.AppendOrAggregateRefusal(ctx, auditRec(0, "alice", "refused"), 0)
			return err
		})
	}
	// Committed transactions are in the WAL; closing without sealing is
	// what a kill leaves behind.
	db.Close()

	db, err = store.Open(path, testOptions(1))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if n, err := db.VerifyAuditChain(ctx); err != nil || n != 1 {
		t.Fatalf("VerifyAuditChain after the crash = %d, %v; want the one sealed row", n, err)
	}
	rows, err := db.ListAudit(ctx, store.AuditFilter{Outcome: "refused"})
	if err != nil || len(rows) != 1 || rows[0].Count != 5 || rows[0].Seq != 0 {
		t.Fatalf("open aggregate after the crash = %+v, %v; want one open row with count 5", rows, err)
	}
	inTx(t, db, func(tx *store.Tx) error {
		_, _, err := tx.AppendOrAggregateRefusal(ctx, auditRec(1, "alice", "refused"), 1)
		return err
	})
	if n, err := db.VerifyAuditChain(ctx); err != nil || n != 2 {
		t.Fatalf("VerifyAuditChain after the next minute = %d, %v; want 2", n, err)
	}
	dropAuditGuards(t, db)
	rawExec(t, db.Writer(), `UPDATE audit_log SET count = 4 WHERE id = ?`, rows[0].ID)
	var ce *store.AuditChainError
	if _, err := db.VerifyAuditChain(ctx); !errors.As(err, &ce) || ce.RowID != rows[0].ID {
		t.Fatalf("VerifyAuditChain after lowering the sealed count = %v; want row %d named", err, rows[0].ID)
	}
}
