package model

// Property tests (gopter) of the universal invariants of SPEC §8 that can be
// checked on one run: random event sequences for one principal, three
// sources and the console, under every preset and under random valid
// policies.
//
// Each property is one TestProp… function with a subtest per preset plus
// "random" (a fresh random valid policy per case). A sequence is a
// ptScenario; every step is small integers that the runner resolves against
// the policy (time advances land on window±1ns, cap±1ns, the nearest until±1ns
// and so on), so the shrinker (drop chunks of steps, then move each field
// towards 0) yields short counterexamples made of simple steps. A failure
// prints the shrunk scenario, a step-by-step trace of it, the policy as
// --set assignments and the seed. LATCH_PROP_SEED=N changes the base seed;
// LATCH_PROP_SCALE=N runs N times as many cases.
//
// Restarts go through model.Persist/Restore (the NVR service's path) from
// the snapshot of each key's last change (a crash) or from one taken at the
// restart (a clean shutdown); wall jumps while running Reanchor the
// snapshots.
//
// The checks compare the model with independent predicates written here from
// SPEC's text (R-ADMIT, R-RESTART, …), never with the model's own helpers,
// except where a check needs "the key after R-ADVANCE", for which it uses the
// exported Advance.

import (
	"bytes"
	"fmt"
	"math/rand"
	"os"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/leanovate/gopter"
	"github.com/leanovate/gopter/prop"
)

// ptSeed is the fixed base seed of every property run; subtest i uses
// ptSeed+i. LATCH_PROP_SEED overrides the base.
const ptSeed int64 = 20260701

const (
	ptNumSources = 3
	ptConsoleSrc = ptNumSources // Src value that means the console channel
	ptNumKeys    = 2*ptNumSources + 2
	// ptRightTag is the fingerprint of the right secret; wrong secrets come
	// from ptPrintPool, so repeats are frequent.
	ptRightTag = 0xC0FFEE
	// ptWallEpoch is the wall clock at the start of every scenario.
	ptWallEpoch = int64(1767225600) * int64(time.Second) // 2026-01-01T00:00:00Z
	ptStart     = Instant(time.Hour)
	ptMaxSteps  = 70
)

// ptPrintPool holds the wrong secrets' fingerprints; 0 means "the caller has
// none" (R-REPLAY must then count it).
var ptPrintPool = [...]uint64{0, 11, 22, 33}

// ptChecks selects what a run verifies.
type ptChecks uint16

const (
	ckDeterminism ptChecks = 1 << iota // INV-DETERMINISM
	ckAdmit                            // INV-NOAUTH-LOCKED (and the converse of R-ADMIT)
	ckOracle                           // INV-NOORACLE, R-EXTEND
	ckShorten                          // INV-NOSHORTEN, INV-RESET
	ckBounded                          // INV-BOUNDED
	ckReplay                           // INV-REPLAY
	ckClock                            // INV-CLOCK, R-RESTART
	ckLastAdmin                        // R-LASTADMIN
)

// ptStep is one generated step. Every field is a small integer that the
// runner interprets modulo its range, so any shrunk value is meaningful.
type ptStep struct {
	Op    int64 // 0..99: bucket, see ptOpOf
	Src   int64 // attempt: 0..2 a source, 3 the console; unlock: 0..2 pair, 3 principal, 4 all; restart: even clean, odd crash
	Out   int64 // 0..9: see ptOutcome
	Print int64 // index into ptPrintPool (wrong secrets)
	Rep   int64 // extra repetitions of an attempt
	Time  int64 // index into ptTimeLabels: the time advance before the step
	Kind  int64 // the key kind whose policy Time refers to
	Wall  int64 // attempt: gap between repetitions; wall jump / restart: the wall delta
	Rand  int64 // random component, 0..2h
}

type ptOp uint8

const (
	opAttempt ptOp = iota
	opAdvance
	opUnlock
	opDisable
	opEnable
	opWallJump
	opRestart
)

var ptOpNames = [...]string{"attempt", "advance", "unlock", "disable", "enable", "wall_jump", "restart"}

func ptOpOf(op int64) ptOp {
	switch o := ptMod(op, 100); {
	case o < 45:
		return opAttempt
	case o < 65:
		return opAdvance
	case o < 72:
		return opUnlock
	case o < 74:
		return opDisable
	case o < 84:
		return opEnable
	case o < 92:
		return opWallJump
	default:
		return opRestart
	}
}

func ptMod(v int64, n int) int {
	m := int(v % int64(n))
	if m < 0 {
		m += n
	}
	return m
}

func ptOutcome(out int64) Outcome {
	switch ptMod(out, 10) {
	case 6, 7:
		return RightSecret
	case 8:
		return WrongSecondFactor
	}
	return WrongSecret
}

var ptOutcomeNames = [...]string{"right", "wrong", "wrong2FA"}

var ptTimeLabels = [...]string{
	"0", "1ns", "sub-second", "window-1ns", "window", "window+1ns", "base",
	"cap-1ns", "cap", "cap+1ns", "extend", "holdFor", "decay", "trustTTL",
	"until-1ns", "until", "until+1ns", "rand", "rand×100", "resolution",
}

var ptGaps = [...]time.Duration{0, 1, time.Millisecond, time.Second, 10 * time.Second}

var ptRestartWallLabels = [...]string{"+downtime", "0", "-downtime", "to 1970", "+downtime+rand", "+downtime-rand", "-rand", "+downtime+1ns"}

var ptJumpLabels = [...]string{"+1h", "-1h", "to 1970", "+rand", "-rand", "+rand×100"}

func (s ptStep) String() string {
	kind := Kind(ptMod(s.Kind, 4))
	when := "+" + ptTimeLabels[ptMod(s.Time, len(ptTimeLabels))]
	if t := ptMod(s.Time, len(ptTimeLabels)); t >= 3 && t <= 13 {
		when += "(" + kind.String() + ")"
	}
	if t := ptMod(s.Time, len(ptTimeLabels)); t == 2 || t == 17 || t == 18 {
		when += fmt.Sprintf("[r=%d]", s.Rand)
	}
	switch op := ptOpOf(s.Op); op {
	case opAttempt:
		src := ptMod(s.Src, 4)
		where := "src" + strconv.Itoa(src)
		if src == ptConsoleSrc {
			where = "console"
		}
		o := ptOutcome(s.Out)
		what := ptOutcomeNames[o]
		if o == WrongSecret {
			what += fmt.Sprintf("#%d", ptPrintPool[ptMod(s.Print, len(ptPrintPool))])
		}
		rep := ""
		if n := ptMod(s.Rep, 8); n > 0 {
			rep = fmt.Sprintf(" ×%d gap %v", n+1, ptGaps[ptMod(s.Wall, len(ptGaps))])
		}
		return fmt.Sprintf("%s %s %s%s", when, where, what, rep)
	case opAdvance:
		return "advance " + when
	case opUnlock:
		return "unlock " + [...]string{"pair0", "pair1", "pair2", "principal", "all"}[ptMod(s.Src, 5)]
	case opWallJump:
		return fmt.Sprintf("wall_jump %s[r=%d]", ptJumpLabels[ptMod(s.Wall, len(ptJumpLabels))], s.Rand)
	case opRestart:
		how := "clean"
		if ptMod(s.Src, 2) == 1 {
			how = "crash"
		}
		return fmt.Sprintf("restart(%s) downtime %s wall %s", how, when, ptRestartWallLabels[ptMod(s.Wall, len(ptRestartWallLabels))])
	default:
		return ptOpNames[op]
	}
}

// ptScenario is one generated run: the principal's role, the start instant's
// sub-second offset and the steps.
type ptScenario struct {
	Role  int64
	Start int64
	Steps []ptStep
}

func (sc ptScenario) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "role=%v start=+%v steps(%d)=[", Role(ptMod(sc.Role, 3)), time.Duration(sc.Start), len(sc.Steps))
	for i, s := range sc.Steps {
		if i > 0 {
			b.WriteString("; ")
		}
		b.WriteString(s.String())
	}
	b.WriteString("]")
	return b.String()
}

