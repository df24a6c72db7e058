package model

// Each test names the SPEC rule it checks (the way etcd's raft_paper_test.go
// cites the Raft paper). Instants are explicit; nothing reads a clock.

import (
	"errors"
	"testing"
	"time"
)

const t0 Instant = 1_000_000_000_000

// testPolicy is small and distinct per kind, so a test can tell which key
// did what.
func testPolicy() Policy {
	return Policy{
		Pair:      KeyPolicy{Threshold: 3, Window: 10 * time.Minute, Base: time.Minute, Growth: 2, Cap: 8 * time.Minute, Decay: time.Hour},
		Source:    KeyPolicy{Threshold: 5, Window: 10 * time.Minute, Base: 5 * time.Minute, Growth: 1, Cap: 5 * time.Minute},
		Principal: KeyPolicy{Threshold: 4, Window: 10 * time.Minute, Base: 2 * time.Minute, Growth: 1, Cap: 2 * time.Minute},
		Console:   KeyPolicy{Threshold: 3, Window: 5 * time.Minute, Base: 30 * time.Second, Growth: 1, Cap: 30 * time.Second},
		TrustTTL:  24 * time.Hour,
	}
}

func wrong(print uint64) Event { return Event{Attempt: Attempt{Print: print}, Outcome: WrongSecret} }

var right = Event{Outcome: RightSecret}

// fails applies n distinct wrong secrets at instant at.
func fails(v View, n int, at Instant, p *Policy) (View, Decision) {
	var d Decision
	for i := 0; i < n; i++ {
		v, d = Decide(v, wrong(uint64(1000+i)+uint64(at)), at, p)
	}
	return v, d
}

func TestPoliciesOfPresetsAreValid(t *testing.T) {
	for _, n := range PresetNames() {
		p, err := Preset(n)
		if err != nil {
			t.Fatal(err)
		}
		if err := p.Validate(); err != nil {
			t.Errorf("preset %s: %v", n, err)
		}
		if p.Preset != n {
			t.Errorf("preset %s names itself %q", n, p.Preset)
		}
	}
	if _, err := Preset("nope"); err == nil {
		t.Error("unknown preset accepted")
	}
}

func TestR_ADVANCE_LockEndsAtUntilNotBefore(t *testing.T) {
	p := testPolicy()
	v, d := fails(View{}, 3, t0, &p)
	if v.Pair.Mode != Locked || d.Effects&EffLocked == 0 {
		t.Fatalf("pair after 3 failures: %v", v.Pair.Mode)
	}
	until := v.Pair.Until
	if got, want := until, t0.Add(time.Minute); got != want {
		t.Fatalf("until = %d, want %d", got, want)
	}
	// One nanosecond before until: still refused.
	if _, d := Decide(v, right, until-1, &p); d.Verdict != Refused || d.Scope != ScopePair {
		t.Fatalf("at until-1ns: %v scope %v, want refused by pair", d.Verdict, d.Scope)
	}
	// At until (until ≤ now): Open, failures cleared, level kept.
	v2, d := Decide(v, wrong(1), until, &p)
	if d.Verdict != Failed {
		t.Fatalf("at until: %v, want admitted and failed", d.Verdict)
	}
	if v2.Pair.NFail != 1 || v2.Pair.Level != 1 {
		t.Fatalf("after expiry: nfail %d level %d, want 1 and 1 (failures cleared, level stays)", v2.Pair.NFail, v2.Pair.Level)
	}
}

func TestR_ADVANCE_WindowForgetsOldFailures(t *testing.T) {
	p := testPolicy()
	v, _ := fails(View{}, 2, t0, &p)
	w := p.Pair.Window
	// now − t = W − 1ns: still counted, so the third failure locks.
	if v2, _ := fails(v, 1, t0.Add(w-1), &p); v2.Pair.Mode != Locked {
		t.Fatalf("third failure at W-1ns: pair %v, want Locked", v2.Pair.Mode)
	}
	// now − t = W exactly: forgotten (strictly: now − t ≥ W).
	v3, _ := fails(v, 1, t0.Add(w), &p)
	if v3.Pair.Mode != Open || v3.Pair.NFail != 1 {
		t.Fatalf("third failure at W: pair %v nfail %d, want Open and 1", v3.Pair.Mode, v3.Pair.NFail)
	}
}

