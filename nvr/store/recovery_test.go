package store_test

import (
	"bytes"
	"context"
	"errors"
	"path/filepath"
	"strings"
	"testing"

	"github.com/latchnvr/latch/nvr/store"
)

func hash32(b byte) []byte { return bytes.Repeat([]byte{b}, 32) }

func TestRecoveryTokens(t *testing.T) {
	ctx := context.Background()
	db, _ := openTemp(t)
	var uid int64
	inTx(t, db, func(tx *store.Tx) error {
		var err error
		uid, err = tx.InsertUser(ctx, store.User{Name: "alice", Role: store.RoleViewer, PasswordHash: "h", Email: "a@example.com", CreatedNS: t0, UpdatedNS: t0})
		return err
	})
	if _, err := db.GetRecoveryToken(ctx, "alice"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("no row yet = %v, want ErrNotFound", err)
	}
	first := store.RecoveryToken{Principal: "alice", UserID: uid, CodeHash: hash32(1), CreatedNS: t0, ExpiresNS: t0 + 15*minute, WindowNS: t0, Issued: 1}
	inTx(t, db, func(tx *store.Tx) error { return tx.PutRecoveryToken(ctx, first) })
	if got, err := db.GetRecoveryToken(ctx, "alice"); err != nil || !bytes.Equal(got.CodeHash, first.CodeHash) || got.UserID != uid || got.Issued != 1 {
		t.Fatalf("GetRecoveryToken = %+v, %v", got, err)
	}
	// A new code replaces the previous one.
	second := first
	second.CodeHash, second.CreatedNS, second.ExpiresNS, second.Issued = hash32(2), t0+minute, t0+16*minute, 2
	inTx(t, db, func(tx *store.Tx) error { return tx.PutRecoveryToken(ctx, second) })
	err := db.WithTx(ctx, func(tx *store.Tx) error { return tx.UseRecoveryToken(ctx, "alice", hash32(1)) })
	if !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("using the replaced code = %v, want ErrNotFound", err)
	}
	// A code works once; the window stays.
	inTx(t, db, func(tx *store.Tx) error { return tx.UseRecoveryToken(ctx, "alice", hash32(2)) })
	err = db.WithTx(ctx, func(tx *store.Tx) error { return tx.UseRecoveryToken(ctx, "alice", hash32(2)) })
	if !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("using a code twice = %v, want ErrNotFound", err)
	}
	if got, _ := db.GetRecoveryToken(ctx, "alice"); got.CodeHash != nil || got.WindowNS != t0 || got.Issued != 2 {
		t.Fatalf("after use = %+v", got)
	}
	// Invalidation clears an outstanding code.
	inTx(t, db, func(tx *store.Tx) error { return tx.PutRecoveryToken(ctx, first) })
	inTx(t, db, func(tx *store.Tx) error { return tx.InvalidateRecoveryToken(ctx, "alice") })
	if got, _ := db.GetRecoveryToken(ctx, "alice"); got.CodeHash != nil {
		t.Fatalf("after invalidation = %+v", got)
	}
	// Unknown principals have rows with no user.
	ghost := store.RecoveryToken{Principal: "ghost", CodeHash: hash32(3), CreatedNS: t0, ExpiresNS: t0 + 15*minute, WindowNS: t0, Issued: 1}
	inTx(t, db, func(tx *store.Tx) error { return tx.PutRecoveryToken(ctx, ghost) })
	if got, err := db.GetRecoveryToken(ctx, "ghost"); err != nil || got.UserID != 0 {
		t.Fatalf("ghost = %+v, %v", got, err)
	}
	if err := db.WithTx(ctx, func(tx *store.Tx) error {
		bad := ghost
		bad.CodeHash = []byte("short")
		return tx.PutRecoveryToken(ctx, bad)
	}); !errors.Is(err, store.ErrConstraint) {
		t.Fatalf("short hash = %v, want ErrConstraint", err)
	}

	// Deleting the user detaches the code from the id (which a later user
	// might get again).
	inTx(t, db, func(tx *store.Tx) error { return tx.PutRecoveryToken(ctx, second) })
	inTx(t, db, func(tx *store.Tx) error { return tx.DeleteUser(ctx, uid) })
	if got, err := db.GetRecoveryToken(ctx, "alice"); err != nil || got.UserID != 0 {
		t.Fatalf("after deleting the user = %+v, %v", got, err)
	}

	// Pruning keeps rows whose code or window is still running.
	var n int64
	inTx(t, db, func(tx *store.Tx) error {
		var err error
		n, err = tx.PruneRecoveryTokens(ctx, t0+15*minute, t0)
		return err
	})
	if n != 0 {
		t.Fatalf("pruned %d rows whose window started at the cutoff", n)
	}
	inTx(t, db, func(tx *store.Tx) error {
		var err error
		n, err = tx.PruneRecoveryTokens(ctx, t0+15*minute, t0+1)
		return err
	})
	if n != 1 {
		t.Fatalf("pruned %d, want 1 (ghost; alice's second code runs until %d)", n, second.ExpiresNS)
	}
}

