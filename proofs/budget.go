package proofs

import (
	"container/heap"
	"math"
	"slices"
	"sort"
	"time"

	"github.com/latchnvr/latch/model"
)

// BudgetHorizon is P-BUDGET's period.
const BudgetHorizon = 24 * time.Hour

// DefaultBudgetNodes bounds one P-BUDGET search.
const DefaultBudgetNodes = 250_000

// budgetBeam is the width of the beam search that finds a strong strategy
// before the exact search.
const budgetBeam = 1000

// budgetState is an attacker's keys, relative to now: the pair and the source
// of its one source, and the principal. With many sources (all == true)
// every attempt comes from a fresh source, so only the principal remembers.
type budgetState struct {
	pair      model.Pair
	source    model.Key
	principal model.Key
}

type budgetNode struct {
	enc     string // the encoded budgetState
	elapsed int64
	count   int
	f       int // A*: count + an upper bound on the guesses still possible
	path    *guessPath
}

// guessPath is the instants of a strategy's guesses, newest first, shared
// between the strategies that extend it.
type guessPath struct {
	parent *guessPath
	at     int64
}

func (g *guessPath) times() []int64 {
	var ts []int64
	for ; g != nil; g = g.parent {
		ts = append(ts, g.at)
	}
	slices.Reverse(ts)
	return ts
}

func encodeBudget(b []byte, st *budgetState) []byte {
	b = appendKey(b, &st.pair.Key)
	b = appendPairExtra(b, &st.pair)
	b = appendKey(b, &st.source)
	return appendKey(b, &st.principal)
}

func decodeBudget(s string) budgetState {
	var st budgetState
	r := reader{b: []byte(s)}
	r.key(&st.pair.Key)
	r.pairExtra(&st.pair)
	r.key(&st.source)
	r.key(&st.principal)
	return st
}

// budgetHeap orders nodes by elapsed time (profile search) or by f (A*).
type budgetHeap struct {
	n     []*budgetNode
	astar bool
}

func (h *budgetHeap) Len() int { return len(h.n) }
func (h *budgetHeap) Less(i, j int) bool {
	a, b := h.n[i], h.n[j]
	if h.astar {
		if a.f != b.f {
			return a.f > b.f
		}
		if a.count != b.count {
			return a.count > b.count
		}
		return a.elapsed < b.elapsed
	}
	if a.elapsed != b.elapsed {
		return a.elapsed < b.elapsed
	}
	return a.count > b.count
}
func (h *budgetHeap) Swap(i, j int) { h.n[i], h.n[j] = h.n[j], h.n[i] }
func (h *budgetHeap) Push(x any)    { h.n = append(h.n, x.(*budgetNode)) }
func (h *budgetHeap) Pop() (x any) {
	x, h.n = h.n[len(h.n)-1], h.n[:len(h.n)-1]
	return x
}

type budgetPoint struct {
	elapsed int64
	count   int
}

// budgetResult is one P-BUDGET figure.
type budgetResult struct {
	max       int
	unbounded bool // no key ever stops this attacker
	exact     bool // the search finished (false: max is a lower bound)
	nodes     int
	// profile (profile searches only): the most guesses with every guess
	// before elapsed, as a step function sorted by elapsed.
	profile []budgetPoint
	// witness is the instants of the guesses of a strategy achieving max.
	witness []int64
	// upper bounds the figure when the search did not finish.
	upper int
}

// bound is F(T): the most guesses possible within T from fresh keys.
func (r *budgetResult) bound(t int64) int {
	if r.unbounded {
		return math.MaxInt32
	}
	i := sort.Search(len(r.profile), func(i int) bool { return r.profile[i].elapsed >= t })
	if i == 0 {
		return 0
	}
	return r.profile[i-1].count
}