func TestR_ADVANCE_DecayLowersLevelPerFullQuietPeriod(t *testing.T) {
	p := testPolicy()
	p.Source.Threshold, p.Principal.Threshold = 0, 0
	v := View{}
	now := t0
	for i := 0; i < 3; i++ { // three locks: level 3
		v, _ = fails(v, 3, now, &p)
		now = v.Pair.Until
	}
	if v.Pair.Level != 3 {
		t.Fatalf("level %d, want 3", v.Pair.Level)
	}
	opened := v.Pair.Until
	// Quiet time counts from the instant the key opened.
	k, eff := Advance(v.Pair.Key, KindPair, opened.Add(p.Pair.Decay-1), &p)
	if k.Level != 3 || eff&EffDecayed != 0 {
		t.Fatalf("just before one decay period: level %d", k.Level)
	}
	k, eff = Advance(v.Pair.Key, KindPair, opened.Add(2*p.Pair.Decay), &p)
	if k.Level != 1 || eff&EffDecayed == 0 {
		t.Fatalf("after two decay periods: level %d, want 1", k.Level)
	}
	k, _ = Advance(k, KindPair, opened.Add(10*p.Pair.Decay), &p)
	if k.Level != 0 || k.QuietFrom != 0 {
		t.Fatalf("after many periods: level %d quietFrom %d, want 0 0", k.Level, k.QuietFrom)
	}
}

func TestR_ADMIT_RefusesPerKey(t *testing.T) {
	p := testPolicy()
	locked := Key{Mode: Locked, Until: t0.Add(time.Minute), LockedAt: t0, Level: 1, QuietFrom: t0}
	held := Key{Mode: Held, Until: Forever, LockedAt: t0, Level: 1, QuietFrom: t0}
	familiar := Pair{Familiar: true, LastSuccess: t0}
	cases := []struct {
		name  string
		view  View
		scope Scope
	}{
		{"pair locked", View{Pair: Pair{Key: locked}}, ScopePair},
		{"pair held", View{Pair: Pair{Key: held}}, ScopeHeld},
		{"source locked", View{Source: locked}, ScopeSource},
		{"principal held refuses even familiar", View{Pair: familiar, Principal: held}, ScopeHeld},
		{"principal disabled", View{Principal: Key{Disabled: true}}, ScopeDisabled},
		{"principal locked, unfamiliar source", View{Principal: locked}, ScopePrincipal},
		{"principal locked, familiar source", View{Pair: familiar, Principal: locked}, ScopeNone},
		{"console lock does not refuse remote", View{Console: locked}, ScopeNone},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, d := Admit(c.view, Attempt{}, t0.Add(time.Second), &p)
			if d.Scope != c.scope {
				t.Fatalf("scope %v, want %v", d.Scope, c.scope)
			}
			if (d.Verdict == Refused) != (c.scope != ScopeNone) {
				t.Fatalf("verdict %v with scope %v", d.Verdict, d.Scope)
			}
		})
	}
}

func TestR_NOORACLE_RefusalIgnoresTheSecret(t *testing.T) {
	p := testPolicy()
	v, _ := fails(View{}, 3, t0, &p)
	vr, dr := Decide(v, right, t0.Add(time.Second), &p)
	vw, dw := Decide(v, wrong(77), t0.Add(time.Second), &p)
	if dr.Verdict != Refused || dr.Verified || dw.Verified {
		t.Fatalf("refused attempt verified: %+v %+v", dr, dw)
	}
	if vr != vw || dr != dw {
		t.Fatal("a refused attempt's result depends on the secret: an oracle")
	}
}

