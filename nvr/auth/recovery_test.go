package auth

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/latchnvr/latch/model"
	"github.com/latchnvr/latch/nvr/store"
)

const newPW = "lantern quarry meadow 58"

var codeInMail = regexp.MustCompile(`Recovery code: ([A-Z2-7-]+)`)

// mailedCode returns the code of the newest recovery mail to addr.
func (r *rig) mailedCode(addr string) string {
	r.t.Helper()
	msgs := r.pending("recovery_code")
	for i := len(msgs) - 1; i >= 0; i-- {
		if msgs[i].Recipient == addr {
			m := codeInMail.FindStringSubmatch(msgs[i].Body)
			if m == nil {
				r.t.Fatalf("no code in %q", msgs[i].Body)
			}
			return m[1]
		}
	}
	r.t.Fatalf("no recovery mail to %s", addr)
	return ""
}

func (r *rig) start(user, from string) error {
	r.t.Helper()
	return r.svc.StartRecovery(context.Background(), user, mustSource(from))
}

func (r *rig) finish(user, code, pw, from string) error {
	r.t.Helper()
	return r.svc.FinishRecovery(context.Background(), Recovery{Username: user, Code: code, NewPassword: pw, Source: mustSource(from)})
}

// lockOut locks bob's pair from one source and his principal key (failures
// from many unfamiliar sources): every remote way in is refused.
func (r *rig) lockOut(user string) {
	r.t.Helper()
	p := r.svc.Policy()
	for i := 0; i < p.Pair.Threshold; i++ {
		r.login(user, fmt.Sprintf("wrong %d", i), "203.0.113.7")
	}
	for i := 0; ; i++ {
		ks, err := r.db.GetKeyState(context.Background(), store.KeyID{Kind: store.KindPrincipal, Principal: user})
		if err == nil && ks.Mode != store.ModeOpen {
			return
		}
		if i > 1000 {
			r.t.Fatal("the principal never locked")
		}
		r.login(user, fmt.Sprintf("spray %d", i), fmt.Sprintf("198.51.%d.%d", i/200, i%200+1))
	}
}

func (r *rig) locksOf(user string) []Lock {
	r.t.Helper()
	locks, err := r.svc.ListLocks(context.Background())
	if err != nil {
		r.t.Fatal(err)
	}
	var out []Lock
	for _, l := range locks {
		if l.Principal == user {
			out = append(out, l)
		}
	}
	return out
}

// R-RESET: an e-mailed code works while the account is locked everywhere,
// opens every key of the principal at level 0, revokes its sessions, does
// not force a change, is audited, and tells the user.
func TestR_RESET_RecoveryByEmailWhileLocked(t *testing.T) {
	r := newRig(t, latch(t))
	ctx := context.Background()
	r.addUser("bob", "bob@example.com")
	old := r.loginFrom("bob", userPW, "10.0.0.2", firefox)
	r.lockOut("bob")
	if res := r.login("bob", userPW, "203.0.113.7"); res.Decision.Verdict != model.Refused {
		t.Fatalf("bob is not locked out: %+v", res.Decision)
	}
	if len(r.locksOf("bob")) < 2 {
		t.Fatalf("locks: %+v", r.locksOf("bob"))
	}

	if err := r.start("Bob", "203.0.113.7"); err != nil {
		t.Fatal(err)
	}
	code := r.mailedCode("bob@example.com")
	if len(strings.ReplaceAll(code, "-", "")) != 26 {
		t.Fatalf("code %q: want 26 characters (128 bits)", code)
	}
	verifications := r.svc.hasher.Verifications()
	if err := r.finish("bob", strings.ToLower(code), newPW, "203.0.113.7"); err != nil {
		t.Fatalf("finish: %v", err)
	}
	if got := r.svc.hasher.Verifications(); got != verifications {
		t.Fatal("recovery verified a password")
	}
	if locks := r.locksOf("bob"); len(locks) != 0 {
		t.Fatalf("still locked after recovery: %+v", locks)
	}
	keys, err := r.db.ListPrincipalKeys(ctx, "bob")
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range keys {
		sk, err := DecodeKey(k.State)
		if err != nil {
			t.Fatal(err)
		}
		if k.Mode != store.ModeOpen || sk.Snapshot.Pair.Level != 0 || sk.Snapshot.Pair.NFail != 0 {
			t.Fatalf("INV-RESET: %s is %s at level %d with %d failures", k.KeyID, k.Mode, sk.Snapshot.Pair.Level, sk.Snapshot.Pair.NFail)
		}
	}
	if r.sessionValid(old.Token) {
		t.Fatal("recovery kept an old session")
	}
	res := r.login("bob", newPW, "203.0.113.7")
	if res.Decision.Verdict != model.Allowed || res.MustChangePassword {
		t.Fatalf("login with the new password: %+v must change %v", res.Decision, res.MustChangePassword)
	}
	recs := r.audits("reset")
	if len(recs) != 1 || recs[0].Actor != "self:bob" || !strings.Contains(recs[0].Reason, "e-mailed code") || !strings.Contains(recs[0].Reason, "R-RESET") {
		t.Fatalf("reset audit = %+v", recs)
	}
	if n := r.pending("password_reset"); len(n) != 1 || n[0].Recipient != "bob@example.com" || !strings.Contains(n[0].Body, "self-service recovery") {
		t.Fatalf("reset notice = %+v", n)
	}
	// Single use.
	if err := r.finish("bob", code, "another fine passphrase 31", "203.0.113.7"); !errors.Is(err, ErrInvalidCode) {
		t.Fatalf("reusing the code = %v", err)
	}
}

