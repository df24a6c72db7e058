package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/schollz/progressbar/v3"

	"github.com/latchnvr/latch/internal/cli"
	"github.com/latchnvr/latch/model"
	"github.com/latchnvr/latch/sim"
	"github.com/latchnvr/latch/sim/report"
	// The "service" engine (--engine service): nvr's auth service on
	// SQLite with a simulated clock.
	_ "github.com/latchnvr/latch/sim/service"
)

// simUsage documents the simulator's commands, for the main usage text.
const simUsage = `  latchsim run --scenario NAME|FILE [--preset NAME | --policy FILE] [--set K=V]...
               [--duration 365d] [--seed N] [--engine model] [--trace FILE]
               [--check-determinism] [--json] [--report DIR]
      Simulate a scenario under one policy: metrics table, JSON or a report.
  latchsim compare --scenario NAME|FILE [--presets latch,annke,…] [--set K=V]...
               [--duration D] [--seed N] [--json] [--report DIR]
      The same scenario and seed through each preset: one table, one chart.
  latchsim sweep --scenario NAME|FILE [--preset|--policy] [--set K=V]...
               --vary FIELD=A..B|V1,V2,… [--vary …]... [--out DIR] [--jobs N]
      A grid of policies on all cores: CSV, Pareto chart, recommended policy.
  latchsim scenarios [show NAME]
      List the built-in scenarios, or print one as a template.
`

// simFlags are the flags every simulation command shares.
type simFlags struct {
	scenario string
	duration string
	seed     uint64
	engine   string
	json     bool
	report   string
}

func (f *simFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&f.scenario, "scenario", "", "a built-in scenario `name` (latchsim scenarios) or a YAML file")
	fs.StringVar(&f.duration, "duration", "", "virtual time to simulate, e.g. 30d, 1y, 12h (default: the scenario's, else 365d)")
	fs.Uint64Var(&f.seed, "seed", 1, "seed of the run's random numbers (one seed, one trace)")
	fs.StringVar(&f.engine, "engine", "model", "engine: "+strings.Join(sim.EngineNames(), ", "))
	fs.BoolVar(&f.json, "json", false, "write the results as JSON to stdout")
	fs.StringVar(&f.report, "report", "", "write a Markdown report with PNG and SVG plots into `dir`")
}

// config loads the scenario and the shared settings.
func (f *simFlags) config() (sim.Config, error) {
	var c sim.Config
	if f.scenario == "" {
		return c, sim.ErrNoScenario
	}
	sc, err := sim.LoadScenario(f.scenario)
	if err != nil {
		return c, err
	}
	c.Scenario, c.Seed, c.Engine = sc, f.seed, f.engine
	if !slices.Contains(sim.EngineNames(), f.engine) {
		return c, fmt.Errorf("unknown engine %q (want one of %s)", f.engine, strings.Join(sim.EngineNames(), ", "))
	}
	if f.duration != "" {
		if c.Duration, err = sim.ParseDuration(f.duration); err != nil {
			return c, fmt.Errorf("--duration: %w", err)
		}
		if c.Duration <= 0 {
			return c, errors.New("--duration must be positive")
		}
	}
	return c, nil
}

func duration(c *sim.Config) sim.Duration {
	switch {
	case c.Duration > 0:
		return sim.Duration(c.Duration)
	case c.Scenario.Duration > 0:
		return c.Scenario.Duration
	}
	return sim.Duration(sim.DefaultDuration)
}

func policyInfo(pf *cli.PolicyFlags, p model.Policy) sim.PolicyInfo {
	return sim.PolicyInfo{Preset: p.Preset, File: pf.File, Sets: append([]string(nil), pf.Sets...)}
}

func newFlagSet(name string, stderr io.Writer, usage string) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintf(stderr, "Usage: %s\n\nFlags:\n", usage)
		fs.PrintDefaults()
	}
	return fs
}

