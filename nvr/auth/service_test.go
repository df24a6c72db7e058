package auth

import (
	"context"
	"errors"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/latchnvr/latch/model"
	"github.com/latchnvr/latch/nvr/clock"
	"github.com/latchnvr/latch/nvr/store"
)

const (
	adminPW = "correct horse battery staple"
	userPW  = "violet tangerine kayak 42"
	pin     = "482915"
)

var epoch = time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC)

type rig struct {
	t    *testing.T
	path string
	db   *store.DB
	clk  *clock.Sim
	svc  *Service
}

func newRig(t *testing.T, p model.Policy) *rig {
	t.Helper()
	r := &rig{t: t, path: filepath.Join(t.TempDir(), "latch.db"), clk: clock.NewSim(epoch)}
	r.open(p, 1)
	if _, err := r.svc.Activate(context.Background(), "Admin", adminPW, pin); err != nil {
		t.Fatal(err)
	}
	return r
}

// open (re)opens the database as a process with the given boot id would.
func (r *rig) open(p model.Policy, boot uint64) {
	r.t.Helper()
	if r.svc != nil {
		r.svc.Close()
	}
	if r.db != nil {
		r.db.Close()
	}
	db, err := store.Open(r.path, store.Options{})
	if err != nil {
		r.t.Fatal(err)
	}
	r.t.Cleanup(func() { db.Close() })
	r.db = db
	svc, err := New(db, Config{Clock: r.clk, Hasher: NewHasher(CheapParams, 2), Policy: p, BootID: boot})
	if err != nil {
		r.t.Fatal(err)
	}
	r.t.Cleanup(func() { svc.Close() })
	r.svc = svc
}

func (r *rig) login(user, pw, src string) Result {
	r.t.Helper()
	s, err := model.ParseSource(src)
	if err != nil {
		r.t.Fatal(err)
	}
	res, err := r.svc.Login(context.Background(), Attempt{Username: user, Secret: pw, Source: s})
	if err != nil {
		r.t.Fatal(err)
	}
	return res
}

func latch(t *testing.T) model.Policy {
	p, err := model.Preset("latch")
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func TestLoginAllowsRightSecretAndCreatesSession(t *testing.T) {
	r := newRig(t, latch(t))
	res := r.login("ADMIN", adminPW, "10.0.0.2")
	if res.Decision.Verdict != model.Allowed || res.Token == "" || res.User.Name != "admin" {
		t.Fatalf("%+v", res)
	}
	u, _, err := r.svc.Session(context.Background(), res.Token)
	if err != nil || u.Name != "admin" {
		t.Fatalf("session: %v %+v", err, u)
	}
	// Idle expiry on the injected clock.
	r.clk.Advance(31 * time.Minute)
	if _, _, err := r.svc.Session(context.Background(), res.Token); !errors.Is(err, ErrNoSession) {
		t.Fatalf("idle session still valid: %v", err)
	}
}

func TestR_NOORACLE_RefusedAttemptsNeverHash(t *testing.T) {
	r := newRig(t, latch(t))
	for i := 0; i < 5; i++ {
		r.login("admin", "wrong"+string(rune('a'+i)), "10.0.0.9")
	}
	before := r.svc.hasher.Verifications()
	for i := 0; i < 20; i++ {
		res := r.login("admin", adminPW, "10.0.0.9")
		if res.Decision.Verdict != model.Refused || res.Decision.Scope != model.ScopePair {
			t.Fatalf("attempt %d: %+v", i, res.Decision)
		}
	}
	if got := r.svc.hasher.Verifications() - before; got != 0 {
		t.Fatalf("%d verifications for refused attempts", got)
	}
}

func TestR_ATOMIC_ParallelGuessesConsumeAttempts(t *testing.T) {
	p := latch(t)
	r := newRig(t, p)
	const n = 16
	var wg sync.WaitGroup
	results := make([]Result, n)
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			s, _ := model.ParseSource("10.0.0.7")
			res, err := r.svc.Login(context.Background(), Attempt{Username: "admin", Secret: "guess" + string(rune('A'+i)), Source: s})
			if err != nil {
				t.Error(err)
			}
			results[i] = res
		}(i)
	}
	wg.Wait()
	failed, refused := 0, 0
	for _, res := range results {
		switch res.Decision.Verdict {
		case model.Failed:
			failed++
		case model.Refused:
			refused++
		}
	}
	// Exactly the pair threshold is verified; the rest wait their turn and
	// are refused — never rejected for being parallel, never free guesses.
	if failed != p.Pair.Threshold || refused != n-p.Pair.Threshold {
		t.Fatalf("failed %d refused %d, want %d and %d", failed, refused, p.Pair.Threshold, n-p.Pair.Threshold)
	}
	// Parallel right logins all succeed.
	var ok sync.WaitGroup
	errs := make(chan string, 8)
	for i := 0; i < 8; i++ {
		ok.Add(1)
		go func() {
			defer ok.Done()
			s, _ := model.ParseSource("10.0.0.8")
			res, err := r.svc.Login(context.Background(), Attempt{Username: "admin", Secret: adminPW, Source: s})
			if err != nil || res.Decision.Verdict != model.Allowed {
				errs <- "parallel right login not allowed"
			}
		}()
	}
	ok.Wait()
	close(errs)
	for e := range errs {
		t.Fatal(e)
	}
}