// ptStepFields are ptStep's fields with their ranges, for generation and
// shrinking (hand-written: gopter's reflective gen.Struct costs most of the
// run time under -race).
var ptStepFields = [...]struct {
	get func(*ptStep) *int64
	max int64 // inclusive
}{
	{func(s *ptStep) *int64 { return &s.Op }, 99},
	{func(s *ptStep) *int64 { return &s.Src }, 4},
	{func(s *ptStep) *int64 { return &s.Out }, 9},
	{func(s *ptStep) *int64 { return &s.Print }, int64(len(ptPrintPool) - 1)},
	{func(s *ptStep) *int64 { return &s.Rep }, 7},
	{func(s *ptStep) *int64 { return &s.Time }, int64(len(ptTimeLabels) - 1)},
	{func(s *ptStep) *int64 { return &s.Kind }, 3},
	{func(s *ptStep) *int64 { return &s.Wall }, 7},
	{func(s *ptStep) *int64 { return &s.Rand }, int64(2 * time.Hour)},
}

// ptScenarioGen draws a scenario of up to the current size steps.
func ptScenarioGen() gopter.Gen {
	return func(gp *gopter.GenParameters) *gopter.GenResult {
		r := gp.Rng
		n := 0
		if gp.MaxSize > 0 {
			n = r.Intn(gp.MaxSize)
		}
		sc := ptScenario{Role: r.Int63n(3), Start: r.Int63n(int64(10 * time.Second)), Steps: make([]ptStep, n)}
		for i := range sc.Steps {
			for _, f := range ptStepFields {
				*f.get(&sc.Steps[i]) = r.Int63n(f.max + 1)
			}
		}
		return gopter.NewGenResult(sc, ptShrinkScenario)
	}
}

// ptShrinkScenario proposes smaller scenarios, biggest cuts first: drop
// chunks of steps (halving the chunk), then move each step's fields towards
// 0 (0, then half), then the role and start offset to 0.
func ptShrinkScenario(v interface{}) gopter.Shrink {
	sc := v.(ptScenario)
	n := len(sc.Steps)
	var cands []func() ptScenario
	for chunk := n; chunk > 0; chunk /= 2 {
		for off := 0; off+chunk <= n; off += chunk {
			chunk, off := chunk, off
			cands = append(cands, func() ptScenario {
				c := sc
				c.Steps = append(append([]ptStep(nil), sc.Steps[:off]...), sc.Steps[off+chunk:]...)
				return c
			})
		}
	}
	for i := 0; i < n; i++ {
		for _, f := range ptStepFields {
			cur := *f.get(&sc.Steps[i])
			tos := []int64{0}
			if h := cur / 2; h != 0 {
				tos = append(tos, h)
			}
			for _, to := range tos {
				if to == cur {
					continue
				}
				i, f, to := i, f, to
				cands = append(cands, func() ptScenario {
					c := sc
					c.Steps = append([]ptStep(nil), sc.Steps...)
					*f.get(&c.Steps[i]) = to
					return c
				})
			}
		}
	}
	if sc.Role != 0 {
		cands = append(cands, func() ptScenario { c := sc; c.Role = 0; return c })
	}
	if sc.Start != 0 {
		cands = append(cands, func() ptScenario { c := sc; c.Start = 0; return c })
	}
	i := 0
	return func() (interface{}, bool) {
		if i >= len(cands) {
			return nil, false
		}
		i++
		return cands[i-1](), true
	}
}

// ptPolicyArg wraps a random policy so a counterexample prints it as --set
// assignments.
type ptPolicyArg struct{ P Policy }

func (a ptPolicyArg) String() string { return ptPolicyString(&a.P) }

// ptPolicyString lists the fields that differ from an all-off policy.
func ptPolicyString(p *Policy) string {
	off := KeyPolicy{Growth: 1}
	base := Policy{Pair: off, Source: off, Principal: off, Console: off}
	var parts []string
	for _, f := range Fields() {
		if v := f.Get(p); v != f.Get(&base) {
			parts = append(parts, f.Name+"="+v)
		}
	}
	if p.Preset != "" {
		parts = append([]string{"preset=" + p.Preset}, parts...)
	}
	return strings.Join(parts, " ")
}

// ptPolicyGen generates random policies: fields drawn around the values that
// matter, kept only when Validate accepts them.
func ptPolicyGen() gopter.Gen {
	return func(gp *gopter.GenParameters) *gopter.GenResult {
		for i := 0; i < 200; i++ {
			p := ptRandomPolicy(gp.Rng)
			if p.Validate() == nil {
				return gopter.NewGenResult(ptPolicyArg{p}, gopter.NoShrinker)
			}
		}
		return gopter.NewEmptyResult(reflect.TypeOf(ptPolicyArg{}))
	}
}

func ptPickD(r *rand.Rand, ds ...time.Duration) time.Duration { return ds[r.Intn(len(ds))] }

func ptRandomKeyPolicy(r *rand.Rand, kind Kind) KeyPolicy {
	kp := KeyPolicy{Growth: 1}
	if r.Intn(5) == 0 {
		return kp // this kind never locks
	}
	kp.Threshold = 1 + r.Intn(5)
	if r.Intn(10) == 0 {
		kp.Threshold = 1 + r.Intn(MaxThreshold)
	}
	kp.Window = ptPickD(r, time.Second, time.Minute, 15*time.Minute, time.Hour,
		time.Duration(1+r.Int63n(int64(2*time.Hour))))
	kp.Base = ptPickD(r, 0, time.Second, 30*time.Second, time.Minute, 5*time.Minute,
		time.Duration(1+r.Int63n(int64(time.Hour))))
	kp.Growth = [...]float64{1, 1.5, 2, 3, 1000}[r.Intn(5)]
	switch r.Intn(4) {
	case 0:
		kp.Cap = kp.Base
	case 1:
		kp.Cap = 2 * kp.Base
	case 2:
		kp.Cap = 100 * kp.Base
	default:
		kp.Cap = kp.Base + time.Duration(r.Int63n(int64(3*time.Hour)))
	}
	kp.HoldAfter = [...]int{0, 0, 0, 1, 2, 3}[r.Intn(6)]
	kp.HoldFor = ptPickD(r, 0, time.Hour, time.Duration(1+r.Int63n(int64(2*time.Hour))))
	switch r.Intn(4) {
	case 0:
		kp.Decay = kp.Cap
	case 1:
		kp.Decay = 2*kp.Cap + time.Minute
	case 2:
		kp.Decay = day
	}
	if kind == KindPair {
		switch r.Intn(4) {
		case 0:
			kp.ExtendOnAttempt = kp.Cap
		case 1:
			kp.ExtendOnAttempt = kp.Cap / 2
		case 2:
			if kp.Cap > 0 {
				kp.ExtendOnAttempt = time.Duration(r.Int63n(int64(kp.Cap)))
			}
		}
		kp.ReplayDedup = r.Intn(2) == 0
	}
	if kind != KindSource && r.Intn(3) == 0 {
		for i := range kp.RoleThreshold {
			kp.RoleThreshold[i] = r.Intn(7)
		}
	}
	if kind == KindConsole {
		kp.HoldAfter, kp.HoldFor = 0, 0
		if kp.Base == 0 {
			kp.Base = time.Second
		}
		if kp.Cap < kp.Base {
			kp.Cap = kp.Base
		}
		if kp.Cap > day {
			kp.Cap = day
		}
		if kp.Base > kp.Cap {
			kp.Base = kp.Cap
		}
		if kp.Decay > 0 && kp.Decay < kp.Cap {
			kp.Decay = kp.Cap
		}
	}
	return kp
}

