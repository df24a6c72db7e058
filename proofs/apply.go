package proofs

import (
	"fmt"
	"math"
	"slices"
	"time"

	"github.com/latchnvr/latch/model"
)

// runMode selects the alphabet of an exploration.
type runMode uint8

const (
	// modeFull: every event kind; every universal invariant is checked.
	modeFull runMode = iota
	// modeNoDoS: the attacker's alphabet (wrong secrets from sources 2 and 3,
	// waiting) and the victim's right secret from source 1; the P-NODOS
	// probe is checked in every state.
	modeNoDoS
)

// Wall clock values of the abstraction (only differences matter).
const (
	wallBase = int64(1767225600) * int64(time.Second) // 2026-01-01T00:00:00Z
	// rtcReset is the wall delta of a reboot whose real-time clock reset to
	// 1970: the wall clock is suddenly 56 years behind.
	rtcReset = -wallBase
	// wallStep is the size of the explored wall-clock steps (NTP or a user
	// setting the date), each way.
	wallStep = int64(365 * 24 * time.Hour)
	// defaultNoDoSTTL is SPEC §1's default trust_ttl: P-NODOS asks about the
	// user's usual device even under a policy that recognises none.
	defaultNoDoSTTL = int64(30 * 24 * time.Hour)
	// burstMax bounds a burst: more than any threshold.
	burstMax = model.MaxThreshold + 1
)

// explorer is one exploration's fixed configuration; workers only read it.
type explorer struct {
	p    model.Policy
	m    Machine
	role model.Role
	n    int
	mode runMode

	res        int64 // resolution (≥ 1)
	shiftS     int64 // INV-DETERMINISM's time-shift
	nThresh    [numKeys]int
	window     [numKeys]int64
	capOf      [numKeys]int64
	holdFor    [numKeys]int64
	decay      [numKeys]int64
	maxWait    int64
	famTTL     int64 // the policy's trustTTL: R-ADMIT's familiarity
	nodosTTL   int64 // P-NODOS's familiarity
	successTTL int64 // how long the observer keeps a success
	consoleCap int64
	dedup      bool
	symStart   int
	// skip marks checks not to evaluate: switched off by the mode, or
	// already violated at an earlier depth (the first counterexample is the
	// shortest). It changes only between BFS levels.
	skip [numChecks]bool
}

func newExplorer(p model.Policy, m Machine, role model.Role, sources int, mode runMode) *explorer {
	x := &explorer{p: p, m: m, role: role, n: sources, mode: mode}
	x.res = int64(p.Resolution)
	if x.res < 1 {
		x.res = 1
	}
	// An odd shift (a multiple of the resolution when there is one) also
	// catches logic that looks at the parity or phase of absolute instants.
	x.shiftS = int64(1)<<50 + 12345
	if x.res > 1 {
		x.shiftS = (int64(1)<<50/x.res + 1) * x.res
	}
	for i := 0; i < numKeys; i++ {
		kp := p.Key(kindOf(i))
		n := kp.Threshold
		if role < model.NumRoles && kp.RoleThreshold[role] > 0 {
			n = kp.RoleThreshold[role]
		}
		if p.Disabled {
			n = 0
		}
		x.nThresh[i] = n
		x.window[i] = int64(kp.Window)
		x.capOf[i] = int64(kp.Cap)
		x.holdFor[i] = int64(kp.HoldFor)
		x.decay[i] = int64(kp.Decay)
		for _, d := range []time.Duration{kp.Cap, kp.HoldFor, kp.ExtendOnAttempt} {
			x.maxWait = max(x.maxWait, int64(d))
		}
	}
	x.famTTL = int64(p.TrustTTL)
	x.nodosTTL = x.famTTL
	if x.nodosTTL == 0 {
		x.nodosTTL = defaultNoDoSTTL
	}
	x.successTTL = x.famTTL
	if mode == modeNoDoS {
		x.successTTL = max(x.famTTL, x.nodosTTL)
	}
	if c := &p.Console; c.Threshold > 0 || anyRoleThreshold(c.RoleThreshold) {
		x.consoleCap = int64(c.Cap)
	}
	x.dedup = p.Pair.ReplayDedup && !p.Disabled
	if mode == modeNoDoS {
		x.symStart = 1 // source 1 is the victim's
		for i := 0; i < int(numInv); i++ {
			x.skip[i] = true
		}
		x.skip[invStructure] = false
	} else {
		x.skip[invNoDoS] = true
		if role != model.RoleAdmin {
			x.skip[invLastAdmin] = true
		}
	}
	return x
}

func anyRoleThreshold(r model.RoleThresholds) bool {
	for _, n := range r {
		if n > 0 {
			return true
		}
	}
	return false
}

// used reports whether key i belongs to a source of the abstraction.
func (x *explorer) used(i int) bool {
	switch {
	case i < kSource0:
		return i-kPair0 < x.n
	case i < kPrincipal:
		return i-kSource0 < x.n
	}
	return true
}

// refusing is SPEC §2's Locked or Held at now = 0, from the key's mode and
// until alone: R-ADVANCE says a lock whose until has come is Open.
func refusing(k *model.Key) bool { return k.Mode != model.Open && k.Until > 0 }

// familiar is SPEC §1's familiar source, from the observer's record of
// verified right secrets (R-SUCCESS) and the policy's trust_ttl.
func (x *explorer) familiar(w *wstate, s int) bool {
	return s >= 0 && w.hasSuccess[s] && x.famTTL > 0 && age(w.success[s]) < x.famTTL
}

func (x *explorer) nodosFamiliar(w *wstate, s int) bool {
	return w.hasSuccess[s] && age(w.success[s]) < x.nodosTTL
}

// ---- edges ----

type edgeOp uint8