// budget computes P-BUDGET for one attacker: one source (all false) or a
// fresh source for every guess (all true). The all-sources figure, where
// only the principal remembers, is an exact search in order of elapsed
// time. The one-source figure, where three keys interact, is an A* search.
// A guess is admitted only if every key admits it, so the guesses left are
// at most what any one key alone would admit in the time left, and a key
// alone admits at most what it would from Open with no failures, at the
// lowest level decay can bring it to, once its current lock has ended (a
// key with fewer failures, a lower level or an earlier end can mirror the
// other's guesses and catch up on its locks at the same instants). Those
// single-key figures come from exact searches, one per key kind and level.
func budget(p model.Policy, m Machine, role model.Role, all bool, horizon int64, maxNodes int) budgetResult {
	if all {
		return budgetSearch(p, m, role, true, horizon, maxNodes, budgetState{}, 0, nil)
	}
	var kbs []*keyBound
	for _, kind := range []model.Kind{model.KindPair, model.KindSource, model.KindPrincipal} {
		q := p
		for _, other := range []model.Kind{model.KindPair, model.KindSource, model.KindPrincipal} {
			if other != kind {
				*q.Key(other) = model.KeyPolicy{Growth: 1}
			}
		}
		kb := &keyBound{kind: kind, p: q, m: m, role: role, horizon: horizon, maxNodes: maxNodes, decay: int64(p.Key(kind).Decay)}
		if r := kb.level(0); r.unbounded || !r.exact {
			continue // this key alone never stops the attacker (or is too big to bound)
		}
		kbs = append(kbs, kb)
	}
	if len(kbs) == 0 {
		return budgetSearch(p, m, role, false, horizon, maxNodes, budgetState{}, 0, nil)
	}
	ub := func(st *budgetState, elapsed int64) int {
		b := math.MaxInt32
		for _, kb := range kbs {
			b = min(b, kb.bound(st, horizon-elapsed))
		}
		return b
	}
	// A strong strategy first: each key's own best schedule, played against
	// all keys. If one reaches the bound, it is the answer.
	lower, witness := 0, []int64(nil)
	for _, kb := range kbs {
		if n, w := budgetReplay(p, m, role, horizon, kb.level(0).witness); n > lower {
			lower, witness = n, w
		}
	}
	if lower < ub(&budgetState{}, 0) {
		if b := budgetSearchBeam(p, m, role, false, horizon, 4*maxNodes, budgetState{}, 0, ub, budgetBeam); b.max > lower {
			lower, witness = b.max, b.witness
		}
	}
	if lower >= ub(&budgetState{}, 0) {
		return budgetResult{max: lower, exact: true, witness: witness}
	}
	res := budgetSearch(p, m, role, false, horizon, maxNodes, budgetState{}, lower, ub)
	if res.witness == nil && res.max == lower {
		res.witness = witness
	}
	if !res.exact {
		res.upper = ub(&budgetState{}, 0)
	}
	return res
}

// keyBound bounds the guesses one key alone admits: profiles (guesses
// within T, for every T) from Open, no failures, level L, decay anchored
// now, one exact search per level, memoised.
type keyBound struct {
	kind     model.Kind
	p        model.Policy
	m        Machine
	role     model.Role
	horizon  int64
	maxNodes int
	decay    int64
	levels   []*budgetResult
}

func (kb *keyBound) level(l int) *budgetResult {
	for len(kb.levels) <= l {
		kb.levels = append(kb.levels, nil)
	}
	if kb.levels[l] == nil {
		var st budgetState
		k := model.Key{Level: uint8(l)}
		switch kb.kind {
		case model.KindPair:
			st.pair.Key = k
		case model.KindSource:
			st.source = k
		default:
			st.principal = k
		}
		r := budgetSearch(kb.p, kb.m, kb.role, false, kb.horizon, kb.maxNodes, st, 0, nil)
		kb.levels[l] = &r
	}
	return kb.levels[l]
}

func (kb *keyBound) bound(st *budgetState, left int64) int {
	var k *model.Key
	switch kb.kind {
	case model.KindPair:
		k = &st.pair.Key
	case model.KindSource:
		k = &st.source
	default:
		k = &st.principal
	}
	if k.Mode != model.Open {
		if k.Until == model.Forever {
			return 0
		}
		left -= int64(k.Until)
		if left <= 0 {
			return 0
		}
	}
	l := int(k.Level)
	if l > 0 && kb.decay > 0 {
		l -= int((age(k.QuietFrom) + left) / kb.decay)
		l = max(l, 0)
	}
	r := kb.level(l)
	if !r.exact {
		return math.MaxInt32
	}
	return r.bound(left)
}

