// Package provecmd is the one implementation of `latch policy prove` and
// `latchsim prove`: flag parsing and wiring of proofs.Prove, nothing else.
package provecmd

import (
	"flag"
	"fmt"
	"io"

	"github.com/latchnvr/latch/internal/cli"
	"github.com/latchnvr/latch/proofs"
)

// Run is `latch policy prove` (and `latchsim prove`): validate, explore,
// report. Exit 0 when every universal invariant holds, 1 when one fails, 2
// when the policy is invalid.
func Run(prog string, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet(prog+" prove", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var pf cli.PolicyFlags
	pf.Register(fs)
	asJSON := fs.Bool("json", false, "print the report as JSON")
	budget := fs.Int("budget", 0, "states each exploration may expand (0: the default, proofs.DefaultBudget)")
	depth := fs.Int("depth", 0, "stop each exploration after this many steps (0: only the budget bounds it)")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	p, err := pf.Build()
	if err != nil {
		fmt.Fprintf(stderr, "%s prove: %v\n", prog, err)
		return 2
	}
	r := proofs.Prove(p, proofs.Options{Budget: *budget, MaxDepth: *depth})
	if *asJSON {
		if err := r.WriteJSON(stdout); err != nil {
			return 1
		}
	} else {
		r.WriteText(stdout)
		if !r.OK() || (r.NoDoS != nil && !r.NoDoS.Holds) {
			fmt.Fprintf(stdout, "\nTo replay a trace, save its JSON lines to a file and run `latchsim replay` with the same --preset/--policy/--set flags and the file.\n")
		}
	}
	if r.Invalid != "" {
		return 2
	}
	if !r.OK() {
		return 1
	}
	return 0
}
