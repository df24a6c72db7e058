package main

import (
	"io"

	"github.com/latchnvr/latch/internal/provecmd"
)

func proveCmd(prog string, args []string, stdout, stderr io.Writer) int {
	return provecmd.Run(prog, args, stdout, stderr)
}