const (
	opRight edgeOp = iota
	opWrong
	opRepeat
	op2FA
	opBurst
	opConsoleRight
	opConsoleWrong
	opConsoleBurst
	opUnlockPrincipal
	opUnlockPair
	opUnlockAll
	opReset
	opDisable
	opEnable
	opFactory
	opRestart
	opWallJump
	opAdvance
)

var opNames = [...]string{"right", "wrong", "repeat", "wrong2fa", "burst", "console-right", "console-wrong",
	"console-burst", "unlock", "unlock-pair", "unlock-all", "reset", "disable", "enable", "factory-reset",
	"restart", "wall-jump", "advance"}

// edge is one step of the abstraction: an event, an admin act, a restart,
// a wall-clock step, or time passing.
type edge struct {
	op  edgeOp
	src int8
	d   int64
}

func (e edge) String() string {
	switch e.op {
	case opRestart, opWallJump, opAdvance:
		return fmt.Sprintf("%s %s", opNames[e.op], time.Duration(e.d))
	case opRight, opWrong, opRepeat, op2FA, opBurst, opUnlockPair:
		return fmt.Sprintf("%s s%d", opNames[e.op], e.src+1)
	}
	return opNames[e.op]
}

// edgesOf lists the steps from w, in a fixed order.
func (c *ctx) edgesOf(w *wstate) []edge {
	x := c.x
	es := c.edges[:0]
	if x.mode == modeNoDoS {
		es = append(es, edge{op: opRight, src: 0})
		for s := 1; s < x.n; s++ {
			es = append(es, edge{op: opWrong, src: int8(s)})
			if x.dedup && w.prints[s].n > 0 {
				es = append(es, edge{op: opRepeat, src: int8(s)})
			}
			es = append(es, edge{op: opBurst, src: int8(s)})
		}
	} else {
		for s := 0; s < x.n; s++ {
			es = append(es, edge{op: opRight, src: int8(s)}, edge{op: opWrong, src: int8(s)})
			if x.dedup && w.prints[s].n > 0 {
				es = append(es, edge{op: opRepeat, src: int8(s)})
			}
			es = append(es, edge{op: op2FA, src: int8(s)}, edge{op: opBurst, src: int8(s)})
		}
		es = append(es, edge{op: opConsoleRight}, edge{op: opConsoleWrong}, edge{op: opConsoleBurst},
			edge{op: opUnlockPrincipal})
		for s := 0; s < x.n; s++ {
			es = append(es, edge{op: opUnlockPair, src: int8(s)})
		}
		es = append(es, edge{op: opUnlockAll}, edge{op: opReset})
		if w.disabled {
			es = append(es, edge{op: opEnable})
		} else {
			es = append(es, edge{op: opDisable})
		}
		es = append(es, edge{op: opFactory}, edge{op: opRestart, d: 0}, edge{op: opRestart, d: rtcReset},
			edge{op: opWallJump, d: wallStep}, edge{op: opWallJump, d: -wallStep})
	}
	times := c.timeEdges(w)
	if x.mode == modeFull && len(times) > 0 {
		es = append(es, edge{op: opRestart, d: times[0]})
		if len(times) > 1 {
			es = append(es, edge{op: opRestart, d: times[len(times)-1]})
		}
	}
	for _, d := range times {
		es = append(es, edge{op: opAdvance, d: d})
	}
	c.edges = es
	return es
}

// timeEdges lists the time steps from w: every instant at which something
// can change (an until, a window edge, a decay step, a trust_ttl edge, a
// fingerprint's expiry, an observer deadline), one nanosecond either side,
// rounded to the policy's resolution.
func (c *ctx) timeEdges(w *wstate) []int64 {
	x := c.x
	ts := c.times[:0]
	add := func(e int64) {
		if e > 0 && e < math.MaxInt64-1 {
			ts = append(ts, e)
		}
	}
	for i := 0; i < numKeys; i++ {
		if !x.used(i) {
			continue
		}
		k := w.key(i)
		if k.Mode != model.Open && k.Until != model.Forever {
			add(int64(k.Until))
		}
		if x.window[i] > 0 {
			for j := 0; j < int(k.NFail) && j < model.MaxThreshold; j++ {
				add(int64(k.Failures[j]) + x.window[i])
			}
		}
		if k.Mode == model.Open && k.Level > 0 && x.decay[i] > 0 {
			add(int64(k.QuietFrom) + x.decay[i])
		}
		o := &w.obs[i]
		if o.deadline != noDeadline && o.deadline != model.Forever {
			add(int64(o.deadline))
		}
		if x.window[i] > 0 {
			for j := 0; j < int(o.nfail); j++ {
				add(int64(o.fails[j]) + x.window[i])
			}
		}
	}
	wp := x.window[kPair0]
	for s := 0; s < x.n; s++ {
		pr := &w.pairs[s]
		if pr.Familiar && x.famTTL > 0 {
			add(int64(pr.LastSuccess) + x.famTTL)
		}
		if wp > 0 {
			for j := 0; j < int(pr.NPrints) && j < model.MaxPrints; j++ {
				add(int64(pr.Prints[j].Seen) + wp)
			}
			for j := 0; j < int(w.prints[s].n); j++ {
				add(int64(w.prints[s].seen[j]) + wp)
			}
		}
		if w.hasSuccess[s] {
			if x.famTTL > 0 {
				add(int64(w.success[s]) + x.famTTL)
			}
			if x.mode == modeNoDoS {
				add(int64(w.success[s]) + x.nodosTTL)
			}
		}
	}
	if len(ts) == 0 {
		c.times = ts
		return ts
	}
	// Each edge e and the instant just before it (e−1: nothing has changed
	// yet); e+1 for the nearest edge only. Further instants just after an
	// edge are reached by a later step (nothing new can change in between),
	// and omitting them keeps the breadth of the search for its depth.
	slices.Sort(ts)
	ts = slices.Compact(ts)
	n := len(ts)
	ts = append(ts, ts[0]+1)
	for i := 0; i < n; i++ {
		if ts[i] > 1 {
			ts = append(ts, ts[i]-1)
		}
	}
	if x.res > 1 {
		// With a resolution, only multiples of it are distinct instants:
		// the multiple at or before each candidate, and the next one.
		n := len(ts)
		for i := 0; i < n; i++ {
			lo := ts[i] / x.res * x.res
			ts[i] = lo
			ts = append(ts, lo+x.res)
		}
	}
	slices.Sort(ts)
	ts = slices.Compact(ts)
	for len(ts) > 0 && ts[0] <= 0 {
		ts = ts[1:]
	}
	c.times = ts
	return ts
}

