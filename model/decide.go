package model

import (
	"fmt"
	"time"
)

// Event is an attempt together with what verification would find. Decide
// uses Outcome only if the attempt is admitted (R-NOORACLE); it is how the
// simulator, the explorer and replay describe an attempt in one value.
type Event struct {
	Attempt
	Outcome Outcome
}

// engine decides through a transition function: the compiled table on the
// hot path, the stateless machine itself in the equivalence tests.
type engine struct {
	fire func(Mode, trigger, facts) transition
}

var fast = engine{fire: func(m Mode, t trigger, f facts) transition { return compiled[m][t][f] }}

// Decide decides one attempt completely: phase one, and phase two with
// ev.Outcome when the attempt is admitted. It is pure (INV-DETERMINISM).
func Decide(v View, ev Event, now Instant, p *Policy) (View, Decision) {
	return fast.decide(v, ev, now, p)
}

// Admit is phase one (R-ADVANCE, R-ADMIT, R-EXTEND): it applies the time
// that passed and either refuses the attempt (Verdict Refused, final) or
// admits it (Verdict Admitted: verify the secret, then call Record with the
// returned View at the same now, still holding the principal).
func Admit(v View, a Attempt, now Instant, p *Policy) (View, Decision) {
	d := fast.admit(&v, a, now, p)
	return v, d
}

// Record is phase two (R-FAIL, R-REPLAY, R-LOCK, R-SUCCESS, R-2FA): it
// applies the verified outcome of an attempt that Admit admitted.
func Record(v View, a Attempt, o Outcome, now Instant, p *Policy) (View, Decision) {
	d := fast.record(&v, a, o, now, p)
	return v, d
}

func (e engine) decide(v View, ev Event, now Instant, p *Policy) (View, Decision) {
	d := e.admit(&v, ev.Attempt, now, p)
	if d.Verdict == Refused {
		return v, d
	}
	d = e.record(&v, ev.Attempt, ev.Outcome, now, p)
	return v, d
}

// truncate applies the policy's resolution (pam_faillock counts seconds).
func truncate(now Instant, p *Policy) Instant {
	if r := Instant(p.Resolution); r > 1 {
		m := now % r
		if m < 0 {
			m += r
		}
		return now - m
	}
	return now
}

func (e engine) admit(v *View, a Attempt, now Instant, p *Policy) Decision {
	// Instants are recorded at the resolution's grid point and compared
	// with the exact now: on-grid instants give the truncated semantics
	// (pam_faillock's whole seconds), restored off-grid ones stay exact.
	at := truncate(now, p)
	var eff Effects
	e.advanceAll(v, now, p, &eff)
	d := Decision{Verdict: Admitted, Remaining: -1}
	switch {
	case p.Disabled:
		// Protection off admits everything a lock would refuse, but a
		// disabled account is an admin act, not a lockout: it still refuses.
		if v.Principal.Disabled {
			d.Scope = ScopeDisabled
		}
	case a.Channel == Console:
		d.Scope, d.RetryAfter = consoleRefusal(v, now)
	default:
		d.Scope, d.RetryAfter = remoteRefusal(v, now, p)
	}
	if d.Scope != ScopeNone {
		d.Verdict = Refused
		d.Remaining = 0
		if a.Channel == Remote && !p.Disabled {
			// R-EXTEND: the pair only; nothing else a refusal does counts.
			e.fireKey(&v.Pair.Key, KindPair, trigRefuse, e.refuseFacts(&v.Pair.Key, KindPair, p), at, p, a.Role, &eff)
			d.Scope, d.RetryAfter = remoteRefusal(v, now, p)
		} else if a.Channel == Console {
			e.fireKey(&v.Console, KindConsole, trigRefuse, 0, at, p, a.Role, &eff)
		}
	}
	d.Effects = eff
	d.Modes = v.modes()
	return d
}

