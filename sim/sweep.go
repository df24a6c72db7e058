package sim

import (
	"errors"
	"fmt"
	"math"
	"runtime"
	"strconv"
	"strings"
	"sync"

	"github.com/latchnvr/latch/model"
)

// runAll runs n configurations on jobs goroutines (each run on its own, so
// each is as deterministic as a lone run) and returns the results in
// order, whatever the parallelism.
func runAll(n, jobs int, config func(i int) (Config, error), done func(finished, total int)) ([]*Result, []error) {
	if jobs <= 0 {
		jobs = runtime.GOMAXPROCS(0)
	}
	res := make([]*Result, n)
	errs := make([]error, n)
	next := make(chan int)
	var wg sync.WaitGroup
	var mu sync.Mutex
	finished := 0
	for range min(jobs, max(n, 1)) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				c, err := config(i)
				if err == nil {
					res[i], err = Run(c)
				}
				errs[i] = err
				if done != nil {
					mu.Lock()
					finished++
					done(finished, n)
					mu.Unlock()
				}
			}
		}()
	}
	for i := range n {
		next <- i
	}
	close(next)
	wg.Wait()
	return res, errs
}

// Compare runs the same scenario and seed through each preset (with the
// same --set overrides applied to each) in parallel. Results are in the
// order of presets.
func Compare(base Config, presets, sets []string, jobs int, done func(finished, total int)) ([]*Result, error) {
	if len(presets) == 0 {
		return nil, errors.New("no presets to compare")
	}
	policies := make([]model.Policy, len(presets))
	for i, name := range presets {
		p, err := model.Preset(name)
		if err != nil {
			return nil, err
		}
		for _, s := range sets {
			if err := p.Set(s); err != nil {
				return nil, fmt.Errorf("preset %s: --set %s: %w", name, s, err)
			}
		}
		if err := p.Validate(); err != nil {
			return nil, fmt.Errorf("preset %s: %w", name, err)
		}
		policies[i] = p
	}
	res, errs := runAll(len(presets), jobs, func(i int) (Config, error) {
		c := base
		c.Policy = policies[i]
		c.PolicyInfo = PolicyInfo{Preset: presets[i], Sets: sets}
		c.Trace, c.Observe = nil, nil
		return c, nil
	}, done)
	for i, err := range errs {
		if err != nil {
			return nil, fmt.Errorf("preset %s: %w", presets[i], err)
		}
	}
	return res, nil
}

// Vary is one swept policy field and its values.
type Vary struct {
	Field  string
	Values []string
}

// MaxSweepCells bounds a sweep's grid.
const MaxSweepCells = 10000

// ParseVary reads "pair.threshold=3..10" (integers, inclusive),
// "pair.threshold=4..12/2" (with a step) or "pair.base=1m,5m,15m" (a list).
// The field is any name --set accepts; values are checked per cell.
func ParseVary(s string) (Vary, error) {
	field, vals, ok := strings.Cut(s, "=")
	field = strings.TrimSpace(field)
	if !ok || field == "" || vals == "" {
		return Vary{}, fmt.Errorf("--vary %q: want FIELD=A..B or FIELD=V1,V2,…", s)
	}
	v := Vary{Field: field}
	if lo, hi, ok := strings.Cut(vals, ".."); ok && !strings.Contains(vals, ",") {
		step := int64(1)
		if h, st, ok := strings.Cut(hi, "/"); ok {
			hi = h
			n, err := strconv.ParseInt(st, 10, 64)
			if err != nil || n <= 0 {
				return Vary{}, fmt.Errorf("--vary %q: the step must be a positive integer", s)
			}
			step = n
		}
		a, err1 := strconv.ParseInt(strings.TrimSpace(lo), 10, 64)
		b, err2 := strconv.ParseInt(strings.TrimSpace(hi), 10, 64)
		if err1 != nil || err2 != nil || b < a {
			return Vary{}, fmt.Errorf("--vary %q: a range is two integers A..B with A ≤ B", s)
		}
		if (b-a)/step+1 > MaxSweepCells {
			return Vary{}, fmt.Errorf("--vary %q: more than %d values", s, MaxSweepCells)
		}
		for x := a; x <= b; x += step {
			v.Values = append(v.Values, strconv.FormatInt(x, 10))
		}
		return v, nil
	}
	for _, x := range strings.Split(vals, ",") {
		if x = strings.TrimSpace(x); x == "" {
			return Vary{}, fmt.Errorf("--vary %q: empty value", s)
		}
		v.Values = append(v.Values, x)
	}
	return v, nil
}

// Cell is one point of a sweep's grid.
type Cell struct {
	Index  int
	Values []string // one per Vary, in order
	Sets   []string // FIELD=VALUE for each
	Policy model.Policy
	Result *Result
	Err    error // the policy was invalid, or the run failed
	Pareto bool
}

