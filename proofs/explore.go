package proofs

import (
	"bytes"
	"fmt"
	"runtime"
	"sync"

	"github.com/latchnvr/latch/model"
	"github.com/latchnvr/latch/model/trace"
)

// ctx is one worker's scratch space and the violations of the current step.
type ctx struct {
	x    *explorer
	viol [numChecks]string
	any  bool

	// Tracing: the tracer records lines; the step stops at the first
	// violation of stop.
	tr      *tracer
	tracing bool
	stop    inv
	stopped bool

	edges []edge
	times []int64
	enc   []byte
	skey  [maxSources][]byte
}

func (c *ctx) fail(i inv, format string, args ...any) {
	if c.stopped || c.viol[i] != "" {
		return
	}
	if c.tracing {
		if i != c.stop {
			return
		}
	} else if c.x.skip[i] {
		return
	}
	c.viol[i] = fmt.Sprintf(format, args...)
	c.any = true
	if c.tracing {
		c.stopped = true
	}
}

func (c *ctx) clear() {
	if c.any {
		c.viol = [numChecks]string{}
		c.any = false
	}
}

// ---- canonical form ----

// canon puts w in canonical form: fingerprint labels renumbered 1..n in
// order of first presentation, and the interchangeable sources sorted.
func (c *ctx) canon(w *wstate) {
	x := c.x
	if x.dedup {
		for s := 0; s < x.n; s++ {
			c.relabel(w, s)
		}
	}
	if x.n-x.symStart > 1 {
		c.sortSources(w)
	}
}

func (c *ctx) relabel(w *wstate, s int) {
	op := &w.prints[s]
	pr := &w.pairs[s]
	np := min(int(pr.NPrints), model.MaxPrints)
	var olds, news [2 * model.MaxPrints]uint64
	n := 0
	same := true
	for j := 0; j < int(op.n); j++ {
		olds[n], news[n] = op.label[j], uint64(j+1)
		same = same && olds[n] == news[n]
		n++
	}
	next := uint64(op.n) + 1
	for j := 0; j < np; j++ {
		t := pr.Prints[j].Tag
		found := false
		for i := 0; i < n; i++ {
			if olds[i] == t {
				found = true
				break
			}
		}
		if !found {
			olds[n], news[n] = t, next
			same = same && t == next
			next++
			n++
		}
	}
	if c.tr != nil {
		c.tr.relabel(s, olds[:n], news[:n])
	}
	if same {
		return
	}
	for j := 0; j < int(op.n); j++ {
		op.label[j] = uint64(j + 1)
	}
	for j := 0; j < np; j++ {
		for i := 0; i < n; i++ {
			if olds[i] == pr.Prints[j].Tag {
				pr.Prints[j].Tag = news[i]
				break
			}
		}
	}
}

func (c *ctx) sortSources(w *wstate) {
	x := c.x
	for s := x.symStart; s < x.n; s++ {
		c.skey[s] = w.appendSource(c.skey[s][:0], s)
	}
	perm := [maxSources]int{}
	for i := range perm {
		perm[i] = i
	}
	for i := x.symStart + 1; i < x.n; i++ {
		for j := i; j > x.symStart && bytes.Compare(c.skey[perm[j]], c.skey[perm[j-1]]) < 0; j-- {
			perm[j], perm[j-1] = perm[j-1], perm[j]
		}
	}
	identity := true
	for i, p := range perm {
		identity = identity && i == p
	}
	if identity {
		return
	}
	old := *w
	for i, p := range perm {
		w.pairs[i] = old.pairs[p]
		w.sources[i] = old.sources[p]
		w.obs[kPair0+i] = old.obs[kPair0+p]
		w.obs[kSource0+i] = old.obs[kSource0+p]
		w.success[i], w.hasSuccess[i] = old.success[p], old.hasSuccess[p]
		w.prints[i] = old.prints[p]
	}
	if c.tr != nil {
		c.tr.permute(perm)
	}
}

// ---- breadth-first exploration ----

type node struct {
	parent int32
	edge   uint16
}

