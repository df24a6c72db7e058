package proofs

import (
	"bytes"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/latchnvr/latch/model"
	"github.com/latchnvr/latch/model/trace"
	"github.com/latchnvr/latch/model/world"
)

// budgetFor is the state budget a test explores with: full normally; under
// -short a fifth; under the race detector (about ten times slower) a
// twentieth. `make proofs` runs the full budgets.
func budgetFor(full int) int {
	switch {
	case raceEnabled:
		return max(full/20, 1500)
	case testing.Short():
		return max(full/5, 3000)
	}
	return full
}

func mustSet(t testing.TB, p model.Policy, sets ...string) model.Policy {
	t.Helper()
	for _, s := range sets {
		if err := p.Set(s); err != nil {
			t.Fatal(err)
		}
	}
	if err := p.Validate(); err != nil {
		t.Fatal(err)
	}
	return p
}

func preset(t testing.TB, name string, sets ...string) model.Policy {
	t.Helper()
	p, err := model.Preset(name)
	if err != nil {
		t.Fatal(err)
	}
	return mustSet(t, p, sets...)
}

// replay runs a trace through world.Run (what `latchsim replay` does).
func replay(t testing.TB, p model.Policy, lines []trace.Line) []world.Result {
	t.Helper()
	var b bytes.Buffer
	w := trace.NewWriter(&b)
	for _, l := range lines {
		if err := w.Write(l); err != nil {
			t.Fatal(err)
		}
	}
	var out []world.Result
	if err := world.Run(p, &b, func(r world.Result) error { out = append(out, r); return nil }); err != nil {
		t.Fatalf("replay: %v\n%s", err, b.String())
	}
	return out
}

// Every state the explorer stores is its canonical encoding; decoding it
// must give back exactly the state (random walks over the mutation policy,
// which switches every mechanism on).
func TestExploreEncodingRoundTrip(t *testing.T) {
	p := MutationPolicy()
	for _, n := range []int{1, 3} {
		x := newExplorer(p, Model{}, model.RoleAdmin, n, modeFull)
		c := &ctx{x: x}
		rng := rand.New(rand.NewPCG(1, uint64(n)))
		for walk := 0; walk < 200; walk++ {
			w := c.initial()
			for step := 0; step < 25; step++ {
				es := c.edgesOf(&w)
				c.apply(&w, es[rng.IntN(len(es))])
				c.canon(&w)
				enc := w.encode(nil)
				got, ok := decodeState(enc)
				if !ok || got != w {
					t.Fatalf("walk %d step %d: decode(encode(w)) != w", walk, step)
				}
				if enc2 := got.encode(nil); !bytes.Equal(enc, enc2) {
					t.Fatalf("walk %d step %d: encoding not stable", walk, step)
				}
			}
		}
	}
}

// The model satisfies every universal invariant under the mutation
// policy, where every mechanism is a few steps away: the mutants' kills
// below are the mutants', not the model's.
func TestExploreMutationPolicyHolds(t *testing.T) {
	r := Prove(MutationPolicy(), Options{Budget: budgetFor(40_000), SkipProperties: true})
	for _, i := range r.Invariants {
		if !i.Holds {
			t.Errorf("%s violated by the model under the mutation policy: %s\n%s", i.ID, i.Counterexample.Message, i.Counterexample.TraceText())
		}
	}
	t.Logf("%d states, %d edges, depth %d", r.States, r.Edges, r.Depth)
}

// The explorer is deterministic: worker count and scheduling never change
// what it finds, nor the counterexample it prints.
func TestExploreDeterministic(t *testing.T) {
	p := preset(t, "latch", "resetOnSuccess=principal")
	budget := budgetFor(8000)
	var texts []string
	for _, workers := range []int{1, 2, 4} {
		r := Prove(p, Options{Budget: budget, Workers: workers, SkipProperties: true})
		r.Elapsed = 0
		for i := range r.Runs {
			r.Runs[i].Elapsed = 0
		}
		var b bytes.Buffer
		if err := r.WriteJSON(&b); err != nil {
			t.Fatal(err)
		}
		texts = append(texts, b.String())
	}
	for i := 1; i < len(texts); i++ {
		if texts[i] != texts[0] {
			t.Fatalf("report with %d workers differs from the report with 1", []int{1, 2, 4}[i])
		}
	}
}

// A policy with no lock at all has a small abstraction: the explorer
// reaches its fixpoint.
func TestExploreFixpoint(t *testing.T) {
	p := model.Policy{Pair: model.KeyPolicy{Growth: 1}, Source: model.KeyPolicy{Growth: 1},
		Principal: model.KeyPolicy{Growth: 1}, Console: model.KeyPolicy{Growth: 1}}
	r := Prove(p, Options{Budget: 200_000, SkipProperties: true})
	if !r.Fixpoint {
		t.Fatalf("no fixpoint: %+v", r.Runs)
	}
	if !r.OK() {
		t.Fatal("an invariant fails for the policy that never locks")
	}
	t.Logf("fixpoint after %d states at depth %d", r.States, r.Depth)
}

