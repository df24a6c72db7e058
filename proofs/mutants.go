package proofs

import (
	"sync/atomic"
	"time"

	"github.com/latchnvr/latch/model"
)

// Mutant is a deliberately broken variant of the lock logic that the
// explorer must catch: an invariant no mutant breaks is checking nothing
// (DESIGN, Proofs). Mutants wrap package model's functions, transforming
// their inputs or outputs; Target is the invariant each one is written to
// break.
type Mutant struct {
	Name        string
	Target      Invariant
	Description string
	Machine     Machine
}

// MutationPolicy is the policy the mutation self-test explores: valid, with
// every mechanism switched on and small numbers, so that every invariant's
// situations are a few steps away.
func MutationPolicy() model.Policy {
	return model.Policy{
		Preset: "",
		Pair: model.KeyPolicy{Threshold: 2, Window: 10 * time.Minute, Base: time.Minute, Growth: 2, Cap: 4 * time.Minute,
			HoldAfter: 1, HoldFor: 30 * time.Minute, Decay: time.Hour, ExtendOnAttempt: time.Minute, ReplayDedup: true},
		Source: model.KeyPolicy{Threshold: 3, Window: 10 * time.Minute, Base: 2 * time.Minute, Growth: 2, Cap: 8 * time.Minute,
			Decay: time.Hour},
		Principal: model.KeyPolicy{Threshold: 3, Window: 10 * time.Minute, Base: 5 * time.Minute, Growth: 2, Cap: 20 * time.Minute,
			HoldAfter: 1, Decay: time.Hour},
		Console:        model.KeyPolicy{Threshold: 2, Window: 5 * time.Minute, Base: 30 * time.Second, Growth: 2, Cap: 2 * time.Minute},
		ResetOnSuccess: model.ResetPair,
		TrustTTL:       time.Hour,
	}
}

// Mutants returns fresh instances of every mutant (some keep state).
func Mutants() []Mutant {
	return []Mutant{
		{"skip-source-admission", InvNoAuthLocked,
			"R-ADMIT forgets the source key: a Locked source no longer refuses",
			skipSourceAdmission{}},
		{"held-pair-admits", InvNoAuthLocked,
			"R-ADMIT checks the pair for Locked only: a Held pair lets the next attempt through",
			heldPairAdmits{}},
		{"verify-refused", InvNoOracle,
			"a refused attempt is marked verified (hashing work spent on a refusal)",
			verifyRefused{}},
		{"refusal-depends-on-secret", InvNoOracle,
			"a refusal's retry_after differs when the secret was right: an oracle",
			refusalLeaks{}},
		{"lock-source-on-refusal", InvCause,
			"a refused attempt locks the source key",
			lockOnRefusal{}},
		{"threshold-off-by-one", InvCause,
			"the pair locks one failure early",
			thresholdOffByOne{}},
		{"extend-principal-on-refusal", InvTerminate,
			"R-EXTEND also prolongs a Locked principal (the victim's lock), beyond its cap",
			extendPrincipal{}},
		{"hold-never-expires", InvTerminate,
			"R-ADVANCE never ends a timed hold",
			holdNeverExpires{}},
		{"restart-serves-double", InvNoShorten,
			"a restart counts the downtime twice as time served",
			restartServesDouble{}},
		{"success-unlocks-principal", InvNoShorten,
			"a familiar source's success opens a Locked principal",
			successUnlocksPrincipal{}},
		{"retry-after-int32", InvBounded,
			"retry_after is computed in 32 bits and overflows",
			retryAfter32{}},
		{"extension-without-cap", InvBounded,
			"R-EXTEND adds to until instead of max(until, now+E), never capped",
			extendUncapped{}},
		{"console-holds", InvLastAdmin,
			"the console key becomes Held instead of Locked",
			consoleHolds{}},
		{"console-honours-remote-locks", InvLastAdmin,
			"the console refuses while the principal is Held or Locked",
			consoleHonoursRemote{}},
		{"unlock-keeps-level", InvReset,
			"R-UNLOCK opens the key but keeps its escalation level",
			unlockKeepsLevel{}},
		{"unlock-keeps-failures", InvReset,
			"R-UNLOCK keeps the key's recent failures",
			unlockKeepsFailures{}},
		{"count-replays", InvReplay,
			"the fingerprint is dropped, so a repeated wrong secret counts again",
			countReplays{}},
		{"replay-counts-on-source", InvReplay,
			"a repeated wrong secret is not counted on the pair but still counts on the source",
			replayCountsOnSource{}},
		{"hidden-counter", InvDeterminism,
			"a hidden call counter changes every other answer",
			&hiddenCounter{n: new(atomic.Uint64)}},
		{"absolute-time", InvDeterminism,
			"lock lengths depend on the absolute instant (a wall clock read)",
			absoluteTime{}},
		{"locks-follow-wall-clock", InvClock,
			"a wall-clock step is not re-anchored: a forward step counts as time served",
			noReanchor{}},
		{"rtc-reset-lengthens", InvClock,
			"a restart with the clock gone backwards adds the difference to every lock",
			rtcLengthens{}},
		{"stale-modes", InvStructure,
			"the decision reports the keys' modes from before the attempt",
			staleModes{}},
		{"panic-on-held-pair", InvStructure,
			"Decide panics on an attempt at a Held pair (an impossible transition)",
			panicOnHeld{}},
	}
}