// ---- applying a step ----

// apply performs edge e on w, checking every invariant on the way. It does
// not canonicalise.
func (c *ctx) apply(w *wstate, e edge) {
	s := int(e.src)
	switch e.op {
	case opRight:
		c.attempt(w, s, model.Remote, model.RightSecret, false)
	case opWrong:
		c.attempt(w, s, model.Remote, model.WrongSecret, false)
	case opRepeat:
		c.attempt(w, s, model.Remote, model.WrongSecret, true)
	case op2FA:
		c.attempt(w, s, model.Remote, model.WrongSecondFactor, false)
	case opBurst:
		c.burst(w, s, model.Remote)
	case opConsoleRight:
		c.attempt(w, -1, model.Console, model.RightSecret, false)
	case opConsoleWrong:
		c.attempt(w, -1, model.Console, model.WrongSecret, false)
	case opConsoleBurst:
		c.burst(w, -1, model.Console)
	case opUnlockPrincipal, opReset, opUnlockPair, opUnlockAll, opFactory:
		c.recover(w, e)
	case opDisable, opEnable:
		pre := *w
		if c.tr != nil {
			c.tr.op(e)
		}
		w.disabled = e.op == opDisable
		w.principal.Disabled = w.disabled
		for i := 0; i < numKeys; i++ {
			if c.x.used(i) {
				c.transition(w, i, pre.key(i), false, false)
			}
		}
		c.postCheck(w)
	case opRestart:
		c.restart(w, e.d)
	case opWallJump:
		c.wallJump(w, e.d)
	case opAdvance:
		c.advance(w, e.d)
	}
}

// burst makes fresh wrong-secret attempts until one is refused or some key
// changes mode: the attacker's loop, one step of the abstraction.
func (c *ctx) burst(w *wstate, s int, ch model.Channel) {
	for i := 0; i < burstMax && !c.stopped; i++ {
		// Whether this attempt ends the burst is known only afterwards:
		// decide quickly, and if it ends the burst, decide it again fully
		// from the same state (a burst is deterministic up to here).
		pre := *w
		var m tracerMark
		if c.tr != nil {
			m = c.tr.mark()
		}
		d, changed := c.attemptQ(w, s, ch, model.WrongSecret, false, true)
		if d.Verdict == model.Refused || changed || i == burstMax-1 {
			if (!c.x.skip[invDeterminism] || c.tracing) && !c.stopped {
				*w = pre
				if c.tr != nil {
					c.tr.rollback(m)
				}
				c.attemptQ(w, s, ch, model.WrongSecret, false, false)
			}
			return
		}
	}
}

func (c *ctx) decide(v model.View, ev model.Event) (v2 model.View, d model.Decision, panicked string) {
	defer func() {
		if r := recover(); r != nil {
			panicked = fmt.Sprint(r)
		}
	}()
	v2, d = c.x.m.Decide(v, ev, 0, &c.x.p)
	return v2, d, ""
}

// shiftView moves every instant of v by +delta in place, field for field as
// model.Persist shifts them (meaningful fields only; Forever stays).
func shiftView(v *model.View, delta int64) {
	shiftKey(&v.Pair.Key, delta)
	shiftKey(&v.Source, delta)
	shiftKey(&v.Principal, delta)
	shiftKey(&v.Console, delta)
	pr := &v.Pair
	if pr.Familiar {
		pr.LastSuccess = shiftInstant(pr.LastSuccess, delta)
	}
	for i := 0; i < int(pr.NPrints) && i < model.MaxPrints; i++ {
		pr.Prints[i].Seen = shiftInstant(pr.Prints[i].Seen, delta)
	}
}

func shiftKey(k *model.Key, delta int64) {
	if k.Mode != model.Open {
		k.Until = shiftInstant(k.Until, delta)
		k.LockedAt = shiftInstant(k.LockedAt, delta)
	}
	if k.Level > 0 {
		k.QuietFrom = shiftInstant(k.QuietFrom, delta)
	}
	for i := 0; i < int(k.NFail) && i < model.MaxThreshold; i++ {
		k.Failures[i] = shiftInstant(k.Failures[i], delta)
	}
}

func shiftInstant(i model.Instant, delta int64) model.Instant {
	if i == model.Forever {
		return i
	}
	return i.Add(time.Duration(delta))
}

func lastPrint(pr *obsPrints) int {
	j := 0
	for i := 1; i < int(pr.n); i++ {
		if pr.seen[i] >= pr.seen[j] {
			j = i
		}
	}
	return j
}

func freshLabel(w *wstate, s int) uint64 {
	var m uint64
	for i := 0; i < int(w.prints[s].n); i++ {
		m = max(m, w.prints[s].label[i])
	}
	pr := &w.pairs[s]
	for i := 0; i < int(pr.NPrints) && i < model.MaxPrints; i++ {
		m = max(m, pr.Prints[i].Tag)
	}
	return m + 1
}

func modesOf(v *model.View) [model.NumKinds]model.Mode {
	return [model.NumKinds]model.Mode{v.Pair.Mode, v.Source.Mode, v.Principal.Mode, v.Console.Mode}
}