func TestLiveSessionsAndSource(t *testing.T) {
	ctx := context.Background()
	db, _ := openTemp(t)
	var uid int64
	inTx(t, db, func(tx *store.Tx) error {
		var err error
		uid, err = tx.InsertUser(ctx, store.User{Name: "alice", Role: store.RoleViewer, PasswordHash: "h", CreatedNS: t0, UpdatedNS: t0})
		return err
	})
	sess := func(tok string, created, idle int64, src string) store.Session {
		return store.Session{IDHash: store.SessionIDHash(tok), UserID: uid, CreatedNS: created, LastUsedNS: created,
			IdleExpiresNS: idle, AbsoluteExpiresNS: created + 60*minute, Peer: "127.0.0.1:5000", UserAgent: "ua-" + tok, Source: src}
	}
	inTx(t, db, func(tx *store.Tx) error {
		for _, s := range []store.Session{
			sess("old", t0, t0+30*minute, "192.0.2.1"),
			sess("idle", t0+1, t0+2*minute, "192.0.2.2"), // idle-expired at t0+5m
			sess("new", t0+2, t0+30*minute, "2001:db8::/64"),
			sess("gone", t0+3, t0+30*minute, "192.0.2.3"),
		} {
			if err := tx.InsertSession(ctx, s); err != nil {
				return err
			}
		}
		return tx.RevokeSession(ctx, store.SessionIDHash("gone"), t0+4, "logout")
	})
	if s, err := db.GetSession(ctx, store.SessionIDHash("new")); err != nil || s.Source != "2001:db8::/64" {
		t.Fatalf("source round trip = %+v, %v", s, err)
	}
	var live []store.Session
	inTx(t, db, func(tx *store.Tx) error {
		var err error
		live, err = tx.ListLiveUserSessions(ctx, uid, t0+5*minute)
		return err
	})
	if len(live) != 2 || live[0].UserAgent != "ua-old" || live[1].UserAgent != "ua-new" {
		t.Fatalf("live sessions = %+v, want old then new", live)
	}
	// Elsewhere: without one endpoint, which is source and user agent
	// together (the same source with another agent is elsewhere).
	for _, c := range []struct{ source, ua, want string }{
		{"192.0.2.1", "ua-old", "ua-new"},
		{"2001:db8::/64", "ua-new", "ua-old"},
		{"192.0.2.1", "ua-new", "ua-old ua-new"},
	} {
		inTx(t, db, func(tx *store.Tx) error {
			var err error
			live, err = tx.ListLiveUserSessionsElsewhere(ctx, uid, t0+5*minute, c.source, c.ua)
			return err
		})
		var got []string
		for _, s := range live {
			got = append(got, s.UserAgent)
		}
		if strings.Join(got, " ") != c.want {
			t.Fatalf("live sessions elsewhere than %s %s = %v, want %s", c.source, c.ua, got, c.want)
		}
	}
}

// TestUpgradeFromV2 opens a database as the schema-2 binary left it: its
// sessions survive with an unknown endpoint, and recovery works.
func TestUpgradeFromV2(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "latch.db")
	v2, err := store.OpenAtVersion(path, testOptions(1), 2)
	if err != nil {
		t.Fatalf("open at v2: %v", err)
	}
	var uid int64
	inTx(t, v2, func(tx *store.Tx) error {
		uid, err = tx.InsertUser(ctx, store.User{Name: "alice", Role: store.RoleViewer, PasswordHash: "h", CreatedNS: t0, UpdatedNS: t0})
		return err
	})
	// A v2 session, written as the v2 binary wrote it (no source column).
	if _, err := v2.Writer().ExecContext(ctx, `INSERT INTO sessions (id_hash, user_id, created_ns, last_used_ns, idle_expires_ns, absolute_expires_ns, peer, user_agent)
		VALUES (?, ?, ?, ?, ?, ?, '192.0.2.1:4000', 'old browser')`, store.SessionIDHash("v2"), uid, t0, t0, t0+30*minute, t0+60*minute); err != nil {
		t.Fatal(err)
	}
	err = v2.WithTx(ctx, func(tx *store.Tx) error {
		return tx.PutRecoveryToken(ctx, store.RecoveryToken{Principal: "alice", CodeHash: hash32(1), CreatedNS: t0, ExpiresNS: t0, WindowNS: t0})
	})
	if err == nil {
		t.Fatal("v2 has a recovery_tokens table")
	}
	v2.Close()

	db, err := store.Open(path, testOptions(1))
	if err != nil {
		t.Fatalf("upgrade: %v", err)
	}
	defer db.Close()
	if dev := mustDevice(t, db); dev.SchemaVersion != 3 {
		t.Fatalf("schema version %d after upgrade", dev.SchemaVersion)
	}
	s, err := db.GetSession(ctx, store.SessionIDHash("v2"))
	if err != nil || s.Source != "" || s.UserAgent != "old browser" || s.Peer != "192.0.2.1:4000" {
		t.Fatalf("v2 session after upgrade = %+v, %v", s, err)
	}
	inTx(t, db, func(tx *store.Tx) error {
		return tx.PutRecoveryToken(ctx, store.RecoveryToken{Principal: "alice", UserID: uid, CodeHash: hash32(1), CreatedNS: t0, ExpiresNS: t0 + minute, WindowNS: t0, Issued: 1})
	})
	inTx(t, db, func(tx *store.Tx) error { return tx.UseRecoveryToken(ctx, "alice", hash32(1)) })
}
