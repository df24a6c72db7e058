package store_test

import (
	"context"
	"database/sql"
	"math/rand/v2"
	"path/filepath"
	"testing"

	"github.com/latchnvr/latch/nvr/store"
)

// Fixed instants: tests never read the wall clock.
const (
	t0     int64 = 1_700_000_000_000_000_000 // a wall time, unix ns
	minute int64 = 60_000_000_000
)

// testOptions gives reproducible device secrets.
func testOptions(seed uint64) store.Options {
	var key [32]byte
	key[0] = byte(seed)
	return store.Options{Rand: rand.NewChaCha8(key), FirmwareVersion: "test"}
}

// openTemp opens a fresh database in t.TempDir and closes it at cleanup.
func openTemp(t testing.TB) (*store.DB, string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "latch.db")
	db, err := store.Open(path, testOptions(1))
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { db.Close() })
	return db, path
}

// inTx runs fn in a transaction and fails the test on error.
func inTx(t testing.TB, db *store.DB, fn func(tx *store.Tx) error) {
	t.Helper()
	if err := db.WithTx(context.Background(), fn); err != nil {
		t.Fatalf("WithTx: %v", err)
	}
}

// rawOpen opens path with the bare driver, for building and damaging files
// behind the store's back.
func rawOpen(t testing.TB, path string) *sql.DB {
	t.Helper()
	raw, err := sql.Open("sqlite", path)
	if err != nil {
		t.Fatalf("raw open: %v", err)
	}
	raw.SetMaxOpenConns(1)
	t.Cleanup(func() { raw.Close() })
	return raw
}

func rawExec(t testing.TB, raw *sql.DB, query string, args ...any) {
	t.Helper()
	if _, err := raw.Exec(query, args...); err != nil {
		t.Fatalf("%s: %v", query, err)
	}
}

func count(t testing.TB, raw *sql.DB, table string) int {
	t.Helper()
	var n int
	if err := raw.QueryRow("SELECT count(*) FROM " + table).Scan(&n); err != nil {
		t.Fatalf("count %s: %v", table, err)
	}
	return n
}

// auditRec is a plain audit record at minute m.
func auditRec(m int64, principal, outcome string) store.AuditRecord {
	return store.AuditRecord{
		WallNS:    t0 + m*minute,
		InstantNS: m * minute,
		Principal: principal,
		Source:    "192.0.2.1",
		KeyKind:   store.KindPair,
		Channel:   store.ChannelRemote,
		Outcome:   outcome,
		Reason:    "test",
	}
}

func mustAppend(t testing.TB, db *store.DB, recs ...store.AuditRecord) []int64 {
	t.Helper()
	var ids []int64
	inTx(t, db, func(tx *store.Tx) error {
		for _, r := range recs {
			id, err := tx.AppendAudit(context.Background(), r)
			if err != nil {
				return err
			}
			ids = append(ids, id)
		}
		return nil
	})
	return ids
}