// runCmd is `latchsim run`.
func runCmd(args []string, stdout, stderr io.Writer) int {
	fs := newFlagSet("latchsim run", stderr, "latchsim run --scenario NAME|FILE [flags]")
	var sf simFlags
	sf.register(fs)
	var pf cli.PolicyFlags
	pf.Register(fs)
	traceFile := fs.String("trace", "", "write the run's SPEC §9 trace to `file` (latchsim replay reproduces it)")
	check := fs.Bool("check-determinism", false, "run twice and require equal trace hashes")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "latchsim run: unexpected argument %q\n", fs.Arg(0))
		return 2
	}
	c, err := sf.config()
	if err != nil {
		fmt.Fprintf(stderr, "latchsim run: %v\n", err)
		return 2
	}
	if c.Policy, err = pf.Build(); err != nil {
		fmt.Fprintf(stderr, "latchsim run: %v\n", err)
		return 2
	}
	c.PolicyInfo = policyInfo(&pf, c.Policy)
	head := stdout
	if sf.json {
		head = stderr
	}
	report.Header(head, c.Scenario, c.PolicyInfo, c.Seed, duration(&c), c.Engine)
	if c.Policy.Disabled {
		fmt.Fprintln(head, "WARNING: protection is disabled (enabled: false): no key ever locks")
	}
	var tf *os.File
	if *traceFile != "" {
		if tf, err = os.Create(*traceFile); err != nil {
			fmt.Fprintf(stderr, "latchsim run: %v\n", err)
			return 1
		}
		defer tf.Close()
		c.Trace = tf
	}
	bar := newProgress(stderr, "simulating "+c.Scenario.Name, 1000)
	c.Progress = func(done, total time.Duration) { bar.set(int64(1000 * float64(done) / float64(total))) }
	var r *sim.Result
	if *check {
		var r2 *sim.Result
		r, r2, err = sim.CheckDeterminism(c)
		bar.finish()
		if err == nil && r.TraceHash != r2.TraceHash {
			fmt.Fprintf(stderr, "latchsim run: NOT DETERMINISTIC: trace hash %s then %s (seed %d, %s)\n", r.TraceHash, r2.TraceHash, c.Seed, r.Reproduce())
			return 1
		}
		if err == nil {
			fmt.Fprintf(head, "determinism: two runs, trace hash %s both times\n", r.TraceHash)
		}
	} else {
		r, err = sim.Run(c)
		bar.finish()
	}
	if err != nil {
		fmt.Fprintf(stderr, "latchsim run: %v\n", err)
		return 1
	}
	if tf != nil {
		if err := tf.Close(); err != nil {
			fmt.Fprintf(stderr, "latchsim run: trace: %v\n", err)
			return 1
		}
		fmt.Fprintf(head, "trace written to %s (reproduce: %s)\n", *traceFile, strings.Join(append(append([]string{"latchsim replay"}, replayFlags(&pf)...), *traceFile), " "))
	}
	if sf.json {
		report.JSON(stdout, r)
	} else {
		fmt.Fprintln(stdout)
		report.Table(stdout, r)
		fmt.Fprintln(stdout)
		report.Footer(stdout, r)
	}
	if sf.report != "" {
		if err := report.WriteRun(sf.report, c.Scenario, r); err != nil {
			fmt.Fprintf(stderr, "latchsim run: report: %v\n", err)
			return 1
		}
		fmt.Fprintf(head, "report written to %s\n", filepath.Join(sf.report, "report.md"))
	}
	return 0
}

func replayFlags(pf *cli.PolicyFlags) []string {
	var parts []string
	if pf.File != "" {
		parts = append(parts, "--policy "+pf.File)
	} else if pf.Preset != "" {
		parts = append(parts, "--preset "+pf.Preset)
	}
	for _, s := range pf.Sets {
		parts = append(parts, "--set "+s)
	}
	return parts
}

