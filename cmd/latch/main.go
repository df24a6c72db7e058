// Command latch is the NVR that runs on the appliance (`latch serve`) and
// its local console: user, unlock, status, log, factory-reset and policy
// commands that act on the same data folder while the server runs, on the
// console channel (SPEC R-CONSOLE). It only parses flags and wires packages.
package main

import (
	"fmt"
	"io"
	"os"
)

// version is set by the linker in `make dist`.
var version = "dev"

const usage = `latch: network video recorder with a formally modelled login lockout

Usage:
  latch serve [flags]                      run the NVR (latch serve -h for flags)
  latch status [--data DIR]                device, cameras and every lock with its countdown
  latch user list|add|passwd|email|disable|enable [--data DIR] ...
  latch unlock USER [--source ADDR] | --all [--data DIR]
  latch log [--follow] [--user U] [--source S] [--outcome O] [--format text|json|csv] [--data DIR]
  latch factory-reset [--data DIR]         erase users, keys and settings; keep recordings
  latch policy show|validate|prove|set [--preset NAME | --policy FILE] [--set K=V]... [--data DIR]

Console commands ask for the master PIN or an admin's password on the
terminal (or read it from stdin when stdin is not a terminal).
`

func main() {
	os.Exit(run(os.Args[1:], os.Stdin, os.Stdout, os.Stderr))
}

func run(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return 2
	}
	c := &console{stdin: stdin, stdout: stdout, stderr: stderr}
	switch args[0] {
	case "serve":
		return serve(args[1:], stdout, stderr)
	case "status":
		return c.status(args[1:])
	case "user":
		return c.user(args[1:])
	case "unlock":
		return c.unlock(args[1:])
	case "log":
		return c.log(args[1:])
	case "factory-reset":
		return c.factoryReset(args[1:])
	case "policy":
		return c.policy(args[1:])
	case "version", "--version":
		fmt.Fprintln(stdout, "latch", version)
		return 0
	case "help", "-h", "--help":
		fmt.Fprint(stdout, usage)
		return 0
	}
	fmt.Fprintf(stderr, "latch: unknown command %q\n\n%s", args[0], usage)
	return 2
}