func TestR_EXTEND_PairOnlyAndNeverBeyondCap(t *testing.T) {
	p := testPolicy()
	p.Pair.ExtendOnAttempt = 3 * time.Minute
	v, _ := fails(View{}, 3, t0, &p) // pair locked until t0+1m
	// Also lock the principal and source so we can see they never extend.
	v.Source = Key{Mode: Locked, Until: t0.Add(time.Minute), LockedAt: t0, Level: 1, QuietFrom: t0}
	v.Principal = Key{Mode: Locked, Until: t0.Add(time.Minute), LockedAt: t0, Level: 1, QuietFrom: t0}
	now := t0.Add(30 * time.Second)
	v2, d := Decide(v, wrong(9), now, &p)
	if d.Verdict != Refused || d.Effects&EffExtended == 0 {
		t.Fatalf("refusal did not extend: %+v", d)
	}
	if got, want := v2.Pair.Until, now.Add(3*time.Minute); got != want {
		t.Fatalf("pair until %d, want now+E %d", got, want)
	}
	if v2.Source.Until != v.Source.Until || v2.Principal.Until != v.Principal.Until {
		t.Fatal("a refusal extended a key other than the pair")
	}
	if v2.Pair.NFail != v.Pair.NFail || v2.Source.NFail != v.Source.NFail || v2.Principal.NFail != v.Principal.NFail {
		t.Fatal("a refusal changed a counter")
	}
	// E larger than the cap is rejected by validation; the cap bounds anyway.
	p.Pair.ExtendOnAttempt = p.Pair.Cap
	v3, _ := Decide(v2, wrong(9), now.Add(time.Second), &p)
	if v3.Pair.Until.Sub(now.Add(time.Second)) > p.Pair.Cap {
		t.Fatal("extension beyond now+cap")
	}
	// An extension never shortens.
	p.Pair.ExtendOnAttempt = time.Second
	v4, _ := Decide(v3, wrong(9), now.Add(2*time.Second), &p)
	if v4.Pair.Until != v3.Pair.Until {
		t.Fatalf("a shorter extension moved until from %d to %d", v3.Pair.Until, v4.Pair.Until)
	}
}

func TestR_FAIL_CountsPairSourceAndUnfamiliarPrincipal(t *testing.T) {
	p := testPolicy()
	v, d := Decide(View{}, wrong(1), t0, &p)
	if !d.Verified || d.Verdict != Failed {
		t.Fatalf("decision %+v", d)
	}
	if v.Pair.NFail != 1 || v.Source.NFail != 1 || v.Principal.NFail != 1 {
		t.Fatalf("unfamiliar: pair %d source %d principal %d, want 1 1 1", v.Pair.NFail, v.Source.NFail, v.Principal.NFail)
	}
	fam := View{Pair: Pair{Familiar: true, LastSuccess: t0}}
	v, _ = Decide(fam, wrong(1), t0.Add(time.Second), &p)
	if v.Pair.NFail != 1 || v.Source.NFail != 1 || v.Principal.NFail != 0 {
		t.Fatalf("familiar: pair %d source %d principal %d, want 1 1 0", v.Pair.NFail, v.Source.NFail, v.Principal.NFail)
	}
}

func TestR_REPLAY_SameWrongSecretCountsOnceWithinWindow(t *testing.T) {
	p := testPolicy()
	p.Pair.ReplayDedup = true
	v, _ := Decide(View{}, wrong(42), t0, &p)
	for i := 1; i <= 10; i++ {
		var d Decision
		v, d = Decide(v, wrong(42), t0.Add(time.Duration(i)*time.Second), &p)
		if d.Effects&EffRepeat == 0 || d.Effects&EffCounted != 0 {
			t.Fatalf("replay %d counted: %v", i, d.Effects.Names())
		}
	}
	if v.Pair.NFail != 1 || v.Source.NFail != 1 || v.Principal.NFail != 1 {
		t.Fatalf("after replays: %d %d %d, want 1 1 1", v.Pair.NFail, v.Source.NFail, v.Principal.NFail)
	}
	// A different secret counts.
	v, _ = Decide(v, wrong(43), t0.Add(11*time.Second), &p)
	if v.Pair.NFail != 2 {
		t.Fatalf("distinct secret: pair %d, want 2", v.Pair.NFail)
	}
	// After W without being presented, the fingerprint is forgotten: counts.
	later := t0.Add(11*time.Second + p.Pair.Window)
	v, d := Decide(v, wrong(42), later, &p)
	if d.Effects&EffCounted == 0 {
		t.Fatal("a secret last seen W ago was not counted")
	}
	// Without replayDedup every wrong secret counts.
	p.Pair.ReplayDedup = false
	v, _ = Decide(View{}, wrong(42), t0, &p)
	v, _ = Decide(v, wrong(42), t0.Add(time.Second), &p)
	if v.Pair.NFail != 2 {
		t.Fatalf("no dedup: pair %d, want 2", v.Pair.NFail)
	}
}

