package sim

import (
	"testing"
	"time"

	"github.com/latchnvr/latch/model"
)

// testSeed is the seed every test uses unless it says otherwise; failures
// print it with the command that repeats the run.
const testSeed = 1

func mustScenario(t testing.TB, name string) *Scenario {
	t.Helper()
	sc, err := LoadScenario(name)
	if err != nil {
		t.Fatalf("scenario %s: %v", name, err)
	}
	return sc
}

func mustPreset(t testing.TB, name string) model.Policy {
	t.Helper()
	p, err := model.Preset(name)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// simulate runs a scenario for some virtual days under a preset.
func simulate(t testing.TB, sc *Scenario, preset string, days float64, seed uint64, mod func(*Config)) *Result {
	t.Helper()
	c := Config{Scenario: sc, Policy: mustPreset(t, preset), PolicyInfo: PolicyInfo{Preset: preset}, Seed: seed,
		Duration: time.Duration(days * float64(24*time.Hour))}
	if mod != nil {
		mod(&c)
	}
	r, err := Run(c)
	if err != nil {
		t.Fatalf("%s under %s, seed %d: %v", sc.Name, preset, seed, err)
	}
	return r
}