// SweepResult is a whole sweep.
type SweepResult struct {
	Vary  []Vary
	Cells []Cell
	// Recommended indexes Cells: the Pareto cell nearest the ideal (see
	// Recommend); -1 when no cell ran.
	Recommended int
}

// Sweep runs base under every combination of the varied fields (the first
// Vary changes slowest), on jobs goroutines. Each cell is deterministic
// and independent of jobs: same seed, same scenario, its own run.
func Sweep(base Config, vary []Vary, jobs int, done func(finished, total int)) (*SweepResult, error) {
	if len(vary) == 0 {
		return nil, errors.New("sweep: give at least one --vary")
	}
	total := 1
	for _, v := range vary {
		total *= len(v.Values)
		if total > MaxSweepCells {
			return nil, fmt.Errorf("sweep: more than %d cells", MaxSweepCells)
		}
	}
	sr := &SweepResult{Vary: vary, Cells: make([]Cell, total), Recommended: -1}
	for i := range sr.Cells {
		c := &sr.Cells[i]
		c.Index = i
		c.Policy = base.Policy
		rest := i
		c.Values = make([]string, len(vary))
		for k := len(vary) - 1; k >= 0; k-- {
			c.Values[k] = vary[k].Values[rest%len(vary[k].Values)]
			rest /= len(vary[k].Values)
		}
		for k, v := range vary {
			set := v.Field + "=" + c.Values[k]
			c.Sets = append(c.Sets, set)
			if c.Err == nil {
				if err := c.Policy.Set(set); err != nil {
					c.Err = fmt.Errorf("--set %s: %w", set, err)
				}
			}
		}
		if c.Err == nil {
			c.Err = c.Policy.Validate()
		}
	}
	res, errs := runAll(total, jobs, func(i int) (Config, error) {
		c := &sr.Cells[i]
		if c.Err != nil {
			return Config{}, c.Err
		}
		cfg := base
		cfg.Policy = c.Policy
		cfg.PolicyInfo.Sets = append(append([]string(nil), base.PolicyInfo.Sets...), c.Sets...)
		cfg.Trace, cfg.Observe, cfg.Progress = nil, nil, nil
		return cfg, nil
	}, done)
	ran := 0
	for i := range sr.Cells {
		sr.Cells[i].Result, sr.Cells[i].Err = res[i], errs[i]
		if res[i] != nil {
			ran++
		}
	}
	if ran == 0 {
		return sr, fmt.Errorf("sweep: no cell ran; the first error: %w", sr.Cells[0].Err)
	}
	sr.Recommended = Recommend(sr.Cells)
	return sr, nil
}

// SweepX and SweepY are the objectives a sweep trades off, both minimised:
// the attackers' verified guesses (all accounts), and the minutes
// legitimate users spent locked out per user-year.
func SweepX(r *Result) float64 { return float64(r.Metrics.Attack.Guesses) }
func SweepY(r *Result) float64 { return r.Metrics.Legit.MinutesPerUserYear }

// Recommend marks the Pareto front of the cells that ran (no other cell
// is at least as good on both objectives and better on one) and returns
// the front's knee: the cell nearest the ideal corner once each objective
// is scaled to [0, 1] over the front, guesses on a log scale (they span
// orders of magnitude). Ties go to the lower index.
func Recommend(cells []Cell) int {
	type pt struct {
		i    int
		x, y float64
	}
	var pts []pt
	for i := range cells {
		cells[i].Pareto = false
		if r := cells[i].Result; r != nil {
			pts = append(pts, pt{i, SweepX(r), SweepY(r)})
		}
	}
	var front []pt
	for _, a := range pts {
		dominated := false
		for _, b := range pts {
			if b.x <= a.x && b.y <= a.y && (b.x < a.x || b.y < a.y) {
				dominated = true
				break
			}
		}
		if !dominated {
			front = append(front, a)
			cells[a.i].Pareto = true
		}
	}
	if len(front) == 0 {
		return -1
	}
	lx := func(x float64) float64 { return math.Log10(1 + x) }
	minX, maxX, minY, maxY := math.Inf(1), math.Inf(-1), math.Inf(1), math.Inf(-1)
	for _, p := range front {
		minX, maxX = math.Min(minX, lx(p.x)), math.Max(maxX, lx(p.x))
		minY, maxY = math.Min(minY, p.y), math.Max(maxY, p.y)
	}
	norm := func(v, lo, hi float64) float64 {
		if hi <= lo {
			return 0
		}
		return (v - lo) / (hi - lo)
	}
	best, bestD := -1, math.Inf(1)
	for _, p := range front {
		dx, dy := norm(lx(p.x), minX, maxX), norm(p.y, minY, maxY)
		if d := dx*dx + dy*dy; d < bestD || (d == bestD && p.i < best) {
			best, bestD = p.i, d
		}
	}
	return best
}
