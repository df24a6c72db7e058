package main

import (
	"bytes"
	"io"

	"github.com/latchnvr/latch/internal/provecmd"
	"github.com/latchnvr/latch/model"
	"github.com/latchnvr/latch/proofs"
)

// proveCmd is `latch policy prove`; latchsim's prove is the same code.
func proveCmd(prog string, args []string, stdout, stderr io.Writer) int {
	return provecmd.Run(prog, args, stdout, stderr)
}

// proveSummary is what the web UI's policy editor and `latch policy set`
// show: the report's text and whether every invariant holds.
func proveSummary(p model.Policy) (string, bool) {
	r := proofs.Prove(p, proofs.Options{})
	var b bytes.Buffer
	r.WriteText(&b)
	return b.String(), r.OK()
}