// R-ENUM: a request answers the same and writes the same for an unknown
// name, a user with no address and a disabled user; only a user who can
// recover gets mail.
func TestRecoveryStartIsTheSameForEveryone(t *testing.T) {
	r := newRig(t, latch(t))
	ctx := context.Background()
	r.addUser("bob", "bob@example.com")
	r.addUser("carol", "")
	r.addUser("dave", "dave@example.com")
	if _, err := r.svc.UpdateUser(ctx, "admin:admin", "dave", func(u *store.User) error { u.Disabled = true; return nil }); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"bob", "carol", "dave", "ghost"} {
		if err := r.start(name, "10.0.0.2"); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		row, err := r.db.GetRecoveryToken(ctx, name)
		if err != nil || len(row.CodeHash) != 32 || row.Issued != 1 {
			t.Fatalf("%s: row %+v, %v", name, row, err)
		}
		if (row.UserID != 0) != (name == "bob") {
			t.Fatalf("%s: code usable by user %d", name, row.UserID)
		}
	}
	if msgs := r.pending("recovery_code"); len(msgs) != 1 || msgs[0].Recipient != "bob@example.com" {
		t.Fatalf("mails: %+v", msgs)
	}
	if recs := r.audits("recovery_start"); len(recs) != 4 {
		t.Fatalf("%d recovery_start audits, want 4", len(recs))
	}
	// A disabled account cannot be recovered by its user, with any code.
	if err := r.svc.StartRecovery(ctx, "\u0000", mustSource("10.0.0.2")); !errors.Is(err, ErrInvalidInput) {
		t.Fatalf("malformed name = %v", err)
	}
}

func TestRecoveryNewCodeReplacesOldAndExpires(t *testing.T) {
	r := newRig(t, latch(t))
	r.addUser("bob", "bob@example.com")
	if err := r.start("bob", "10.0.0.2"); err != nil {
		t.Fatal(err)
	}
	first := r.mailedCode("bob@example.com")
	if err := r.start("bob", "10.0.0.2"); err != nil {
		t.Fatal(err)
	}
	second := r.mailedCode("bob@example.com")
	if first == second {
		t.Fatal("the same code twice")
	}
	if err := r.finish("bob", first, newPW, "10.0.0.2"); !errors.Is(err, ErrInvalidCode) {
		t.Fatalf("the replaced code = %v", err)
	}
	r.clk.Advance(RecoveryCodeTTL)
	if err := r.finish("bob", second, newPW, "10.0.0.2"); !errors.Is(err, ErrInvalidCode) {
		t.Fatalf("an expired code = %v", err)
	}
}