func TestR_LOCK_EscalatesGeometricallyToCapThenHolds(t *testing.T) {
	p := testPolicy()
	p.Pair.HoldAfter = 5
	p.Pair.HoldFor = 24 * time.Hour
	p.Source.Threshold, p.Principal.Threshold = 0, 0
	want := []time.Duration{time.Minute, 2 * time.Minute, 4 * time.Minute, 8 * time.Minute, 8 * time.Minute}
	v := View{}
	now := t0
	for i, w := range want {
		var d Decision
		v, d = fails(v, 3, now, &p)
		if v.Pair.Mode != Locked || d.Effects&EffLocked == 0 {
			t.Fatalf("lock %d: mode %v", i+1, v.Pair.Mode)
		}
		if got := v.Pair.Until.Sub(now); got != w {
			t.Fatalf("lock %d lasts %v, want %v", i+1, got, w)
		}
		if int(v.Pair.Level) != i+1 {
			t.Fatalf("lock %d at level %d", i+1, v.Pair.Level)
		}
		if d.Remaining != 0 {
			t.Fatalf("remaining %d while locked", d.Remaining)
		}
		now = v.Pair.Until
	}
	// Lock number H+1 = 6 is a hold for holdFor.
	v, d := fails(v, 3, now, &p)
	if v.Pair.Mode != Held || d.Effects&EffHeld == 0 || v.Pair.Until != now.Add(24*time.Hour) {
		t.Fatalf("lock 6: mode %v until %d", v.Pair.Mode, v.Pair.Until)
	}
	if _, d := Decide(v, right, now.Add(time.Hour), &p); d.Verdict != Refused || d.Scope != ScopeHeld {
		t.Fatalf("held pair admitted: %+v", d)
	}
	// holdFor 0: a hold has no timed end.
	p.Pair.HoldFor = 0
	v2, _ := fails(View{Pair: Pair{Key: Key{Level: 5, QuietFrom: now}}}, 3, now, &p)
	if v2.Pair.Mode != Held || v2.Pair.Until != Forever {
		t.Fatalf("holdFor 0: %v until %d", v2.Pair.Mode, v2.Pair.Until)
	}
	if _, d := Decide(v2, right, now.Add(100*365*24*time.Hour), &p); d.Verdict != Refused || d.RetryAfter != 0 {
		t.Fatalf("indefinite hold after 100 years: %+v", d)
	}
}

func TestR_LOCK_BaseZeroMeansHoldAtThreshold(t *testing.T) {
	p := testPolicy()
	p.Principal.Base, p.Principal.Cap = 0, 0
	p.Pair.Threshold, p.Source.Threshold = 0, 0
	v, _ := fails(View{}, 4, t0, &p)
	if v.Principal.Mode != Held || v.Principal.Until != Forever {
		t.Fatalf("principal %v until %d, want Held forever", v.Principal.Mode, v.Principal.Until)
	}
}

func TestR_SUCCESS_ClearsOnlyWhatResetOnSuccessNames(t *testing.T) {
	for _, c := range []struct {
		scope                 ResetScope
		pair, source, princip uint8
	}{
		{ResetPair, 0, 2, 2},
		{ResetPrincipal, 0, 2, 0},
		{ResetAll, 0, 0, 0},
	} {
		t.Run(c.scope.String(), func(t *testing.T) {
			p := testPolicy()
			p.ResetOnSuccess = c.scope
			v, _ := fails(View{}, 2, t0, &p)
			v, d := Decide(v, right, t0.Add(time.Second), &p)
			if d.Verdict != Allowed || !d.Verified {
				t.Fatalf("decision %+v", d)
			}
			if v.Pair.NFail != c.pair || v.Source.NFail != c.source || v.Principal.NFail != c.princip {
				t.Fatalf("after success: pair %d source %d principal %d, want %d %d %d",
					v.Pair.NFail, v.Source.NFail, v.Principal.NFail, c.pair, c.source, c.princip)
			}
		})
	}
}