func (e engine) record(v *View, a Attempt, o Outcome, now Instant, p *Policy) Decision {
	// Instants are recorded at the resolution's grid point and compared
	// with the exact now: on-grid instants give the truncated semantics
	// (pam_faillock's whole seconds), restored off-grid ones stay exact.
	at := truncate(now, p)
	var eff Effects
	// Record follows Admit at the same instant, so this is a no-op there;
	// it keeps Record correct on its own.
	e.advanceAll(v, now, p, &eff)
	d := Decision{Verified: true, Verdict: Failed}
	if o == RightSecret {
		d.Verdict = Allowed
	}
	switch {
	case p.Disabled:
		if o == RightSecret && a.Channel == Remote {
			v.Pair.markFamiliar(at, p, &eff)
		}
	case a.Channel == Console:
		t := trigFail
		var f facts
		if o == RightSecret {
			t, f = trigSucceed, factCleared
		} else {
			f = failFacts(&v.Console, &p.Console, a.Role)
			eff |= EffCounted
		}
		e.fireKey(&v.Console, KindConsole, t, f, at, p, a.Role, &eff)
	case o == RightSecret:
		for _, k := range []struct {
			key  *Key
			kind Kind
		}{{&v.Pair.Key, KindPair}, {&v.Source, KindSource}, {&v.Principal, KindPrincipal}} {
			var f facts
			if clearsOnSuccess(k.kind, p.ResetOnSuccess) {
				f = factCleared
			}
			e.fireKey(k.key, k.kind, trigSucceed, f, at, p, a.Role, &eff)
		}
		v.Pair.markFamiliar(at, p, &eff)
	case o == WrongSecondFactor:
		// R-2FA: like a wrong secret, on the pair key only.
		e.fireKey(&v.Pair.Key, KindPair, trigFail, failFacts(&v.Pair.Key, &p.Pair, a.Role), at, p, a.Role, &eff)
		eff |= EffCounted
	default:
		if p.Pair.ReplayDedup && a.Print != 0 && v.Pair.seen(a.Print, at) {
			e.fireKey(&v.Pair.Key, KindPair, trigRepeat, 0, at, p, a.Role, &eff)
			eff |= EffRepeat
			break
		}
		familiar := v.Pair.familiar(now, p)
		e.fireKey(&v.Pair.Key, KindPair, trigFail, failFacts(&v.Pair.Key, &p.Pair, a.Role), at, p, a.Role, &eff)
		e.fireKey(&v.Source, KindSource, trigFail, failFacts(&v.Source, &p.Source, a.Role), at, p, a.Role, &eff)
		if !familiar {
			e.fireKey(&v.Principal, KindPrincipal, trigFail, failFacts(&v.Principal, &p.Principal, a.Role), at, p, a.Role, &eff)
		}
		if p.Pair.ReplayDedup && a.Print != 0 {
			v.Pair.remember(a.Print, at)
		}
		eff |= EffCounted
	}
	d.Effects = eff
	d.Remaining = remaining(v, a, now, p)
	d.Modes = v.modes()
	return d
}

func clearsOnSuccess(k Kind, s ResetScope) bool {
	switch k {
	case KindPair, KindConsole:
		return true
	case KindPrincipal:
		return s >= ResetPrincipal
	default:
		return s >= ResetAll
	}
}

func failFacts(k *Key, kp *KeyPolicy, r Role) facts {
	var f facts
	if n := kp.threshold(r); n > 0 && int(k.NFail)+1 >= n {
		f |= factReaches
		if kp.Base == 0 || (kp.HoldAfter > 0 && int(k.Level)+1 > kp.HoldAfter) {
			f |= factHoldDue
		}
	}
	return f
}

func (e engine) refuseFacts(k *Key, kind Kind, p *Policy) facts {
	if kind == KindPair && p.Pair.ExtendOnAttempt > 0 {
		return factExtends
	}
	return 0
}

// fireKey steps one key's machine and applies the action it names.
func (e engine) fireKey(k *Key, kind Kind, t trigger, f facts, now Instant, p *Policy, r Role, eff *Effects) {
	tr := e.fire(k.Mode, t, f)
	if tr.act == actInvalid {
		// A caller broke R-ADMIT's promise (or the table is wrong): loud,
		// like raft's Panicf; the explorer reports it as a violation.
		panic(fmt.Sprintf("model: invariant breach: %s on %s key in mode %s (facts %05b)", t, kind, k.Mode, f))
	}
	kp := p.Key(kind)
	k.Mode = tr.dest
	switch tr.act {
	case actCount:
		if kp.threshold(r) > 0 {
			k.appendFailure(now)
		}
		if k.Level > 0 {
			k.QuietFrom = now
		}
	case actLock:
		k.clearFailures()
		k.Until = now.Add(kp.lockDuration(int(k.Level)))
		k.LockedAt = now
		k.raiseLevel(now)
		*eff |= EffLocked
	case actHold:
		k.clearFailures()
		k.Until = Forever
		if kp.HoldFor > 0 {
			k.Until = now.Add(kp.HoldFor)
		}
		k.LockedAt = now
		k.raiseLevel(now)
		*eff |= EffHeld
	case actExpire:
		k.clearFailures()
		if k.Level > 0 && k.Until > k.QuietFrom {
			k.QuietFrom = k.Until
		}
		k.Until, k.LockedAt = 0, 0
		*eff |= EffExpired
	case actExtend:
		// R-EXTEND: until = max(until, now+E), never beyond now+C.
		ext := kp.ExtendOnAttempt
		if ext > kp.Cap {
			ext = kp.Cap
		}
		if u := now.Add(ext); u > k.Until {
			k.Until = u
			k.LockedAt = now
			*eff |= EffExtended
		}
	case actClear, actReset:
		if k.NFail > 0 || k.Level > 0 || k.Mode != Open {
			*eff |= EffCleared
		}
		k.clearFailures()
		k.Level, k.Until, k.LockedAt, k.QuietFrom = 0, 0, 0, 0
	}
}