func TestR_ENUM_UnknownUserLooksLikeAKnownOne(t *testing.T) {
	r := newRig(t, latch(t))
	if _, err := r.svc.CreateUser(context.Background(), "admin:admin", NewUser{Name: "viewer1", Password: userPW, Role: store.RoleViewer}); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 8; i++ {
		pw := "nope" + string(rune('a'+i))
		a := r.login("viewer1", pw, "10.1.0.1")
		b := r.login("ghost", pw, "10.2.0.1")
		if a.Decision != b.Decision {
			t.Fatalf("attempt %d: known %+v unknown %+v", i, a.Decision, b.Decision)
		}
	}
}

func TestR_RESTART_LocksSurviveRebootAndClockChaos(t *testing.T) {
	p := latch(t)
	r := newRig(t, p)
	for i := 0; i < 5; i++ {
		r.login("admin", "bad"+string(rune('a'+i)), "10.0.0.3")
	}
	// Reboot 10 s later; the RTC came back in 1970.
	r.clk.Advance(10 * time.Second)
	r.clk.WallJump(-epoch.Sub(time.Unix(0, 0)))
	r.open(p, 2)
	res := r.login("admin", adminPW, "10.0.0.3")
	if res.Decision.Verdict != model.Refused || res.Decision.RetryAfter > time.Minute {
		t.Fatalf("after reboot into 1970: %+v", res.Decision)
	}
	// NTP then steps the clock forward 56 years while running: nothing changes.
	r.clk.WallJump(epoch.Sub(time.Unix(0, 0)) + time.Hour)
	res2 := r.login("admin", adminPW, "10.0.0.3")
	if res2.Decision.Verdict != model.Refused {
		t.Fatalf("a forward wall step unlocked: %+v", res2.Decision)
	}
	// A refusal extends by 1m; after the lock passes on the monotonic clock, ok.
	r.clk.Advance(2 * time.Minute)
	if res := r.login("admin", adminPW, "10.0.0.3"); res.Decision.Verdict != model.Allowed {
		t.Fatalf("after the lock: %+v", res.Decision)
	}
}

func TestR_CONSOLE_MasterPINAlwaysGetsIn(t *testing.T) {
	r := newRig(t, latch(t))
	// Lock the admin remotely from everywhere and hold the principal.
	for i := 0; i < 12; i++ {
		r.login("admin", "bad"+string(rune('a'+i)), "10.9.0."+string(rune('1'+i%9)))
	}
	res, err := r.svc.Login(context.Background(), Attempt{Username: "admin", Secret: pin, Channel: model.Console})
	if err != nil || res.Decision.Verdict != model.Allowed {
		t.Fatalf("console with master PIN: %v %+v", err, res.Decision)
	}
}

func TestLASTADMIN_CannotDisableOrDemoteTheLastAdmin(t *testing.T) {
	r := newRig(t, latch(t))
	_, err := r.svc.UpdateUser(context.Background(), "admin:admin", "admin", func(u *store.User) error { u.Disabled = true; return nil })
	if !errors.Is(err, ErrLastAdmin) {
		t.Fatalf("disable last admin: %v", err)
	}
	_, err = r.svc.UpdateUser(context.Background(), "admin:admin", "admin", func(u *store.User) error { u.Role = store.RoleViewer; return nil })
	if !errors.Is(err, ErrLastAdmin) {
		t.Fatalf("demote last admin: %v", err)
	}
	if err := r.svc.DeleteUser(context.Background(), "admin:admin", "admin"); !errors.Is(err, ErrLastAdmin) {
		t.Fatalf("delete last admin: %v", err)
	}
}