// A stranger who spends the principal's window cannot keep the owner out:
// every code went to the owner, and the last one lasts until a new one can
// be asked for.
func TestRecoveryWindowNeverLeavesOwnerWithoutACode(t *testing.T) {
	r := newRig(t, latch(t))
	r.addUser("bob", "bob@example.com")
	for i := 0; i < RecoveryPerWindow; i++ {
		if err := r.start("bob", fmt.Sprintf("198.51.100.%d", i+1)); err != nil {
			t.Fatal(err)
		}
		r.clk.Advance(time.Minute)
	}
	last := r.mailedCode("bob@example.com")
	// More requests (the owner's included) change nothing.
	for i := 0; i < 5; i++ {
		if err := r.start("bob", "10.0.0.2"); err != nil {
			t.Fatal(err)
		}
	}
	if n := len(r.pending("recovery_code")); n != RecoveryPerWindow {
		t.Fatalf("%d codes mailed, want %d per window", n, RecoveryPerWindow)
	}
	// Long past the TTL, still inside the window: the last code works.
	r.clk.Advance(RecoveryWindow - time.Duration(RecoveryPerWindow)*time.Minute - time.Second)
	if err := r.finish("bob", last, newPW, "10.0.0.2"); err != nil {
		t.Fatalf("the window's last code at the end of the window: %v", err)
	}
	// The next window issues codes again.
	r.clk.Advance(time.Second)
	if err := r.start("bob", "10.0.0.2"); err != nil {
		t.Fatal(err)
	}
	if n := len(r.pending("recovery_code")); n != RecoveryPerWindow+1 {
		t.Fatalf("%d codes mailed, want one more in the next window", n)
	}
}

func TestRecoveryStartIsLimitedPerSource(t *testing.T) {
	r := newRig(t, latch(t))
	for i := 0; i < 10; i++ {
		if err := r.start(fmt.Sprintf("user%d", i), "203.0.113.7"); err != nil {
			t.Fatal(err)
		}
	}
	var te *ThrottledError
	if err := r.start("user10", "203.0.113.7"); !errors.As(err, &te) || te.Scope != "source" || te.RetryAfter <= 0 {
		t.Fatalf("11th request from one source = %v", err)
	}
	if err := r.start("user10", "203.0.113.8"); err != nil {
		t.Fatalf("another source: %v", err)
	}
}

// Wrong codes are refused per source and never reach a lock key; the
// owner's code from elsewhere still works.
func TestRecoveryWrongCodesThrottleTheSourceOnly(t *testing.T) {
	r := newRig(t, latch(t))
	r.addUser("bob", "bob@example.com")
	if err := r.start("bob", "10.0.0.2"); err != nil {
		t.Fatal(err)
	}
	code := r.mailedCode("bob@example.com")
	guess := strings.Repeat("A", 26)
	for i := 0; i < 10; i++ {
		if err := r.finish("bob", guess, newPW, "203.0.113.7"); !errors.Is(err, ErrInvalidCode) {
			t.Fatalf("guess %d = %v", i, err)
		}
	}
	var te *ThrottledError
	if err := r.finish("bob", code, newPW, "203.0.113.7"); !errors.As(err, &te) || te.Scope != "source" {
		t.Fatalf("11th try from the guessing source = %v", err)
	}
	keys, err := r.db.ListPrincipalKeys(context.Background(), "bob")
	if err != nil || len(keys) != 0 {
		t.Fatalf("wrong recovery codes wrote lock keys: %+v %v", keys, err)
	}
	if n := len(r.audits("recovery_fail")); n != 10 {
		t.Fatalf("%d recovery_fail audits, want 10", n)
	}
	if err := r.finish("bob", code, newPW, "10.0.0.2"); err != nil {
		t.Fatalf("the owner's code: %v", err)
	}
}