func (k *Key) raiseLevel(now Instant) {
	if k.Level < MaxLevel {
		k.Level++
	}
	k.QuietFrom = now
}

func (k *Key) appendFailure(now Instant) {
	if int(k.NFail) == MaxThreshold {
		copy(k.Failures[:], k.Failures[1:])
		k.NFail--
	}
	k.Failures[k.NFail] = now
	k.NFail++
}

func (k *Key) clearFailures() {
	for i := 0; i < int(k.NFail); i++ {
		k.Failures[i] = 0
	}
	k.NFail = 0
}

// advance applies R-ADVANCE to one key: expiry, the window, decay.
func (e engine) advance(k *Key, kind Kind, now Instant, p *Policy, eff *Effects) {
	kp := p.Key(kind)
	if k.Mode != Open {
		var f facts
		if k.Until <= now {
			f = factElapsed
		}
		e.fireKey(k, kind, trigExpire, f, now, p, RoleViewer, eff)
	}
	// The window: failures with now−t ≥ W are forgotten, oldest first.
	drop := 0
	for drop < int(k.NFail) && now.Sub(k.Failures[drop]) >= kp.Window {
		drop++
	}
	if drop > 0 {
		n := int(k.NFail)
		copy(k.Failures[:], k.Failures[drop:n])
		for i := n - drop; i < n; i++ {
			k.Failures[i] = 0
		}
		k.NFail = uint8(n - drop)
	}
	// Decay counts quiet time only while the key is Open: a lock is not
	// quiet, so escalation cannot decay under an attack that is being
	// refused (docs/SPEC.md).
	if k.Mode == Open && k.Level > 0 && kp.Decay > 0 {
		if steps := now.Sub(k.QuietFrom) / kp.Decay; steps > 0 {
			if steps >= time.Duration(k.Level) {
				k.Level, k.QuietFrom = 0, 0
			} else {
				k.Level -= uint8(steps)
				k.QuietFrom = k.QuietFrom.Add(steps * kp.Decay)
			}
			*eff |= EffDecayed
		}
	}
}

func (e engine) advanceAll(v *View, now Instant, p *Policy, eff *Effects) {
	e.advance(&v.Pair.Key, KindPair, now, p, eff)
	e.advance(&v.Source, KindSource, now, p, eff)
	e.advance(&v.Principal, KindPrincipal, now, p, eff)
	e.advance(&v.Console, KindConsole, now, p, eff)
	v.Pair.forgetPrints(now, p.Pair.Window)
	if v.Pair.Familiar && !v.Pair.familiar(now, p) {
		v.Pair.Familiar, v.Pair.LastSuccess = false, 0
	}
}

// remoteRefusal is R-ADMIT for the remote channel: which key refuses, and
// when an identical attempt could be admitted (0 with no timed end).
func remoteRefusal(v *View, now Instant, p *Policy) (Scope, time.Duration) {
	var scope Scope
	var wait time.Duration
	indefinite := false
	refuse := func(s Scope, until Instant) {
		if until == Forever {
			if !indefinite {
				scope, indefinite = s, true
			}
			return
		}
		if scope == ScopeNone {
			scope = s
		}
		if w := until.Sub(now); w > wait {
			wait = w
		}
	}
	if v.Pair.Mode != Open {
		refuse(scopeOf(v.Pair.Mode, ScopePair), v.Pair.Until)
	}
	if v.Source.Mode != Open {
		refuse(scopeOf(v.Source.Mode, ScopeSource), v.Source.Until)
	}
	if v.Principal.Disabled {
		refuse(ScopeDisabled, Forever)
	}
	if v.Principal.Mode == Held || (v.Principal.Mode == Locked && !v.Pair.familiar(now, p)) {
		refuse(scopeOf(v.Principal.Mode, ScopePrincipal), v.Principal.Until)
	}
	if indefinite {
		return scope, 0
	}
	return scope, wait
}

func scopeOf(m Mode, locked Scope) Scope {
	if m == Held {
		return ScopeHeld
	}
	return locked
}