func ptRandomPolicy(r *rand.Rand) Policy {
	p := Policy{
		Pair:           ptRandomKeyPolicy(r, KindPair),
		Source:         ptRandomKeyPolicy(r, KindSource),
		Principal:      ptRandomKeyPolicy(r, KindPrincipal),
		Console:        ptRandomKeyPolicy(r, KindConsole),
		ResetOnSuccess: ResetScope(r.Intn(3)),
		TrustTTL:       ptPickD(r, 0, time.Hour, 30*day, time.Duration(1+r.Int63n(int64(2*time.Hour)))),
		Resolution:     ptPickD(r, 0, 0, 0, 0, 0, 0, time.Millisecond, time.Second),
		Disabled:       r.Intn(12) == 0,
	}
	if res := p.Resolution; res > 1 {
		// Validation wants every duration a whole multiple of the resolution.
		grid := func(d *time.Duration) {
			if *d > 0 {
				*d = max(*d/res, 1) * res
			}
		}
		for k := Kind(0); k < NumKinds; k++ {
			kp := p.Key(k)
			for _, d := range []*time.Duration{&kp.Window, &kp.Base, &kp.Cap, &kp.HoldFor, &kp.Decay, &kp.ExtendOnAttempt} {
				grid(d)
			}
		}
		grid(&p.TrustTTL)
	}
	return p
}

// ptWorld is the whole state of one run: one principal's keys, the clocks.
type ptWorld struct {
	Pairs     [ptNumSources]Pair
	Sources   [ptNumSources]Key
	Principal Key
	Console   Key
	Now       Instant
	Wall      int64
}

func (w *ptWorld) view(src int) View {
	v := View{Principal: w.Principal, Console: w.Console}
	if src != ptConsoleSrc {
		v.Pair, v.Source = w.Pairs[src], w.Sources[src]
	}
	return v
}

func (w *ptWorld) store(src int, v View) {
	if src != ptConsoleSrc {
		w.Pairs[src], w.Sources[src] = v.Pair, v.Source
	}
	w.Principal, w.Console = v.Principal, v.Console
}

// Key slots 0..2 are the pairs, 3..5 the sources, 6 the principal, 7 the
// console.
func ptSlotKind(i int) Kind {
	switch {
	case i < ptNumSources:
		return KindPair
	case i < 2*ptNumSources:
		return KindSource
	case i == 2*ptNumSources:
		return KindPrincipal
	}
	return KindConsole
}

func ptSlotName(i int) string {
	switch {
	case i < ptNumSources:
		return fmt.Sprintf("pair%d", i)
	case i < 2*ptNumSources:
		return fmt.Sprintf("source%d", i-ptNumSources)
	case i == 2*ptNumSources:
		return "principal"
	}
	return "console"
}

func (w *ptWorld) slot(i int) Pair {
	switch {
	case i < ptNumSources:
		return w.Pairs[i]
	case i < 2*ptNumSources:
		return Pair{Key: w.Sources[i-ptNumSources]}
	case i == 2*ptNumSources:
		return Pair{Key: w.Principal}
	}
	return Pair{Key: w.Console}
}

func (w *ptWorld) setSlot(i int, p Pair) {
	switch {
	case i < ptNumSources:
		w.Pairs[i] = p
	case i < 2*ptNumSources:
		w.Sources[i-ptNumSources] = p.Key
	case i == 2*ptNumSources:
		w.Principal = p.Key
	default:
		w.Console = p.Key
	}
}

// ptRecord is what INV-DETERMINISM compares after every sub-step.
type ptRecord struct {
	W ptWorld
	D Decision
}

// ptRun executes one scenario under one policy.
type ptRun struct {
	p    *Policy
	role Role
	ck   ptChecks
	w    ptWorld
	// The persisted form of every key as the service would hold it: the
	// snapshot of its last change (or re-anchor), and when that was.
	snap    [ptNumKeys]Snapshot
	savedAt [ptNumKeys]Instant
	dirty   [ptNumKeys]bool // changed since its snapshot: persist in afterStep
	// Independent trackers: the last admitted presentation of each wrong
	// secret on each pair (R-REPLAY) and the last success from each source
	// (familiarity, SPEC §1), both at truncated instants.
	seen     [ptNumSources][len(ptPrintPool)]Instant
	seenOK   [ptNumSources][len(ptPrintPool)]bool
	lastOK   [ptNumSources]Instant
	lastOKOK [ptNumSources]bool

	noise bool // call Decide on unrelated inputs between steps (determinism)
	recs  []ptRecord
	log   *strings.Builder
	step  int
	desc  string
}

func (r *ptRun) failf(format string, args ...any) error {
	return fmt.Errorf("step %d [%s] at t=+%v: %s", r.step, r.desc, r.w.Now.Sub(ptStart), fmt.Sprintf(format, args...))
}

func (r *ptRun) logf(format string, args ...any) {
	if r.log != nil {
		fmt.Fprintf(r.log, "  #%d t=+%v wall=%+v: ", r.step, r.w.Now.Sub(ptStart), time.Duration(r.w.Wall-ptWallEpoch))
		fmt.Fprintf(r.log, format, args...)
		r.log.WriteByte('\n')
	}
}

// ptExecute runs sc under p, verifying the checks ck. A panic in the model is
// a violation too (so gopter shrinks it like any other).
func ptExecute(p *Policy, sc ptScenario, ck ptChecks, log *strings.Builder, noise bool) (recs []ptRecord, err error) {
	r := &ptRun{p: p, role: Role(ptMod(sc.Role, 3)), ck: ck, log: log, noise: noise}
	r.w.Now = ptStart + Instant(sc.Start)
	r.w.Wall = ptWallEpoch + sc.Start
	for i := 0; i < ptNumKeys; i++ {
		r.snap[i] = Persist(Pair{}, r.w.Now, r.w.Wall)
		r.savedAt[i] = r.w.Now
	}
	defer func() {
		if x := recover(); x != nil {
			err = r.failf("model panicked: %v", x)
			recs = r.recs
		}
	}()
	for i, st := range sc.Steps {
		r.step, r.desc = i, st.String()
		if err := r.apply(st); err != nil {
			return r.recs, err
		}
	}
	return r.recs, nil
}

func ptTrunc(now Instant, res time.Duration) Instant {
	if res <= 1 {
		return now
	}
	m := int64(now) % int64(res)
	if m < 0 {
		m += int64(res)
	}
	return now - Instant(m)
}

func (r *ptRun) tnow() Instant { return ptTrunc(r.w.Now, r.p.Resolution) }

// delta resolves a step's time choice against the policy and the state.
func (r *ptRun) delta(st ptStep) time.Duration {
	kp := r.p.Key(Kind(ptMod(st.Kind, 4)))
	var d time.Duration
	switch t := ptMod(st.Time, len(ptTimeLabels)); t {
	case 0:
	case 1:
		d = 1
	case 2:
		d = time.Duration(st.Rand % int64(time.Second))
	case 3, 4, 5:
		d = kp.Window + time.Duration(t-4)
	case 6:
		d = kp.Base
	case 7, 8, 9:
		d = kp.Cap + time.Duration(t-8)
	case 10:
		d = kp.ExtendOnAttempt
	case 11:
		d = kp.HoldFor
	case 12:
		d = kp.Decay
	case 13:
		d = r.p.TrustTTL
	case 14, 15, 16:
		if m, ok := r.nearestUntil(); ok {
			d = m + time.Duration(t-15)
		} else {
			d = time.Duration(st.Rand % int64(time.Minute))
		}
	case 17:
		d = time.Duration(st.Rand)
	case 18:
		d = 100 * time.Duration(st.Rand)
	case 19:
		d = r.p.Resolution
		if d == 0 {
			d = time.Second
		}
	}
	if d < 0 {
		d = 0
	}
	return d
}

// nearestUntil is the time to the soonest end of a running lock or hold.
func (r *ptRun) nearestUntil() (time.Duration, bool) {
	best, ok := time.Duration(0), false
	for i := 0; i < ptNumKeys; i++ {
		k := r.w.slot(i).Key
		if k.Mode == Open || k.Until == Forever || k.Until <= r.w.Now {
			continue
		}
		if d := k.Until.Sub(r.w.Now); !ok || d < best {
			best, ok = d, true
		}
	}
	return best, ok
}

