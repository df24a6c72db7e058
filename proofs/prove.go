package proofs

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/latchnvr/latch/model"
	"github.com/latchnvr/latch/model/trace"
	"github.com/latchnvr/latch/model/world"
)

// DefaultBudget is how many states each exploration expands when Options
// leave it 0: every preset proves in well under a minute on two cores.
const DefaultBudget = 40_000

// DefaultScopes are the source counts explored: one source (the deepest
// reach: escalation, holds, decay) and three (cross-source interplay: the
// principal key, familiarity, symmetric attackers).
var DefaultScopes = []int{1, 3}

// Options bound a proof. The zero value is the default proof.
type Options struct {
	// Budget is how many states each exploration (one role, one scope)
	// expands; 0: DefaultBudget. Exploration stops earlier at a fixpoint.
	Budget int
	// MaxDepth stops each exploration after this many BFS levels (0: only
	// the budget bounds it).
	MaxDepth int
	// Scopes are the numbers of remote sources explored (1..3); nil:
	// DefaultScopes.
	Scopes []int
	// Roles are the principal's roles explored; nil: admin, and every other
	// role whose thresholds differ from those already explored (a role with
	// the same thresholds decides identically).
	Roles []model.Role
	// Workers expanding states in parallel; 0: GOMAXPROCS.
	Workers int
	// Machine is the lock logic under proof; nil: Model{} (package model).
	Machine Machine
	// SkipProperties skips P-NODOS and P-BUDGET.
	SkipProperties bool
	// NoDoSBudget is how many states the P-NODOS attack search expands per
	// role; 0: half the Budget.
	NoDoSBudget int
	// BudgetNodes bounds each P-BUDGET search; 0: DefaultBudgetNodes.
	BudgetNodes int
	// StopAt, if set, ends an exploration once every listed invariant is
	// violated (the mutation self-test).
	StopAt []Invariant
}

func (o *Options) defaults() {
	if o.Budget <= 0 {
		o.Budget = DefaultBudget
	}
	if len(o.Scopes) == 0 {
		o.Scopes = DefaultScopes
	}
	if o.Machine == nil {
		o.Machine = Model{}
	}
	if o.NoDoSBudget <= 0 {
		// The attack alphabet is small: half the budget reaches as deep.
		o.NoDoSBudget = max(o.Budget/2, 1)
	}
	if o.BudgetNodes <= 0 {
		o.BudgetNodes = DefaultBudgetNodes
	}
}

// Run is one exploration: a role and a number of sources.
type Run struct {
	Role     string `json:"role"`
	Sources  int    `json:"sources"`
	States   int    `json:"states"`   // distinct states discovered
	Expanded int    `json:"expanded"` // states whose every step was checked
	Edges    int64  `json:"edges"`    // steps checked
	// Depth is the number of BFS levels explored completely: every path of
	// at most Depth steps from the initial state was checked.
	Depth    int           `json:"depth"`
	Fixpoint bool          `json:"fixpoint"` // the abstraction is exhausted
	Elapsed  time.Duration `json:"elapsed_ns"`
}

// Counterexample is a shortest path (in steps of the abstraction) to a
// violation, as a SPEC §9 trace: `latchsim replay` with the same policy
// reproduces it, and its last line is the violating step.
type Counterexample struct {
	Check   string       `json:"check"`
	Role    string       `json:"role"`
	Sources int          `json:"sources"`
	Message string       `json:"message"`
	Steps   int          `json:"steps"` // steps of the abstraction
	Trace   []trace.Line `json:"trace"`
	// Replayed is world.Run's output for the trace's last line (only when
	// the proof was of package model itself).
	Replayed *world.Result `json:"replayed,omitempty"`
	Err      string        `json:"error,omitempty"`
}

// TraceText is the trace as JSON lines.
func (c *Counterexample) TraceText() string {
	var b bytes.Buffer
	w := trace.NewWriter(&b)
	for _, l := range c.Trace {
		w.Write(l)
	}
	return b.String()
}

// InvariantResult is one universal invariant's verdict.
type InvariantResult struct {
	ID             Invariant       `json:"id"`
	Holds          bool            `json:"holds"`
	Counterexample *Counterexample `json:"counterexample,omitempty"`
}

// NoDoSResult is P-NODOS: can failures from other sources get a familiar
// source with the right secret refused?
type NoDoSResult struct {
	Holds bool `json:"holds"`
	// Familiar is the familiarity the property uses: the policy's trustTTL,
	// or SPEC §1's default 30 days when the policy recognises no source.
	Familiar time.Duration   `json:"familiar_ns"`
	Runs     []Run           `json:"runs"`
	Attack   *Counterexample `json:"attack,omitempty"`
}

