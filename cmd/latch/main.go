// Command latch is the NVR that runs on the appliance, and its local
// console. It only parses flags and wires packages.
package main

import (
	"fmt"
	"io"
	"os"
)

const usage = `latch: network video recorder with a formally modelled login lockout

Usage:
  latch serve                 run the NVR
  latch policy show|validate [--preset NAME | --policy FILE] [--set K=V]...
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
	case "serve":
		return serve(args[1:], stdout, stderr)
	case "policy":
		return policyCmd("latch", args[1:], stdout, stderr)
	case "help", "-h", "--help":
		fmt.Fprint(stdout, usage)
		return 0
	}
	fmt.Fprintf(stderr, "latch: unknown command %q\n\n%s", args[0], usage)
	return 2
}

func serve(args []string, stdout, stderr io.Writer) int {
	fmt.Fprintln(stdout, "latch serve: the NVR service is being assembled (issue 4/5); the lock model is ready: try `latchsim replay`.")
	return 0
}