func (r *ptRun) advance(d time.Duration) {
	r.w.Now = r.w.Now.Add(d)
	r.w.Wall = satAdd(r.w.Wall, int64(d))
}

func (r *ptRun) apply(st ptStep) error {
	switch ptOpOf(st.Op) {
	case opAttempt:
		r.advance(r.delta(st))
		for k := 0; k <= ptMod(st.Rep, 8); k++ {
			if k > 0 {
				r.advance(ptGaps[ptMod(st.Wall, len(ptGaps))])
			}
			d, err := r.attempt(st)
			if err != nil {
				return err
			}
			if err := r.afterStep(d); err != nil {
				return err
			}
		}
		return nil
	case opAdvance:
		r.advance(r.delta(st))
		r.logf("advance")
	case opUnlock:
		if err := r.unlock(ptMod(st.Src, 5)); err != nil {
			return err
		}
	case opDisable, opEnable:
		before := r.w.Principal
		r.w.Principal.Disabled = ptOpOf(st.Op) == opDisable
		r.dirty[2*ptNumSources] = true
		if r.ck&ckShorten != 0 {
			after := r.w.Principal
			after.Disabled = before.Disabled
			if after != before {
				return r.failf("disable/enable changed lock state: %+v → %+v", before, r.w.Principal)
			}
		}
		r.logf("%s", ptOpNames[ptOpOf(st.Op)])
	case opWallJump:
		if err := r.wallJump(st); err != nil {
			return err
		}
	case opRestart:
		if err := r.restart(st); err != nil {
			return err
		}
	}
	return r.afterStep(Decision{})
}

// admitRefuses is R-ADMIT written from SPEC §3's text over the stored
// (not yet advanced) keys: a Locked or Held key whose until is still ahead
// of now refuses; Disabled is an admin act and refuses whatever the
// protection setting; familiarity is tracked here, independently. Times are
// compared with the exact now: while instants sit on the policy's
// resolution grid (validation makes every duration a whole multiple) this
// equals the model's truncated comparison; after a restore, which shifts
// instants off the grid, it is R-RESTART's exact remaining.
func (r *ptRun) admitRefuses(pre View, ch Channel, src int) (bool, string) {
	t := r.w.Now
	active := func(k Key) bool { return k.Mode != Open && k.Until > t }
	if pre.Principal.Disabled {
		return true, "principal Disabled"
	}
	if r.p.Disabled {
		return false, "protection off"
	}
	if ch == Console {
		if active(pre.Console) {
			return true, "console key " + pre.Console.Mode.String()
		}
		return false, ""
	}
	familiar := r.lastOKOK[src] && r.p.TrustTTL > 0 && t.Sub(r.lastOK[src]) < r.p.TrustTTL
	switch {
	case active(pre.Pair.Key):
		return true, "pair " + pre.Pair.Mode.String()
	case active(pre.Source):
		return true, "source " + pre.Source.Mode.String()
	case pre.Principal.Mode == Held && active(pre.Principal):
		return true, "principal Held"
	case pre.Principal.Mode == Locked && active(pre.Principal) && !familiar:
		return true, "principal Locked, source unfamiliar"
	}
	return false, ""
}

func (r *ptRun) attempt(st ptStep) (Decision, error) {
	src := ptMod(st.Src, 4)
	out := ptOutcome(st.Out)
	ev := Event{Attempt: Attempt{Role: r.role, Print: ptRightTag}, Outcome: out}
	printIdx := ptMod(st.Print, len(ptPrintPool))
	if out == WrongSecret {
		ev.Print = ptPrintPool[printIdx]
	}
	if src == ptConsoleSrc {
		ev.Channel = Console
	}
	now, p := r.w.Now, r.p
	pre := r.w.view(src)
	if r.noise {
		// Unrelated decisions between steps: hidden state would show.
		Decide(View{}, Event{Attempt: Attempt{Print: 99}, Outcome: WrongSecret}, now+12345, p)
		Decide(pre, Event{Attempt: Attempt{Role: RoleAdmin}, Outcome: RightSecret}, now.Add(time.Hour), p)
	}
	post, d := Decide(pre, ev, now, p)
	if r.log != nil {
		where := "src" + strconv.Itoa(src)
		if src == ptConsoleSrc {
			where = "console"
		}
		r.logf("%s %v#%d → %v scope=%v retry=%v remaining=%d effects=%v modes=%v", where,
			ptOutcomeNames[out], ev.Print, d.Verdict, d.Scope, d.RetryAfter, d.Remaining, d.Effects.Names(), d.Modes)
	}

	if r.ck&ckAdmit != 0 {
		want, why := r.admitRefuses(pre, ev.Channel, src)
		if want && d.Verdict != Refused {
			return d, r.failf("INV-NOAUTH-LOCKED: R-ADMIT refuses (%s) but the verdict is %v", why, d.Verdict)
		}
		if !want && d.Verdict == Refused {
			return d, r.failf("R-ADMIT: refused with scope %v although no refusal condition holds (%s)", d.Scope, why)
		}
		if d.Verdict == Refused && d.Scope == ScopeNone {
			return d, r.failf("R-DISCLOSE: a refusal names no scope")
		}
	}
	if r.ck&ckOracle != 0 {
		if err := r.checkOracle(pre, post, ev, d); err != nil {
			return d, err
		}
	}
	if r.ck&ckShorten != 0 {
		if err := r.checkShorten(pre, post, src); err != nil {
			return d, err
		}
	}
	if r.ck&ckBounded != 0 {
		if d.RetryAfter < 0 {
			return d, r.failf("INV-BOUNDED: negative RetryAfter %v", d.RetryAfter)
		}
		var longest time.Duration
		for k := Kind(0); k < NumKinds; k++ {
			kp := p.Key(k)
			longest = max(longest, kp.Cap, kp.HoldFor)
		}
		if d.RetryAfter > longest {
			return d, r.failf("INV-BOUNDED: RetryAfter %v exceeds every cap and holdFor (max %v)", d.RetryAfter, longest)
		}
		if d.Remaining < -1 {
			return d, r.failf("INV-BOUNDED: Remaining %d", d.Remaining)
		}
	}
	if r.ck&ckReplay != 0 && ev.Channel == Remote && out == WrongSecret && d.Verdict != Refused && p.Pair.ReplayDedup && !p.Disabled {
		if err := r.checkReplay(pre, post, ev, d, src, printIdx); err != nil {
			return d, err
		}
	}
	// Trackers (independent of the model's own bookkeeping).
	if ev.Channel == Remote && d.Verdict != Refused {
		if out == WrongSecret && ev.Print != 0 && !p.Disabled {
			r.seen[src][printIdx], r.seenOK[src][printIdx] = r.tnow(), true
		}
		if out == RightSecret {
			r.lastOK[src], r.lastOKOK[src] = r.tnow(), true
		}
	}
	r.w.store(src, post)
	r.dirty[2*ptNumSources], r.dirty[2*ptNumSources+1] = true, true
	if src != ptConsoleSrc {
		r.dirty[src], r.dirty[ptNumSources+src] = true, true
	}
	return d, nil
}

