package store_test

import (
	"context"
	"errors"
	"testing"

	"github.com/latchnvr/latch/nvr/store"
)

func TestKeyStateVersioning(t *testing.T) {
	ctx := context.Background()
	db, _ := openTemp(t)
	id := store.KeyID{Kind: store.KindPair, Principal: "alice", Source: "2001:db8::/64"}

	if _, err := db.GetKeyState(ctx, id); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("GetKeyState of a fresh key = %v, want ErrNotFound", err)
	}
	put := func(ks store.KeyState) (int64, error) {
		var v int64
		err := db.WithTx(ctx, func(tx *store.Tx) error {
			var err error
			v, err = tx.PutKeyState(ctx, ks)
			return err
		})
		return v, err
	}
	ks := store.KeyState{KeyID: id, Mode: store.ModeOpen, State: []byte{1}, WallAnchorNS: t0}
	if v, err := put(ks); err != nil || v != 1 {
		t.Fatalf("first put = %d, %v", v, err)
	}
	// A second "create" and a stale update both lose.
	if _, err := put(ks); !errors.Is(err, store.ErrVersionConflict) {
		t.Fatalf("second create = %v, want ErrVersionConflict", err)
	}
	got, err := db.GetKeyState(ctx, id)
	if err != nil || got.Version != 1 || string(got.State) != "\x01" {
		t.Fatalf("GetKeyState = %+v, %v", got, err)
	}
	got.Mode, got.State, got.RemainingNS = store.ModeLocked, []byte{2}, 5*minute
	if v, err := put(got); err != nil || v != 2 {
		t.Fatalf("update = %d, %v", v, err)
	}
	if _, err := put(got); !errors.Is(err, store.ErrVersionConflict) {
		t.Fatalf("stale update = %v, want ErrVersionConflict", err)
	}
	got, _ = db.GetKeyState(ctx, id)
	if got.Version != 2 || got.Mode != store.ModeLocked || got.RemainingNS != 5*minute {
		t.Fatalf("after update = %+v", got)
	}
	inTx(t, db, func(tx *store.Tx) error { return tx.DeleteKeyState(ctx, id) })
	if _, err := db.GetKeyState(ctx, id); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("after delete = %v", err)
	}
}

func TestKeyStateListing(t *testing.T) {
	ctx := context.Background()
	db, _ := openTemp(t)
	keys := []store.KeyState{
		{KeyID: store.KeyID{Kind: store.KindPair, Principal: "alice", Source: "192.0.2.1"}, Mode: store.ModeLocked, RemainingNS: minute},
		{KeyID: store.KeyID{Kind: store.KindPair, Principal: "alice", Source: "192.0.2.2"}, Mode: store.ModeOpen},
		{KeyID: store.KeyID{Kind: store.KindPrincipal, Principal: "alice"}, Mode: store.ModeHeld, RemainingNS: 1<<63 - 1},
		{KeyID: store.KeyID{Kind: store.KindConsole, Principal: "alice"}, Mode: store.ModeOpen},
		{KeyID: store.KeyID{Kind: store.KindSource, Source: "192.0.2.1"}, Mode: store.ModeLocked, RemainingNS: minute},
		{KeyID: store.KeyID{Kind: store.KindPair, Principal: "bob", Source: "192.0.2.1"}, Mode: store.ModeOpen},
	}
	inTx(t, db, func(tx *store.Tx) error {
		for _, k := range keys {
			if _, err := tx.PutKeyState(ctx, k); err != nil {
				return err
			}
		}
		return nil
	})
	notOpen, err := db.ListNotOpen(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var got []store.KeyID
	for _, k := range notOpen {
		got = append(got, k.KeyID)
	}
	want := []store.KeyID{keys[0].KeyID, keys[2].KeyID, keys[4].KeyID} // kind order: pair, principal, source
	if len(got) != len(want) || got[0] != want[0] || got[1] != want[1] || got[2] != want[2] {
		t.Fatalf("ListNotOpen = %v, want %v", got, want)
	}
	if alice, err := db.ListPrincipalKeys(ctx, "alice"); err != nil || len(alice) != 4 {
		t.Fatalf("ListPrincipalKeys(alice) = %d keys, %v; want 4 (no source key)", len(alice), err)
	}
	if none, err := db.ListPrincipalKeys(ctx, ""); err != nil || len(none) != 0 {
		t.Fatalf("ListPrincipalKeys(\"\") = %v, %v; want nothing", none, err)
	}
}

func TestKeyStateRejectsMalformedKeys(t *testing.T) {
	ctx := context.Background()
	db, _ := openTemp(t)
	tests := []struct {
		name string
		ks   store.KeyState
	}{
		{"pair without source", store.KeyState{KeyID: store.KeyID{Kind: store.KindPair, Principal: "a"}, Mode: store.ModeOpen}},
		{"source with principal", store.KeyState{KeyID: store.KeyID{Kind: store.KindSource, Principal: "a", Source: "s"}, Mode: store.ModeOpen}},
		{"principal with source", store.KeyState{KeyID: store.KeyID{Kind: store.KindPrincipal, Principal: "a", Source: "s"}, Mode: store.ModeOpen}},
		{"console without principal", store.KeyState{KeyID: store.KeyID{Kind: store.KindConsole}, Mode: store.ModeOpen}},
		{"unknown kind", store.KeyState{KeyID: store.KeyID{Kind: "subnet", Source: "s"}, Mode: store.ModeOpen}},
		{"unknown mode", store.KeyState{KeyID: store.KeyID{Kind: store.KindSource, Source: "s"}, Mode: "disabled"}},
		{"open with time remaining", store.KeyState{KeyID: store.KeyID{Kind: store.KindSource, Source: "s"}, Mode: store.ModeOpen, RemainingNS: 1}},
		{"negative remaining", store.KeyState{KeyID: store.KeyID{Kind: store.KindSource, Source: "s"}, Mode: store.ModeLocked, RemainingNS: -1}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := db.WithTx(ctx, func(tx *store.Tx) error { _, err := tx.PutKeyState(ctx, tt.ks); return err })
			if !errors.Is(err, store.ErrConstraint) {
				t.Fatalf("PutKeyState = %v, want ErrConstraint", err)
			}
		})
	}
}
