package auth

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/latchnvr/latch/model"
	"github.com/latchnvr/latch/nvr/store"
)

// The key cache (cache.go) must be exact: every test below makes the
// service decide from cached keys, changes the stored keys or users behind
// the cache in one of the ways the service can meet, and requires the
// decision the stored state gives (SPEC R-ADMIT, R-UNLOCK, R-RESET,
// R-FACTORY, R-RESTART, R-MONO).

const cacheSrc = "10.9.8.7"

// consoleBeside opens a second store and service on the rig's file, as
// `latch unlock` does beside `latch serve`: another connection, another
// boot, the same clock.
func (r *rig) consoleBeside() *Service {
	r.t.Helper()
	db, err := store.Open(r.path, store.Options{})
	if err != nil {
		r.t.Fatal(err)
	}
	svc, err := New(db, Config{Clock: r.clk, Hasher: NewHasher(CheapParams, 2), Policy: r.svc.Policy(), BootID: 77})
	if err != nil {
		r.t.Fatal(err)
	}
	r.t.Cleanup(func() {
		svc.Close()
		db.Close()
	})
	return svc
}

// lockPairCached makes wrong guesses on user's pair until it refuses, then
// one more refusal, and checks that the pair is in the service's cache as
// locked: the next attempt decides from the cache.
func (r *rig) lockPairCached(user string) {
	r.t.Helper()
	for i := 0; r.login(user, fmt.Sprintf("wrong-%d", i), cacheSrc).Decision.Verdict != model.Refused; i++ {
		if i > 64 {
			r.t.Fatal("the pair never locked")
		}
	}
	if got := r.login(user, "wrong-again", cacheSrc).Decision.Verdict; got != model.Refused {
		r.t.Fatalf("second refusal: %v", got)
	}
	r.requireCachedPair(user, model.Locked)
}

func (r *rig) requireCachedPair(user string, mode model.Mode) {
	r.t.Helper()
	id := store.KeyID{Kind: store.KindPair, Principal: user, Source: cacheSrc}
	r.svc.cache.mu.Lock()
	st, ok := r.svc.cache.keys[id]
	r.svc.cache.mu.Unlock()
	if !ok || st.version == 0 || st.sk.Snapshot.Pair.Mode != mode {
		r.t.Fatalf("cache holds %s: %v %+v; want it %v", id, ok, st, mode)
	}
}

func (r *rig) createUser(name, pw string) {
	r.t.Helper()
	if _, err := r.svc.CreateUser(context.Background(), "admin:admin", NewUser{Name: name, Password: pw, Role: store.RoleOperator}); err != nil {
		r.t.Fatal(err)
	}
}

func wantVerdict(t *testing.T, what string, res Result, want model.Verdict) {
	t.Helper()
	if res.Decision.Verdict != want {
		t.Fatalf("%s: verdict %v (scope %v), want %v", what, res.Decision.Verdict, res.Decision.Scope, want)
	}
}

// R-UNLOCK by the console process while the server has the lock cached.
func TestKeyCache_ExternalUnlockIsSeen(t *testing.T) {
	r := newRig(t, latch(t))
	r.lockPairCached("admin")
	console := r.consoleBeside()
	src := mustSource(cacheSrc)
	if _, err := console.Unlock(context.Background(), "console", UnlockScope{User: "admin", Source: src}); err != nil {
		t.Fatal(err)
	}
	wantVerdict(t, "after the console's unlock", r.login("admin", adminPW, cacheSrc), model.Allowed)
}

// The console locks a pair the server holds cached as open (with one
// failure): the server's next attempt, admitted from the cache, must be
// refused once the batch learns of the console's commit.
func TestKeyCache_ExternalLockIsSeen(t *testing.T) {
	r := newRig(t, latch(t))
	// Two guesses: the first batch empties the cache (its check has
	// nothing to compare with yet).
	wantVerdict(t, "first guess", r.login("admin", "wrong-0", cacheSrc), model.Failed)
	wantVerdict(t, "second guess", r.login("admin", "wrong-1", cacheSrc), model.Failed)
	r.requireCachedPair("admin", model.Open)
	console := r.consoleBeside()
	src := mustSource(cacheSrc)
	for i := 2; ; i++ {
		res, err := console.Login(context.Background(), Attempt{Username: "admin", Secret: fmt.Sprintf("wrong-%d", i), Source: src})
		if err != nil {
			t.Fatal(err)
		}
		if res.Decision.Verdict == model.Refused {
			break
		}
		if i > 64 {
			t.Fatal("the console never locked the pair")
		}
	}
	wantVerdict(t, "right password after the console locked the pair", r.login("admin", adminPW, cacheSrc), model.Refused)
	// And the refusal after it decides from the cache again, refilled.
	wantVerdict(t, "again", r.login("admin", adminPW, cacheSrc), model.Refused)
	r.requireCachedPair("admin", model.Locked)
}