// attempt decides one attempt from source s (s < 0 with the console) and
// checks it. It reports the decision and whether some key changed mode.
func (c *ctx) attempt(w *wstate, s int, ch model.Channel, o model.Outcome, repeat bool) (model.Decision, bool) {
	return c.attemptQ(w, s, ch, o, repeat, false)
}

// attemptQ is attempt; quick skips the re-decisions of INV-DETERMINISM
// (bursts check it on their last attempt only: every other attempt of a
// burst is a single wrong-secret step, checked as such from its own state).
func (c *ctx) attemptQ(w *wstate, s int, ch model.Channel, o model.Outcome, repeat, quick bool) (model.Decision, bool) {
	x := c.x
	var label uint64
	isRepeat := false
	if ch == model.Remote && o == model.WrongSecret {
		switch {
		case !x.dedup:
			label = 1
		case repeat:
			pr := &w.prints[s]
			j := lastPrint(pr)
			label = pr.label[j]
			isRepeat = x.window[kPair0] > 0 && age(pr.seen[j]) < x.window[kPair0]
		default:
			label = freshLabel(w, s)
		}
	}
	vs := s
	if ch == model.Console {
		vs = -1
	}
	if c.tr != nil {
		c.tr.attempt(vs, ch, o, label)
	}
	ev := model.Event{Attempt: model.Attempt{Channel: ch, Role: x.role, Print: label}, Outcome: o}
	v := w.view(vs)
	fam := x.familiar(w, vs)

	// R-ADMIT, from the SPEC's words and the keys' modes and untils.
	var spec string
	if ch == model.Console {
		switch {
		case w.disabled:
			spec = "the principal is disabled"
		case refusing(&w.console):
			spec = "the console key is " + w.console.Mode.String()
		}
	} else {
		switch {
		case refusing(&w.pairs[s].Key):
			spec = "the pair is " + w.pairs[s].Mode.String()
		case refusing(&w.sources[s]):
			spec = "the source is " + w.sources[s].Mode.String()
		case w.disabled:
			spec = "the principal is disabled"
		case refusing(&w.principal) && w.principal.Mode == model.Held:
			spec = "the principal is Held"
		case refusing(&w.principal) && !fam:
			spec = "the principal is Locked and the source is not familiar"
		}
	}

	v2, d, panicked := c.decide(v, ev)
	if panicked != "" {
		c.fail(invStructure, "Decide panicked on %s: %s", c.describe(vs, ch, o, isRepeat), panicked)
		return model.Decision{Verdict: model.Refused}, true
	}
	if c.tr != nil {
		c.tr.decide(d)
	}
	what := c.describe(vs, ch, o, isRepeat)
	if d.Verdict > model.Failed || d.Verdict == model.Admitted {
		c.fail(invStructure, "%s: Decide returned verdict %s", what, d.Verdict)
	}
	if d.Modes != modesOf(&v2) {
		c.fail(invStructure, "%s: decision says modes %v but the keys returned are %v", what, d.Modes, modesOf(&v2))
	}
	admitted := d.Verdict == model.Allowed || d.Verdict == model.Failed
	if admitted && !d.Verified {
		c.fail(invStructure, "%s: admitted attempt decided %s without verification", what, d.Verdict)
	}
	if admitted && (d.Verdict == model.Allowed) != (o == model.RightSecret) {
		c.fail(invStructure, "%s: %s secret decided %s", what, outcomeName(o), d.Verdict)
	}
	if spec != "" && d.Verdict != model.Refused {
		c.fail(invNoAuth, "%s was decided %q although %s (R-ADMIT)", what, d.Verdict, spec)
	}
	if d.Verdict == model.Refused {
		if d.Verified {
			c.fail(invNoOracle, "%s was refused but marked verified", what)
		}
		if !x.skip[invNoOracle] {
			for _, o2 := range []model.Outcome{model.RightSecret, model.WrongSecret, model.WrongSecondFactor} {
				if o2 == o || (ch == model.Console && o2 == model.WrongSecondFactor) {
					continue
				}
				ev2 := ev
				ev2.Outcome = o2
				v3, d3, p3 := c.decide(v, ev2)
				if p3 != "" || v3 != v2 || d3 != d {
					c.fail(invNoOracle, "%s was refused (%s), but the same attempt with a %s secret gives a different result (%s): the refusal depends on the secret", what, decisionText(d), outcomeName(o2), decisionText(d3))
					break
				}
			}
		}
	}
	if !x.skip[invDeterminism] && !quick {
		if v3, d3, p3 := c.decide(v, ev); p3 != "" || v3 != v2 || d3 != d {
			c.fail(invDeterminism, "%s decided twice from the same state gives different results (%s, then %s)", what, decisionText(d), decisionText(d3))
		} else {
			vS := v
			shiftView(&vS, x.shiftS)
			v4, d4, p4 := func() (v4 model.View, d4 model.Decision, p string) {
				defer func() {
					if r := recover(); r != nil {
						p = fmt.Sprint(r)
					}
				}()
				v4, d4 = x.m.Decide(vS, ev, model.Instant(x.shiftS), &x.p)
				return
			}()
			shiftView(&v4, -x.shiftS)
			if p4 != "" || v4 != v2 || d4 != d {
				c.fail(invDeterminism, "%s decided with every instant shifted by %s gives a different result (%s, keys equal after shifting back: %v; instead of %s): the lock logic must depend on relative time only", what, time.Duration(x.shiftS), decisionText(d4), v4 == v2, decisionText(d))
			}
		}
	}
	if d.RetryAfter < 0 || int64(d.RetryAfter) > x.maxWait {
		c.fail(invBounded, "%s: retry_after %s is outside [0, %s]", what, d.RetryAfter, time.Duration(x.maxWait))
	}
	if d.Remaining < -1 || d.Remaining > model.MaxThreshold {
		c.fail(invBounded, "%s: remaining %d is outside [-1, %d]", what, d.Remaining, model.MaxThreshold)
	}

	w.store(vs, v2)

	// The observer: what SPEC R-FAIL, R-REPLAY, R-2FA and R-SUCCESS count.
	var counted [numKeys]bool
	if admitted && !x.p.Disabled {
		if ch == model.Console {
			counted[kConsole] = o != model.RightSecret
		} else {
			switch o {
			case model.WrongSecret:
				if !isRepeat {
					counted[kPair0+s] = true
					counted[kSource0+s] = true
					counted[kPrincipal] = !fam
				}
			case model.WrongSecondFactor:
				counted[kPair0+s] = true
			}
		}
	}
	for i := range counted {
		if counted[i] && x.nThresh[i] > 0 {
			ob := &w.obs[i]
			if int(ob.nfail) == model.MaxThreshold {
				copy(ob.fails[:], ob.fails[1:])
				ob.nfail--
			}
			ob.fails[ob.nfail] = 0
			ob.nfail++
		}
	}
	if admitted && ch == model.Remote && o == model.WrongSecret && x.dedup {
		pr := &w.prints[s]
		found := false
		for j := 0; j < int(pr.n); j++ {
			if pr.label[j] == label {
				pr.seen[j] = 0
				found = true
			}
		}
		if !found {
			if int(pr.n) == model.MaxPrints {
				j := 0
				for i := 1; i < int(pr.n); i++ {
					if pr.seen[i] < pr.seen[j] {
						j = i
					}
				}
				copy(pr.label[j:], pr.label[j+1:pr.n])
				copy(pr.seen[j:], pr.seen[j+1:pr.n])
				pr.n--
				pr.label[pr.n], pr.seen[pr.n] = 0, 0
			}
			pr.label[pr.n] = label
			pr.seen[pr.n] = 0
			pr.n++
		}
	}
	if admitted && o == model.RightSecret {
		if ch == model.Console {
			w.obs[kConsole].clearFails()
		} else {
			w.hasSuccess[s] = true
			w.success[s] = 0
			w.obs[kPair0+s].clearFails()
			if x.p.ResetOnSuccess >= model.ResetPrincipal {
				w.obs[kPrincipal].clearFails()
			}
			if x.p.ResetOnSuccess >= model.ResetAll {
				w.obs[kSource0+s].clearFails()
			}
		}
	}

	involved := [4]int{kPrincipal, kConsole, -1, -1}
	pre := [4]*model.Key{&v.Principal, &v.Console}
	if vs >= 0 {
		involved[2], involved[3] = kPair0+vs, kSource0+vs
		pre[2], pre[3] = &v.Pair.Key, &v.Source
	}
	changed := false
	for j, i := range involved {
		if i < 0 {
			continue
		}
		pk, k := pre[j], w.key(i)
		changed = changed || pk.Mode != k.Mode
		if isRepeat && admitted && i != kConsole && !x.skip[invReplay] {
			if k.NFail > pk.NFail || (k.Mode != model.Open && !refusing(pk)) {
				c.fail(invReplay, "%s: the %s key counted a wrong secret presented again on the pair within the window (failures %d → %d, mode %s → %s)", what, kindOf(i), pk.NFail, k.NFail, pk.Mode, k.Mode)
			}
		}
		c.transition(w, i, pk, counted[i], i == kPair0+vs && ch == model.Remote && d.Verdict == model.Refused)
	}
	c.postCheck(w)
	return d, changed
}

