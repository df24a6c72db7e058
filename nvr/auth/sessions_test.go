package auth

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	mrand "math/rand/v2"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/latchnvr/latch/model"
	"github.com/latchnvr/latch/nvr/clock"
	"github.com/latchnvr/latch/nvr/store"
)

// loginFrom signs user in from src with a user agent, as the web layer does.
func (r *rig) loginFrom(user, pw, src, ua string) Result {
	r.t.Helper()
	s, err := model.ParseSource(src)
	if err != nil {
		r.t.Fatal(err)
	}
	res, err := r.svc.Login(context.Background(), Attempt{Username: user, Secret: pw, Source: s, Channel: model.Remote,
		Peer: src + ":40000", UserAgent: ua})
	if err != nil {
		r.t.Fatal(err)
	}
	return res
}

// pending returns the queued notifications of a kind.
func (r *rig) pending(kind string) []store.OutboxMessage {
	r.t.Helper()
	all, err := r.db.NextDueOutbox(context.Background(), epoch.Add(1000*time.Hour).UnixNano(), 0)
	if err != nil {
		r.t.Fatal(err)
	}
	var out []store.OutboxMessage
	for _, m := range all {
		if m.Kind == kind {
			out = append(out, m)
		}
	}
	return out
}

// audits returns the audit records with an outcome, newest first.
func (r *rig) audits(outcome string) []store.AuditRecord {
	r.t.Helper()
	recs, err := r.db.ListAudit(context.Background(), store.AuditFilter{Outcome: outcome})
	if err != nil {
		r.t.Fatal(err)
	}
	return recs
}

func (r *rig) sessionValid(token string) bool {
	r.t.Helper()
	_, _, err := r.svc.Session(context.Background(), token)
	if err != nil && !errors.Is(err, ErrNoSession) {
		r.t.Fatal(err)
	}
	return err == nil
}

func (r *rig) addUser(name, email string) {
	r.t.Helper()
	if _, err := r.svc.CreateUser(context.Background(), "admin:admin", NewUser{Name: name, Password: userPW, Email: email, Role: store.RoleOperator}); err != nil {
		r.t.Fatal(err)
	}
}

func (r *rig) setSessionPolicy(p SessionPolicy) {
	r.t.Helper()
	if err := r.svc.SetSessionPolicy(context.Background(), "admin:admin", p); err != nil {
		r.t.Fatal(err)
	}
}

// newSeededRig is newRig on a database whose device secret is always the
// same, so that two rigs fingerprint wrong secrets alike (R-REPLAY).
func newSeededRig(t *testing.T, p model.Policy) *rig {
	t.Helper()
	r := &rig{t: t, path: filepath.Join(t.TempDir(), "latch.db"), clk: clock.NewSim(epoch)}
	db, err := store.Open(r.path, store.Options{Rand: mrand.NewChaCha8([32]byte{9})})
	if err != nil {
		t.Fatal(err)
	}
	db.Close()
	r.open(p, 1)
	if _, err := r.svc.Activate(context.Background(), "Admin", adminPW, pin); err != nil {
		t.Fatal(err)
	}
	return r
}

const (
	firefox = "Mozilla/5.0 (X11; Linux x86_64; rv:140.0) Gecko/20100101 Firefox/140.0"
	phone   = "Mozilla/5.0 (iPhone; CPU iPhone OS 18_0 like Mac OS X) Mobile/15E148"
)

func TestSessionPolicyDefaultIsNotify(t *testing.T) {
	r := newRig(t, latch(t))
	if p, src := r.svc.SessionPolicy(); p != SessionsNotify || src != "default" {
		t.Fatalf("SessionPolicy() = %q from %q, want notify by default", p, src)
	}
}