func TestR_SUCCESS_MarksSourceFamiliarForTrustTTL(t *testing.T) {
	p := testPolicy()
	v, d := Decide(View{}, right, t0, &p)
	if d.Effects&EffNewDevice == 0 || !v.Pair.IsFamiliar(t0, &p) {
		t.Fatal("first success did not make the source familiar")
	}
	if _, d := Decide(v, right, t0.Add(time.Hour), &p); d.Effects&EffNewDevice != 0 {
		t.Fatal("a familiar source reported as a new device")
	}
	if v.Pair.IsFamiliar(t0.Add(p.TrustTTL), &p) {
		t.Fatal("familiar at exactly trustTTL after the success")
	}
	// A locked principal admits the familiar source, not an unfamiliar one.
	v.Principal = Key{Mode: Locked, Until: t0.Add(time.Hour), LockedAt: t0, Level: 1, QuietFrom: t0}
	if _, d := Decide(v, right, t0.Add(time.Minute), &p); d.Verdict != Allowed {
		t.Fatalf("familiar source refused by principal lock: %+v", d)
	}
	// P-NODOS by construction: failures elsewhere never touch this pair.
	stranger := View{Principal: v.Principal}
	if _, d := Decide(stranger, right, t0.Add(time.Minute), &p); d.Verdict != Refused || d.Scope != ScopePrincipal {
		t.Fatalf("unfamiliar source admitted by locked principal: %+v", d)
	}
}

// INV-NOSHORTEN over R-SUCCESS: a familiar source's right secret is
// allowed through a Locked principal, and even with resetOnSuccess naming
// the principal the lock keeps its until, level and counters (a proofs
// counterexample: proofs/testdata/noshorten-reset-on-success-principal.jsonl).
func TestR_SUCCESS_LeavesARunningLockAlone(t *testing.T) {
	for _, scope := range []ResetScope{ResetPrincipal, ResetAll} {
		t.Run(scope.String(), func(t *testing.T) {
			p := testPolicy()
			p.ResetOnSuccess = scope
			v, _ := Decide(View{}, right, t0, &p) // the source becomes familiar
			locked := Key{Mode: Locked, Until: t0.Add(time.Hour), LockedAt: t0, Level: 1, QuietFrom: t0}
			v.Principal = locked
			v, d := Decide(v, right, t0.Add(time.Minute), &p)
			if d.Verdict != Allowed {
				t.Fatalf("familiar source refused: %+v", d)
			}
			if v.Principal != locked {
				t.Fatalf("principal after a familiar success = %+v, want the lock untouched %+v", v.Principal, locked)
			}
			// An Open principal is still cleared as resetOnSuccess names.
			v.Principal = Key{NFail: 2, Failures: [MaxThreshold]Instant{t0, t0}, QuietFrom: t0}
			v, _ = Decide(v, right, t0.Add(2*time.Minute), &p)
			if v.Principal.NFail != 0 {
				t.Fatalf("open principal kept %d failures", v.Principal.NFail)
			}
		})
	}
}

func TestR_2FA_WrongSecondFactorCountsOnPairOnly(t *testing.T) {
	p := testPolicy()
	v, d := Decide(View{}, Event{Outcome: WrongSecondFactor}, t0, &p)
	if d.Verdict != Failed || v.Pair.NFail != 1 || v.Source.NFail != 0 || v.Principal.NFail != 0 {
		t.Fatalf("2FA failure: %v pair %d source %d principal %d", d.Verdict, v.Pair.NFail, v.Source.NFail, v.Principal.NFail)
	}
}

func TestR_UNLOCK_OpensClearsAndZeroesLevel(t *testing.T) {
	p := testPolicy()
	v, _ := fails(View{}, 3, t0, &p)
	v, _ = fails(v, 1, t0, &p) // refused, nothing more
	k := Unlock(v.Pair.Key)
	if k.Mode != Open || k.NFail != 0 || k.Level != 0 || k.Until != 0 {
		t.Fatalf("after unlock: %+v", k)
	}
	held := Key{Mode: Held, Until: Forever, Level: 9, Disabled: true, NFail: 0}
	if k := Unlock(held); k.Mode != Open || k.Level != 0 || !k.Disabled {
		t.Fatalf("unlock of a held, disabled key: %+v (Disabled must stay: only enable clears it)", k)
	}
}