func refusingAt(k *model.Key, now model.Instant) bool { return k.Mode != model.Open && k.Until > now }

type skipSourceAdmission struct{ Model }

func (skipSourceAdmission) Decide(v model.View, ev model.Event, now model.Instant, p *model.Policy) (model.View, model.Decision) {
	src := v.Source
	if refusingAt(&src, now) {
		v.Source = model.Key{}
		v2, d := model.Decide(v, ev, now, p)
		v2.Source = src
		d.Modes[model.KindSource] = src.Mode
		return v2, d
	}
	return model.Decide(v, ev, now, p)
}

type heldPairAdmits struct{ Model }

func (heldPairAdmits) Decide(v model.View, ev model.Event, now model.Instant, p *model.Policy) (model.View, model.Decision) {
	pair := v.Pair.Key
	if pair.Mode == model.Held && refusingAt(&pair, now) {
		v.Pair.Key = model.Key{}
		v2, d := model.Decide(v, ev, now, p)
		if v2.Pair.Mode == model.Open {
			v2.Pair.Key = pair
			d.Modes[model.KindPair] = model.Held
		}
		return v2, d
	}
	return model.Decide(v, ev, now, p)
}

type verifyRefused struct{ Model }

func (verifyRefused) Decide(v model.View, ev model.Event, now model.Instant, p *model.Policy) (model.View, model.Decision) {
	v2, d := model.Decide(v, ev, now, p)
	if d.Verdict == model.Refused {
		d.Verified = true
	}
	return v2, d
}

type refusalLeaks struct{ Model }

func (refusalLeaks) Decide(v model.View, ev model.Event, now model.Instant, p *model.Policy) (model.View, model.Decision) {
	v2, d := model.Decide(v, ev, now, p)
	if d.Verdict == model.Refused && ev.Outcome == model.RightSecret && d.RetryAfter > 0 {
		d.RetryAfter--
	}
	return v2, d
}

type lockOnRefusal struct{ Model }

func (lockOnRefusal) Decide(v model.View, ev model.Event, now model.Instant, p *model.Policy) (model.View, model.Decision) {
	v2, d := model.Decide(v, ev, now, p)
	if d.Verdict == model.Refused && ev.Channel == model.Remote && v2.Source.Mode == model.Open {
		v2.Source.Mode, v2.Source.Until, v2.Source.LockedAt = model.Locked, now.Add(p.Source.Base), now
		d.Modes[model.KindSource] = model.Locked
	}
	return v2, d
}

type thresholdOffByOne struct{ Model }

func (thresholdOffByOne) Decide(v model.View, ev model.Event, now model.Instant, p *model.Policy) (model.View, model.Decision) {
	q := *p
	if q.Pair.Threshold > 1 {
		q.Pair.Threshold--
	}
	for r := range q.Pair.RoleThreshold {
		if q.Pair.RoleThreshold[r] > 1 {
			q.Pair.RoleThreshold[r]--
		}
	}
	return model.Decide(v, ev, now, &q)
}

type extendPrincipal struct{ Model }

func (extendPrincipal) Decide(v model.View, ev model.Event, now model.Instant, p *model.Policy) (model.View, model.Decision) {
	v2, d := model.Decide(v, ev, now, p)
	if d.Verdict == model.Refused && v2.Principal.Mode == model.Locked {
		v2.Principal.Until = v2.Principal.Until.Add(p.Pair.ExtendOnAttempt + time.Minute)
	}
	return v2, d
}

type holdNeverExpires struct{ Model }

func (holdNeverExpires) Advance(k model.Key, kind model.Kind, now model.Instant, p *model.Policy) model.Key {
	if k.Mode == model.Held {
		return k
	}
	k, _ = model.Advance(k, kind, now, p)
	return k
}

