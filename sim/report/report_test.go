package report

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/latchnvr/latch/model"
	"github.com/latchnvr/latch/model/policyfile"
	"github.com/latchnvr/latch/sim"
)

func run(t *testing.T, scenario, preset string) (*sim.Scenario, *sim.Result) {
	t.Helper()
	sc, err := sim.LoadScenario(scenario)
	if err != nil {
		t.Fatal(err)
	}
	p, _ := model.Preset(preset)
	r, err := sim.Run(sim.Config{Scenario: sc, Policy: p, PolicyInfo: sim.PolicyInfo{Preset: preset}, Seed: 1, Duration: 2 * 24 * time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	return sc, r
}

func nonEmpty(t *testing.T, dir string, names ...string) {
	t.Helper()
	for _, n := range names {
		fi, err := os.Stat(filepath.Join(dir, n))
		if err != nil || fi.Size() < 100 {
			t.Errorf("%s: %v (size %v)", n, err, fi)
		}
	}
}

func TestRunReport(t *testing.T) {
	sc, r := run(t, "brute-force", "latch")
	var b bytes.Buffer
	Header(&b, sc, r.Policy, r.Seed, r.Duration, r.Engine)
	Table(&b, r)
	Footer(&b, r)
	for _, want := range []string{"scenario  brute-force (built-in)", "policy    preset latch", "seed      1   duration 2d", "verified guesses, all accounts", "recording continuity", "reproduce: latchsim run --scenario brute-force --preset latch --duration 2d --seed 1"} {
		if !strings.Contains(b.String(), want) {
			t.Errorf("table lacks %q:\n%s", want, b.String())
		}
	}
	dir := t.TempDir()
	if err := WriteRun(dir, sc, r); err != nil {
		t.Fatal(err)
	}
	nonEmpty(t, dir, "report.md", "result.json", "daily.png", "daily.svg")
	var back sim.Result
	data, _ := os.ReadFile(filepath.Join(dir, "result.json"))
	if err := json.Unmarshal(data, &back); err != nil || back.TraceHash != r.TraceHash || back.Seed != 1 {
		t.Fatalf("result.json: %v %+v", err, back)
	}
}

func TestCompareReport(t *testing.T) {
	sc, _ := run(t, "dos", "latch")
	rs, err := sim.Compare(sim.Config{Scenario: sc, Seed: 1, Duration: 2*24*time.Hour + 6*time.Hour}, []string{"latch", "keycloak"}, nil, 2, nil)
	if err != nil {
		t.Fatal(err)
	}
	var b bytes.Buffer
	CompareTable(&b, rs)
	if !strings.Contains(b.String(), "victim avail") || strings.Count(b.String(), "\n") != 3 {
		t.Fatalf("compare table:\n%s", b.String())
	}
	dir := t.TempDir()
	if err := WriteCompare(dir, sc, rs); err != nil {
		t.Fatal(err)
	}
	nonEmpty(t, dir, "compare.md", "compare.json", "compare.csv", "compare.png", "compare.svg")
}

func TestSweepReportWritesAPolicyLatchAccepts(t *testing.T) {
	sc, _ := run(t, "brute-force", "latch")
	p, _ := model.Preset("latch")
	sr, err := sim.Sweep(sim.Config{Scenario: sc, Policy: p, PolicyInfo: sim.PolicyInfo{Preset: "latch"}, Seed: 1, Duration: 2 * 24 * time.Hour},
		[]sim.Vary{{Field: "pair.threshold", Values: []string{"3", "5"}}, {Field: "pair.base", Values: []string{"1m", "5m"}}}, 2, nil)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	if err := WriteSweep(dir, sc, sim.PolicyInfo{Preset: "latch"}, sr); err != nil {
		t.Fatal(err)
	}
	nonEmpty(t, dir, "sweep.csv", "sweep.md", "pareto.png", "pareto.svg", "recommended-policy.yaml")
	data, _ := os.ReadFile(filepath.Join(dir, "recommended-policy.yaml"))
	got, err := policyfile.Unmarshal(data)
	if err != nil {
		t.Fatalf("recommended policy does not read back: %v\n%s", err, data)
	}
	if got != sr.Cells[sr.Recommended].Policy {
		t.Fatalf("recommended policy changed on the way through the file")
	}
	csv, _ := os.ReadFile(filepath.Join(dir, "sweep.csv"))
	if lines := strings.Count(string(csv), "\n"); lines != 5 {
		t.Fatalf("sweep.csv has %d lines, want header + 4 cells", lines)
	}
}