// compareCmd is `latchsim compare`.
func compareCmd(args []string, stdout, stderr io.Writer) int {
	fs := newFlagSet("latchsim compare", stderr, "latchsim compare --scenario NAME|FILE [flags]")
	var sf simFlags
	sf.register(fs)
	presets := fs.String("presets", strings.Join(model.PresetNames(), ","), "comma-separated `presets` to compare")
	var sets cli.Strings
	fs.Var(&sets, "set", "override a field in every preset: `NAME=VALUE`; repeatable")
	jobs := fs.Int("jobs", runtime.GOMAXPROCS(0), "runs in parallel")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "latchsim compare: unexpected argument %q\n", fs.Arg(0))
		return 2
	}
	c, err := sf.config()
	if err != nil {
		fmt.Fprintf(stderr, "latchsim compare: %v\n", err)
		return 2
	}
	var names []string
	for _, n := range strings.Split(*presets, ",") {
		if n = strings.TrimSpace(n); n != "" {
			names = append(names, n)
		}
	}
	head := stdout
	if sf.json {
		head = stderr
	}
	report.Header(head, c.Scenario, sim.PolicyInfo{Preset: strings.Join(names, ","), Sets: sets}, c.Seed, duration(&c), c.Engine)
	bar := newProgress(stderr, "comparing", int64(len(names)))
	rs, err := sim.Compare(c, names, sets, *jobs, func(done, total int) { bar.set(int64(done)) })
	bar.finish()
	if err != nil {
		fmt.Fprintf(stderr, "latchsim compare: %v\n", err)
		return 1
	}
	if sf.json {
		report.JSON(stdout, rs)
	} else {
		fmt.Fprintln(stdout)
		report.CompareTable(stdout, rs)
		fmt.Fprintln(stdout, "\nuy: per legitimate user-year; verified guesses: wrong passwords the attackers got checked; P: probability of compromise")
		var att, secs float64
		for _, r := range rs {
			att += float64(r.Attempts)
			secs += r.Speed.Seconds
		}
		fmt.Fprintf(stdout, "%d runs, %s attempts, %.1f s of run time (%s attempts/s per run)\n", len(rs), report.Int(int64(att)), secs, report.Int(int64(att/secs)))
	}
	if sf.report != "" {
		if err := report.WriteCompare(sf.report, c.Scenario, rs); err != nil {
			fmt.Fprintf(stderr, "latchsim compare: report: %v\n", err)
			return 1
		}
		fmt.Fprintf(head, "report written to %s\n", filepath.Join(sf.report, "compare.md"))
	}
	return 0
}

// sweepCmd is `latchsim sweep`.
func sweepCmd(args []string, stdout, stderr io.Writer) int {
	fs := newFlagSet("latchsim sweep", stderr, "latchsim sweep --scenario NAME|FILE --vary FIELD=A..B|V1,V2,… [flags]")
	var sf simFlags
	sf.register(fs)
	var pf cli.PolicyFlags
	pf.Register(fs)
	var varies cli.Strings
	fs.Var(&varies, "vary", "sweep a policy field: `FIELD=A..B` (integers), FIELD=A..B/STEP or FIELD=V1,V2,…; repeatable")
	out := fs.String("out", "", "write sweep.csv, sweep.md, pareto.{png,svg} and recommended-policy.yaml into `dir` (default latchsim-sweep-SCENARIO)")
	jobs := fs.Int("jobs", runtime.GOMAXPROCS(0), "cells in parallel")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "latchsim sweep: unexpected argument %q\n", fs.Arg(0))
		return 2
	}
	if sf.report != "" && *out == "" {
		*out = sf.report
	}
	c, err := sf.config()
	if err != nil {
		fmt.Fprintf(stderr, "latchsim sweep: %v\n", err)
		return 2
	}
	if c.Policy, err = pf.Build(); err != nil {
		fmt.Fprintf(stderr, "latchsim sweep: %v\n", err)
		return 2
	}
	c.PolicyInfo = policyInfo(&pf, c.Policy)
	var vs []sim.Vary
	for _, v := range varies {
		pv, err := sim.ParseVary(v)
		if err != nil {
			fmt.Fprintf(stderr, "latchsim sweep: %v\n", err)
			return 2
		}
		vs = append(vs, pv)
	}
	if len(vs) == 0 {
		fmt.Fprintln(stderr, "latchsim sweep: give at least one --vary, e.g. --vary pair.threshold=3..10 --vary pair.base=1m,5m,15m")
		return 2
	}
	if *out == "" {
		*out = "latchsim-sweep-" + c.Scenario.Name
	}
	head := stdout
	if sf.json {
		head = stderr
	}
	report.Header(head, c.Scenario, c.PolicyInfo, c.Seed, duration(&c), c.Engine)
	cells := 1
	for _, v := range vs {
		cells *= len(v.Values)
		fmt.Fprintf(head, "vary      %s = %s\n", v.Field, strings.Join(v.Values, ", "))
	}
	bar := newProgress(stderr, "sweeping", int64(cells))
	start := time.Now()
	sr, err := sim.Sweep(c, vs, *jobs, func(done, total int) { bar.set(int64(done)) })
	bar.finish()
	if err != nil {
		fmt.Fprintf(stderr, "latchsim sweep: %v\n", err)
		return 1
	}
	if err := report.WriteSweep(*out, c.Scenario, c.PolicyInfo, sr); err != nil {
		fmt.Fprintf(stderr, "latchsim sweep: %v\n", err)
		return 1
	}
	if sf.json {
		type cell struct {
			Cell        int         `json:"cell"`
			Sets        []string    `json:"sets"`
			Error       string      `json:"error,omitempty"`
			Pareto      bool        `json:"pareto"`
			Recommended bool        `json:"recommended"`
			Result      *sim.Result `json:"result,omitempty"`
		}
		var cs []cell
		for i := range sr.Cells {
			x := &sr.Cells[i]
			e := ""
			if x.Err != nil {
				e = x.Err.Error()
			}
			cs = append(cs, cell{Cell: x.Index, Sets: x.Sets, Error: e, Pareto: x.Pareto, Recommended: i == sr.Recommended, Result: x.Result})
		}
		report.JSON(stdout, cs)
	} else {
		fmt.Fprintln(stdout)
		report.SweepTable(stdout, sr)
		fmt.Fprintf(stdout, "%d cells in %.1f s on %d jobs\n", cells, time.Since(start).Seconds(), *jobs)
	}
	fmt.Fprintf(head, "written to %s: sweep.csv, sweep.md, pareto.png, pareto.svg", *out)
	if sr.Recommended >= 0 {
		fmt.Fprintf(head, ", recommended-policy.yaml (deploy: latch policy validate --policy %s)", filepath.Join(*out, "recommended-policy.yaml"))
	}
	fmt.Fprintln(head)
	return 0
}