// decisionText is a decision for a message.
func decisionText(d model.Decision) string {
	s := d.Verdict.String()
	if d.Scope != model.ScopeNone {
		s += " (" + d.Scope.String() + ")"
	}
	s += fmt.Sprintf(" retry %s remaining %d modes %v", d.RetryAfter, d.Remaining, d.Modes)
	if d.Verified {
		s += " verified"
	}
	return s
}

func outcomeName(o model.Outcome) string {
	switch o {
	case model.RightSecret:
		return "right"
	case model.WrongSecret:
		return "wrong"
	}
	return "wrong-second-factor"
}

func (c *ctx) describe(s int, ch model.Channel, o model.Outcome, repeat bool) string {
	if ch == model.Console {
		return "a console attempt with the " + outcomeName(o) + " secret"
	}
	what := outcomeName(o) + " secret"
	if o == model.WrongSecondFactor {
		what = "right password and wrong second factor"
	} else if repeat {
		what = "repeated wrong secret"
	}
	return fmt.Sprintf("an attempt from source %d with the %s", s+1, what)
}

// transition checks key i across a step that takes no time: an attempt, an
// admin act. counted says whether SPEC counted a failure on the key in this
// step; extendOK whether R-EXTEND may move its until later (a refused
// attempt on this pair).
func (c *ctx) transition(w *wstate, i int, pk *model.Key, counted, extendOK bool) {
	x := c.x
	k := w.key(i)
	ob := &w.obs[i]
	name := keyNames[i]
	preRef := refusing(pk)
	newLock := k.Mode != model.Open && (!preRef || k.Level > pk.Level)
	switch {
	case newLock:
		n := x.nThresh[i]
		switch {
		case !counted:
			c.fail(invCause, "%s became %s (level %d) in a step that counted no failure on it", name, k.Mode, k.Level)
		case n == 0:
			c.fail(invCause, "%s became %s although its threshold is 0 (this key never locks)", name, k.Mode)
		case int(ob.nfail) < n:
			c.fail(invCause, "%s became %s with %d counted failures within its window; the threshold is %d", name, k.Mode, ob.nfail, n)
		}
		ob.clearFails()
		switch {
		case k.Mode == model.Locked:
			ob.deadline = model.Instant(x.capOf[i])
		case x.holdFor[i] > 0:
			ob.deadline = model.Instant(x.holdFor[i])
		default:
			ob.deadline = model.Forever
		}
	case preRef:
		switch {
		case !refusing(k):
			c.fail(invNoShorten, "%s was %s for %s more and became %s without an unlock, reset or factory reset", name, pk.Mode, untilText(pk.Until), k.Mode)
		case k.Until < pk.Until:
			c.fail(invNoShorten, "%s's until moved earlier, from %s to %s, without an unlock, reset or factory reset", name, untilText(pk.Until), untilText(k.Until))
		}
		if pk.Mode == model.Held && k.Mode != model.Held {
			c.fail(invTerminate, "%s left Held (now %s) without an admin act, a reset or its holdFor", name, k.Mode)
		}
		if k.Mode != model.Open && k.Until > pk.Until {
			if extendOK && pk.Mode == model.Locked && x.p.Pair.ExtendOnAttempt > 0 {
				ob.deadline = model.Instant(x.capOf[i])
			} else {
				c.fail(invTerminate, "%s's until moved later, from %s to %s, without a new lock or an R-EXTEND extension of the pair", name, untilText(pk.Until), untilText(k.Until))
			}
		}
		if k.Mode == model.Open {
			ob.clearFails()
		}
	}
	if k.Mode == model.Open {
		ob.deadline = noDeadline
	}
}