// notify: a login while another session of the user is live from a
// different endpoint (source or user agent) queues one notice and audits
// it; every session stays valid.
func TestSessionPolicyNotify(t *testing.T) {
	r := newRig(t, latch(t))
	r.addUser("bob", "bob@example.com")

	first := r.loginFrom("bob", userPW, "10.0.0.2", firefox)
	if first.Decision.Verdict != model.Allowed {
		t.Fatalf("first login: %+v", first.Decision)
	}
	if n := len(r.pending("concurrent_login")); n != 0 {
		t.Fatalf("%d concurrent notices after the only session", n)
	}
	// The same endpoint again (a second tab): not a concurrent login.
	same := r.loginFrom("bob", userPW, "10.0.0.2", firefox)
	if n := len(r.pending("concurrent_login")); n != 0 || len(r.audits("concurrent_session")) != 0 {
		t.Fatalf("the same endpoint counted as another: %d notices", n)
	}
	newDevices := len(r.pending("new_device"))

	// Another source: one notice (which also says it is a new device: no
	// separate new-device mail), one audit record naming both endpoints.
	other := r.loginFrom("bob", userPW, "192.0.2.50", phone)
	notices := r.pending("concurrent_login")
	if len(notices) != 1 {
		t.Fatalf("%d concurrent notices, want 1", len(notices))
	}
	n := notices[0]
	if n.Recipient != "bob@example.com" || !strings.Contains(n.Body, "192.0.2.50") || !strings.Contains(n.Body, "10.0.0.2") || !strings.Contains(n.Body, "new device") {
		t.Fatalf("notice = %+v", n)
	}
	if got := len(r.pending("new_device")); got != newDevices {
		t.Fatalf("a separate new-device mail was queued too (%d → %d)", newDevices, got)
	}
	recs := r.audits("concurrent_session")
	if len(recs) != 1 || recs[0].Principal != "bob" || recs[0].Source != "192.0.2.50" || !strings.Contains(recs[0].Reason, "notify") {
		t.Fatalf("audit = %+v", recs)
	}
	var det struct {
		Endpoint endpointJSON   `json:"endpoint"`
		Others   []endpointJSON `json:"others"`
	}
	if err := json.Unmarshal(recs[0].Detail, &det); err != nil || det.Endpoint.Source != "192.0.2.50" || len(det.Others) != 2 || det.Others[0].Source != "10.0.0.2" {
		t.Fatalf("audit detail %s: %+v %v", recs[0].Detail, det, err)
	}

	// The same source with another browser is another endpoint too.
	r.loginFrom("bob", userPW, "10.0.0.2", phone)
	if got := len(r.pending("concurrent_login")); got != 2 {
		t.Fatalf("%d notices after a second browser on the same address, want 2", got)
	}
	for _, tok := range []string{first.Token, same.Token, other.Token} {
		if !r.sessionValid(tok) {
			t.Fatal("notify revoked a session")
		}
	}

	// A user without an e-mail address: audited, nothing queued.
	r.addUser("carol", "")
	r.loginFrom("carol", userPW, "10.0.0.2", firefox)
	before := len(r.pending("concurrent_login"))
	r.loginFrom("carol", userPW, "10.0.0.3", firefox)
	if got := len(r.pending("concurrent_login")); got != before {
		t.Fatal("a notice for a user with no address")
	}
	if recs := r.audits("concurrent_session"); recs[0].Principal != "carol" {
		t.Fatalf("carol's concurrent login not audited: %+v", recs[0])
	}
}

// replace-oldest: the newest session wins; every older live session of the
// user is revoked, audited, and the user told when one was elsewhere.
func TestSessionPolicyReplaceOldest(t *testing.T) {
	r := newRig(t, latch(t))
	r.addUser("bob", "bob@example.com")
	r.setSessionPolicy(SessionsReplaceOldest)

	a := r.loginFrom("bob", userPW, "10.0.0.2", firefox)
	if len(r.audits("session_replaced")) != 0 {
		t.Fatal("the first session replaced something")
	}
	b := r.loginFrom("bob", userPW, "192.0.2.50", phone)
	if r.sessionValid(a.Token) || !r.sessionValid(b.Token) {
		t.Fatalf("after the second login: old valid %v, new valid %v; want only the new", r.sessionValid(a.Token), r.sessionValid(b.Token))
	}
	recs := r.audits("session_replaced")
	if len(recs) != 1 || recs[0].Principal != "bob" || !strings.Contains(recs[0].Reason, "1 older session") {
		t.Fatalf("audit = %+v", recs)
	}
	notices := r.pending("session_replaced")
	if len(notices) != 1 || !strings.Contains(notices[0].Body, "10.0.0.2") {
		t.Fatalf("notices = %+v", notices)
	}
	sess, err := r.db.ListUserSessions(context.Background(), a.User.ID)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range sess {
		if bytes.Equal(s.IDHash, store.SessionIDHash(a.Token)) && !strings.Contains(s.RevokeReason, "replace-oldest") {
			t.Fatalf("revoke reason %q", s.RevokeReason)
		}
	}

	// The same endpoint signing in again replaces its own older session,
	// without a mail: nobody else was signed out.
	c := r.loginFrom("bob", userPW, "192.0.2.50", phone)
	if r.sessionValid(b.Token) || !r.sessionValid(c.Token) {
		t.Fatal("the same endpoint kept two sessions")
	}
	if got := len(r.pending("session_replaced")); got != 1 {
		t.Fatalf("%d replaced notices, want still 1", got)
	}
	if got := len(r.audits("session_replaced")); got != 2 {
		t.Fatalf("%d replaced audits, want 2", got)
	}
	// Other users are untouched.
	adm := r.loginFrom("admin", adminPW, "10.0.0.9", firefox)
	r.loginFrom("bob", userPW, "10.0.0.2", firefox)
	if !r.sessionValid(adm.Token) {
		t.Fatal("bob's login revoked the admin's session")
	}
}