func TestR_CONSOLE_IgnoresRemoteLocksAndNeverHolds(t *testing.T) {
	p := testPolicy()
	held := Key{Mode: Held, Until: Forever, Level: 3}
	v := View{Pair: Pair{Key: held}, Source: held, Principal: held}
	console := Event{Attempt: Attempt{Channel: Console}, Outcome: RightSecret}
	v2, d := Decide(v, console, t0, &p)
	if d.Verdict != Allowed {
		t.Fatalf("console refused under remote holds: %+v", d)
	}
	if v2.Pair != v.Pair || v2.Source != v.Source || v2.Principal.Mode != Held {
		t.Fatal("a console attempt changed remote keys")
	}
	// Console failures lock the console key only, for at most its cap, forever.
	now := t0
	for i := 0; i < 50; i++ {
		var d Decision
		v, d = Decide(v, Event{Attempt: Attempt{Channel: Console}, Outcome: WrongSecret}, now, &p)
		if v.Console.Mode == Held {
			t.Fatal("console key held")
		}
		if v.Console.Mode == Locked && v.Console.Until.Sub(now) > p.Console.Cap {
			t.Fatalf("console locked for %v > cap", v.Console.Until.Sub(now))
		}
		if d.Verdict == Refused && d.Scope != ScopeConsole {
			t.Fatalf("console refused by %v", d.Scope)
		}
		now = now.Add(7 * time.Second)
	}
	// Disabled applies on the console too.
	v.Principal.Disabled = true
	if _, d := Decide(v, console, now.Add(time.Hour), &p); d.Scope != ScopeDisabled {
		t.Fatalf("disabled principal at console: %+v", d)
	}
}

func TestR_RESTART_RemainingMinusServedWallTime(t *testing.T) {
	p := testPolicy()
	v, _ := fails(View{}, 3, t0, &p) // locked 1m
	const wall = int64(1_800_000_000) * int64(time.Second)
	snap := Persist(v.Pair, t0.Add(10*time.Second), wall) // 50 s remain
	boot := Instant(5)                                    // instants restart near zero after a reboot
	cases := []struct {
		name          string
		wallDelta     time.Duration
		wantRemaining time.Duration
	}{
		{"no downtime", 0, 50 * time.Second},
		{"20s down", 20 * time.Second, 30 * time.Second},
		{"down longer than the lock", time.Hour, 0},
		{"RTC reset to 1970 never lengthens", -time.Duration(wall), 50 * time.Second},
		{"clock a year back", -365 * 24 * time.Hour, 50 * time.Second},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			pr := Restore(snap, boot, wall+int64(c.wallDelta))
			k, _ := Advance(pr.Key, KindPair, boot, &p)
			if got := k.Remaining(boot); got != c.wantRemaining {
				t.Fatalf("remaining %v, want %v", got, c.wantRemaining)
			}
			if c.wantRemaining > 0 && k.Mode != Locked {
				t.Fatal("a reboot unlocked the key by itself")
			}
			if k.Level != 1 {
				t.Fatalf("level %d after restart, want 1", k.Level)
			}
		})
	}
	// Failure ages survive too: two failures 5 s before a clean restart
	// still count toward the window.
	v2, _ := fails(View{}, 2, t0, &p)
	s2 := Persist(v2.Pair, t0.Add(5*time.Second), wall)
	pr := Restore(s2, boot, wall)
	if pr.NFail != 2 || boot.Sub(pr.Failures[0]) != 5*time.Second {
		t.Fatalf("failures after restart: %d, age %v", pr.NFail, boot.Sub(pr.Failures[0]))
	}
}

func TestR_RESTART_ReanchorAfterWallStepCountsNoServedTime(t *testing.T) {
	p := testPolicy()
	v, _ := fails(View{}, 3, t0, &p)
	const wall = int64(1_800_000_000) * int64(time.Second)
	saved := t0
	snap := Persist(v.Pair, saved, wall)
	// 10 s later the wall clock steps forward a day; the service re-anchors.
	now := saved.Add(10 * time.Second)
	stepped := wall + int64(10*time.Second) + int64(24*time.Hour)
	re := Reanchor(snap, saved, now, stepped)
	// Restart right after: the day of the step is not time served.
	pr := Restore(re, 0, stepped)
	if got := pr.Until.Sub(0); got != 50*time.Second {
		t.Fatalf("remaining after re-anchor and restart: %v, want 50s", got)
	}
}