// budgetSearch maximises verified distinct wrong guesses in the horizon,
// from fresh keys, over every strategy of the form "guess now, or wait
// until the next instant where some key changes" — which loses nothing:
// within an interval with no such instant admission is constant, and
// guessing earlier only moves window exits, lock ends and decay earlier.
// Refused attempts are never made (they verify nothing and may extend the
// attacker's own lock). A state (keys relative to now) reached earlier
// with at least as many guesses dominates. Without bounds the search runs
// in order of elapsed time and records the profile; with bounds it is A*.
func budgetSearch(p model.Policy, m Machine, role model.Role, all bool, horizon int64, maxNodes int, from budgetState, lower int, ub func(*budgetState, int64) int) budgetResult {
	return budgetSearchBeam(p, m, role, all, horizon, maxNodes, from, lower, ub, 0)
}

// budgetSearchBeam is budgetSearch; with beam > 0 it searches in order of
// elapsed time keeping only the beam most promising states (by guesses so
// far plus the bound): a strategy, not a proof.
func budgetSearchBeam(p model.Policy, m Machine, role model.Role, all bool, horizon int64, maxNodes int, from budgetState, lower int, ub func(*budgetState, int64) int, beam int) budgetResult {
	res := budgetResult{exact: true}
	if p.Disabled {
		res.unbounded = true
		return res
	}
	r := int64(p.Resolution)
	if r < 1 {
		r = 1
	}
	front := map[hash128][]budgetPoint{}
	var buf []byte
	// record reports whether (elapsed, count) is dominated for h and
	// records it otherwise.
	record := func(h hash128, elapsed int64, count int) bool {
		pts := front[h]
		for _, q := range pts {
			if q.elapsed <= elapsed && q.count >= count {
				return true
			}
		}
		kept := pts[:0]
		for _, q := range pts {
			if !(elapsed <= q.elapsed && count >= q.count) {
				kept = append(kept, q)
			}
		}
		front[h] = append(kept, budgetPoint{elapsed, count})
		return false
	}
	stale := func(h hash128, elapsed int64, count int) bool {
		for _, q := range front[h] {
			if q.elapsed <= elapsed && q.count >= count && (q.elapsed < elapsed || q.count > count) {
				return true
			}
		}
		return false
	}
	q := &budgetHeap{astar: ub != nil && beam == 0}
	var best *budgetNode
	push := func(st *budgetState, elapsed int64, count int, path *guessPath) {
		buf = encodeBudget(buf[:0], st)
		h := hashBytes(buf)
		if record(h, elapsed, count) {
			return
		}
		n := &budgetNode{enc: string(buf), elapsed: elapsed, count: count, path: path}
		if ub != nil {
			n.f = count + ub(st, elapsed)
		}
		heap.Push(q, n)
		if beam > 0 && q.Len() > 2*beam {
			slices.SortFunc(q.n, func(a, b *budgetNode) int {
				if a.f != b.f {
					return b.f - a.f
				}
				if a.count != b.count {
					return b.count - a.count
				}
				return int(min(max(a.elapsed-b.elapsed, -1), 1))
			})
			q.n = q.n[:beam]
			heap.Init(q)
		}
	}
	res.max = lower
	push(&from, 0, 0, nil)
	ev := model.Event{Attempt: model.Attempt{Channel: model.Remote, Role: role}, Outcome: model.WrongSecret}
	var ts []int64
	for q.Len() > 0 {
		n := heap.Pop(q).(*budgetNode)
		if ub != nil && beam == 0 && n.f <= res.max {
			break // nothing left can beat the best found
		}
		h := hashBytes([]byte(n.enc))
		if stale(h, n.elapsed, n.count) {
			continue
		}
		res.nodes++
		if res.nodes > maxNodes {
			res.exact = false
			break
		}
		if n.count > res.max {
			res.max, best = n.count, n
			if ub == nil {
				res.profile = append(res.profile, budgetPoint{n.elapsed, n.count})
			}
		}
		st := decodeBudget(n.enc)
		// Guess now.
		v := model.View{Pair: st.pair, Source: st.source, Principal: st.principal}
		v2, d := m.Decide(v, ev, 0, &p)
		if d.Verdict == model.Failed {
			c := budgetState{pair: v2.Pair, source: v2.Source, principal: v2.Principal}
			if all {
				c.pair, c.source = model.Pair{}, model.Key{}
			}
			buf = encodeBudget(buf[:0], &c)
			if string(buf) == n.enc {
				// Guessing changes nothing: no key ever stops this attacker.
				res.unbounded = true
				res.profile = nil
				return res
			}
			push(&c, n.elapsed, n.count+1, &guessPath{parent: n.path, at: n.elapsed})
		}
		// Or wait until the next instant where a key changes.
		ts = budgetEdges(&st, &p, ts[:0])
		if len(ts) == 0 {
			continue
		}
		e := ts[0]
		if r > 1 {
			e = (e + r - 1) / r * r
		}
		if n.elapsed+e >= horizon {
			continue
		}
		st = budgetWait(st, e, m, &p)
		push(&st, n.elapsed+e, n.count, n.path)
	}
	if best != nil {
		res.witness = best.path.times()
	}
	return res
}

