package store_test

import (
	"context"
	"errors"
	"testing"

	"github.com/latchnvr/latch/nvr/store"
)

func TestUsers(t *testing.T) {
	ctx := context.Background()
	db, _ := openTemp(t)
	alice := store.User{Name: "alice", DisplayName: "Alice", Role: store.RoleOperator, PasswordHash: "$argon2id$a",
		MustChangePassword: true, CreatedNS: t0, UpdatedNS: t0}
	inTx(t, db, func(tx *store.Tx) error {
		var err error
		alice.ID, err = tx.InsertUser(ctx, alice)
		return err
	})
	got, err := db.GetUser(ctx, alice.ID)
	if err != nil || got.Name != "alice" || !got.MustChangePassword || got.ExpiresNS != 0 || got.TOTPSecret != nil {
		t.Fatalf("GetUser = %+v, %v", got, err)
	}

	bad := []struct {
		name string
		u    store.User
		want error
	}{
		{"taken name", store.User{Name: "alice", Role: store.RoleViewer, PasswordHash: "h"}, store.ErrExists},
		{"unknown role", store.User{Name: "eve", Role: "root", PasswordHash: "h"}, store.ErrConstraint},
		{"empty name", store.User{Name: "", Role: store.RoleViewer, PasswordHash: "h"}, store.ErrConstraint},
		{"no password hash", store.User{Name: "eve", Role: store.RoleViewer}, store.ErrConstraint},
	}
	for _, tt := range bad {
		t.Run(tt.name, func(t *testing.T) {
			err := db.WithTx(ctx, func(tx *store.Tx) error { _, err := tx.InsertUser(ctx, tt.u); return err })
			if !errors.Is(err, tt.want) {
				t.Fatalf("InsertUser = %v, want %v", err, tt.want)
			}
		})
	}

	// Read, change, write in one transaction; a guest expiry and 2FA.
	inTx(t, db, func(tx *store.Tx) error {
		u, err := tx.GetUserByName(ctx, "alice")
		if err != nil {
			return err
		}
		u.Role, u.ExpiresNS, u.TOTPSecret, u.Disabled, u.UpdatedNS = store.RoleViewer, t0+minute, []byte("secret"), true, t0+1
		return tx.UpdateUser(ctx, u)
	})
	got, _ = db.GetUserByName(ctx, "alice")
	if got.Role != store.RoleViewer || got.ExpiresNS != t0+minute || string(got.TOTPSecret) != "secret" || !got.Disabled || got.CreatedNS != t0 {
		t.Fatalf("after update = %+v", got)
	}
	if err := db.WithTx(ctx, func(tx *store.Tx) error {
		return tx.UpdateUser(ctx, store.User{ID: 999, Name: "x", Role: store.RoleViewer, PasswordHash: "h"})
	}); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("UpdateUser(missing) = %v, want ErrNotFound", err)
	}

	// TOTP steps only move forward: a code is accepted once.
	for i, tc := range []struct {
		step int64
		want bool
	}{{100, true}, {100, false}, {99, false}, {101, true}} {
		var ok bool
		inTx(t, db, func(tx *store.Tx) error {
			var err error
			ok, err = tx.AdvanceTOTPStep(ctx, alice.ID, tc.step)
			return err
		})
		if ok != tc.want {
			t.Fatalf("case %d: AdvanceTOTPStep(%d) = %v, want %v", i, tc.step, ok, tc.want)
		}
	}

	// Recovery codes: single use, replaced as a set.
	inTx(t, db, func(tx *store.Tx) error {
		return tx.ReplaceRecoveryCodes(ctx, alice.ID, []string{"h1", "h2", "h3"}, t0)
	})
	codes, err := db.ListRecoveryCodes(ctx, alice.ID)
	if err != nil || len(codes) != 3 {
		t.Fatalf("ListRecoveryCodes = %v, %v", codes, err)
	}
	inTx(t, db, func(tx *store.Tx) error { return tx.UseRecoveryCode(ctx, codes[1].ID, t0+1) })
	err = db.WithTx(ctx, func(tx *store.Tx) error { return tx.UseRecoveryCode(ctx, codes[1].ID, t0+2) })
	if !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("reusing a recovery code = %v, want ErrNotFound", err)
	}
	codes, _ = db.ListRecoveryCodes(ctx, alice.ID)
	if codes[1].UsedNS != t0+1 || codes[0].UsedNS != 0 {
		t.Fatalf("codes after use = %+v", codes)
	}

	// Deleting a user takes their sessions and codes along.
	inTx(t, db, func(tx *store.Tx) error {
		return tx.InsertSession(ctx, store.Session{IDHash: store.SessionIDHash("t"), UserID: alice.ID, CreatedNS: t0,
			LastUsedNS: t0, IdleExpiresNS: t0, AbsoluteExpiresNS: t0})
	})
	inTx(t, db, func(tx *store.Tx) error { return tx.DeleteUser(ctx, alice.ID) })
	if _, err := db.GetSession(ctx, store.SessionIDHash("t")); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("session of a deleted user = %v, want ErrNotFound", err)
	}
	if codes, _ := db.ListRecoveryCodes(ctx, alice.ID); len(codes) != 0 {
		t.Fatalf("codes of a deleted user = %v", codes)
	}
	if users, _ := db.ListUsers(ctx); len(users) != 0 {
		t.Fatalf("ListUsers = %v", users)
	}
}

