package model

import (
	"flag"
	"os"
	"testing"
)

var update = flag.Bool("update", false, "rewrite docs/state-machine.dot from the stateless machine")

// The committed diagram is generated from the one transition table; a stale
// copy would document a machine that does not exist.
func TestStateGraphIsFresh(t *testing.T) {
	const path = "../docs/state-machine.dot"
	got := StateGraph()
	if *update {
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run make graph)", err)
	}
	if string(want) != got {
		t.Fatalf("%s is stale: run make graph", path)
	}
	// Stateless sorts with an unstable sort; the output must still be
	// stable across rebuilds for the file to be a fair golden.
	for i := 0; i < 20; i++ {
		if newMachine().ToGraph() != got {
			t.Fatal("ToGraph output is not stable across rebuilds")
		}
	}
}
