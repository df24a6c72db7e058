package proofs

import (
	"fmt"
	"strings"
	"testing"
)

// TestMutation is the explorer's self-test (DESIGN, Proofs): every mutant
// must be killed, on the invariant it was written to break, and every
// universal invariant must have a mutant — an invariant no mutant breaks is
// checking nothing.
func TestMutation(t *testing.T) {
	rs := RunMutants(MutationPolicy(), Options{Budget: budgetFor(40_000)})
	var b strings.Builder
	for _, r := range rs {
		status := "killed"
		if !r.Killed {
			status = "SURVIVED"
			t.Errorf("mutant %s (%s) survived %d states: %s", r.Name, r.Target, r.States, r.Description)
		}
		fmt.Fprintf(&b, "  %-32s %-18s %-8s %2d steps  %s\n", r.Name, r.Target, status, r.Steps, r.Message)
	}
	t.Logf("mutants:\n%s", b.String())
	b.Reset()
	for _, s := range MutationScore(rs) {
		if s.Total == 0 {
			t.Errorf("no mutant targets %s", s.ID)
		}
		fmt.Fprintf(&b, "  %-18s %d/%d\n", s.ID, s.Killed, s.Total)
	}
	t.Logf("mutation score per invariant:\n%s", b.String())
}