func TestR_UNLOCK_And_R_RESET(t *testing.T) {
	r := newRig(t, latch(t))
	ctx := context.Background()
	if _, err := r.svc.CreateUser(ctx, "admin:admin", NewUser{Name: "bob", Password: userPW, Role: store.RoleOperator}); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 5; i++ {
		r.login("bob", "bad"+string(rune('a'+i)), "10.0.0.4")
	}
	locks, err := r.svc.ListLocks(ctx)
	if err != nil || len(locks) != 1 || locks[0].Kind != "pair" || locks[0].Why == "" {
		t.Fatalf("locks %v %+v", err, locks)
	}
	src, _ := model.ParseSource("10.0.0.4")
	if n, err := r.svc.Unlock(ctx, "admin:admin", UnlockScope{User: "bob", Source: src}); err != nil || n != 1 {
		t.Fatalf("unlock: %d %v", n, err)
	}
	if res := r.login("bob", userPW, "10.0.0.4"); res.Decision.Verdict != model.Allowed {
		t.Fatalf("after unlock: %+v", res.Decision)
	}
	tok := r.login("bob", userPW, "10.0.0.5").Token
	for i := 0; i < 5; i++ {
		r.login("bob", "bad"+string(rune('a'+i)), "10.0.0.6")
	}
	if err := r.svc.SetPassword(ctx, "admin:admin", "bob", "marble orchestra quietly 77", true); err != nil {
		t.Fatal(err)
	}
	if _, _, err := r.svc.Session(ctx, tok); !errors.Is(err, ErrNoSession) {
		t.Fatal("reset did not revoke sessions")
	}
	res := r.login("bob", "marble orchestra quietly 77", "10.0.0.6")
	if res.Decision.Verdict != model.Allowed || !res.MustChangePassword {
		t.Fatalf("after admin reset: %+v must-change %v", res.Decision, res.MustChangePassword)
	}
	if locks, _ := r.svc.ListLocks(ctx); len(locks) != 0 {
		t.Fatalf("locks after reset: %+v", locks)
	}
}

func TestAuditChainCoversAttemptsAndVerifies(t *testing.T) {
	r := newRig(t, latch(t))
	for i := 0; i < 30; i++ {
		r.login("admin", "bad", "10.0.0.2")
	}
	n, err := r.db.VerifyAuditChain(context.Background())
	if err != nil || n == 0 {
		t.Fatalf("verify: %d %v", n, err)
	}
	recs, err := r.db.ListAudit(context.Background(), store.AuditFilter{Principal: "admin", Limit: 100})
	if err != nil {
		t.Fatal(err)
	}
	var locks, refused, repeats int64
	for _, rec := range recs {
		switch rec.Outcome {
		case "lock":
			locks++
		case "refused":
			refused += rec.Count
		case "repeat":
			repeats++
		}
	}
	// latch dedups the replayed wrong password: one counted, the rest
	// repeats; nothing locks and nothing is refused.
	if locks != 0 || repeats != 29 || refused != 0 {
		t.Fatalf("locks %d repeats %d refused %d", locks, repeats, refused)
	}
}

func TestTOTPSecondFactor(t *testing.T) {
	r := newRig(t, latch(t))
	ctx := context.Background()
	key, err := NewTOTPKey("Latch", "admin")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := r.svc.UpdateUser(ctx, "admin:admin", "admin", func(u *store.User) error { u.TOTPSecret = []byte(key.Secret()); return nil }); err != nil {
		t.Fatal(err)
	}
	src, _ := model.ParseSource("10.0.0.2")
	res, _ := r.svc.Login(ctx, Attempt{Username: "admin", Secret: adminPW, Source: src})
	if !res.TOTPRequired || res.Token != "" {
		t.Fatalf("no TOTP: %+v", res)
	}
	res, _ = r.svc.Login(ctx, Attempt{Username: "admin", Secret: adminPW, TOTP: "000000", Source: src})
	if res.Decision.Verdict != model.Failed {
		t.Fatalf("wrong TOTP: %+v", res.Decision)
	}
	code, _ := TOTPCode(key.Secret(), r.clk.Now())
	res, _ = r.svc.Login(ctx, Attempt{Username: "admin", Secret: adminPW, TOTP: code, Source: src})
	if res.Decision.Verdict != model.Allowed || res.Token == "" {
		t.Fatalf("right TOTP: %+v", res.Decision)
	}
	// The same code twice is a replay.
	res, _ = r.svc.Login(ctx, Attempt{Username: "admin", Secret: adminPW, TOTP: code, Source: src})
	if res.Decision.Verdict != model.Failed {
		t.Fatalf("replayed TOTP: %+v", res.Decision)
	}
}

func TestActivationAndPasswordRules(t *testing.T) {
	r := &rig{t: t, path: filepath.Join(t.TempDir(), "latch.db"), clk: clock.NewSim(epoch)}
	r.open(latch(t), 1)
	ctx := context.Background()
	if _, err := r.svc.Activate(ctx, "admin", "password", pin); !errors.Is(err, ErrInvalidInput) {
		t.Fatalf("weak password accepted: %v", err)
	}
	if _, err := r.svc.Activate(ctx, "admin", adminPW, "12"); !errors.Is(err, ErrInvalidInput) {
		t.Fatalf("short PIN accepted: %v", err)
	}
	if _, err := r.svc.Activate(ctx, "admin", adminPW, pin); err != nil {
		t.Fatal(err)
	}
	if _, err := r.svc.Activate(ctx, "admin2", adminPW, pin); !errors.Is(err, ErrAlreadyActivated) {
		t.Fatalf("second activation: %v", err)
	}
	if err := r.svc.FactoryReset(ctx, "console"); err != nil {
		t.Fatal(err)
	}
	if ok, _ := r.svc.Activated(ctx); ok {
		t.Fatal("still activated after factory reset")
	}
}