// BudgetFigure is P-BUDGET for one role: the most verified distinct wrong
// guesses in 24 h from one source, and from any number of sources.
type BudgetFigure struct {
	Role string `json:"role"`
	// PerSource is exact when PerSourceExact; otherwise the best strategy
	// found (a lower bound) and PerSourceUpper an upper bound.
	PerSource          int  `json:"per_source"`
	PerSourceExact     bool `json:"per_source_exact"`
	PerSourceUpper     int  `json:"per_source_upper,omitempty"`
	PerSourceUnbounded bool `json:"per_source_unbounded,omitempty"`
	AllSources         int  `json:"all_sources"`
	AllSourcesExact    bool `json:"all_sources_exact"`
	// AllSourcesUnbounded: no key limits an attacker with fresh sources.
	AllSourcesUnbounded bool `json:"all_sources_unbounded,omitempty"`
}

// Report is the proof of one policy.
type Report struct {
	Preset string `json:"preset,omitempty"`
	// Invalid is the validation error of a policy that cannot be proved.
	Invalid    string            `json:"invalid,omitempty"`
	Runs       []Run             `json:"runs"`
	States     int               `json:"states"`
	Edges      int64             `json:"edges"`
	Depth      int               `json:"depth"`
	Fixpoint   bool              `json:"fixpoint"`
	Elapsed    time.Duration     `json:"elapsed_ns"`
	Invariants []InvariantResult `json:"invariants"`
	NoDoS      *NoDoSResult      `json:"p_nodos,omitempty"`
	Budget     []BudgetFigure    `json:"p_budget,omitempty"`
}

// OK reports whether every universal invariant holds.
func (r *Report) OK() bool {
	if r.Invalid != "" {
		return false
	}
	for _, i := range r.Invariants {
		if !i.Holds {
			return false
		}
	}
	return true
}

// Invariant returns the result of one invariant.
func (r *Report) Invariant(id Invariant) InvariantResult {
	for _, i := range r.Invariants {
		if i.ID == id {
			return i
		}
	}
	return InvariantResult{ID: id}
}

// rolesOf lists the roles to explore: admin, and each other role whose
// thresholds differ from every role already listed.
func rolesOf(p *model.Policy) []model.Role {
	th := func(r model.Role) [model.NumKinds]int {
		var t [model.NumKinds]int
		for k := model.Kind(0); k < model.NumKinds; k++ {
			kp := p.Key(k)
			t[k] = kp.Threshold
			if kp.RoleThreshold[r] > 0 {
				t[k] = kp.RoleThreshold[r]
			}
		}
		return t
	}
	roles := []model.Role{model.RoleAdmin}
	for _, r := range []model.Role{model.RoleViewer, model.RoleOperator} {
		dup := false
		for _, q := range roles {
			dup = dup || th(q) == th(r)
		}
		if !dup {
			roles = append(roles, r)
		}
	}
	return roles
}

// Prove explores policy p under the abstraction and reports every universal
// invariant of SPEC §8 and the policy properties P-NODOS and P-BUDGET.
func Prove(p model.Policy, opts Options) Report {
	start := time.Now()
	opts.defaults()
	rep := Report{Preset: p.Preset}
	if err := p.Validate(); err != nil {
		rep.Invalid = err.Error()
		return rep
	}
	roles := opts.Roles
	if len(roles) == 0 {
		roles = rolesOf(&p)
	}
	var stopSet []inv
	for _, id := range opts.StopAt {
		if i, ok := invOf(id); ok {
			stopSet = append(stopSet, i)
		}
	}
	var stop func(*[numChecks]*hit) bool
	if len(stopSet) > 0 {
		stop = func(f *[numChecks]*hit) bool {
			for _, i := range stopSet {
				if f[i] == nil {
					return false
				}
			}
			return true
		}
	}
	var found [numInv]*Counterexample
	rep.Fixpoint = true
	rep.Depth = -1
	allFound := func() bool {
		for _, i := range stopSet {
			if found[i] == nil {
				return false
			}
		}
		return len(stopSet) > 0
	}
	for _, role := range roles {
		for _, n := range opts.Scopes {
			if allFound() {
				break
			}
			n = min(max(n, 1), maxSources)
			t0 := time.Now()
			x := newExplorer(p, opts.Machine, role, n, modeFull)
			if len(stopSet) > 0 {
				for i := inv(0); i < numInv; i++ {
					x.skip[i] = found[i] != nil
				}
			}
			r := x.run(opts.Budget, opts.MaxDepth, opts.Workers, stop)
			run := Run{Role: role.String(), Sources: n, States: r.states, Expanded: r.expanded, Edges: r.edges,
				Depth: r.depth, Fixpoint: r.fixpoint, Elapsed: time.Since(t0)}
			rep.Runs = append(rep.Runs, run)
			rep.States += r.states
			rep.Edges += r.edges
			rep.Fixpoint = rep.Fixpoint && r.fixpoint
			if rep.Depth < 0 || r.depth < rep.Depth {
				rep.Depth = r.depth
			}
			// Keep the shortest counterexample over all runs (ties: the
			// earlier run).
			for i := inv(0); i < numInv; i++ {
				if h := r.found[i]; h != nil {
					ce := counterexample(x, r, h, i, opts.Machine)
					if old := found[i]; old == nil || ce.Steps < old.Steps || (ce.Steps == old.Steps && len(ce.Trace) < len(old.Trace)) {
						found[i] = ce
					}
				}
			}
		}
	}
	for i := inv(0); i < numInv; i++ {
		rep.Invariants = append(rep.Invariants, InvariantResult{ID: invIDs[i], Holds: found[i] == nil, Counterexample: found[i]})
	}
	if !opts.SkipProperties {
		rep.NoDoS = proveNoDoS(p, roles, &opts)
		for _, role := range roles {
			rep.Budget = append(rep.Budget, proveBudget(p, role, &opts))
		}
	}
	rep.Elapsed = time.Since(start)
	return rep
}