// scenariosCmd is `latchsim scenarios [show NAME]`.
func scenariosCmd(args []string, stdout, stderr io.Writer) int {
	switch {
	case len(args) == 0:
		for _, n := range sim.BuiltinNames() {
			sc, err := sim.LoadScenario(n)
			if err != nil {
				fmt.Fprintf(stderr, "latchsim scenarios: built-in %s: %v\n", n, err)
				return 1
			}
			fmt.Fprintf(stdout, "%-15s %s\n", n, "default duration "+sc.Duration.String())
			for _, l := range wrap(sc.Description, 72) {
				fmt.Fprintf(stdout, "  %s\n", l)
			}
		}
		fmt.Fprintln(stdout, "\nlatchsim scenarios show NAME prints one as a YAML template; run any file with --scenario FILE.")
		return 0
	case len(args) == 2 && args[0] == "show":
		data, ok := sim.BuiltinYAML(args[1])
		if !ok {
			fmt.Fprintf(stderr, "latchsim scenarios: unknown scenario %q (want one of %s)\n", args[1], strings.Join(sim.BuiltinNames(), ", "))
			return 2
		}
		stdout.Write(data)
		return 0
	}
	fmt.Fprintln(stderr, "Usage: latchsim scenarios [show NAME]")
	return 2
}

func wrap(s string, width int) []string {
	var lines []string
	line := ""
	for _, w := range strings.Fields(s) {
		if line != "" && len(line)+1+len(w) > width {
			lines = append(lines, line)
			line = ""
		}
		if line != "" {
			line += " "
		}
		line += w
	}
	if line != "" {
		lines = append(lines, line)
	}
	return lines
}

// progress is a progress bar that appears only when a job has run for
// more than a second and stderr is a terminal.
type progress struct {
	mu    sync.Mutex
	w     io.Writer
	on    bool
	start time.Time
	desc  string
	max   int64
	bar   *progressbar.ProgressBar
}

func newProgress(w io.Writer, desc string, max int64) *progress {
	return &progress{w: w, on: isTerminal(w), start: time.Now(), desc: desc, max: max}
}

func (p *progress) set(v int64) {
	if !p.on {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.bar == nil {
		if time.Since(p.start) < time.Second {
			return
		}
		p.bar = progressbar.NewOptions64(p.max, progressbar.OptionSetWriter(p.w), progressbar.OptionSetDescription(p.desc),
			progressbar.OptionThrottle(100*time.Millisecond), progressbar.OptionClearOnFinish(), progressbar.OptionSetPredictTime(true),
			progressbar.OptionShowElapsedTimeOnFinish(), progressbar.OptionSetWidth(40))
	}
	p.bar.Set64(v)
}

func (p *progress) finish() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.bar != nil {
		p.bar.Finish()
		p.bar = nil
		p.on = false
	}
}

func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	fi, err := f.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0
}
