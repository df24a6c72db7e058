package store_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"

	"github.com/latchnvr/latch/nvr/store"
)

// TestWithTxSerialisesWriters runs read-modify-write transactions from many
// goroutines on one key: with one IMMEDIATE writer no update is lost and no
// version conflict is ever seen, and the audit chain they extend verifies.
func TestWithTxSerialisesWriters(t *testing.T) {
	ctx := context.Background()
	db, _ := openTemp(t)
	key := store.KeyID{Kind: store.KindPrincipal, Principal: "alice"}
	const goroutines, perGoroutine = 8, 25

	var wg sync.WaitGroup
	errs := make(chan error, goroutines)
	for g := range goroutines {
		wg.Go(func() {
			for i := range perGoroutine {
				err := db.WithTx(ctx, func(tx *store.Tx) error {
					ks, err := tx.GetKeyState(ctx, key)
					if errors.Is(err, store.ErrNotFound) {
						ks = store.KeyState{KeyID: key, Mode: store.ModeOpen}
					} else if err != nil {
						return err
					}
					ks.State = append(ks.State, byte(g))
					if _, err := tx.PutKeyState(ctx, ks); err != nil {
						return err
					}
					_, err = tx.AppendAudit(ctx, auditRec(int64(i), fmt.Sprintf("g%d", g), "failure"))
					return err
				})
				if err != nil {
					errs <- err
					return
				}
			}
		})
	}
	// Readers run beside the writers on the read pool.
	wg.Go(func() {
		for range 50 {
			if _, err := db.ListAudit(ctx, store.AuditFilter{Limit: 5}); err != nil {
				errs <- err
				return
			}
		}
	})
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatalf("concurrent writer: %v", err)
	}
	ks, err := db.GetKeyState(ctx, key)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := ks.Version, int64(goroutines*perGoroutine); got != want || len(ks.State) != int(want) {
		t.Fatalf("version %d, state %d bytes; want %d of each", got, len(ks.State), want)
	}
	if n, err := db.VerifyAuditChain(ctx); err != nil || n != goroutines*perGoroutine {
		t.Fatalf("VerifyAuditChain = %d, %v", n, err)
	}
}

// TestWithTxRollsBack: an error or a panic in the callback leaves no trace
// (SPEC R-ATOMIC: a crash before commit grants nothing), and the writer
// connection is usable afterwards.
func TestWithTxRollsBack(t *testing.T) {
	ctx := context.Background()
	db, _ := openTemp(t)
	write := func(tx *store.Tx) error {
		if _, err := tx.AppendAudit(ctx, auditRec(0, "alice", "success")); err != nil {
			return err
		}
		_, err := tx.PutKeyState(ctx, store.KeyState{KeyID: store.KeyID{Kind: store.KindSource, Source: "s"}, Mode: store.ModeOpen})
		return err
	}
	errBoom := errors.New("boom")
	if err := db.WithTx(ctx, func(tx *store.Tx) error {
		if err := write(tx); err != nil {
			return err
		}
		return errBoom
	}); !errors.Is(err, errBoom) {
		t.Fatalf("WithTx = %v, want the callback's error", err)
	}
	func() {
		defer func() {
			if recover() == nil {
				t.Fatal("panic was swallowed")
			}
		}()
		db.WithTx(ctx, func(tx *store.Tx) error {
			if err := write(tx); err != nil {
				return err
			}
			panic("crash before commit")
		})
	}()
	if n, err := db.VerifyAuditChain(ctx); err != nil || n != 0 {
		t.Fatalf("rolled-back audit rows remain: %d, %v", n, err)
	}
	if _, err := db.GetKeyState(ctx, store.KeyID{Kind: store.KindSource, Source: "s"}); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("rolled-back key state: %v, want ErrNotFound", err)
	}
	inTx(t, db, write)
	if n, _ := db.VerifyAuditChain(ctx); n != 1 {
		t.Fatalf("write after rollback: %d audit rows, want 1", n)
	}
}

func TestWithTxHonoursContext(t *testing.T) {
	db, _ := openTemp(t)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	err := db.WithTx(ctx, func(tx *store.Tx) error { return nil })
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("WithTx with a cancelled context = %v, want context.Canceled", err)
	}
}

// TestDiskFull fills the database to a page limit (SQLite's SQLITE_FULL, as
// on a full disk): the write fails with ErrDiskFull and context, nothing
// panics, and the database stays readable and writable once space returns.
func TestDiskFull(t *testing.T) {
	ctx := context.Background()
	db, _ := openTemp(t)
	var cam int64
	inTx(t, db, func(tx *store.Tx) error {
		var err error
		cam, err = tx.InsertCamera(ctx, store.Camera{Name: "door", FPS: 10, Width: 640, Height: 480})
		return err
	})
	var pages int64
	if err := db.Writer().QueryRow("PRAGMA page_count").Scan(&pages); err != nil {
		t.Fatal(err)
	}
	// max_page_count is per connection; the writer pool has exactly one.
	rawExec(t, db.Writer(), fmt.Sprintf("PRAGMA max_page_count = %d", pages+2))

	var err error
	for i := int64(0); i < 10_000 && err == nil; i++ {
		err = db.WithTx(ctx, func(tx *store.Tx) error {
			s := segmentAt(cam, i)
			s.Path = strings.Repeat("x", 200) + fmt.Sprint(i)
			_, err := tx.InsertSegment(ctx, s)
			return err
		})
	}
	if !errors.Is(err, store.ErrDiskFull) || !strings.Contains(err.Error(), "store: insert segment") {
		t.Fatalf("write to a full database = %v, want ErrDiskFull with context", err)
	}
	t.Logf("refused: %v", err)
	if u, err := db.SegmentUsage(ctx); err != nil || u.Segments == 0 {
		t.Fatalf("reads after disk full = %+v, %v", u, err)
	}
	rawExec(t, db.Writer(), "PRAGMA max_page_count = 1073741823")
	mustAppend(t, db, auditRec(0, "alice", "success"))
}

func TestPolicyAndSettings(t *testing.T) {
	ctx := context.Background()
	db, _ := openTemp(t)
	if _, err := db.GetPolicy(ctx); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("GetPolicy on a new device = %v, want ErrNotFound", err)
	}
	for i, yaml := range []string{"preset: latch\n", "preset: annke\n"} {
		inTx(t, db, func(tx *store.Tx) error {
			return tx.SetPolicy(ctx, store.Policy{YAML: yaml, UpdatedNS: t0 + int64(i), UpdatedBy: "admin"})
		})
	}
	if p, err := db.GetPolicy(ctx); err != nil || p.YAML != "preset: annke\n" || p.UpdatedNS != t0+1 {
		t.Fatalf("GetPolicy = %+v, %v", p, err)
	}
	for _, bad := range []string{`[1,2]`, `{oops`} {
		err := db.WithTx(ctx, func(tx *store.Tx) error { return tx.SetSettings(ctx, []byte(bad)) })
		if !errors.Is(err, store.ErrConstraint) {
			t.Fatalf("SetSettings(%s) = %v, want ErrConstraint", bad, err)
		}
	}
	err := db.WithTx(ctx, func(tx *store.Tx) error { return tx.SetMasterPIN(ctx, "$argon2id$pin") })
	if !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("SetMasterPIN on an inactive device = %v, want ErrNotFound", err)
	}
}