func untilText(u model.Instant) string {
	if u == model.Forever {
		return "ever"
	}
	return time.Duration(u).String()
}

// postCheck checks every key of w after a step.
func (c *ctx) postCheck(w *wstate) {
	x := c.x
	for i := 0; i < numKeys; i++ {
		if !x.used(i) {
			continue
		}
		k := w.key(i)
		ob := &w.obs[i]
		name := keyNames[i]
		if k.Level > model.MaxLevel {
			c.fail(invBounded, "%s's level %d is above %d", name, k.Level, model.MaxLevel)
		}
		if int(k.NFail) > model.MaxThreshold {
			c.fail(invBounded, "%s holds %d failures, more than %d", name, k.NFail, model.MaxThreshold)
		}
		switch k.Mode {
		case model.Open:
		case model.Locked:
			if k.Until == model.Forever || int64(k.Until) > x.capOf[i] {
				c.fail(invBounded, "%s is Locked for %s, beyond its cap %s", name, untilText(k.Until), time.Duration(x.capOf[i]))
			}
		case model.Held:
			if i == kConsole {
				c.fail(invLastAdmin, "the console key is Held (R-CONSOLE: the console never holds)")
			}
			if k.Until == model.Forever {
				if x.holdFor[i] != 0 {
					c.fail(invBounded, "%s is Held with no end although holdFor is %s", name, time.Duration(x.holdFor[i]))
				}
			} else if int64(k.Until) > x.holdFor[i] {
				c.fail(invBounded, "%s is Held for %s, beyond its holdFor %s", name, untilText(k.Until), time.Duration(x.holdFor[i]))
			}
		default:
			c.fail(invStructure, "%s has an unknown mode %d", name, k.Mode)
		}
		if k.Mode != model.Open {
			switch {
			case ob.deadline == noDeadline:
				c.fail(invTerminate, "%s is %s although no lock began (no counted failure locked it)", name, k.Mode)
			case ob.deadline != model.Forever && k.Until > ob.deadline:
				c.fail(invTerminate, "%s is %s until %s, beyond %s, the latest its lock's start or last R-EXTEND allows", name, k.Mode, untilText(k.Until), untilText(ob.deadline))
			case ob.deadline != model.Forever && ob.deadline <= 0:
				c.fail(invTerminate, "%s is still %s %s after the latest its lock's start or last R-EXTEND allows", name, k.Mode, time.Duration(-ob.deadline))
			}
		}
	}
}

// recover applies R-UNLOCK, R-RESET or R-FACTORY with wstate's semantics.
func (c *ctx) recover(w *wstate, e edge) {
	x := c.x
	pre := *w
	if c.tr != nil {
		c.tr.op(e)
	}
	var affected [numKeys]bool
	switch e.op {
	case opUnlockPrincipal, opReset:
		// wstate.UnlockPrincipal: the principal, its console key, its pairs.
		w.principal = x.m.Unlock(w.principal)
		w.console = x.m.Unlock(w.console)
		affected[kPrincipal], affected[kConsole] = true, true
		for s := 0; s < x.n; s++ {
			w.pairs[s] = x.m.UnlockPair(w.pairs[s])
			affected[kPair0+s] = true
		}
	case opUnlockPair:
		s := int(e.src)
		w.pairs[s] = x.m.UnlockPair(w.pairs[s])
		w.sources[s] = x.m.Unlock(w.sources[s])
		affected[kPair0+s], affected[kSource0+s] = true, true
	case opUnlockAll:
		for i := 0; i < numKeys; i++ {
			if x.used(i) {
				if i < kSource0 {
					w.pairs[i] = x.m.UnlockPair(w.pairs[i])
				} else {
					*w.key(i) = x.m.Unlock(*w.key(i))
				}
				affected[i] = true
			}
		}
	case opFactory:
		*w = newState()
		for i := range affected {
			affected[i] = true
		}
	}
	for i := 0; i < numKeys; i++ {
		if !x.used(i) {
			continue
		}
		if !affected[i] {
			c.transition(w, i, pre.key(i), false, false)
			continue
		}
		k := w.key(i)
		if k.Mode != model.Open || k.NFail != 0 || k.Level != 0 {
			c.fail(invReset, "after %s, %s is %s with %d failures at level %d; it must be Open, 0, 0", opNames[e.op], keyNames[i], k.Mode, k.NFail, k.Level)
		}
		if e.op != opFactory && k.Disabled != pre.key(i).Disabled {
			c.fail(invReset, "%s changed %s's administrative disable flag", opNames[e.op], keyNames[i])
		}
		w.obs[i].clearFails()
		if k.Mode == model.Open {
			w.obs[i].deadline = noDeadline
		}
	}
	c.postCheck(w)
}