// An invalid policy is reported, not proved.
func TestExploreInvalidPolicy(t *testing.T) {
	p, _ := model.Preset("latch")
	p.Pair.Cap = p.Pair.Base / 2
	r := Prove(p, Options{})
	if r.Invalid == "" || r.OK() || !strings.Contains(r.Invalid, "pair.cap") {
		t.Fatalf("invalid policy not reported: %q", r.Invalid)
	}
}

// SPEC INV-NOSHORTEN names only R-UNLOCK, R-RESET and R-FACTORY as moving
// an until earlier. With resetOnSuccess principal (or all) and a trust_ttl,
// a familiar source's right secret used to clear a Locked principal; the
// explorer found it in three steps (testdata/noshorten-reset-on-success-
// principal.jsonl, now replayed by TestRegressionTraces with the lock
// kept). Now the invariant holds for those policies, and the old behaviour,
// kept as the mutant success-unlocks-principal, is still found in three.
func TestExploreResetOnSuccessKeepsLocks(t *testing.T) {
	for _, scope := range []string{"principal", "all"} {
		p := preset(t, "latch", "resetOnSuccess="+scope)
		opts := Options{Budget: budgetFor(5000), Scopes: []int{3}, SkipProperties: true, StopAt: []Invariant{InvNoShorten}}
		ok := Prove(p, opts)
		if res := ok.Invariant(InvNoShorten); !res.Holds {
			t.Fatalf("resetOnSuccess=%s: INV-NOSHORTEN violated: %+v", scope, res.Counterexample)
		}
		opts.Machine = successUnlocksPrincipal{}
		bad := Prove(p, opts)
		res := bad.Invariant(InvNoShorten)
		if res.Holds {
			t.Fatalf("resetOnSuccess=%s: the old behaviour (mutant) not caught", scope)
		}
		// Shortest: one login, two bursts (5 + 5 wrong secrets), the success.
		if ce := res.Counterexample; ce.Steps != 3 {
			t.Errorf("counterexample has %d steps, want 3", ce.Steps)
		}
	}
}

// Counterexamples replay: for every universal-invariant violation a mutant
// produces, the trace replays through world.Run without error and its
// last line is the violating step's line.
func TestExploreMutantTracesReplay(t *testing.T) {
	p := MutationPolicy()
	for _, m := range Mutants()[:6] {
		r := Prove(p, Options{Budget: budgetFor(20_000), Machine: m.Machine, SkipProperties: true, StopAt: []Invariant{m.Target}})
		res := r.Invariant(m.Target)
		if res.Holds {
			continue // TestMutation reports survivors
		}
		if res.Counterexample.Err != "" {
			t.Errorf("%s: %s", m.Name, res.Counterexample.Err)
			continue
		}
		replay(t, p, res.Counterexample.Trace)
	}
}

// The explorer applies R-ADVANCE to every key whenever time passes and
// forgets what the SPEC says is forgotten; world (and `latchsim replay`)
// advances a key only when an attempt involves it. Random paths through the
// abstraction, written as traces and replayed, must decide every attempt
// exactly as the explorer did: the abstraction is invisible to Decide.
func TestExploreEagerEqualsLazy(t *testing.T) {
	policies := []model.Policy{MutationPolicy(), preset(t, "latch"), preset(t, "annke"), preset(t, "pam_faillock"), preset(t, "nist")}
	walks := 60
	if raceEnabled || testing.Short() {
		walks = 10
	}
	compared := 0
	defer func() { t.Logf("%d decisions compared", compared) }()
	for pi, p := range policies {
		for _, n := range []int{1, 3} {
			x := newExplorer(p, Model{}, model.RoleAdmin, n, modeFull)
			rng := rand.New(rand.NewPCG(uint64(pi), uint64(n)))
			for walk := 0; walk < walks; walk++ {
				c := &ctx{x: x, tr: newTracer(model.RoleAdmin, x.dedup)}
				w := c.initial()
				for step := 0; step < 30; step++ {
					es := c.edgesOf(&w)
					c.apply(&w, es[rng.IntN(len(es))])
					c.canon(&w)
				}
				out := replay(t, p, c.tr.lines)
				lines := make([]int, 0, len(c.tr.decided))
				for i := range c.tr.decided {
					lines = append(lines, i)
				}
				slices.Sort(lines)
				for _, i := range lines {
					d := c.tr.decided[i]
					compared++
					got := out[i]
					want := d.Verdict.String()
					bad := got.Decision != want
					if d.Verdict == model.Refused && (got.RetryAfter == nil || time.Duration(*got.RetryAfter) != d.RetryAfter) {
						bad = true
					}
					if d.Verdict == model.Failed && (got.Remaining == nil || *got.Remaining != d.Remaining) {
						bad = true
					}
					if bad {
						var b bytes.Buffer
						tw := trace.NewWriter(&b)
						for _, l := range c.tr.lines[:i+1] {
							tw.Write(l)
						}
						t.Fatalf("policy %q, %d sources, walk %d: line %d: explorer decided %s, replay %+v\n%s", p.Preset, n, walk, i+1, decisionText(d), got, b.String())
					}
				}
			}
		}
	}
}