// checkOracle: INV-NOORACLE and R-EXTEND. A refusal is decided before the
// secret is looked at, so the outcome and the fingerprint cannot change it;
// two-phase Admit+Record equals Decide.
func (r *ptRun) checkOracle(pre, post View, ev Event, d Decision) error {
	now, p := r.w.Now, r.p
	if d.Verdict == Refused && d.Verified {
		return r.failf("INV-NOORACLE: a refused attempt has Verified=true")
	}
	if d.Verdict != Refused && !d.Verified {
		return r.failf("INV-NOORACLE: verdict %v without verification", d.Verdict)
	}
	for _, o := range []Outcome{RightSecret, WrongSecret, WrongSecondFactor} {
		for _, pr := range []uint64{ev.Print, 0, 77, ptRightTag} {
			ev2 := ev
			ev2.Outcome, ev2.Print = o, pr
			post2, d2 := Decide(pre, ev2, now, p)
			if (d2.Verdict == Refused) != (d.Verdict == Refused) {
				return r.failf("INV-NOORACLE: admission depends on the secret: %v with %v/print %d, %v with %v/print %d",
					d.Verdict, ptOutcomeNames[ev.Outcome], ev.Print, d2.Verdict, ptOutcomeNames[o], pr)
			}
			if d.Verdict == Refused && (post2 != post || d2 != d) {
				return r.failf("INV-NOORACLE: a refused attempt's result depends on the secret (%v/print %d vs %v/print %d): decision %+v vs %+v",
					ptOutcomeNames[ev.Outcome], ev.Print, ptOutcomeNames[o], pr, d, d2)
			}
		}
	}
	va, da := Admit(pre, ev.Attempt, now, p)
	if d.Verdict == Refused {
		if da != d || va != post {
			return r.failf("R-ATOMIC: Admit's refusal %+v differs from Decide's %+v", da, d)
		}
		// R-EXTEND: nothing but the pair's until (and the lock start that
		// moves with it) changes, beyond what time itself does.
		for _, c := range []struct {
			name      string
			got, want Key
			kind      Kind
		}{
			{"source", post.Source, pre.Source, KindSource},
			{"principal", post.Principal, pre.Principal, KindPrincipal},
			{"console", post.Console, pre.Console, KindConsole},
		} {
			if ev.Channel == Console && c.kind != KindConsole && c.kind != KindPrincipal {
				continue
			}
			adv, _ := Advance(c.want, c.kind, now, p)
			if c.got != adv {
				return r.failf("R-EXTEND: a refused attempt changed the %s key: %+v → %+v", c.name, adv, c.got)
			}
		}
		if ev.Channel == Remote {
			adv, _ := Advance(pre.Pair.Key, KindPair, now, p)
			got := post.Pair.Key
			if got.Until < adv.Until {
				return r.failf("R-EXTEND: a refusal moved the pair's until earlier: %v → %v", adv.Until, got.Until)
			}
			if got.Until > adv.Until && (got.Mode != Locked || p.Pair.ExtendOnAttempt == 0) {
				return r.failf("R-EXTEND: a refusal extended a pair that is %v (extendOnAttempt %v)", got.Mode, p.Pair.ExtendOnAttempt)
			}
			got.Until, got.LockedAt = adv.Until, adv.LockedAt
			if got != adv {
				return r.failf("R-EXTEND: a refused attempt changed a pair counter: %+v → %+v", adv, post.Pair.Key)
			}
		}
		return nil
	}
	if da.Verdict != Admitted {
		return r.failf("R-ATOMIC: Admit says %v where Decide admitted", da.Verdict)
	}
	vr, dr := Record(va, ev.Attempt, ev.Outcome, now, p)
	if vr != post || dr != d {
		return r.failf("R-ATOMIC: Admit+Record %+v differs from Decide %+v", dr, d)
	}
	return nil
}

// checkShorten: INV-NOSHORTEN over one attempt: a key that is not Open before
// and after never has its until moved earlier.
func (r *ptRun) checkShorten(pre, post View, src int) error {
	type change struct {
		name      string
		pre, post Key
	}
	changes := []change{
		{"principal", pre.Principal, post.Principal},
		{"console", pre.Console, post.Console},
	}
	if src != ptConsoleSrc {
		changes = append(changes, change{"pair", pre.Pair.Key, post.Pair.Key}, change{"source", pre.Source, post.Source})
	}
	for _, c := range changes {
		if c.pre.Mode != Open && c.post.Mode != Open && c.post.Until < c.pre.Until {
			return r.failf("INV-NOSHORTEN: the %s key stayed %v→%v but its until moved earlier by %v", c.name, c.pre.Mode, c.post.Mode, c.pre.Until.Sub(c.post.Until))
		}
		if c.pre.Disabled != c.post.Disabled {
			return r.failf("an attempt changed Disabled on the %s key", c.name)
		}
	}
	return nil
}

// checkReplay: INV-REPLAY. A wrong secret this pair saw admitted within the
// window (tracked here) counts on no key; any other wrong secret counts once
// on the pair.
func (r *ptRun) checkReplay(pre, post View, ev Event, d Decision, src, printIdx int) error {
	now, p := r.w.Now, r.p
	t := now
	advPair, _ := Advance(pre.Pair.Key, KindPair, now, p)
	advSrc, _ := Advance(pre.Source, KindSource, now, p)
	advPr, _ := Advance(pre.Principal, KindPrincipal, now, p)
	repeat := ev.Print != 0 && r.seenOK[src][printIdx] && t.Sub(r.seen[src][printIdx]) < p.Pair.Window
	if repeat {
		if post.Pair.NFail != advPair.NFail || post.Pair.Key != advPair {
			return r.failf("INV-REPLAY: the wrong secret #%d, last presented on this pair %v ago (window %v), changed the pair: NFail %d → %d, mode %v → %v",
				ev.Print, t.Sub(r.seen[src][printIdx]), p.Pair.Window, advPair.NFail, post.Pair.NFail, advPair.Mode, post.Pair.Mode)
		}
		if post.Source != advSrc || post.Principal != advPr {
			return r.failf("INV-REPLAY: a repeated wrong secret was counted on the source or principal key")
		}
		if d.Verdict != Failed || d.Effects&EffCounted != 0 {
			return r.failf("INV-REPLAY: a repeated wrong secret reported verdict %v, effects %v", d.Verdict, d.Effects.Names())
		}
		return nil
	}
	if p.Pair.threshold(r.role) > 0 && advPair.Mode == Open {
		if post.Pair.NFail != advPair.NFail+1 && post.Pair.Mode == Open {
			return r.failf("INV-REPLAY/R-FAIL: a first presentation of wrong secret #%d changed the pair's count %d → %d (want +1)",
				ev.Print, advPair.NFail, post.Pair.NFail)
		}
	}
	return nil
}

func (r *ptRun) unlock(which int) error {
	var touched []int
	switch {
	case which < ptNumSources:
		r.w.Pairs[which] = UnlockPair(r.w.Pairs[which])
		r.w.Sources[which] = Unlock(r.w.Sources[which])
		touched = []int{which, ptNumSources + which}
	case which == ptNumSources: // the principal: principal, console, all its pairs
		r.w.Principal = Unlock(r.w.Principal)
		r.w.Console = Unlock(r.w.Console)
		touched = []int{0, 1, 2, 2 * ptNumSources, 2*ptNumSources + 1}
		for i := range r.w.Pairs {
			r.w.Pairs[i] = UnlockPair(r.w.Pairs[i])
		}
	default:
		for i := 0; i < ptNumKeys; i++ {
			pr := r.w.slot(i)
			pr.Key = Unlock(pr.Key)
			r.w.setSlot(i, pr)
			touched = append(touched, i)
		}
	}
	for _, i := range touched {
		r.dirty[i] = true
	}
	r.logf("unlock %v", touched)
	if r.ck&ckShorten != 0 {
		for _, i := range touched {
			k := r.w.slot(i).Key
			if k.Mode != Open || k.NFail != 0 || k.Level != 0 || k.Until != 0 {
				return r.failf("INV-RESET: after unlock the %s key is %v, %d failures, level %d, until %v", ptSlotName(i), k.Mode, k.NFail, k.Level, k.Until)
			}
		}
	}
	return nil
}

// wallJump steps the wall clock while running: no key may change (R-MONO),
// and re-anchoring the persisted snapshots keeps them equal to the keys
// (checked by afterStep's round trip).
func (r *ptRun) wallJump(st ptStep) error {
	var j int64
	switch ptMod(st.Wall, len(ptJumpLabels)) {
	case 0:
		j = int64(time.Hour)
	case 1:
		j = -int64(time.Hour)
	case 2:
		j = -r.w.Wall // an RTC reset to 1970
	case 3:
		j = st.Rand
	case 4:
		j = -st.Rand
	case 5:
		j = 100 * st.Rand
	}
	r.w.Wall = satAdd(r.w.Wall, j)
	for i := 0; i < ptNumKeys; i++ {
		r.snap[i] = Reanchor(r.snap[i], r.savedAt[i], r.w.Now, r.w.Wall)
		r.savedAt[i] = r.w.Now
	}
	r.logf("wall jump %v", time.Duration(j))
	return nil
}

