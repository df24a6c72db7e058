package store_test

import (
	"context"
	"testing"

	"github.com/latchnvr/latch/nvr/store"
)

// BenchmarkAppendAudit measures the audit append the auth service does on
// every verified attempt: inside one long transaction (the chain and insert
// cost alone) and one transaction per record (what a login pays, fsync
// policy included).
func BenchmarkAppendAudit(b *testing.B) {
	ctx := context.Background()
	rec := auditRec(0, "alice", "wrong_secret")
	rec.Detail = []byte(`{"pair":"open","source":"open","principal":"open"}`)

	b.Run("one_tx", func(b *testing.B) {
		db, _ := openTemp(b)
		b.ReportAllocs()
		err := db.WithTx(ctx, func(tx *store.Tx) error {
			for b.Loop() {
				if _, err := tx.AppendAudit(ctx, rec); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			b.Fatal(err)
		}
	})
	b.Run("tx_per_record", func(b *testing.B) {
		db, _ := openTemp(b)
		b.ReportAllocs()
		for b.Loop() {
			err := db.WithTx(ctx, func(tx *store.Tx) error {
				_, err := tx.AppendAudit(ctx, rec)
				return err
			})
			if err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("aggregate_refusal", func(b *testing.B) {
		db, _ := openTemp(b)
		b.ReportAllocs()
		err := db.WithTx(ctx, func(tx *store.Tx) error {
			for b.Loop() {
				if _, _, err := tx.AppendOrAggregateRefusal(ctx, rec, 0); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			b.Fatal(err)
		}
	})
}
