package main

import (
	"flag"
	"fmt"
	"io"

	"github.com/latchnvr/latch/internal/cli"
	"github.com/latchnvr/latch/model/policyfile"
)

// policyCmd implements "policy show" and "policy validate".
func policyCmd(prog string, args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprintf(stderr, "%s policy: want show or validate\n", prog)
		return 2
	}
	fs := flag.NewFlagSet(prog+" policy "+args[0], flag.ContinueOnError)
	fs.SetOutput(stderr)
	var pf cli.PolicyFlags
	pf.Register(fs)
	if err := fs.Parse(args[1:]); err != nil {
		return 2
	}
	p, err := pf.Build()
	if err != nil {
		fmt.Fprintf(stderr, "%s policy %s: %v\n", prog, args[0], err)
		return 2
	}
	switch args[0] {
	case "show":
		stdout.Write(policyfile.Marshal(p))
	case "validate":
		fmt.Fprintln(stdout, "policy is valid")
		if p.Disabled {
			fmt.Fprintln(stdout, "WARNING: protection is disabled (enabled: false): no key ever locks")
		}
	default:
		fmt.Fprintf(stderr, "%s policy: unknown subcommand %q (want show or validate)\n", prog, args[0])
		return 2
	}
	return 0
}