func (m holdNeverExpires) Decide(v model.View, ev model.Event, now model.Instant, p *model.Policy) (model.View, model.Decision) {
	// Keep held keys held through Decide's own R-ADVANCE as well.
	held := [4]bool{v.Pair.Mode == model.Held, v.Source.Mode == model.Held, v.Principal.Mode == model.Held, v.Console.Mode == model.Held}
	keys := [4]model.Key{v.Pair.Key, v.Source, v.Principal, v.Console}
	v2, d := model.Decide(v, ev, now, p)
	out := [4]*model.Key{&v2.Pair.Key, &v2.Source, &v2.Principal, &v2.Console}
	for i, h := range held {
		if h && out[i].Mode == model.Open && keys[i].Until <= now {
			*out[i] = keys[i]
			d.Modes[i] = model.Held
		}
	}
	return v2, d
}

type restartServesDouble struct{ Model }

func (restartServesDouble) Restore(s model.Snapshot, now model.Instant, wall int64) model.Pair {
	if wall > s.WallAnchor {
		wall += wall - s.WallAnchor
	}
	return model.Restore(s, now, wall)
}

type successUnlocksPrincipal struct{ Model }

func (successUnlocksPrincipal) Decide(v model.View, ev model.Event, now model.Instant, p *model.Policy) (model.View, model.Decision) {
	v2, d := model.Decide(v, ev, now, p)
	if d.Verdict == model.Allowed && ev.Channel == model.Remote && v2.Principal.Mode == model.Locked {
		v2.Principal = model.Unlock(v2.Principal)
		d.Modes[model.KindPrincipal] = model.Open
	}
	return v2, d
}

type retryAfter32 struct{ Model }

func (retryAfter32) Decide(v model.View, ev model.Event, now model.Instant, p *model.Policy) (model.View, model.Decision) {
	v2, d := model.Decide(v, ev, now, p)
	d.RetryAfter = time.Duration(int32(d.RetryAfter))
	return v2, d
}

type extendUncapped struct{ Model }

func (extendUncapped) Decide(v model.View, ev model.Event, now model.Instant, p *model.Policy) (model.View, model.Decision) {
	before := v.Pair.Key
	v2, d := model.Decide(v, ev, now, p)
	if d.Verdict == model.Refused && before.Mode == model.Locked && v2.Pair.Mode == model.Locked && p.Pair.ExtendOnAttempt > 0 {
		v2.Pair.Until = before.Until.Add(p.Pair.ExtendOnAttempt)
	}
	return v2, d
}

type consoleHolds struct{ Model }

func (consoleHolds) Decide(v model.View, ev model.Event, now model.Instant, p *model.Policy) (model.View, model.Decision) {
	v2, d := model.Decide(v, ev, now, p)
	if v2.Console.Mode == model.Locked {
		v2.Console.Mode, v2.Console.Until = model.Held, model.Forever
		d.Modes[model.KindConsole] = model.Held
	}
	return v2, d
}

type consoleHonoursRemote struct{ Model }

func (consoleHonoursRemote) Decide(v model.View, ev model.Event, now model.Instant, p *model.Policy) (model.View, model.Decision) {
	if ev.Channel == model.Console && refusingAt(&v.Principal, now) {
		d := model.Decision{Verdict: model.Refused, Scope: model.ScopePrincipal, Modes: [model.NumKinds]model.Mode{v.Pair.Mode, v.Source.Mode, v.Principal.Mode, v.Console.Mode}}
		return v, d
	}
	return model.Decide(v, ev, now, p)
}

type unlockKeepsLevel struct{ Model }

func (unlockKeepsLevel) Unlock(k model.Key) model.Key {
	l := k.Level
	k = model.Unlock(k)
	k.Level = l
	return k
}

func (m unlockKeepsLevel) UnlockPair(pr model.Pair) model.Pair {
	pr.Key = m.Unlock(pr.Key)
	return pr
}

type unlockKeepsFailures struct{ Model }

func (unlockKeepsFailures) Unlock(k model.Key) model.Key {
	n, f := k.NFail, k.Failures
	k = model.Unlock(k)
	k.NFail, k.Failures = n, f
	return k
}

func (m unlockKeepsFailures) UnlockPair(pr model.Pair) model.Pair {
	pr.Key = m.Unlock(pr.Key)
	return pr
}

type countReplays struct{ Model }

func (countReplays) Decide(v model.View, ev model.Event, now model.Instant, p *model.Policy) (model.View, model.Decision) {
	ev.Print = 0
	return model.Decide(v, ev, now, p)
}

type replayCountsOnSource struct{ Model }