// restart reboots: the keys come back from snapshots (taken now on a clean
// shutdown, or the last change's on a crash) after a downtime, with a wall
// delta that may be negative.
func (r *ptRun) restart(st ptStep) error {
	clean := ptMod(st.Src, 2) == 0
	d := r.delta(st)
	var wd int64
	switch ptMod(st.Wall, len(ptRestartWallLabels)) {
	case 0:
		wd = int64(d)
	case 1:
		wd = 0
	case 2:
		wd = -int64(d)
	case 3:
		wd = -r.w.Wall
	case 4:
		wd = int64(d) + st.Rand
	case 5:
		wd = int64(d) - st.Rand
	case 6:
		wd = -st.Rand
	case 7:
		wd = int64(d) + 1
	}
	before := r.w
	if clean {
		for i := 0; i < ptNumKeys; i++ {
			r.snap[i] = r.persist(i, r.w.slot(i))
			r.savedAt[i] = r.w.Now
		}
	}
	r.w.Now = r.w.Now.Add(d)
	r.w.Wall = satAdd(r.w.Wall, wd)
	for i := 0; i < ptNumKeys; i++ {
		s := r.snap[i]
		var got Pair
		if ptSlotKind(i) == KindPair {
			got = Restore(s, r.w.Now, r.w.Wall)
		} else {
			got = Pair{Key: RestoreKey(s, r.w.Now, r.w.Wall)}
		}
		old := before.slot(i)
		served := satAdd(r.w.Wall, -s.WallAnchor)
		if served < 0 {
			served = 0
		}
		// Trackers move with the pair's instants: an instant i comes back as
		// i − savedAt + now − served.
		if i < ptNumSources {
			shift := Instant(int64(r.w.Now) - int64(r.savedAt[i]) - served)
			for j := range r.seen[i] {
				r.seen[i][j] += shift
			}
			r.lastOK[i] += shift
		}
		if r.ck&ckClock != 0 {
			if err := r.checkRestored(i, old.Key, got.Key, s, time.Duration(served)); err != nil {
				return err
			}
		}
		r.w.setSlot(i, got)
		r.snap[i] = r.persist(i, got)
		r.savedAt[i] = r.w.Now
	}
	r.logf("restart clean=%v downtime %v wall %+v", clean, d, time.Duration(wd))
	return nil
}

func (r *ptRun) persist(i int, p Pair) Snapshot {
	if ptSlotKind(i) == KindPair {
		return Persist(p, r.w.Now, r.w.Wall)
	}
	return PersistKey(p.Key, r.w.Now, r.w.Wall)
}

// checkRestored is R-RESTART for one key: the mode and counters survive; the
// remaining duration is the persisted remaining minus clamp(wall delta since
// the anchor, 0, remaining); a clock that went backwards never lengthens a
// lock.
func (r *ptRun) checkRestored(i int, old, got Key, s Snapshot, served time.Duration) error {
	name := ptSlotName(i)
	if got.Mode != old.Mode || got.Level != old.Level || got.NFail != old.NFail || got.Disabled != old.Disabled {
		return r.failf("R-RESTART: the %s key changed by a restart: %v/level %d/%d failures → %v/level %d/%d failures",
			name, old.Mode, old.Level, old.NFail, got.Mode, got.Level, got.NFail)
	}
	if old.Mode == Open {
		return nil
	}
	if old.Until == Forever {
		if got.Until != Forever {
			return r.failf("R-RESTART: the %s key's endless hold got an end (%v)", name, got.Until)
		}
		return nil
	}
	if got.Until.Sub(got.LockedAt) != old.Until.Sub(old.LockedAt) {
		return r.failf("R-RESTART: the %s key's lock start did not move with its end: until−lockedAt %v → %v",
			name, old.Until.Sub(old.LockedAt), got.Until.Sub(got.LockedAt))
	}
	saved := s.Pair.Until.Sub(0) // remaining at the snapshot
	if saved < 0 {
		saved = 0
	}
	want := saved - min(max(served, 0), saved)
	rem := max(got.Until.Sub(r.w.Now), 0)
	if rem != want {
		return r.failf("R-RESTART: the %s key's remaining after restart is %v, want %v − clamp(%v, 0, %v) = %v",
			name, rem, saved, served, saved, want)
	}
	if rem > saved {
		return r.failf("INV-CLOCK: a restart lengthened the %s key's lock from %v to %v", name, saved, rem)
	}
	if r.w.Wall <= s.WallAnchor && rem != saved {
		return r.failf("INV-CLOCK: a wall clock that went backwards changed the %s key's remaining %v → %v", name, saved, rem)
	}
	return nil
}

// afterStep runs the state checks after every sub-step and records the state
// for INV-DETERMINISM.
func (r *ptRun) afterStep(d Decision) error {
	p, now := r.p, r.w.Now
	for i := 0; i < ptNumKeys; i++ {
		cur := r.w.slot(i)
		kind := ptSlotKind(i)
		if r.dirty[i] {
			r.snap[i] = r.persist(i, cur)
			r.savedAt[i] = now
			r.dirty[i] = false
		}
		k := cur.Key
		if r.ck&ckClock != 0 {
			var back Pair
			if kind == KindPair {
				back = Restore(r.snap[i], now, r.w.Wall)
			} else {
				back = Pair{Key: RestoreKey(r.snap[i], now, r.w.Wall)}
			}
			if back != cur {
				return r.failf("INV-CLOCK: restoring the %s key's snapshot (saved at t=+%v, re-anchored at every wall jump) with no downtime changed it:\n    was %+v\n    got %+v",
					ptSlotName(i), r.savedAt[i].Sub(ptStart), cur, back)
			}
		}
		if r.ck&ckBounded != 0 {
			kp := p.Key(kind)
			if k.Level > MaxLevel {
				return r.failf("INV-BOUNDED: the %s key's level %d > MaxLevel", ptSlotName(i), k.Level)
			}
			if k.NFail > MaxThreshold || cur.NPrints > MaxPrints {
				return r.failf("INV-BOUNDED: the %s key holds %d failures, %d prints", ptSlotName(i), k.NFail, cur.NPrints)
			}
			switch k.Mode {
			case Locked:
				if k.Until.Sub(now) > kp.Cap {
					return r.failf("INV-BOUNDED: the %s key is Locked for %v more, beyond its cap %v", ptSlotName(i), k.Until.Sub(now), kp.Cap)
				}
			case Held:
				if k.Until != Forever && (kp.HoldFor == 0 || k.Until.Sub(now) > kp.HoldFor) {
					return r.failf("INV-BOUNDED: the %s key is Held for %v more; holdFor is %v", ptSlotName(i), k.Until.Sub(now), kp.HoldFor)
				}
				if k.Until == Forever && kp.HoldFor != 0 {
					return r.failf("INV-BOUNDED: the %s key is Held forever though holdFor is %v", ptSlotName(i), kp.HoldFor)
				}
			case Open:
				if k.Until != 0 || k.LockedAt != 0 {
					return r.failf("canonical form (types.go): the Open %s key keeps until=%v lockedAt=%v", ptSlotName(i), k.Until, k.LockedAt)
				}
			}
		}
	}
	if r.ck&ckLastAdmin != 0 {
		c := r.w.Console
		if c.Mode == Held {
			return r.failf("R-LASTADMIN/R-CONSOLE: the console key is Held")
		}
		if c.Mode == Locked && c.Until.Sub(now) > p.Console.Cap {
			return r.failf("R-LASTADMIN: the console key is Locked for %v more, beyond console.cap %v", c.Until.Sub(now), p.Console.Cap)
		}
		// Liveness: the admin at the box (not Disabled: that is an admin
		// act) gets in at now + console.cap, whatever the remote keys say.
		v := View{Principal: r.w.Principal, Console: r.w.Console}
		v.Principal.Disabled = false
		at := now.Add(p.Console.Cap)
		_, pd := Decide(v, Event{Attempt: Attempt{Channel: Console, Role: r.role}, Outcome: RightSecret}, at, p)
		if pd.Verdict == Refused {
			return r.failf("R-LASTADMIN: a console attempt console.cap (%v) later is still refused (scope %v, retry after %v; console key %v until t=+%v, resolution %v)",
				p.Console.Cap, pd.Scope, pd.RetryAfter, c.Mode, c.Until.Sub(ptStart), p.Resolution)
		}
	}
	if r.ck&ckDeterminism != 0 {
		r.recs = append(r.recs, ptRecord{W: r.w, D: d})
	}
	return nil
}

