package sim

import (
	"fmt"
	"slices"
	"strings"
	"testing"
)

func TestParseVary(t *testing.T) {
	for in, want := range map[string]Vary{
		"pair.threshold=3..6":     {"pair.threshold", []string{"3", "4", "5", "6"}},
		"pair.threshold=4..10/3":  {"pair.threshold", []string{"4", "7", "10"}},
		"pair.base=1m, 5m,15m":    {"pair.base", []string{"1m", "5m", "15m"}},
		"deny=3":                  {"deny", []string{"3"}},
		"principal.window=1h,24h": {"principal.window", []string{"1h", "24h"}},
	} {
		got, err := ParseVary(in)
		if err != nil || got.Field != want.Field || !slices.Equal(got.Values, want.Values) {
			t.Errorf("ParseVary(%q) = %+v, %v; want %+v", in, got, err, want)
		}
	}
	for _, bad := range []string{"pair.threshold", "=3..4", "pair.threshold=5..3", "pair.threshold=1..x", "x=1,,2", "x=1..5/0"} {
		if _, err := ParseVary(bad); err == nil {
			t.Errorf("ParseVary(%q): no error", bad)
		}
	}
}

// A sweep's cells are the same whatever the parallelism: each is its own
// deterministic run, and results keep grid order.
func TestSweepDeterministicPerCellRegardlessOfJobs(t *testing.T) {
	sc := mustScenario(t, "brute-force")
	base := Config{Scenario: sc, Policy: mustPreset(t, "latch"), PolicyInfo: PolicyInfo{Preset: "latch"}, Seed: testSeed, Duration: 2 * day}
	vary := []Vary{{"pair.threshold", []string{"3", "5", "8"}}, {"pair.cap", []string{"30s", "1h", "4h"}}}
	one, err := Sweep(base, vary, 1, nil)
	if err != nil {
		t.Fatal(err)
	}
	many, err := Sweep(base, vary, 4, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(one.Cells) != 9 || one.Recommended != many.Recommended || one.Recommended < 0 {
		t.Fatalf("%d cells, recommended %d and %d", len(one.Cells), one.Recommended, many.Recommended)
	}
	invalid := 0
	for i := range one.Cells {
		a, b := &one.Cells[i], &many.Cells[i]
		if !slices.Equal(a.Values, b.Values) || a.Pareto != b.Pareto || fmt.Sprint(a.Err) != fmt.Sprint(b.Err) {
			t.Fatalf("cell %d differs: %+v vs %+v", i, a, b)
		}
		if a.Err != nil {
			invalid++
			continue
		}
		if a.Result.TraceHash != b.Result.TraceHash {
			t.Fatalf("cell %d (%v), seed %d: trace hash %s with 1 job, %s with 4", i, a.Sets, testSeed, a.Result.TraceHash, b.Result.TraceHash)
		}
		// And the cell is the same as a lone run of its policy.
		if i == 4 {
			r := simulate(t, sc, "latch", 2, testSeed, func(c *Config) { c.Policy = a.Policy })
			if r.TraceHash != a.Result.TraceHash {
				t.Fatalf("cell %d: %s in the sweep, %s alone", i, a.Result.TraceHash, r.TraceHash)
			}
		}
	}
	// pair.cap 30s is below the 1 min base: validation rejects those cells.
	if invalid != 3 || !strings.Contains(one.Cells[0].Err.Error(), "pair.cap") {
		t.Fatalf("%d invalid cells, first error %v", invalid, one.Cells[0].Err)
	}
	if !one.Cells[one.Recommended].Pareto {
		t.Fatal("the recommended cell is not on the Pareto front")
	}
}

func TestRecommendPicksTheKnee(t *testing.T) {
	mk := func(g int64, m float64) Cell {
		r := &Result{}
		r.Metrics.Attack.Guesses, r.Metrics.Legit.MinutesPerUserYear = g, m
		return Cell{Result: r}
	}
	cells := []Cell{mk(100000, 0), mk(1000, 1), mk(10, 500), mk(5000, 2), {Err: fmt.Errorf("invalid")}}
	if got := Recommend(cells); got != 1 {
		t.Fatalf("recommended %d, want 1 (1000 guesses, 1 min)", got)
	}
	if !cells[0].Pareto || !cells[1].Pareto || !cells[2].Pareto || cells[3].Pareto {
		t.Fatalf("front: %v %v %v %v", cells[0].Pareto, cells[1].Pareto, cells[2].Pareto, cells[3].Pareto)
	}
}

func TestCompareEqualsLoneRuns(t *testing.T) {
	sc := mustScenario(t, "brute-force")
	base := Config{Scenario: sc, Seed: testSeed, Duration: 2 * day}
	rs, err := Compare(base, []string{"latch", "keycloak", "pam_faillock"}, []string{"trustTTL=7d"}, 3, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range rs {
		lone := simulate(t, sc, r.Policy.Preset, 2, testSeed, func(c *Config) {
			if err := c.Policy.Set("trustTTL=7d"); err != nil {
				t.Fatal(err)
			}
		})
		if lone.TraceHash != r.TraceHash {
			t.Fatalf("%s: %s in compare, %s alone", r.Policy.Preset, r.TraceHash, lone.TraceHash)
		}
	}
	if _, err := Compare(base, []string{"latch", "nope"}, nil, 1, nil); err == nil {
		t.Fatal("unknown preset accepted")
	}
}