func (replayCountsOnSource) Decide(v model.View, ev model.Event, now model.Instant, p *model.Policy) (model.View, model.Decision) {
	v2, d := model.Decide(v, ev, now, p)
	if d.Effects&model.EffRepeat != 0 && v2.Source.Mode == model.Open && p.Source.Threshold > 0 && int(v2.Source.NFail) < model.MaxThreshold {
		v2.Source.Failures[v2.Source.NFail] = now
		v2.Source.NFail++
	}
	return v2, d
}

type hiddenCounter struct {
	Model
	n *atomic.Uint64
}

func (h *hiddenCounter) Decide(v model.View, ev model.Event, now model.Instant, p *model.Policy) (model.View, model.Decision) {
	v2, d := model.Decide(v, ev, now, p)
	if h.n.Add(1)%2 == 0 && d.Verdict == model.Failed {
		d.Remaining++
	}
	return v2, d
}

type absoluteTime struct{ Model }

func (absoluteTime) Decide(v model.View, ev model.Event, now model.Instant, p *model.Policy) (model.View, model.Decision) {
	v2, d := model.Decide(v, ev, now, p)
	// Locks made late in the instant line (as if from the time of day)
	// are half as long.
	if now >= 1<<45 && d.Effects&model.EffLocked != 0 && v2.Pair.Mode == model.Locked {
		v2.Pair.Until = now.Add(v2.Pair.Until.Sub(now) / 2)
	}
	return v2, d
}

type noReanchor struct{ Model }

func (noReanchor) Reanchor(s model.Snapshot, savedAt, now model.Instant, wall int64) model.Snapshot {
	return s
}

type rtcLengthens struct{ Model }

func (rtcLengthens) Restore(s model.Snapshot, now model.Instant, wall int64) model.Pair {
	pr := model.Restore(s, now, wall)
	if back := s.WallAnchor - wall; back > 0 && pr.Mode != model.Open && pr.Until != model.Forever {
		pr.Until = pr.Until.Add(time.Duration(min(back, int64(time.Hour))))
	}
	return pr
}

type staleModes struct{ Model }

func (staleModes) Decide(v model.View, ev model.Event, now model.Instant, p *model.Policy) (model.View, model.Decision) {
	v2, d := model.Decide(v, ev, now, p)
	d.Modes = [model.NumKinds]model.Mode{v.Pair.Mode, v.Source.Mode, v.Principal.Mode, v.Console.Mode}
	return v2, d
}

type panicOnHeld struct{ Model }

func (panicOnHeld) Decide(v model.View, ev model.Event, now model.Instant, p *model.Policy) (model.View, model.Decision) {
	if v.Pair.Mode == model.Held && ev.Outcome == model.WrongSecret {
		panic("model: invariant breach: Refuse on pair key in mode Held")
	}
	return model.Decide(v, ev, now, p)
}

// MutantResult is one mutant's fate under the explorer.
type MutantResult struct {
	Mutant
	Killed bool
	// Steps and Message describe the counterexample that killed it.
	Steps   int
	Message string
	// Also lists the other invariants its exploration found violated.
	Also    []Invariant
	States  int
	Elapsed time.Duration
}

// RunMutants explores policy p with every mutant in place of the model,
// each until its target invariant is violated or the budget is spent. A
// mutant is killed when its target is reported violated.
func RunMutants(p model.Policy, opts Options) []MutantResult {
	var out []MutantResult
	for _, m := range Mutants() {
		o := opts
		o.Machine = m.Machine
		o.SkipProperties = true
		o.StopAt = []Invariant{m.Target}
		if len(o.Roles) == 0 {
			o.Roles = []model.Role{model.RoleAdmin}
		}
		r := Prove(p, o)
		res := MutantResult{Mutant: m, States: r.States, Elapsed: r.Elapsed}
		for _, i := range r.Invariants {
			if i.Holds {
				continue
			}
			if i.ID == m.Target {
				res.Killed = true
				res.Steps = i.Counterexample.Steps
				res.Message = i.Counterexample.Message
			} else {
				res.Also = append(res.Also, i.ID)
			}
		}
		out = append(out, res)
	}
	return out
}

// Score is the mutation score of one invariant.
type Score struct {
	ID            Invariant
	Killed, Total int
}

// MutationScore counts killed and total mutants per target invariant, in
// report order.
func MutationScore(rs []MutantResult) []Score {
	var out []Score
	for _, id := range Invariants() {
		s := Score{ID: id}
		for _, r := range rs {
			if r.Target == id {
				s.Total++
				if r.Killed {
					s.Killed++
				}
			}
		}
		out = append(out, s)
	}
	return out
}
