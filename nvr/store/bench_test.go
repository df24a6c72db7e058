package store_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/latchnvr/latch/nvr/store"
)

// The store's share of the numbers:
//
//	go test ./nvr/store/ -run '^$' -bench . -benchtime 2s
//
// bare_exec is the floor every write here is measured against: one
// autocommit INSERT of one integer through database/sql on the same
// database file, with the same pragmas (WAL, synchronous=NORMAL).

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
	b.Run("bare_exec", func(b *testing.B) {
		db, _ := openTemp(b)
		rawExec(b, db.Writer(), `CREATE TABLE bench_floor (x INTEGER) STRICT`)
		b.ReportAllocs()
		for b.Loop() {
			if _, err := db.Writer().ExecContext(ctx, `INSERT INTO bench_floor (x) VALUES (?)`, 1); err != nil {
				b.Fatal(err)
			}
		}
	})
	// A refusal on a key whose aggregate for this minute is open (R-AUDIT):
	// what every refusal of a flood writes, inside a shared transaction.
	// keys open aggregates take turns, so the flood is spread over keys.
	for _, keys := range []int{1, 1024} {
		b.Run(fmt.Sprintf("aggregate_refusal/%d-keys", keys), func(b *testing.B) {
			db, _ := openTemp(b)
			recs := make([]store.AuditRecord, keys)
			for i := range recs {
				recs[i] = auditRec(0, fmt.Sprintf("user%04d", i), "refused")
			}
			b.ReportAllocs()
			i := 0
			err := db.WithTx(ctx, func(tx *store.Tx) error {
				for b.Loop() {
					if _, _, err := tx.AppendOrAggregateRefusal(ctx, recs[i%keys], 0); err != nil {
						return err
					}
					i++
				}
				return nil
			})
			if err != nil {
				b.Fatal(err)
			}
		})
	}
	// One refusal per transaction: the worst case of group commit (a lone
	// attacker waiting for each answer), beside bare_exec.
	b.Run("aggregate_refusal/tx_per_refusal", func(b *testing.B) {
		db, _ := openTemp(b)
		b.ReportAllocs()
		for b.Loop() {
			err := db.WithTx(ctx, func(tx *store.Tx) error {
				_, _, err := tx.AppendOrAggregateRefusal(ctx, rec, 0)
				return err
			})
			if err != nil {
				b.Fatal(err)
			}
		}
	})
}

// BenchmarkSegmentWrite measures the recorder's write path in the index:
// one transaction per closed segment (as the recorder's index does), and
// the steady state of a full disk, where every new segment also retires
// the oldest through the garbage list (MarkSegmentsGarbage, then
// CollectGarbage with a remover that deletes nothing: the files are the
// recorder's, and their cost is the file system's). segments/s is the
// figure; a camera closes one segment a minute.
func BenchmarkSegmentWrite(b *testing.B) {
	ctx := context.Background()
	setup := func(b *testing.B) (*store.DB, int64) {
		db, _ := openTemp(b)
		var cam int64
		inTx(b, db, func(tx *store.Tx) error {
			var err error
			cam, err = tx.InsertCamera(ctx, store.Camera{Name: "cam1", FPS: 1, Width: 640, Height: 360, Enabled: true})
			return err
		})
		return db, cam
	}
	segment := func(cam int64, i int) store.Segment {
		start := t0 + int64(i)*minute
		return store.Segment{CameraID: cam, StartWallNS: start, EndWallNS: start + minute, StartInstantNS: int64(i) * minute,
			DurationNS: minute, Bytes: 1 << 20, Frames: 60, Path: fmt.Sprintf("cam1/%08d.mjpeg", i)}
	}
	insert := func(b *testing.B, db *store.DB, s store.Segment) int64 {
		var id int64
		inTx(b, db, func(tx *store.Tx) error {
			var err error
			id, err = tx.InsertSegment(ctx, s)
			return err
		})
		return id
	}
	b.Run("index", func(b *testing.B) {
		db, cam := setup(b)
		b.ReportAllocs()
		i := 0
		for b.Loop() {
			insert(b, db, segment(cam, i))
			i++
		}
		b.ReportMetric(float64(i)/b.Elapsed().Seconds(), "segments/s")
	})
	b.Run("index_and_retire", func(b *testing.B) {
		db, cam := setup(b)
		const kept = 1000 // a full disk: each new segment retires the oldest
		ids := make([]int64, 0, kept)
		for i := 0; i < kept; i++ {
			ids = append(ids, insert(b, db, segment(cam, i)))
		}
		noRemove := func(string) error { return nil }
		b.ReportAllocs()
		i := kept
		for b.Loop() {
			ids = append(ids, insert(b, db, segment(cam, i)))
			oldest := ids[0]
			ids = ids[1:]
			inTx(b, db, func(tx *store.Tx) error {
				_, err := tx.MarkSegmentsGarbage(ctx, []int64{oldest})
				return err
			})
			if n, err := db.CollectGarbage(ctx, noRemove); err != nil || n != 1 {
				b.Fatalf("CollectGarbage = %d, %v", n, err)
			}
			i++
		}
		b.ReportMetric(float64(i-kept)/b.Elapsed().Seconds(), "segments/s")
	})
}