// ptCheck runs one scenario and returns "" or a report of the violation with
// a trace of the run.
func ptCheck(p *Policy, sc ptScenario, ck ptChecks) string {
	if ck&ckDeterminism != 0 {
		p1, p2 := *p, *p
		recA, errA := ptExecute(&p1, sc, ck, nil, false)
		recB, errB := ptExecute(&p2, sc, ck, nil, true)
		msg := ""
		switch {
		case (errA == nil) != (errB == nil) || (errA != nil && errA.Error() != errB.Error()):
			msg = fmt.Sprintf("INV-DETERMINISM: two runs ended differently: %v / %v", errA, errB)
		case len(recA) != len(recB):
			msg = fmt.Sprintf("INV-DETERMINISM: two runs made %d and %d steps", len(recA), len(recB))
		case p1 != *p || p2 != *p:
			msg = "INV-DETERMINISM: Decide modified the policy"
		default:
			for i := range recA {
				if recA[i] != recB[i] {
					msg = fmt.Sprintf("INV-DETERMINISM: sub-step %d differs:\n    %+v\n    %+v", i, recA[i], recB[i])
					break
				}
			}
		}
		if msg != "" {
			var log strings.Builder
			ptExecute(p, sc, 0, &log, false)
			return msg + "\n" + log.String()
		}
		ck &^= ckDeterminism
		if ck == 0 {
			return ""
		}
	}
	if _, err := ptExecute(p, sc, ck, nil, false); err == nil {
		return ""
	}
	var log strings.Builder
	_, err := ptExecute(p, sc, ck, &log, false)
	if err == nil {
		return "run is not reproducible (INV-DETERMINISM)"
	}
	return err.Error() + "\n  trace:\n" + log.String()
}

// ptSeedBase is ptSeed, or LATCH_PROP_SEED when set.
func ptSeedBase(t *testing.T) int64 {
	if s := os.Getenv("LATCH_PROP_SEED"); s != "" {
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			t.Fatalf("LATCH_PROP_SEED=%q: %v", s, err)
		}
		return n
	}
	return ptSeed
}

// ptProperty checks the checks ck for every preset and for random policies,
// each subtest with its own fixed seed.
func ptProperty(t *testing.T, name string, ck ptChecks, tests int) {
	base := ptSeedBase(t)
	names := PresetNames()
	for i, pn := range names {
		pol, err := Preset(pn)
		if err != nil {
			t.Fatal(err)
		}
		seed := base + int64(i)
		t.Run(pn, func(t *testing.T) {
			ptRunProp(t, name+"/"+pn, seed, tests, prop.ForAll(func(sc ptScenario) string {
				return ptCheck(&pol, sc, ck)
			}, ptScenarioGen()))
		})
	}
	seed := base + int64(len(names))
	t.Run("random", func(t *testing.T) {
		ptRunProp(t, name+"/random", seed, tests, prop.ForAll(func(pa ptPolicyArg, sc ptScenario) string {
			msg := ptCheck(&pa.P, sc, ck)
			if msg != "" {
				msg = "policy: " + pa.String() + "\n" + msg
			}
			return msg
		}, ptPolicyGen(), ptScenarioGen()))
	})
}