// advance lets delta pass: every instant moves back by delta (the model's
// own shift), then R-ADVANCE applies to every key (Machine.Advance).
func (c *ctx) advance(w *wstate, delta int64) {
	pre := *w
	if c.tr != nil {
		c.tr.advance(delta)
	}
	w.shiftModel(delta)
	w.shiftObs(delta)
	c.normalize(w)
	c.timeChecks(w, &pre, delta, delta)
	c.postCheck(w)
}

// timeChecks checks every key across a step in which served time passed
// for the locks (the frames differ by shift).
func (c *ctx) timeChecks(w, pre *wstate, shift, served int64) {
	x := c.x
	for i := 0; i < numKeys; i++ {
		if !x.used(i) {
			continue
		}
		pk, k := pre.key(i), w.key(i)
		ob := &w.obs[i]
		name := keyNames[i]
		if refusing(pk) {
			if pk.Until == model.Forever || int64(pk.Until) > served {
				// Still running: the same until, seen from the new now.
				want := pk.Until
				if want != model.Forever {
					want = model.Instant(int64(pk.Until) - shift)
				}
				// A later until is INV-TERMINATE's business (postCheck's
				// deadline), or INV-CLOCK's on a restart.
				switch {
				case !refusing(k):
					c.fail(invNoShorten, "%s was %s for %s more; after %s passed it is %s", name, pk.Mode, untilText(pk.Until), time.Duration(served), k.Mode)
				case k.Until < want:
					c.fail(invNoShorten, "%s's lock should end in %s but ends in %s after %s passed", name, untilText(want), untilText(k.Until), time.Duration(served))
				}
				if pk.Mode == model.Held && k.Mode != model.Held {
					c.fail(invTerminate, "%s left Held (now %s) while only time passed, before its holdFor", name, k.Mode)
				}
			} else {
				if k.Mode != model.Open {
					c.fail(invTerminate, "%s is still %s after its until came (R-ADVANCE)", name, k.Mode)
				}
				ob.clearFails()
			}
		} else if k.Mode != model.Open {
			c.fail(invCause, "%s became %s while only time passed", name, k.Mode)
		}
		if k.Mode == model.Open {
			ob.deadline = noDeadline
		}
	}
}

// normalize applies R-ADVANCE at now = 0 to every key through the machine,
// and drops what the SPEC says is forgotten: fingerprints older than the
// window (R-REPLAY), familiarity older than trust_ttl (SPEC §1), failures
// older than the window (the observer's). A key Held with no end keeps no
// clock that matters, so its anchors' ages saturate at one nanosecond.
func (c *ctx) normalize(w *wstate) {
	x := c.x
	for i := 0; i < numKeys; i++ {
		if !x.used(i) {
			continue
		}
		k := w.key(i)
		*k = x.m.Advance(*k, kindOf(i), 0, &x.p)
		if k.Mode == model.Held && k.Until == model.Forever {
			k.LockedAt = max(k.LockedAt, -1)
			k.QuietFrom = max(k.QuietFrom, -1)
		}
		ob := &w.obs[i]
		drop := 0
		for drop < int(ob.nfail) && age(ob.fails[drop]) >= x.window[i] {
			drop++
		}
		if drop > 0 {
			copy(ob.fails[:], ob.fails[drop:ob.nfail])
			ob.nfail -= uint8(drop)
			for j := int(ob.nfail); j < int(ob.nfail)+drop; j++ {
				ob.fails[j] = 0
			}
		}
	}
	wp := x.window[kPair0]
	for s := 0; s < x.n; s++ {
		pr := &w.pairs[s]
		n := 0
		for j := 0; j < int(pr.NPrints) && j < model.MaxPrints; j++ {
			if age(pr.Prints[j].Seen) < wp {
				pr.Prints[n] = pr.Prints[j]
				n++
			}
		}
		for j := n; j < model.MaxPrints; j++ {
			pr.Prints[j] = model.Print{}
		}
		pr.NPrints = uint8(n)
		if pr.Familiar && !(x.famTTL > 0 && age(pr.LastSuccess) < x.famTTL) {
			pr.Familiar, pr.LastSuccess = false, 0
		}
		op := &w.prints[s]
		n = 0
		for j := 0; j < int(op.n); j++ {
			if age(op.seen[j]) < wp {
				op.label[n], op.seen[n] = op.label[j], op.seen[j]
				n++
			}
		}
		for j := n; j < int(op.n); j++ {
			op.label[j], op.seen[j] = 0, 0
		}
		op.n = uint8(n)
		if w.hasSuccess[s] && age(w.success[s]) >= x.successTTL {
			w.hasSuccess[s], w.success[s] = false, 0
		}
	}
}