func TestR_MONO_InstantsDecideNotWallTime(t *testing.T) {
	// Decide has no wall-time input at all: a wall jump cannot reach it.
	// The service's side (re-anchoring) is TestR_RESTART_Reanchor…; here
	// INV-CLOCK's model half: persisting and restoring with the same wall
	// time changes nothing.
	p := testPolicy()
	v, _ := fails(View{}, 3, t0, &p)
	for _, now := range []Instant{t0, t0.Add(time.Second), t0.Add(time.Hour)} {
		got := Restore(Persist(v.Pair, now, 42), now, 42)
		if got != v.Pair {
			t.Fatalf("persist/restore at %d changed the pair", now)
		}
	}
}

func TestR_SATURATE_NoOverflowAtTheEdges(t *testing.T) {
	p := testPolicy()
	p.Pair.Base, p.Pair.Cap, p.Pair.Growth = MaxDuration, MaxDuration, MaxGrowth
	p.Pair.Decay = MaxDuration
	p.Pair.HoldAfter = MaxLevel - 1
	if err := p.Validate(); err != nil {
		t.Fatal(err)
	}
	late := Forever - 10
	v, _ := fails(View{}, 3, late, &p)
	if v.Pair.Mode != Locked || v.Pair.Until < late {
		t.Fatalf("lock at the end of time: mode %v until %d (overflowed)", v.Pair.Mode, v.Pair.Until)
	}
	if d := (&KeyPolicy{Base: time.Second, Growth: MaxGrowth, Cap: MaxDuration}).lockDuration(MaxLevel); d != MaxDuration {
		t.Fatalf("lockDuration(max level) = %v, want the cap", d)
	}
	if got := Instant(-9e18).Sub(Instant(9e18)); got >= 0 {
		t.Fatalf("saturating Sub wrapped: %v", got)
	}
}

func TestR_VALID_NamesFieldAndConstraint(t *testing.T) {
	cases := []struct {
		field string
		edit  func(*Policy)
	}{
		{"pair.window", func(p *Policy) { p.Pair.Window = -time.Second }},
		{"pair.growth", func(p *Policy) { p.Pair.Growth = 0.5 }},
		{"source.cap", func(p *Policy) { p.Source.Cap = p.Source.Base - 1 }},
		{"pair.decay", func(p *Policy) { p.Pair.Decay = p.Pair.Cap - 1 }},
		{"principal.window", func(p *Policy) { p.Principal.Window = 0 }},
		{"console.holdAfter", func(p *Policy) { p.Console.HoldAfter = 2 }},
		{"console.base", func(p *Policy) { p.Console.Base, p.Console.Cap = 0, 0 }},
		{"console.cap", func(p *Policy) { p.Console.Cap = 48 * time.Hour }},
		{"principal.extendOnAttempt", func(p *Policy) { p.Principal.ExtendOnAttempt = time.Second }},
		{"pair.extendOnAttempt", func(p *Policy) { p.Pair.ExtendOnAttempt = p.Pair.Cap + 1 }},
		{"source.replayDedup", func(p *Policy) { p.Source.ReplayDedup = true }},
		{"pair.threshold", func(p *Policy) { p.Pair.Threshold = MaxThreshold + 1 }},
		{"source.roleThreshold.admin", func(p *Policy) { p.Source.RoleThreshold[RoleAdmin] = 3 }},
		{"pair.holdAfter", func(p *Policy) { p.Pair.HoldAfter = -1 }},
		{"pair.base", func(p *Policy) { p.Pair.Base = MaxDuration + 1; p.Pair.Cap = MaxDuration + 1 }},
		{"trustTTL", func(p *Policy) { p.TrustTTL = -1 }},
	}
	for _, c := range cases {
		t.Run(c.field, func(t *testing.T) {
			p := testPolicy()
			c.edit(&p)
			err := p.Validate()
			if !errors.Is(err, ErrInvalidPolicy) {
				t.Fatalf("accepted: %v", err)
			}
			var fe *FieldError
			found := false
			for _, e := range err.(ValidationErrors) {
				if e.Field == c.field && e.Constraint != "" {
					found, fe = true, e
				}
			}
			if !found {
				t.Fatalf("error does not name %s: %v", c.field, err)
			}
			_ = fe
		})
	}
	// Disabling protection is allowed.
	p := testPolicy()
	p.Disabled = true
	if err := p.Validate(); err != nil {
		t.Fatalf("enabled: false rejected: %v", err)
	}
}