// ptScale is LATCH_PROP_SCALE (default 1): it multiplies every property's
// number of cases, for a longer search than the default ~10 s under -race.
func ptScale(t *testing.T) int {
	s := os.Getenv("LATCH_PROP_SCALE")
	if s == "" {
		return 1
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < 1 {
		t.Fatalf("LATCH_PROP_SCALE=%q: want a positive integer", s)
	}
	return n
}

func ptRunProp(t *testing.T, name string, seed int64, tests int, p gopter.Prop) {
	params := gopter.DefaultTestParametersWithSeed(seed)
	params.MinSuccessfulTests = tests * ptScale(t)
	params.MaxSize = ptMaxSteps
	params.Workers = 1
	params.MaxShrinkCount = 300
	props := gopter.NewProperties(params)
	props.Property(name, p)
	var out bytes.Buffer
	if !props.Run(gopter.NewFormatedReporter(true, 4000, &out)) {
		t.Logf("gopter seed %d (LATCH_PROP_SEED base + subtest index); rerun: go test -run '^%s$' ./model/",
			seed, strings.ReplaceAll(t.Name(), "/", "$/^"))
		t.Errorf("%s", out.String())
	}
}

// TestPropDeterminism: INV-DETERMINISM. The same scenario run twice, the
// second time with unrelated Decide calls interleaved, gives bit-identical
// states and decisions after every sub-step, and leaves the policy unchanged.
func TestPropDeterminism(t *testing.T) { ptProperty(t, "INV-DETERMINISM", ckDeterminism, 80) }

// TestPropNoAuthLocked: INV-NOAUTH-LOCKED. An independent R-ADMIT predicate
// over the stored keys (lock running at truncated now; Disabled; familiarity
// tracked by the test) says refuse ⇒ Refused, and says admit ⇒ not Refused.
func TestPropNoAuthLocked(t *testing.T) { ptProperty(t, "INV-NOAUTH-LOCKED", ckAdmit, 250) }

// TestPropNoOracle: INV-NOORACLE. Refused ⇒ !Verified; the verdict of phase
// one and the whole result of a refusal are the same for every outcome and
// fingerprint; Admit+Record equals Decide; a refusal changes no counter and
// only the Locked pair's until (R-EXTEND).
func TestPropNoOracle(t *testing.T) { ptProperty(t, "INV-NOORACLE", ckOracle, 120) }

// TestPropNoShorten: INV-NOSHORTEN. Across every attempt, a key that is
// Locked or Held before and after never has its until moved earlier;
// disable/enable touch only Disabled; unlock leaves the keys it names Open
// with no failures and level 0 (INV-RESET).
func TestPropNoShorten(t *testing.T) { ptProperty(t, "INV-NOSHORTEN", ckShorten, 200) }

// TestPropBounded: INV-BOUNDED. Level ≤ MaxLevel; a Locked key ends within
// its kind's cap from now; a Held key is endless only when holdFor is 0 and
// otherwise ends within holdFor; RetryAfter stays within the longest cap or
// holdFor; Open keys carry no until (canonical form).
func TestPropBounded(t *testing.T) { ptProperty(t, "INV-BOUNDED", ckBounded, 200) }

// TestPropReplay: INV-REPLAY. With replayDedup, a wrong secret presented on
// a pair within the window of its last admitted presentation changes no key
// beyond time's own effect and is not reported counted; a first
// presentation counts once on the pair.
func TestPropReplay(t *testing.T) { ptProperty(t, "INV-REPLAY", ckReplay, 200) }

// TestPropClock: INV-CLOCK and R-RESTART. After every step each key equals
// the restore of its persisted snapshot with no downtime (wall jumps while
// running re-anchor the snapshots and change nothing); a restart keeps modes
// and counters and leaves remaining = persisted remaining − clamp(wall delta,
// 0, remaining), so a clock that went backwards never lengthens a lock.
func TestPropClock(t *testing.T) { ptProperty(t, "INV-CLOCK", ckClock, 160) }

// TestPropLastAdmin: R-LASTADMIN. The console key is never Held, a console
// lock never runs beyond console.cap, and a console attempt console.cap
// after any reachable state is admitted (unless an admin disabled the
// principal).
func TestPropLastAdmin(t *testing.T) { ptProperty(t, "R-LASTADMIN", ckLastAdmin, 200) }

// Pinned counterexamples (shrunk by the properties above, then written out
// by hand so they survive changes to the generators).

// TestPropRegressionRestoredUntilOffGrid: R-RESTART, INV-NOSHORTEN,
// INV-NOAUTH-LOCKED under a resolution. A reboot restarts the monotonic
// clock at an arbitrary sub-second phase, so a restored until is off the 1 s
// grid; deciding must not move it (found as a 1 ns shift by
// TestPropNoShorten/pam_faillock).
func TestPropRegressionRestoredUntilOffGrid(t *testing.T) {
	p, _ := Preset("pam_faillock") // deny=3, unlock_time=600: a lock lasts 601 s of truncated time
	wrong := Event{Outcome: WrongSecret}
	var v View
	lockAt := Instant(100 * time.Second)
	for i := 0; i < 3; i++ {
		v, _ = Decide(v, wrong, lockAt, &p)
	}
	if v.Principal.Mode != Locked || v.Principal.Until != lockAt.Add(601*time.Second) {
		t.Fatalf("setup: principal %v until %v", v.Principal.Mode, v.Principal.Until)
	}
	// Crash right away; the box is down 10 s (wall clock honest); the new
	// boot's monotonic clock reads 5.3 s at restore.
	wall := ptWallEpoch
	s := PersistKey(v.Principal, lockAt, wall)
	boot := Instant(5300 * time.Millisecond)
	v = View{Principal: RestoreKey(s, boot, wall+int64(10*time.Second))}
	end := boot.Add(591 * time.Second) // R-RESTART: remaining 601 s − 10 s served
	if v.Principal.Until != end {
		t.Fatalf("Restore: until %v, want %v (remaining 591s from the restore instant)", v.Principal.Until, end)
	}
	v2, d := Decide(v, wrong, boot.Add(time.Second), &p)
	if d.Verdict != Refused {
		t.Fatalf("refused attempt 1 s after restore: verdict %v", d.Verdict)
	}
	if v2.Principal.Until < end {
		t.Errorf("INV-NOSHORTEN: a refused attempt moved the restored until from %v to %v (%v earlier)", end, v2.Principal.Until, end.Sub(v2.Principal.Until))
	}
	if _, d := Decide(v, wrong, end-1, &p); d.Verdict != Refused {
		t.Errorf("INV-NOAUTH-LOCKED: 1 ns before the restored lock ends (remaining 591 s after a 10 s reboot) the attempt is %v, want refused", d.Verdict)
	}
	if _, d := Decide(v, wrong, end, &p); d.Verdict == Refused {
		t.Errorf("R-RESTART: the restored lock outlives its remaining 591 s: refused at its end (retry after %v)", d.RetryAfter)
	}
}

// TestPropRegressionGrowthOffGrid: R-LOCK, INV-NOSHORTEN under a
// resolution with a growth that is not a whole number: lock 2 lasts
// base·growth = 1.5 s, which is off the 1 s grid; the next decision must not
// move its until (found by TestPropNoShorten/random).
func TestPropRegressionGrowthOffGrid(t *testing.T) {
	off := KeyPolicy{Growth: 1}
	p := Policy{Pair: off, Source: off, Principal: off, Resolution: time.Second,
		Console: KeyPolicy{Threshold: 1, Window: time.Minute, Base: time.Second, Growth: 1.5, Cap: 10 * time.Second}}
	if err := p.Validate(); err != nil {
		t.Logf("the policy is now rejected, which also fixes it: %v", err)
		return
	}
	wrong := Event{Attempt: Attempt{Channel: Console}, Outcome: WrongSecret}
	v, _ := Decide(View{}, wrong, Instant(10*time.Second), &p) // lock 1: 1 s, until 11 s
	v, d := Decide(v, wrong, Instant(11*time.Second), &p)      // lock 2: 1.5 s, until 12.5 s
	if d.Effects&EffLocked == 0 {
		t.Fatalf("setup: second failure did not lock: %+v", d)
	}
	until := v.Console.Until
	if until != Instant(12500*time.Millisecond) {
		t.Logf("lock 2 ends at %v (R-LOCK: min(base·growth, cap) = 1.5 s after 11 s)", until)
	}
	v2, d := Decide(v, wrong, Instant(11200*time.Millisecond), &p)
	if d.Verdict != Refused {
		t.Fatalf("attempt at 11.2 s: %v, want refused", d.Verdict)
	}
	if v2.Console.Until < until {
		t.Errorf("INV-NOSHORTEN: a refused attempt moved the console lock's until from %v to %v", until, v2.Console.Until)
	}
	if _, d := Decide(v, wrong, Instant(12200*time.Millisecond), &p); d.Verdict != Refused {
		t.Errorf("R-LOCK: lock 2 (1.5 s from 11 s) admits an attempt at 12.2 s (verdict %v)", d.Verdict)
	}
}

// TestPropRegressionPolicyRestoreExact: R-RESTART through Persist/Restore
// under a resolution (pam_faillock's whole seconds).
// remaining' must be remaining − time served: a reboot neither shortens a
// lock (INV-NOSHORTEN, "a reboot never unlocks one by itself") nor
// lengthens it (INV-BOUNDED: no lock beyond its cap).
func TestPropRegressionPolicyRestoreExact(t *testing.T) {
	p, _ := Preset("pam_faillock") // a lock lasts 601 s of truncated time
	wrong := Event{Outcome: WrongSecret}
	lock := func(at Instant) View {
		var v View
		for i := 0; i < 3; i++ {
			v, _ = Decide(v, wrong, at, &p)
		}
		return v
	}
	wall := ptWallEpoch
	t.Run("new boot's clock phase", func(t *testing.T) {
		// Locked at 100 s until 701 s; crash at once; down 10 s (honest
		// wall); the new boot's monotonic clock reads 5.9 s at restore.
		v := lock(Instant(100 * time.Second))
		s := Persist(Pair{Key: v.Principal}, Instant(100*time.Second), wall)
		boot := Instant(5900 * time.Millisecond)
		v = View{Principal: Restore(s, boot, wall+int64(10*time.Second)).Key}
		end := boot.Add(591 * time.Second) // 601 s − 10 s served
		if _, d := Decide(v, wrong, end-1, &p); d.Verdict != Refused {
			t.Errorf("INV-NOAUTH-LOCKED: 1 ns before the restored lock ends (%v after restore) the attempt is %v; restored until is %v after restore, %v early",
				end.Sub(boot), d.Verdict, v.Principal.Until.Sub(boot), end.Sub(v.Principal.Until))
		}
	})
	t.Run("zero downtime", func(t *testing.T) {
		// Locked at 100.9 s (truncated: 100 s) until 701 s; persisted at
		// 100.9 s; restored 0.2 s later on the same clocks (no reboot
		// at all: the instant and the wall both moved 0.2 s).
		v := lock(Instant(100900 * time.Millisecond))
		if v.Principal.Until != Instant(701*time.Second) {
			t.Fatalf("setup: until %v", v.Principal.Until)
		}
		s := Persist(Pair{Key: v.Principal}, Instant(100900*time.Millisecond), wall)
		got := Restore(s, Instant(101100*time.Millisecond), wall+int64(200*time.Millisecond)).Key
		if got.Until != v.Principal.Until {
			t.Errorf("R-RESTART: persist at 100.9 s and restore 0.2 s later (wall honest) moved until %v → %v (%v); the lock now lasts %v from its start, cap %v",
				v.Principal.Until, got.Until, got.Until.Sub(v.Principal.Until), got.Until.Sub(Instant(100*time.Second)), p.Principal.Cap)
		}
	})
}