// R-RESET's other channels: the authenticator's current code and a
// recovery code from enrolment, each once; guessing them is limited per
// principal, and the e-mailed code stays open.
func TestRecoveryWithTOTPAndRecoveryCodes(t *testing.T) {
	r := newRig(t, latch(t))
	ctx := context.Background()
	r.addUser("bob", "bob@example.com")
	key, err := NewTOTPKey("Latch NVR", "bob")
	if err != nil {
		t.Fatal(err)
	}
	codes, err := r.svc.EnableTOTP(ctx, "self:bob", "bob", key.Secret())
	if err != nil || len(codes) != BackupCodeCount {
		t.Fatalf("EnableTOTP = %v, %v", codes, err)
	}
	if recs := r.audits("totp_enable"); len(recs) != 1 {
		t.Fatalf("totp_enable audit: %+v", recs)
	}
	totp, _ := TOTPCode(key.Secret(), r.clk.Now())
	if err := r.finish("bob", totp, newPW, "10.0.0.2"); err != nil {
		t.Fatalf("with the TOTP: %v", err)
	}
	if err := r.finish("bob", totp, "second fine passphrase 11", "10.0.0.2"); !errors.Is(err, ErrInvalidCode) {
		t.Fatalf("the same TOTP again = %v", err)
	}
	if err := r.finish("bob", codes[3], "second fine passphrase 11", "10.0.0.2"); err != nil {
		t.Fatalf("with a recovery code: %v", err)
	}
	if err := r.finish("bob", codes[3], "third fine passphrase 12", "10.0.0.2"); !errors.Is(err, ErrInvalidCode) {
		t.Fatalf("a used recovery code = %v", err)
	}
	// Guessing TOTPs is limited per principal, from any source: 5 wrong
	// authenticator or recovery codes (the two reuses above were 2).
	for i := 0; i < 3; i++ {
		if err := r.finish("bob", "000000", newPW, fmt.Sprintf("198.51.100.%d", i+1)); !errors.Is(err, ErrInvalidCode) {
			t.Fatalf("TOTP guess %d = %v", i, err)
		}
	}
	var te *ThrottledError
	if err := r.finish("bob", codes[4], newPW, "10.0.0.2"); !errors.As(err, &te) || te.Scope != "principal" {
		t.Fatalf("after 5 wrong TOTPs = %v", err)
	}
	if err := r.start("bob", "10.0.0.2"); err != nil {
		t.Fatal(err)
	}
	if err := r.finish("bob", r.mailedCode("bob@example.com"), "fourth fine passphrase 13", "10.0.0.2"); err != nil {
		t.Fatalf("the e-mailed code while the TOTP channel is throttled: %v", err)
	}
	// A user without 2FA cannot use a TOTP at all.
	r.addUser("carol", "carol@example.com")
	if err := r.finish("carol", totp, newPW, "10.0.0.3"); !errors.Is(err, ErrInvalidCode) {
		t.Fatalf("TOTP for an account without 2FA = %v", err)
	}
	// Removing 2FA removes its recovery codes.
	if _, err := r.svc.UpdateUser(ctx, "admin:admin", "bob", func(u *store.User) error { u.TOTPSecret = nil; return nil }); err != nil {
		t.Fatal(err)
	}
	u, _ := r.db.GetUserByName(ctx, "bob")
	if left, _ := r.db.ListRecoveryCodes(ctx, u.ID); len(left) != 0 {
		t.Fatalf("%d recovery codes left after removing 2FA", len(left))
	}
}

// A recovery code also stands in for the authenticator at sign-in (a
// lost phone), once.
func TestLoginWithRecoveryCode(t *testing.T) {
	r := newRig(t, latch(t))
	ctx := context.Background()
	r.addUser("bob", "")
	key, _ := NewTOTPKey("Latch NVR", "bob")
	codes, err := r.svc.EnableTOTP(ctx, "self:bob", "bob", key.Secret())
	if err != nil {
		t.Fatal(err)
	}
	login := func(second string) Result {
		res, err := r.svc.Login(ctx, Attempt{Username: "bob", Secret: userPW, TOTP: second, Source: mustSource("10.0.0.2"), Channel: model.Remote})
		if err != nil {
			t.Fatal(err)
		}
		return res
	}
	if res := login(strings.ToLower(codes[0])); res.Decision.Verdict != model.Allowed {
		t.Fatalf("with a recovery code: %+v", res.Decision)
	}
	if res := login(codes[0]); res.Decision.Verdict == model.Allowed {
		t.Fatal("a recovery code worked twice")
	}
	if res := login("ZZZZZ-ZZZZZ"); res.Decision.Verdict == model.Allowed {
		t.Fatal("a made-up recovery code worked")
	}
}