// restart persists every key and restores it after a reboot whose wall
// clock moved by delta (R-RESTART): delta 0, a positive downtime, or an RTC
// reset (negative). The monotonic clock restarts, so the new now is 0 again.
func (c *ctx) restart(w *wstate, delta int64) {
	x := c.x
	pre := *w
	if c.tr != nil {
		c.tr.restart(delta)
	}
	wallAfter := wallBase + delta
	for s := 0; s < maxSources; s++ {
		w.pairs[s] = x.m.Restore(x.m.Persist(w.pairs[s], 0, wallBase), 0, wallAfter)
		w.sources[s] = x.m.Restore(x.m.Persist(model.Pair{Key: w.sources[s]}, 0, wallBase), 0, wallAfter).Key
	}
	w.principal = x.m.Restore(x.m.Persist(model.Pair{Key: w.principal}, 0, wallBase), 0, wallAfter).Key
	w.console = x.m.Restore(x.m.Persist(model.Pair{Key: w.console}, 0, wallBase), 0, wallAfter).Key
	served := min(max(delta, 0), int64(model.MaxDuration))
	// R-RESTART: remaining' = remaining − clamp(Δwall, 0, remaining); a
	// reboot never unlocks by itself and never lengthens a lock.
	for i := 0; i < numKeys; i++ {
		if !x.used(i) {
			continue
		}
		pk, k := pre.key(i), w.key(i)
		name := keyNames[i]
		if !refusing(pk) {
			if k.Mode != model.Open && pk.Mode == model.Open {
				c.fail(invCause, "%s became %s on a restart", name, k.Mode)
			}
			continue
		}
		if k.Mode != pk.Mode {
			c.fail(invNoShorten, "a restart (wall clock %+v) turned %s from %s into %s: a reboot never unlocks by itself", time.Duration(delta), name, pk.Mode, k.Mode)
			continue
		}
		if pk.Until == model.Forever {
			if k.Until != model.Forever {
				c.fail(invNoShorten, "a restart (wall clock %+v) gave %s's endless hold an end in %s", time.Duration(delta), name, untilText(k.Until))
			}
			continue
		}
		// Remaining durations: an until already past (served beyond the
		// remaining time) is 0 remaining.
		rem := int64(pk.Until)
		want := rem - min(served, rem)
		got := max(int64(k.Until), 0)
		switch {
		case got < want:
			c.fail(invNoShorten, "after a restart with the wall clock moved by %+v, %s has %s left; R-RESTART allows no less than %s (remaining %s before)", time.Duration(delta), name, untilText(k.Until), time.Duration(want), time.Duration(rem))
		case got > want:
			c.fail(invClock, "after a restart with the wall clock moved by %+v, %s has %s left, more than the %s it had (less time served): a restart never lengthens a lock", time.Duration(delta), name, untilText(k.Until), time.Duration(want))
		}
	}
	w.shiftObs(served)
	c.normalize(w)
	c.timeChecks(w, &pre, served, served)
	c.postCheck(w)
}

// wallJump is a wall-clock step while running: the service re-anchors
// every persisted key (model.Reanchor). Nothing may change (R-MONO).
func (c *ctx) wallJump(w *wstate, by int64) {
	x := c.x
	pre := *w
	if c.tr != nil {
		c.tr.wallJump(by)
	}
	jump := func(pr model.Pair) model.Pair {
		s := x.m.Persist(pr, 0, wallBase)
		s = x.m.Reanchor(s, 0, 0, wallBase+by)
		return x.m.Restore(s, 0, wallBase+by)
	}
	for s := 0; s < maxSources; s++ {
		w.pairs[s] = jump(w.pairs[s])
		w.sources[s] = jump(model.Pair{Key: w.sources[s]}).Key
	}
	w.principal = jump(model.Pair{Key: w.principal}).Key
	w.console = jump(model.Pair{Key: w.console}).Key
	for i := 0; i < numKeys; i++ {
		if !x.used(i) {
			continue
		}
		pk, k := pre.key(i), w.key(i)
		switch {
		case pk.Mode != k.Mode:
			c.fail(invClock, "a wall-clock step of %+v turned %s from %s into %s", time.Duration(by), keyNames[i], pk.Mode, k.Mode)
		case refusing(pk) && pk.Until != k.Until:
			c.fail(invClock, "a wall-clock step of %+v changed %s's remaining lock from %s to %s", time.Duration(by), keyNames[i], untilText(pk.Until), untilText(k.Until))
		case *pk != *k:
			c.fail(invClock, "a wall-clock step of %+v changed %s's state (failures, level or anchors)", time.Duration(by), keyNames[i])
		}
	}
	if w.pairs != pre.pairs {
		for s := 0; s < x.n; s++ {
			if w.pairs[s] != pre.pairs[s] && w.pairs[s].Key == pre.pairs[s].Key {
				c.fail(invClock, "a wall-clock step of %+v changed pair %d's familiarity or fingerprints", time.Duration(by), s+1)
			}
		}
	}
	c.normalize(w)
	c.postCheck(w)
}

// stateChecks are the checks of a state rather than a step: R-LASTADMIN
// (admin role) and the P-NODOS probe (attack search).
func (c *ctx) stateChecks(w *wstate) {
	x := c.x
	if !x.skip[invLastAdmin] && !w.disabled {
		v := w.view(-1)
		v.Principal = model.PersistKey(v.Principal, model.Instant(x.consoleCap), 0).Pair.Key
		v.Console = model.PersistKey(v.Console, model.Instant(x.consoleCap), 0).Pair.Key
		if c.tr != nil {
			c.tr.probe(-1, model.Console, x.consoleCap)
		}
		ev := model.Event{Attempt: model.Attempt{Channel: model.Console, Role: x.role}, Outcome: model.RightSecret}
		_, d, p := c.decide(v, ev)
		if p != "" || d.Verdict != model.Allowed {
			c.fail(invLastAdmin, "the admin at the console with the right secret, %s after this state (the console lock's cap), is %s (%s, retry after %s)", time.Duration(x.consoleCap), d.Verdict, d.Scope, d.RetryAfter)
		}
	}
	if !x.skip[invNoDoS] && x.nodosFamiliar(w, 0) {
		if c.tr != nil {
			c.tr.probe(0, model.Remote, 0)
		}
		ev := model.Event{Attempt: model.Attempt{Channel: model.Remote, Role: x.role}, Outcome: model.RightSecret}
		_, d, p := c.decide(w.view(0), ev)
		if p != "" || d.Verdict == model.Refused {
			c.fail(invNoDoS, "the familiar source 1 (last right secret %s ago) with the right secret is refused (%s, retry after %s) after failures from the other sources only", time.Duration(age(w.success[0])), d.Scope, d.RetryAfter)
		}
	}
}