func counterexample(x *explorer, r *exploreResult, h *hit, i inv, m Machine) *Counterexample {
	ce := &Counterexample{Check: string(invIDs[i]), Role: x.role.String(), Sources: x.n, Message: h.msg,
		Steps: len(r.path(h.state)) + 1}
	if h.state < 0 {
		ce.Steps = 0
	}
	lines, msg, err := x.traceOf(r, h, i)
	if err != nil {
		ce.Err = err.Error()
		return ce
	}
	ce.Trace, ce.Message = lines, msg
	if _, ok := m.(Model); ok {
		ce.Replayed = replayLast(x.p, lines)
	}
	return ce
}

// replayLast replays a trace through world.Run and returns its last result.
func replayLast(p model.Policy, lines []trace.Line) *world.Result {
	var b bytes.Buffer
	w := trace.NewWriter(&b)
	for _, l := range lines {
		w.Write(l)
	}
	var last *world.Result
	err := world.Run(p, &b, func(r world.Result) error {
		last = &r
		return nil
	})
	if err != nil {
		return nil
	}
	return last
}

// proveNoDoS searches the attacker's alphabet for a refusal of the familiar
// source 1, for every role.
func proveNoDoS(p model.Policy, roles []model.Role, opts *Options) *NoDoSResult {
	res := &NoDoSResult{Holds: true}
	for _, role := range roles {
		t0 := time.Now()
		x := newExplorer(p, opts.Machine, role, maxSources, modeNoDoS)
		res.Familiar = time.Duration(x.nodosTTL)
		r := x.run(opts.NoDoSBudget, opts.MaxDepth, opts.Workers, func(f *[numChecks]*hit) bool { return f[invNoDoS] != nil })
		res.Runs = append(res.Runs, Run{Role: role.String(), Sources: maxSources, States: r.states, Expanded: r.expanded,
			Edges: r.edges, Depth: r.depth, Fixpoint: r.fixpoint, Elapsed: time.Since(t0)})
		if h := r.found[invNoDoS]; h != nil {
			ce := counterexample(x, r, h, invNoDoS, opts.Machine)
			if res.Attack == nil || len(ce.Trace) < len(res.Attack.Trace) {
				res.Attack = ce
			}
			res.Holds = false
		}
	}
	return res
}

func proveBudget(p model.Policy, role model.Role, opts *Options) BudgetFigure {
	f := BudgetFigure{Role: role.String()}
	one := budget(p, opts.Machine, role, false, int64(BudgetHorizon), opts.BudgetNodes)
	all := budget(p, opts.Machine, role, true, int64(BudgetHorizon), opts.BudgetNodes)
	f.PerSource, f.PerSourceExact, f.PerSourceUnbounded = one.max, one.exact, one.unbounded
	if !one.exact {
		f.PerSourceUpper = one.upper
	}
	f.AllSources, f.AllSourcesExact, f.AllSourcesUnbounded = all.max, all.exact, all.unbounded
	return f
}

// ---- output ----

// WriteJSON writes the report as one JSON document.
func (r *Report) WriteJSON(w io.Writer) error {
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	return enc.Encode(r)
}