// Bad input is named; a weak password costs no code.
func TestRecoveryBadInput(t *testing.T) {
	r := newRig(t, latch(t))
	r.addUser("bob", "bob@example.com")
	if err := r.start("bob", "10.0.0.2"); err != nil {
		t.Fatal(err)
	}
	code := r.mailedCode("bob@example.com")
	for _, tc := range []struct{ user, code, pw, want string }{
		{"bob", "12345", newPW, "code"},
		{"bob", "abc$def", newPW, "code"},
		{"bob", strings.Repeat("A", 65), newPW, "code"},
		{"bob", strings.Repeat("A", 27), newPW, "code"},
		{"", code, newPW, "username"},
		{"bob", code, "password", "password"},
		{"bob", code, "bob", "password"},
		{"bob", code, strings.Repeat("x", 2000), "password"},
	} {
		err := r.finish(tc.user, tc.code, tc.pw, "10.0.0.2")
		if !errors.Is(err, ErrInvalidInput) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("finish(%q, %q, %q) = %v, want invalid input naming %s", tc.user, tc.code, tc.pw, err, tc.want)
		}
	}
	if err := r.finish("bob", code, newPW, "10.0.0.2"); err != nil {
		t.Fatalf("the code after the weak tries: %v", err)
	}
}

// Two requests racing with one code: exactly one sets its password.
func TestRecoveryCodeIsSingleUseUnderRace(t *testing.T) {
	r := newRig(t, latch(t))
	r.addUser("bob", "bob@example.com")
	if err := r.start("bob", "10.0.0.2"); err != nil {
		t.Fatal(err)
	}
	code := r.mailedCode("bob@example.com")
	var wg sync.WaitGroup
	errs := make([]error, 4)
	for i := range errs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = r.svc.FinishRecovery(context.Background(), Recovery{Username: "bob", Code: code,
				NewPassword: fmt.Sprintf("racing passphrase number %d", i), Source: mustSource("10.0.0.2")})
		}()
	}
	wg.Wait()
	ok := 0
	for _, err := range errs {
		switch {
		case err == nil:
			ok++
		case !errors.Is(err, ErrInvalidCode):
			t.Fatal(err)
		}
	}
	if ok != 1 {
		t.Fatalf("%d requests succeeded with one code", ok)
	}
}

// Every password change voids an outstanding e-mailed code, and an admin
// reset tells the user too.
func TestPasswordChangeVoidsRecoveryCode(t *testing.T) {
	r := newRig(t, latch(t))
	ctx := context.Background()
	r.addUser("bob", "bob@example.com")
	if err := r.start("bob", "10.0.0.2"); err != nil {
		t.Fatal(err)
	}
	code := r.mailedCode("bob@example.com")
	if err := r.svc.SetPassword(ctx, "admin:admin", "bob", "marble orchestra quietly 77", true); err != nil {
		t.Fatal(err)
	}
	if err := r.finish("bob", code, newPW, "10.0.0.2"); !errors.Is(err, ErrInvalidCode) {
		t.Fatalf("a code from before an admin reset = %v", err)
	}
	if n := r.pending("password_reset"); len(n) != 1 || !strings.Contains(n[0].Body, "an administrator (admin:admin)") {
		t.Fatalf("admin reset notice = %+v", n)
	}
	if u, _ := r.db.GetUserByName(ctx, "bob"); !u.MustChangePassword {
		t.Fatal("an admin reset did not force a change")
	}
}
