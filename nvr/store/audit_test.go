package store_test

import (
	"context"
	"encoding/json"
	"errors"
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