// A user disabled by the console (its users row, not a key) is seen.
func TestKeyCache_ExternalDisableIsSeen(t *testing.T) {
	r := newRig(t, latch(t))
	r.createUser("bob", userPW)
	wantVerdict(t, "bob", r.login("bob", userPW, cacheSrc), model.Allowed)
	console := r.consoleBeside()
	if _, err := console.UpdateUser(context.Background(), "console", "bob", func(u *store.User) error { u.Disabled = true; return nil }); err != nil {
		t.Fatal(err)
	}
	wantVerdict(t, "bob disabled by the console", r.login("bob", userPW, cacheSrc), model.Refused)
	if _, err := console.UpdateUser(context.Background(), "console", "bob", func(u *store.User) error { u.Disabled = false; return nil }); err != nil {
		t.Fatal(err)
	}
	wantVerdict(t, "bob enabled again", r.login("bob", userPW, cacheSrc), model.Allowed)
}

// This process's own acts outside Login: unlock, reset, disable, factory
// reset.
func TestKeyCache_OwnAdminActsAreSeen(t *testing.T) {
	ctx := context.Background()
	t.Run("unlock", func(t *testing.T) {
		r := newRig(t, latch(t))
		r.lockPairCached("admin")
		if _, err := r.svc.Unlock(ctx, "admin:admin", UnlockScope{User: "admin"}); err != nil {
			t.Fatal(err)
		}
		wantVerdict(t, "after unlock", r.login("admin", adminPW, cacheSrc), model.Allowed)
	})
	t.Run("reset", func(t *testing.T) {
		r := newRig(t, latch(t))
		r.createUser("bob", userPW)
		r.lockPairCached("bob")
		if err := r.svc.SetPassword(ctx, "admin:admin", "bob", "quartz lantern meadow 77", true); err != nil {
			t.Fatal(err)
		}
		wantVerdict(t, "after an admin reset", r.login("bob", "quartz lantern meadow 77", cacheSrc), model.Allowed)
	})
	t.Run("disable", func(t *testing.T) {
		r := newRig(t, latch(t))
		r.createUser("bob", userPW)
		wantVerdict(t, "bob", r.login("bob", userPW, cacheSrc), model.Allowed)
		if _, err := r.svc.UpdateUser(ctx, "admin:admin", "bob", func(u *store.User) error { u.Disabled = true; return nil }); err != nil {
			t.Fatal(err)
		}
		wantVerdict(t, "bob disabled", r.login("bob", userPW, cacheSrc), model.Refused)
	})
	t.Run("factory reset", func(t *testing.T) {
		r := newRig(t, latch(t))
		r.lockPairCached("admin")
		if err := r.svc.FactoryReset(ctx, "console"); err != nil {
			t.Fatal(err)
		}
		if _, err := r.svc.Activate(ctx, "admin", "new admin password 2026!", pin); err != nil {
			t.Fatal(err)
		}
		wantVerdict(t, "after a factory reset", r.login("admin", "new admin password 2026!", cacheSrc), model.Allowed)
	})
}

// R-RESTART and R-MONO with the cache: a wall step re-anchors (and empties
// the cache) without changing what the lock has left, and a restart starts
// with an empty cache and the same lock.
func TestKeyCache_WallStepAndRestart(t *testing.T) {
	ctx := context.Background()
	r := newRig(t, latch(t))
	r.lockPairCached("admin")
	before := r.login("admin", adminPW, cacheSrc).Decision.RetryAfter
	r.clk.WallJump(-6 * time.Hour)
	if _, err := r.svc.Reanchor(ctx, false); err != nil {
		t.Fatal(err)
	}
	res := r.login("admin", adminPW, cacheSrc)
	wantVerdict(t, "after the wall step", res, model.Refused)
	if res.Decision.RetryAfter != before {
		t.Fatalf("retry after %v after the wall step, want %v (R-MONO)", res.Decision.RetryAfter, before)
	}
	r.requireCachedPair("admin", model.Locked)
	if _, err := r.svc.Reanchor(ctx, true); err != nil {
		t.Fatal(err)
	}
	r.open(latch(t), 2)
	res = r.login("admin", adminPW, cacheSrc)
	wantVerdict(t, "after the restart", res, model.Refused)
	if res.Decision.RetryAfter != before {
		t.Fatalf("retry after %v after the restart, want %v (R-RESTART)", res.Decision.RetryAfter, before)
	}
	r.clk.Advance(before)
	wantVerdict(t, "once the lock ran out", r.login("admin", adminPW, cacheSrc), model.Allowed)
}

// A refusal decided from the cache counts in the audit like any other
// (R-AUDIT, R-ATOMIC): n refusals, one aggregate with count n.
func TestKeyCache_CachedRefusalsAreCounted(t *testing.T) {
	ctx := context.Background()
	r := newRig(t, latch(t))
	r.lockPairCached("admin") // one refusal so far (at least)
	recs, err := r.db.ListAudit(ctx, store.AuditFilter{Principal: "admin", Outcome: "refused"})
	if err != nil {
		t.Fatal(err)
	}
	var start int64
	for _, rec := range recs {
		start += rec.Count
	}
	const n = 25
	for range n {
		wantVerdict(t, "refusal", r.login("admin", adminPW, cacheSrc), model.Refused)
	}
	recs, err = r.db.ListAudit(ctx, store.AuditFilter{Principal: "admin", Outcome: "refused"})
	if err != nil {
		t.Fatal(err)
	}
	var got int64
	for _, rec := range recs {
		got += rec.Count
	}
	if got != start+n {
		t.Fatalf("refusals counted: %d, want %d", got, start+n)
	}
}