// WriteText writes the report for people; counterexample traces are
// printed as JSON lines that `latchsim replay` reads.
func (r *Report) WriteText(w io.Writer) {
	name := r.Preset
	if name == "" {
		name = "(custom)"
	}
	if r.Invalid != "" {
		fmt.Fprintf(w, "policy %s is invalid: %s\n", name, r.Invalid)
		return
	}
	fmt.Fprintf(w, "policy %s\n", name)
	fmt.Fprintf(w, "abstraction: one principal, %s; every event kind; time advanced only to the instants where something can change\n", scopesText(r.Runs))
	for _, run := range r.Runs {
		fmt.Fprintf(w, "  %-8s %d source%s  %9d states  %9d expanded  %10d edges  depth %2d%s  %s\n",
			run.Role, run.Sources, plural(run.Sources), run.States, run.Expanded, run.Edges, run.Depth, fixText(run.Fixpoint), roundDur(run.Elapsed))
	}
	var explore time.Duration
	for _, run := range r.Runs {
		explore += run.Elapsed
	}
	if r.Fixpoint {
		fmt.Fprintf(w, "explored %d states, %d edges in %s: fixpoint reached (the abstraction is exhausted)\n", r.States, r.Edges, roundDur(explore))
	} else {
		fmt.Fprintf(w, "explored %d states, %d edges in %s: every path of at most %d steps checked (state budget; no fixpoint)\n", r.States, r.Edges, roundDur(explore), r.Depth)
	}
	fmt.Fprintln(w)
	for _, i := range r.Invariants {
		if i.Holds {
			fmt.Fprintf(w, "%-18s holds     %s\n", i.ID, i.ID.Describe())
			continue
		}
		ce := i.Counterexample
		fmt.Fprintf(w, "%-18s VIOLATED  %s\n", i.ID, i.ID.Describe())
		writeCounterexample(w, ce)
	}
	fmt.Fprintf(w, "%-18s (service) no auth event stops, pauses or deletes a recording: checked by the NVR service's tests\n", "INV-RECORDING")
	if n := r.NoDoS; n != nil {
		fmt.Fprintln(w)
		var depth []string
		for _, run := range n.Runs {
			depth = append(depth, fmt.Sprintf("%s: depth %d, %d states%s", run.Role, run.Depth, run.States, fixText(run.Fixpoint)))
		}
		if n.Holds {
			fmt.Fprintf(w, "%-18s holds     (attack search %s; familiar = right secret within %s)\n", PropNoDoS, strings.Join(depth, "; "), model.FormatDuration(n.Familiar))
		} else {
			fmt.Fprintf(w, "%-18s FAILS     a familiar source with the right secret is refused because of failures from other sources\n", PropNoDoS)
			writeCounterexample(w, n.Attack)
		}
	}
	if len(r.Budget) > 0 {
		if n := r.NoDoS; n == nil {
			fmt.Fprintln(w)
		}
		for _, b := range r.Budget {
			fmt.Fprintf(w, "%-18s %-8s one source: %s; all sources: %s (verified distinct wrong guesses in 24h)\n", PropBudget, b.Role, b.perSourceText(), b.allText())
		}
	}
	fmt.Fprintf(w, "\ntotal %s\n", roundDur(r.Elapsed))
}

func (b BudgetFigure) perSourceText() string {
	switch {
	case b.PerSourceUnbounded:
		return "unbounded"
	case b.PerSourceExact:
		return fmt.Sprint(b.PerSource)
	}
	return fmt.Sprintf("%d–%d (search bound reached)", b.PerSource, b.PerSourceUpper)
}

func (b BudgetFigure) allText() string {
	switch {
	case b.AllSourcesUnbounded:
		return "unbounded (no key limits an attacker with many sources)"
	case b.AllSourcesExact:
		return fmt.Sprint(b.AllSources)
	}
	return fmt.Sprintf("≥ %d (search bound reached)", b.AllSources)
}

func writeCounterexample(w io.Writer, ce *Counterexample) {
	if ce == nil {
		return
	}
	fmt.Fprintf(w, "  role %s, %d source%s: %s\n", ce.Role, ce.Sources, plural(ce.Sources), ce.Message)
	if ce.Err != "" {
		fmt.Fprintf(w, "  (no trace: %s)\n", ce.Err)
		return
	}
	fmt.Fprintf(w, "  shortest counterexample: %d steps, %d trace lines (replay with `latchsim replay` and the same policy; the last line is the violation):\n", ce.Steps, len(ce.Trace))
	fmt.Fprint(w, ce.TraceText())
	if ce.Replayed != nil {
		b, _ := json.Marshal(ce.Replayed)
		fmt.Fprintf(w, "  replayed last line: %s\n", b)
	}
}

func scopesText(runs []Run) string {
	seen := map[int]bool{}
	var parts []string
	for _, r := range runs {
		if !seen[r.Sources] {
			seen[r.Sources] = true
			parts = append(parts, fmt.Sprint(r.Sources))
		}
	}
	return strings.Join(parts, " and ") + " sources (source 1 familiar) and the console"
}

func plural(n int) string {
	if n == 1 {
		return ""
	}
	return "s"
}

func fixText(fix bool) string {
	if fix {
		return " (fixpoint)"
	}
	return " (bounded)"
}

func roundDur(d time.Duration) string {
	return d.Round(10 * time.Millisecond).String()
}