func TestR_VALID_DisabledProtectionCountsNothing(t *testing.T) {
	p := testPolicy()
	p.Disabled = true
	v, _ := fails(View{}, 100, t0, &p)
	if v.Pair.Mode != Open || v.Pair.NFail != 0 {
		t.Fatalf("protection off still locked: %+v", v.Pair.Key)
	}
}

func TestR_DISCLOSE_RemainingAndRetryAfter(t *testing.T) {
	p := testPolicy()
	v := View{}
	for want := 2; want >= 0; want-- {
		var d Decision
		v, d = Decide(v, wrong(uint64(want)+5), t0, &p)
		if d.Remaining != want {
			t.Fatalf("remaining %d, want %d", d.Remaining, want)
		}
	}
	_, d := Decide(v, right, t0.Add(15*time.Second), &p)
	if d.Scope != ScopePair || d.RetryAfter != 45*time.Second {
		t.Fatalf("scope %v retry %v, want pair 45s", d.Scope, d.RetryAfter)
	}
	// When several keys refuse, Retry-After is when all of them allow.
	v.Source = Key{Mode: Locked, Until: t0.Add(5 * time.Minute), LockedAt: t0, Level: 1, QuietFrom: t0}
	_, d = Decide(v, right, t0.Add(15*time.Second), &p)
	if d.Scope != ScopePair || d.RetryAfter != 5*time.Minute-15*time.Second {
		t.Fatalf("two refusing keys: scope %v retry %v", d.Scope, d.RetryAfter)
	}
}

func TestRoleThresholdOverridesPerRole(t *testing.T) {
	p := testPolicy()
	p.Pair.RoleThreshold[RoleAdmin] = 5
	p.Source.Threshold, p.Principal.Threshold = 0, 0
	admin := func(print uint64) Event { e := wrong(print); e.Role = RoleAdmin; return e }
	v := View{}
	for i := 0; i < 4; i++ {
		v, _ = Decide(v, admin(uint64(i)+1), t0, &p)
	}
	if v.Pair.Mode != Open {
		t.Fatal("admin locked before 5")
	}
	v, _ = Decide(v, admin(9), t0, &p)
	if v.Pair.Mode != Locked {
		t.Fatal("admin not locked at 5")
	}
	v2, _ := fails(View{}, 3, t0, &p)
	if v2.Pair.Mode != Locked {
		t.Fatal("viewer not locked at 3")
	}
}

func TestCompiledTableMatchesStateless(t *testing.T) {
	// The compiled table is derived from the stateless machine; prove the
	// derivation on every (mode, trigger, facts) …
	again := compile(fireStateless)
	if *again != *compiled {
		t.Fatal("compiled table differs from a fresh derivation")
	}
	for m := Open; m <= Held; m++ {
		for tr := trigger(0); tr < numTriggers; tr++ {
			for f := 0; f < numFactCombos; f++ {
				if got, want := compiled[m][tr][f], fireStateless(m, tr, facts(f)); got != want {
					t.Fatalf("%v %v %05b: table %+v, stateless %+v", m, tr, f, got, want)
				}
			}
		}
	}
	// … and that Decide through the table equals Decide firing stateless,
	// over long deterministic sequences under every preset.
	slow := engine{fire: fireStateless}
	for _, name := range PresetNames() {
		p, _ := Preset(name)
		a, b := View{}, View{}
		now := t0
		seed := uint64(0x9e3779b97f4a7c15)
		for i := 0; i < 3000; i++ {
			seed = seed*6364136223846793005 + 1442695040888963407
			r := seed >> 33
			ev := Event{Attempt: Attempt{Channel: Channel(r % 7 / 6), Role: Role(r % 3), Print: r % 4}, Outcome: Outcome(r % 5 % 3)}
			var da, db Decision
			a, da = fast.decide(a, ev, now, &p)
			b, db = slow.decide(b, ev, now, &p)
			if a != b || da != db {
				t.Fatalf("%s step %d: table and stateless disagree: %+v vs %+v", name, i, da, db)
			}
			if r%97 == 0 {
				a.Pair.Key, b.Pair.Key = Unlock(a.Pair.Key), Unlock(b.Pair.Key)
			}
			now = now.Add(time.Duration(r%5) * time.Duration(1+r%1000) * time.Second)
		}
	}
}
