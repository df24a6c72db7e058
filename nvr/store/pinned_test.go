package store_test

import (
	"context"
	"errors"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/latchnvr/latch/nvr/store"
)

// openPinned opens a fresh database with deferred commits (CommitEvery).
func openPinned(t *testing.T, every int) (*store.DB, string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "latch.db")
	o := testOptions(1)
	o.CommitEvery = every
	db, err := store.Open(path, o)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { db.Close() })
	return db, path
}

func keyN(i int) store.KeyID {
	return store.KeyID{Kind: store.KindPair, Principal: "alice", Source: "192.0.2." + string(rune('0'+i))}
}

func putKey(ctx context.Context, db *store.DB, id store.KeyID) error {
	return db.WithTx(ctx, func(tx *store.Tx) error {
		_, err := tx.PutKeyState(ctx, store.KeyState{KeyID: id, Mode: store.ModeOpen, State: []byte{1}, WallAnchorNS: t0})
		return err
	})
}

// TestPinnedReadsSeeReleasedTransactions: on a pinned DB every read sees
// the transactions WithTx released, before they are committed; another
// connection sees them only after the commit, which comes every
// CommitEvery transactions or at Flush.
func TestPinnedReadsSeeReleasedTransactions(t *testing.T) {
	ctx := context.Background()
	db, path := openPinned(t, 3)
	raw := rawOpen(t, path)
	for i := range 2 {
		if err := putKey(ctx, db, keyN(i)); err != nil {
			t.Fatal(err)
		}
		if ks, err := db.GetKeyState(ctx, keyN(i)); err != nil || ks.Version != 1 {
			t.Fatalf("read back key %d = %+v, %v; want version 1", i, ks, err)
		}
	}
	if n := count(t, raw, "key_states"); n != 0 {
		t.Fatalf("another connection sees %d keys before the commit, want 0", n)
	}
	if err := putKey(ctx, db, keyN(2)); err != nil { // the third: commits
		t.Fatal(err)
	}
	if n := count(t, raw, "key_states"); n != 3 {
		t.Fatalf("another connection sees %d keys after 3 of CommitEvery 3, want 3", n)
	}
	if err := putKey(ctx, db, keyN(3)); err != nil {
		t.Fatal(err)
	}
	if err := db.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	if n := count(t, raw, "key_states"); n != 4 {
		t.Fatalf("another connection sees %d keys after Flush, want 4", n)
	}
	if keys, err := db.ListNotOpen(ctx); err != nil || len(keys) != 0 {
		t.Fatalf("ListNotOpen = %v, %v", keys, err)
	}
}

// TestPinnedFailureWithoutWrites: a WithTx that fails before it writes
// (an error after reads, a compare-and-swap that lost, an INSERT that
// SQLite refused and undid itself, a panic) leaves the batch as it was,
// and the DB goes on; Close commits, and a normal Open finds exactly the
// transactions that succeeded.
func TestPinnedFailureWithoutWrites(t *testing.T) {
	ctx := context.Background()
	db, path := openPinned(t, 1000)
	if err := putKey(ctx, db, keyN(0)); err != nil {
		t.Fatal(err)
	}
	mustAppend(t, db, auditRec(0, "alice", "failure"))
	boom := errors.New("boom")
	if err := db.WithTx(ctx, func(tx *store.Tx) error {
		if _, err := tx.GetKeyState(ctx, keyN(0)); err != nil {
			return err
		}
		return boom
	}); !errors.Is(err, boom) {
		t.Fatalf("failing read-only WithTx = %v, want boom", err)
	}
	if err := putKey(ctx, db, keyN(0)); !errors.Is(err, store.ErrVersionConflict) {
		t.Fatalf("second create of key 0 = %v, want ErrVersionConflict", err)
	}
	if err := db.WithTx(ctx, func(tx *store.Tx) error {
		_, err := tx.InsertUser(ctx, store.User{Name: "", Role: store.RoleViewer, PasswordHash: "h", CreatedNS: t0, UpdatedNS: t0})
		return err
	}); err == nil {
		t.Fatal("a user with an empty name was inserted")
	}
	func() {
		defer func() {
			if recover() == nil {
				t.Fatal("the panic did not reach the caller")
			}
		}()
		db.WithTx(ctx, func(tx *store.Tx) error { panic("before writing") })
	}()
	if err := putKey(ctx, db, keyN(1)); err != nil {
		t.Fatalf("the batch did not go on: %v", err)
	}
	if err := db.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	again, err := store.Open(path, testOptions(1))
	if err != nil {
		t.Fatal(err)
	}
	defer again.Close()
	for i := range 2 {
		if _, err := again.GetKeyState(ctx, keyN(i)); err != nil {
			t.Fatalf("after reopening, key %d: %v", i, err)
		}
	}
	if n, err := again.VerifyAuditChain(ctx); err != nil || n != 1 {
		t.Fatalf("after reopening, VerifyAuditChain = %d, %v", n, err)
	}
}