func TestSessionPolicyAllow(t *testing.T) {
	r := newRig(t, latch(t))
	r.addUser("bob", "bob@example.com")
	r.setSessionPolicy(SessionsAllow)
	var toks []string
	for _, src := range []string{"10.0.0.2", "192.0.2.50", "2001:db8::7"} {
		toks = append(toks, r.loginFrom("bob", userPW, src, firefox).Token)
	}
	for _, tok := range toks {
		if !r.sessionValid(tok) {
			t.Fatal("allow revoked a session")
		}
	}
	if len(r.pending("concurrent_login"))+len(r.pending("session_replaced"))+len(r.audits("concurrent_session"))+len(r.audits("session_replaced")) != 0 {
		t.Fatal("allow notified or audited a concurrent login")
	}
}

// The policy never touches a lock key: the same logins leave the same key
// states, byte for byte, under every policy.
func TestSessionPolicyNeverTouchesLockKeys(t *testing.T) {
	script := func(p SessionPolicy) [][]byte {
		r := newSeededRig(t, latch(t))
		r.addUser("bob", "bob@example.com")
		r.setSessionPolicy(p)
		r.loginFrom("bob", userPW, "10.0.0.2", firefox)
		r.loginFrom("bob", "wrong password one", "192.0.2.50", phone)
		r.loginFrom("bob", userPW, "192.0.2.50", phone)
		r.clk.Advance(time.Minute)
		r.loginFrom("bob", userPW, "10.0.0.3", firefox)
		keys, err := r.db.ListPrincipalKeys(context.Background(), "bob")
		if err != nil {
			t.Fatal(err)
		}
		var out [][]byte
		for _, k := range keys {
			out = append(out, append([]byte(k.KeyID.String()+"|"), k.State...))
		}
		if locks, _ := r.svc.ListLocks(context.Background()); len(locks) != 0 {
			t.Fatalf("%s: locks %+v", p, locks)
		}
		return out
	}
	want := script(SessionsAllow)
	for _, p := range []SessionPolicy{SessionsNotify, SessionsReplaceOldest} {
		got := script(p)
		if len(got) != len(want) {
			t.Fatalf("%s: %d keys, allow has %d", p, len(got), len(want))
		}
		for i := range got {
			if !bytes.Equal(got[i], want[i]) {
				t.Fatalf("%s: key %d differs from allow:\n%x\n%x", p, i, got[i], want[i])
			}
		}
	}
}

// The setting lives in the device settings: it survives a restart, other
// settings keys are kept, a start-up override wins until changed, and a
// factory reset returns to the default.
func TestSessionPolicySetting(t *testing.T) {
	r := newRig(t, latch(t))
	ctx := context.Background()
	if err := r.db.WithTx(ctx, func(tx *store.Tx) error { return tx.SetSettings(ctx, []byte(`{"theme":"dark"}`)) }); err != nil {
		t.Fatal(err)
	}
	if err := r.svc.SetSessionPolicy(ctx, "admin:admin", "replace-newest"); !errors.Is(err, ErrInvalidInput) || !strings.Contains(err.Error(), "allow, notify or replace-oldest") {
		t.Fatalf("bad value = %v", err)
	}
	r.setSessionPolicy(SessionsReplaceOldest)
	dev, err := r.db.GetDevice(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var settings map[string]string
	if err := json.Unmarshal(dev.Settings, &settings); err != nil || settings["theme"] != "dark" || settings["sessions_policy"] != "replace-oldest" {
		t.Fatalf("settings %s (%v)", dev.Settings, err)
	}
	recs := r.audits("settings_change")
	if len(recs) != 1 || recs[0].Actor != "admin:admin" || !strings.Contains(recs[0].Reason, "notify → replace-oldest") {
		t.Fatalf("audit = %+v", recs)
	}

	r.open(latch(t), 2)
	if p, src := r.svc.SessionPolicy(); p != SessionsReplaceOldest || src != "device" {
		t.Fatalf("after restart: %q from %q", p, src)
	}
	svc, err := New(r.db, Config{Clock: r.clk, Hasher: NewHasher(CheapParams, 1), Policy: latch(t), BootID: 3, SessionPolicy: SessionsAllow})
	if err != nil {
		t.Fatal(err)
	}
	defer svc.Close()
	if p, src := svc.SessionPolicy(); p != SessionsAllow || src != "flag" {
		t.Fatalf("with an override: %q from %q", p, src)
	}
	if _, err := New(r.db, Config{Clock: r.clk, Policy: latch(t), SessionPolicy: "sometimes"}); !errors.Is(err, ErrInvalidInput) {
		t.Fatalf("New with a bad override = %v", err)
	}
	if err := r.svc.FactoryReset(ctx, "console"); err != nil {
		t.Fatal(err)
	}
	if p, src := r.svc.SessionPolicy(); p != SessionsNotify || src != "default" {
		t.Fatalf("after a factory reset: %q from %q", p, src)
	}
}
