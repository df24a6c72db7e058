package store_test

import (
	"context"
	"testing"

	"github.com/latchnvr/latch/nvr/store"
)

// othersCommitted runs OthersCommitted in a transaction of its own.
func othersCommitted(t *testing.T, db *store.DB) bool {
	t.Helper()
	var changed bool
	inTx(t, db, func(tx *store.Tx) error {
		var err error
		changed, err = tx.OthersCommitted(context.Background())
		return err
	})
	return changed
}

// OthersCommitted is what the auth service's key cache trusts to learn of
// the console's writes: another DB on the same file (as `latch unlock`
// opens beside `latch serve`) must show, this DB's own commits must not.
func TestOthersCommitted(t *testing.T) {
	ctx := context.Background()
	db, path := openTemp(t)
	if !othersCommitted(t, db) {
		t.Fatal("first call: want true (nothing seen yet)")
	}
	if othersCommitted(t, db) {
		t.Fatal("second call, nobody wrote: want false")
	}
	put := func(db *store.DB, source string) {
		t.Helper()
		inTx(t, db, func(tx *store.Tx) error {
			_, err := tx.PutKeyState(ctx, store.KeyState{KeyID: store.KeyID{Kind: store.KindSource, Source: source}, Mode: store.ModeOpen, State: []byte{1}})
			return err
		})
	}
	put(db, "192.0.2.1")
	if othersCommitted(t, db) {
		t.Fatal("after this DB's own commit: want false")
	}
	console, err := store.Open(path, testOptions(1))
	if err != nil {
		t.Fatal(err)
	}
	defer console.Close()
	put(console, "192.0.2.2")
	if !othersCommitted(t, db) {
		t.Fatal("after another DB's commit: want true")
	}
	if othersCommitted(t, db) {
		t.Fatal("nothing new since: want false")
	}
	// A read-only transaction elsewhere commits nothing.
	if _, err := console.GetKeyState(ctx, store.KeyID{Kind: store.KindSource, Source: "192.0.2.2"}); err != nil {
		t.Fatal(err)
	}
	if othersCommitted(t, db) {
		t.Fatal("after another DB's read: want false")
	}
	// The call inside a transaction that rolls back still counts as seen;
	// what matters is that a commit by another connection is never missed.
	put(console, "192.0.2.3")
	_ = db.WithTx(ctx, func(tx *store.Tx) error {
		if changed, err := tx.OthersCommitted(ctx); err != nil || !changed {
			t.Errorf("OthersCommitted = %v, %v; want true", changed, err)
		}
		return context.Canceled // roll back
	})
	if othersCommitted(t, db) {
		t.Fatal("after a rolled-back call that saw it: want false")
	}
}