// TestPinnedFailureAfterWrites: a WithTx that fails or panics after it
// wrote cannot be undone alone without a savepoint per transaction (which
// cost a sixth of the simulator's time): the batch since the last commit
// is rolled back with it, every later call fails and says so, Close
// reports it, and the file keeps exactly what was committed, chain whole.
func TestPinnedFailureAfterWrites(t *testing.T) {
	ctx := context.Background()
	for _, panics := range []bool{false, true} {
		db, path := openPinned(t, 3)
		for i := range 4 { // the third commits; the fourth is pending
			if err := putKey(ctx, db, keyN(i)); err != nil {
				t.Fatal(err)
			}
		}
		boom := errors.New("boom")
		err := func() (err error) {
			defer func() {
				if r := recover(); r != nil {
					err = boom
				}
			}()
			return db.WithTx(ctx, func(tx *store.Tx) error {
				if _, err := tx.AppendAudit(ctx, auditRec(0, "alice", "failure")); err != nil {
					return err
				}
				if panics {
					panic("after writing")
				}
				return boom
			})
		}()
		if !errors.Is(err, boom) {
			t.Fatalf("panics=%v: failing WithTx = %v, want boom", panics, err)
		}
		if err := putKey(ctx, db, keyN(5)); err == nil || !strings.Contains(err.Error(), "rolls back the 1 transactions since the last commit") {
			t.Fatalf("panics=%v: WithTx after the failure = %v, want the batch's loss named", panics, err)
		}
		if err := db.Close(); err == nil {
			t.Fatalf("panics=%v: Close after the failure said nothing", panics)
		}
		again, err := store.Open(path, testOptions(1))
		if err != nil {
			t.Fatal(err)
		}
		for i, want := range []bool{true, true, true, false, false, false} {
			if _, err := again.GetKeyState(ctx, keyN(i)); (err == nil) != want {
				t.Fatalf("panics=%v: after reopening, key %d: %v, want present=%v", panics, i, err, want)
			}
		}
		if n, err := again.VerifyAuditChain(ctx); err != nil || n != 0 {
			t.Fatalf("panics=%v: after reopening, VerifyAuditChain = %d, %v", panics, n, err)
		}
		again.Close()
	}
}

// TestPinnedHoldsTheWriteLock: while a pinned DB is open, another writer
// on the file (the console) waits its busy timeout and fails with ErrBusy
// rather than writing beside it; after Close it opens.
func TestPinnedHoldsTheWriteLock(t *testing.T) {
	ctx := context.Background()
	db, path := openPinned(t, 1000)
	if err := putKey(ctx, db, keyN(0)); err != nil {
		t.Fatal(err)
	}
	o := testOptions(1)
	o.BusyTimeout = time.Millisecond
	other, err := store.Open(path, o)
	if err == nil {
		err = putKey(ctx, other, keyN(1))
		other.Close()
	}
	if !errors.Is(err, store.ErrBusy) {
		t.Fatalf("a second writer beside the pinned DB: %v, want ErrBusy", err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	other, err = store.Open(path, o)
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	if err := putKey(ctx, other, keyN(1)); err != nil {
		t.Fatalf("after the pinned DB closed: %v", err)
	}
}