// budgetWait lets e pass for an attacker's keys.
func budgetWait(st budgetState, e int64, m Machine, p *model.Policy) budgetState {
	now := model.Instant(e)
	st.pair = model.Persist(st.pair, now, 0).Pair
	st.source = model.PersistKey(st.source, now, 0).Pair.Key
	st.principal = model.PersistKey(st.principal, now, 0).Pair.Key
	st.pair.Key = m.Advance(st.pair.Key, model.KindPair, 0, p)
	st.source = m.Advance(st.source, model.KindSource, 0, p)
	st.principal = m.Advance(st.principal, model.KindPrincipal, 0, p)
	return st
}

// budgetReplay plays a schedule of guesses against the policy: each guess
// at its instant, or, if refused then, at the first later instant where a
// key changes and admits it (delaying the rest of the schedule). It returns
// how many guesses were verified in the horizon and their instants: a
// strategy, so a lower bound on P-BUDGET.
func budgetReplay(p model.Policy, m Machine, role model.Role, horizon int64, schedule []int64) (int, []int64) {
	ev := model.Event{Attempt: model.Attempt{Channel: model.Remote, Role: role}, Outcome: model.WrongSecret}
	var st budgetState
	var elapsed, delay int64
	var done []int64
	var ts []int64
	r := max(int64(p.Resolution), 1)
	for _, t := range schedule {
		t += delay
		if t > elapsed {
			st = budgetWait(st, t-elapsed, m, &p)
			elapsed = t
		}
		for {
			if elapsed >= horizon {
				return len(done), done
			}
			v := model.View{Pair: st.pair, Source: st.source, Principal: st.principal}
			v2, d := m.Decide(v, ev, 0, &p)
			if d.Verdict == model.Failed {
				st = budgetState{pair: v2.Pair, source: v2.Source, principal: v2.Principal}
				done = append(done, elapsed)
				break
			}
			ts = budgetEdges(&st, &p, ts[:0])
			if len(ts) == 0 {
				return len(done), done
			}
			e := (ts[0] + r - 1) / r * r
			st = budgetWait(st, e, m, &p)
			elapsed += e
			delay += e
		}
	}
	return len(done), done
}

// budgetEdges lists the instants (> 0) where one of the attacker's keys
// changes: a lock ends, a failure leaves its window, a decay step.
func budgetEdges(st *budgetState, p *model.Policy, ts []int64) []int64 {
	add := func(e int64) {
		if e > 0 && e < math.MaxInt64-1 {
			ts = append(ts, e)
		}
	}
	for _, kk := range []struct {
		k    *model.Key
		kind model.Kind
	}{{&st.pair.Key, model.KindPair}, {&st.source, model.KindSource}, {&st.principal, model.KindPrincipal}} {
		k, kp := kk.k, p.Key(kk.kind)
		if k.Mode != model.Open && k.Until != model.Forever {
			add(int64(k.Until))
		}
		if kp.Window > 0 {
			for j := 0; j < int(k.NFail) && j < model.MaxThreshold; j++ {
				add(int64(k.Failures[j]) + int64(kp.Window))
			}
		}
		if k.Mode == model.Open && k.Level > 0 && kp.Decay > 0 {
			add(int64(k.QuietFrom) + int64(kp.Decay))
		}
	}
	slices.Sort(ts)
	return ts
}
