// Command latchsim is the workstation tool for lock-policy tuning: it
// replays traces through the lock model (and, as the simulator lands, runs
// scenarios, sweeps and proofs). It only parses flags and wires packages.
package main

import (
	"bufio"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"

	"github.com/latchnvr/latch/internal/cli"
	"github.com/latchnvr/latch/model"
	"github.com/latchnvr/latch/model/world"
)

const usage = `latchsim: lock-policy simulator, prover and replay

Usage:
  latchsim run --scenario NAME|FILE [--preset NAME | --policy FILE] [--set K=V]... [--duration 365d] [--seed N]
      Simulate a site's users and attackers through a policy; metrics, --json, --report DIR, --trace FILE.
  latchsim compare --scenario NAME --presets latch,annke,keycloak,...
      The same scenario and seed through each policy: one table, one chart.
  latchsim sweep --scenario NAME --vary pair.threshold=3..10 --vary pair.base=1m,5m ...
      A parameter grid in parallel; CSV, a Pareto chart and the recommended policy file.
  latchsim scenarios
      List the built-in scenarios.
  latchsim prove [--preset NAME | --policy FILE] [--set K=V]... [--json]
      Model-check a policy: every SPEC §8 invariant, P-NODOS and P-BUDGET.
  latchsim replay [--preset NAME | --policy FILE] [--set K=V]... [TRACE] < trace.jsonl
      Replay a SPEC §9 trace through the model; one JSON line out per line in.
  latchsim policy show [--preset NAME | --policy FILE] [--set K=V]...
      Print the policy as a YAML file.
  latchsim presets
      List the presets.
`

func main() {
	os.Exit(run(os.Args[1:], os.Stdin, os.Stdout, os.Stderr))
}

func run(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return 2
	}
	switch args[0] {
	case "replay":
		return replay(args[1:], stdin, stdout, stderr)
	case "run":
		return runCmd(args[1:], stdout, stderr)
	case "compare":
		return compareCmd(args[1:], stdout, stderr)
	case "sweep":
		return sweepCmd(args[1:], stdout, stderr)
	case "scenarios":
		return scenariosCmd(args[1:], stdout, stderr)
	case "prove":
		return proveCmd("latchsim", args[1:], stdout, stderr)
	case "policy":
		return policyCmd("latchsim", args[1:], stdout, stderr)
	case "presets":
		for _, n := range model.PresetNames() {
			fmt.Fprintln(stdout, n)
		}
		return 0
	case "help", "-h", "--help":
		fmt.Fprint(stdout, usage)
		return 0
	}
	fmt.Fprintf(stderr, "latchsim: unknown command %q\n\n%s", args[0], usage)
	return 2
}

func replay(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("latchsim replay", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var pf cli.PolicyFlags
	pf.Register(fs)
	if err := fs.Parse(args); err != nil {
		return 2
	}
	p, err := pf.Build()
	if err != nil {
		fmt.Fprintf(stderr, "latchsim replay: %v\n", err)
		return 2
	}
	in := stdin
	if fs.NArg() > 1 {
		fmt.Fprintln(stderr, "latchsim replay: at most one trace file")
		return 2
	}
	if fs.NArg() == 1 {
		f, err := os.Open(fs.Arg(0))
		if err != nil {
			fmt.Fprintf(stderr, "latchsim replay: %v\n", err)
			return 2
		}
		defer f.Close()
		in = f
	}
	out := bufio.NewWriter(stdout)
	defer out.Flush()
	enc := json.NewEncoder(out)
	enc.SetEscapeHTML(false)
	err = world.Run(p, in, func(r world.Result) error { return enc.Encode(r) })
	if err != nil {
		out.Flush()
		fmt.Fprintf(stderr, "latchsim replay: %v\n", err)
		if errors.Is(err, io.ErrShortWrite) {
			return 1
		}
		return 1
	}
	return 0
}