// hit is where a check first failed: the step from state along edge
// (edge −1: a check of the state itself; state −1: the initial login).
type hit struct {
	state int32
	edge  int32
	msg   string
}

type exploreResult struct {
	states   int   // distinct states discovered
	expanded int   // states whose every step was taken and checked
	edges    int64 // steps taken
	depth    int   // BFS levels completely expanded
	partial  bool  // the next level was expanded in part (state budget)
	fixpoint bool  // no new state: the abstraction is exhausted
	bytes    int   // memory of the visited set
	found    [numChecks]*hit
	nodes    []node
}

type succ struct {
	parent int32
	edge   uint16
	h      hash128
	off    int32
	n      int32
}

type chunkHit struct {
	state int32
	edge  int32
	inv   inv
	msg   string
}

type chunkResult struct {
	succs []succ
	arena []byte
	hits  []chunkHit
	edges int64
}

// initial is the state after the initial right-secret login from source 1
// (so source 1 is familiar), checked like any step.
func (c *ctx) initial() wstate {
	w := newState()
	c.attempt(&w, 0, model.Remote, model.RightSecret, false)
	c.canon(&w)
	return w
}

// run explores breadth-first until a fixpoint, maxDepth levels, or budget
// expanded states; stop, if set, ends it early once it returns true.
func (x *explorer) run(budget, maxDepth, workers int, stop func(*[numChecks]*hit) bool) *exploreResult {
	if workers <= 0 {
		workers = runtime.GOMAXPROCS(0)
	}
	r := &exploreResult{}
	visited := newHashSet(1 << 16)
	c0 := &ctx{x: x}
	root := c0.initial()
	for i := inv(0); i < numChecks; i++ {
		if c0.viol[i] != "" {
			r.found[i] = &hit{state: -1, edge: -1, msg: c0.viol[i]}
			x.skip[i] = true
		}
	}
	enc := root.encode(nil)
	visited.add(hashBytes(enc))
	r.nodes = append(r.nodes, node{parent: -1})
	frontier := [][]byte{enc}
	first := int32(0) // global index of frontier[0]
	ctxs := make([]*ctx, workers)
	for i := range ctxs {
		ctxs[i] = &ctx{x: x}
	}
	truncated := false // the frontier lacks states the budget has no room for
	for {
		if len(frontier) == 0 && !truncated {
			r.fixpoint = true
			break
		}
		if len(frontier) == 0 || r.expanded >= budget || (maxDepth > 0 && r.depth >= maxDepth) || (stop != nil && stop(&r.found)) {
			break
		}
		n := len(frontier)
		if truncated || r.expanded+n > budget {
			n = min(n, budget-r.expanded)
			r.partial = true
		}
		truncated = false
		chunk := max(16, n/(workers*32))
		nchunks := (n + chunk - 1) / chunk
		results := make([]chunkResult, nchunks)
		var wg sync.WaitGroup
		next := make(chan int, nchunks)
		for i := 0; i < nchunks; i++ {
			next <- i
		}
		close(next)
		for wi := 0; wi < workers; wi++ {
			wg.Add(1)
			go func(c *ctx) {
				defer wg.Done()
				for ci := range next {
					a, b := ci*chunk, min((ci+1)*chunk, n)
					results[ci] = c.expand(frontier[a:b], first+int32(a), visited)
				}
			}(ctxs[wi])
		}
		wg.Wait()
		r.expanded += n
		// Merge in frontier order: the first hit of a check is on a
		// shortest path, and the order never depends on scheduling.
		room := budget - r.expanded
		var nextFrontier [][]byte
		nextFirst := int32(len(r.nodes))
		for ci := range results {
			res := &results[ci]
			r.edges += res.edges
			for _, h := range res.hits {
				if r.found[h.inv] == nil {
					r.found[h.inv] = &hit{state: h.state, edge: h.edge, msg: h.msg}
				}
			}
			for _, s := range res.succs {
				if !visited.add(s.h) {
					continue
				}
				r.nodes = append(r.nodes, node{parent: s.parent, edge: s.edge})
				if len(nextFrontier) < room {
					nextFrontier = append(nextFrontier, res.arena[s.off:s.off+s.n:s.off+s.n])
				} else {
					truncated = true
				}
			}
			results[ci] = chunkResult{}
		}
		for i := inv(0); i < numChecks; i++ {
			if r.found[i] != nil {
				x.skip[i] = true
			}
		}
		if r.partial {
			break
		}
		r.depth++
		frontier, first = nextFrontier, nextFirst
	}
	r.states = len(r.nodes)
	r.bytes = visited.bytes()
	return r
}