// consoleRefusal is R-CONSOLE: only the console key and Disabled apply.
func consoleRefusal(v *View, now Instant) (Scope, time.Duration) {
	if v.Principal.Disabled {
		return ScopeDisabled, 0
	}
	if v.Console.Mode != Open {
		return ScopeConsole, v.Console.Until.Sub(now)
	}
	return ScopeNone, 0
}

// remaining is how many more counted failures this client may make before
// one of the keys covering it locks (R-DISCLOSE), or -1 if none limits it.
func remaining(v *View, a Attempt, now Instant, p *Policy) int {
	best := -1
	consider := func(k *Key, kp *KeyPolicy) {
		n := kp.threshold(a.Role)
		if n == 0 {
			return
		}
		left := n - int(k.NFail)
		if k.Mode != Open || left < 0 {
			left = 0
		}
		if best < 0 || left < best {
			best = left
		}
	}
	if p.Disabled {
		return -1
	}
	if a.Channel == Console {
		consider(&v.Console, &p.Console)
		return best
	}
	consider(&v.Pair.Key, &p.Pair)
	consider(&v.Source, &p.Source)
	if !v.Pair.familiar(now, p) {
		consider(&v.Principal, &p.Principal)
	}
	return best
}

func (v *View) modes() [NumKinds]Mode {
	return [NumKinds]Mode{v.Pair.Mode, v.Source.Mode, v.Principal.Mode, v.Console.Mode}
}

// familiar reports whether the pair's source is familiar at now (SPEC §1).
func (pr *Pair) familiar(now Instant, p *Policy) bool {
	return pr.Familiar && p.TrustTTL > 0 && now.Sub(pr.LastSuccess) < p.TrustTTL
}

// IsFamiliar reports whether the pair's source is familiar at now.
func (pr Pair) IsFamiliar(now Instant, p *Policy) bool { return pr.familiar(now, p) }

func (pr *Pair) markFamiliar(now Instant, p *Policy, eff *Effects) {
	if p.TrustTTL == 0 {
		return
	}
	if !pr.familiar(now, p) {
		*eff |= EffNewDevice
	}
	pr.Familiar, pr.LastSuccess = true, now
}

// seen reports whether tag was presented on this pair within the window and
// refreshes it (R-REPLAY: a device looping on a stale secret stays deduped).
func (pr *Pair) seen(tag uint64, now Instant) bool {
	for i := 0; i < int(pr.NPrints); i++ {
		if pr.Prints[i].Tag == tag {
			pr.Prints[i].Seen = now
			return true
		}
	}
	return false
}

func (pr *Pair) remember(tag uint64, now Instant) {
	if int(pr.NPrints) == MaxPrints {
		oldest := 0
		for i := 1; i < MaxPrints; i++ {
			if pr.Prints[i].Seen < pr.Prints[oldest].Seen {
				oldest = i
			}
		}
		pr.Prints[oldest] = Print{Tag: tag, Seen: now}
		return
	}
	pr.Prints[pr.NPrints] = Print{Tag: tag, Seen: now}
	pr.NPrints++
}

func (pr *Pair) forgetPrints(now Instant, window time.Duration) {
	n := 0
	for i := 0; i < int(pr.NPrints); i++ {
		if now.Sub(pr.Prints[i].Seen) < window {
			pr.Prints[n] = pr.Prints[i]
			n++
		}
	}
	for i := n; i < int(pr.NPrints); i++ {
		pr.Prints[i] = Print{}
	}
	pr.NPrints = uint8(n)
}

// Unlock opens a key (R-UNLOCK, R-RESET): mode Open, failures cleared,
// level 0 (INV-RESET). It keeps Disabled, which only Enable clears.
func Unlock(k Key) Key {
	var eff Effects
	fast.fireKey(&k, KindPrincipal, trigUnlock, 0, 0, &Policy{}, RoleViewer, &eff)
	return k
}

// UnlockPair opens a pair key; familiarity and fingerprints stay.
func UnlockPair(pr Pair) Pair {
	pr.Key = Unlock(pr.Key)
	return pr
}

// Advance applies the time that passed to one key (R-ADVANCE), for callers
// that show or store keys without deciding an attempt.
func Advance(k Key, kind Kind, now Instant, p *Policy) (Key, Effects) {
	var eff Effects
	fast.advance(&k, kind, now, p, &eff)
	return k, eff
}

// Remaining is how long a key stays refusing at now: 0 when Open, Forever's
// sentinel -1 for a hold with no end.
func (k Key) Remaining(now Instant) time.Duration {
	switch {
	case k.Mode == Open:
		return 0
	case k.Until == Forever:
		return -1
	case k.Until <= now:
		return 0
	}
	return k.Until.Sub(now)
}