func TestSessions(t *testing.T) {
	ctx := context.Background()
	db, _ := openTemp(t)
	var uid int64
	inTx(t, db, func(tx *store.Tx) error {
		var err error
		uid, err = tx.InsertUser(ctx, store.User{Name: "alice", Role: store.RoleAdmin, PasswordHash: "h", CreatedNS: t0, UpdatedNS: t0})
		return err
	})
	newSession := func(token string, created int64) store.Session {
		return store.Session{IDHash: store.SessionIDHash(token), UserID: uid, CreatedNS: created, LastUsedNS: created,
			IdleExpiresNS: created + 30*minute, AbsoluteExpiresNS: created + 12*60*minute, Peer: "192.0.2.1", UserAgent: "test"}
	}
	inTx(t, db, func(tx *store.Tx) error {
		for i, tok := range []string{"a", "b", "c"} {
			if err := tx.InsertSession(ctx, newSession(tok, t0+int64(i))); err != nil {
				return err
			}
		}
		return nil
	})
	if err := db.WithTx(ctx, func(tx *store.Tx) error { return tx.InsertSession(ctx, newSession("a", t0)) }); !errors.Is(err, store.ErrExists) {
		t.Fatalf("duplicate session = %v, want ErrExists", err)
	}
	if err := db.WithTx(ctx, func(tx *store.Tx) error {
		s := newSession("short", t0)
		s.IDHash = []byte("not 32 bytes")
		return tx.InsertSession(ctx, s)
	}); !errors.Is(err, store.ErrConstraint) {
		t.Fatalf("short id hash = %v, want ErrConstraint", err)
	}

	inTx(t, db, func(tx *store.Tx) error {
		return tx.TouchSession(ctx, store.SessionIDHash("a"), t0+minute, t0+31*minute)
	})
	s, err := db.GetSession(ctx, store.SessionIDHash("a"))
	if err != nil || s.LastUsedNS != t0+minute || s.IdleExpiresNS != t0+31*minute || s.RevokedNS != 0 || s.Peer != "192.0.2.1" {
		t.Fatalf("after touch = %+v, %v", s, err)
	}

	inTx(t, db, func(tx *store.Tx) error {
		return tx.RevokeSession(ctx, store.SessionIDHash("a"), t0+2*minute, "logout")
	})
	inTx(t, db, func(tx *store.Tx) error { return tx.RevokeSession(ctx, store.SessionIDHash("a"), t0+3*minute, "again") })
	s, _ = db.GetSession(ctx, store.SessionIDHash("a"))
	if s.RevokedNS != t0+2*minute || s.RevokeReason != "logout" {
		t.Fatalf("revocation = %d %q; want the first one kept", s.RevokedNS, s.RevokeReason)
	}
	err = db.WithTx(ctx, func(tx *store.Tx) error { return tx.TouchSession(ctx, store.SessionIDHash("a"), t0, t0) })
	if !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("touching a revoked session = %v, want ErrNotFound", err)
	}

	var revoked int64
	inTx(t, db, func(tx *store.Tx) error {
		var err error
		revoked, err = tx.RevokeUserSessions(ctx, uid, t0+4*minute, "password changed")
		return err
	})
	if revoked != 2 {
		t.Fatalf("RevokeUserSessions = %d, want the 2 live ones", revoked)
	}
	list, err := db.ListUserSessions(ctx, uid)
	if err != nil || len(list) != 3 || list[0].CreatedNS != t0+2 {
		t.Fatalf("ListUserSessions = %+v, %v", list, err)
	}
	var pruned int64
	inTx(t, db, func(tx *store.Tx) error {
		var err error
		pruned, err = tx.PruneSessions(ctx, t0+3*minute)
		return err
	})
	if pruned != 1 {
		t.Fatalf("PruneSessions = %d, want 1 (revoked before the cutoff)", pruned)
	}
}