// expand takes every step from each state of a chunk of the frontier.
func (c *ctx) expand(encs [][]byte, first int32, visited *hashSet) chunkResult {
	var res chunkResult
	local := make(map[hash128]struct{}, len(encs)*8)
	for si, enc := range encs {
		idx := first + int32(si)
		w, ok := decodeState(enc)
		if !ok {
			panic("proofs: corrupt state encoding")
		}
		c.clear()
		c.stateChecks(&w)
		c.collect(&res, idx, -1)
		es := c.edgesOf(&w)
		res.edges += int64(len(es))
		for ei, e := range es {
			w2 := w
			c.clear()
			c.apply(&w2, e)
			c.collect(&res, idx, int32(ei))
			c.canon(&w2)
			c.enc = w2.encode(c.enc[:0])
			h := hashBytes(c.enc)
			if visited.has(h) {
				continue
			}
			if _, dup := local[h]; dup {
				continue
			}
			local[h] = struct{}{}
			off := len(res.arena)
			res.arena = append(res.arena, c.enc...)
			res.succs = append(res.succs, succ{parent: idx, edge: uint16(ei), h: h, off: int32(off), n: int32(len(c.enc))})
		}
	}
	return res
}

func (c *ctx) collect(res *chunkResult, state, edge int32) {
	if !c.any {
		return
	}
	for i := inv(0); i < numChecks; i++ {
		if c.viol[i] != "" {
			res.hits = append(res.hits, chunkHit{state: state, edge: edge, inv: i, msg: c.viol[i]})
		}
	}
}

// path lists the edge indices from the root to state.
func (r *exploreResult) path(state int32) []uint16 {
	var p []uint16
	for s := state; s > 0; s = r.nodes[s].parent {
		p = append(p, r.nodes[s].edge)
	}
	for i, j := 0, len(p)-1; i < j; i, j = i+1, j-1 {
		p[i], p[j] = p[j], p[i]
	}
	return p
}

// traceOf replays the path to h with a tracer and returns the trace that
// ends with the step violating target, and that violation's message.
func (x *explorer) traceOf(r *exploreResult, h *hit, target inv) ([]trace.Line, string, error) {
	xt := newExplorer(x.p, x.m, x.role, x.n, x.mode)
	c := &ctx{x: xt, tr: newTracer(x.role, xt.dedup), tracing: true, stop: target}
	w := c.initial()
	if h.state < 0 {
		if !c.stopped {
			return nil, "", fmt.Errorf("the initial login no longer violates %s", invIDs[target])
		}
		return c.tr.lines, c.viol[target], nil
	}
	for _, ei := range r.path(h.state) {
		es := c.edgesOf(&w)
		if int(ei) >= len(es) {
			return nil, "", fmt.Errorf("replaying the counterexample path: edge %d of %d", ei, len(es))
		}
		c.apply(&w, es[ei])
		c.canon(&w)
		if c.stopped {
			break
		}
	}
	if !c.stopped {
		if h.edge < 0 {
			c.stateChecks(&w)
		} else {
			es := c.edgesOf(&w)
			if int(h.edge) >= len(es) {
				return nil, "", fmt.Errorf("replaying the counterexample path: last edge %d of %d", h.edge, len(es))
			}
			c.apply(&w, es[h.edge])
		}
	}
	if !c.stopped {
		return nil, "", fmt.Errorf("the counterexample path did not violate %s again (nondeterminism?)", invIDs[target])
	}
	return c.tr.lines, c.viol[target], nil
}
