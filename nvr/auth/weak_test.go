package auth

import (
	"context"
	"testing"

	"github.com/latchnvr/latch/nvr/store"
)

// TestWeakPasswordAtLogin: a password the strength check refuses today
// (here written by an older firmware straight into the store) verifies,
// and the login says it must be changed, and records that. A strong
// password is checked at its first login only: the check (zxcvbn, about
// a millisecond for a long password) gives the same answer for the same
// password hash and name, and it was half of a simulated site's CPU.
func TestWeakPasswordAtLogin(t *testing.T) {
	r := newRig(t, latch(t))
	ctx := context.Background()
	hash, err := r.svc.hasher.Hash(ctx, "password1")
	if err != nil {
		t.Fatal(err)
	}
	if err := r.db.WithTx(ctx, func(tx *store.Tx) error {
		_, err := tx.InsertUser(ctx, store.User{Name: "oldcam", Role: store.RoleViewer, PasswordHash: hash, CreatedNS: epoch.UnixNano(), UpdatedNS: epoch.UnixNano()})
		return err
	}); err != nil {
		t.Fatal(err)
	}
	if res := r.login("oldcam", "password1", "192.0.2.7"); res.Token == "" || !res.MustChangePassword {
		t.Fatalf("login with a weak password: token %q, must change %v; want a session that must change it", res.Token, res.MustChangePassword)
	}
	if u, err := r.db.GetUserByName(ctx, "oldcam"); err != nil || !u.MustChangePassword {
		t.Fatalf("the user after a weak login: %+v, %v; want MustChangePassword recorded", u, err)
	}

	before := r.svc.strong.checks.Load()
	for i := range 3 {
		if res := r.login("admin", adminPW, "192.0.2.8"); res.Token == "" || res.MustChangePassword {
			t.Fatalf("login %d with a strong password: %+v", i, res)
		}
	}
	if n := r.svc.strong.checks.Load() - before; n != 1 {
		t.Fatalf("three logins with one strong password ran the strength check %d times, want 1", n)
	}
	const next = "ultraviolet pinecone harbour 7"
	if err := r.svc.SetPassword(ctx, Actor("user:admin"), "admin", next, false); err != nil {
		t.Fatal(err)
	}
	r.login("admin", next, "192.0.2.8")
	if n := r.svc.strong.checks.Load() - before; n != 2 {
		t.Fatalf("a new password was not checked at its first login: %d checks, want 2", n)
	}
}
