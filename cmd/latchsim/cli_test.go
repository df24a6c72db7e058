package main

// latchsim as an operator uses it (issue #6): run, determinism, a trace
// that replays to the same decisions, compare, sweep (whose recommended
// policy `latch` must accept), and errors that name the line and column.

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/latchnvr/latch/model/policyfile"
)

func latchsim(t *testing.T, stdin string, args ...string) (int, string, string) {
	t.Helper()
	var o, e bytes.Buffer
	code := run(args, strings.NewReader(stdin), &o, &e)
	return code, o.String(), e.String()
}

func mustSim(t *testing.T, args ...string) string {
	t.Helper()
	code, out, errOut := latchsim(t, "", args...)
	if code != 0 {
		t.Fatalf("latchsim %s: exit %d\n%s\n%s", strings.Join(args, " "), code, out, errOut)
	}
	return out
}

type runJSON struct {
	Seed      uint64 `json:"seed"`
	TraceHash string `json:"trace_hash"`
	Attempts  int64  `json:"attempts"`
	Metrics   struct {
		Victim struct {
			Availability float64 `json:"availability"`
		} `json:"victim"`
	} `json:"metrics"`
}

func TestRunIsDeterministicAndItsTraceReplays(t *testing.T) {
	dir := t.TempDir()
	trace := filepath.Join(dir, "home.jsonl")
	args := []string{"run", "--scenario", "home", "--duration", "20d", "--seed", "7", "--json"}
	var a, b runJSON
	if err := json.Unmarshal([]byte(mustSim(t, append(args, "--trace", trace)...)), &a); err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal([]byte(mustSim(t, args...)), &b); err != nil {
		t.Fatal(err)
	}
	if a.Seed != 7 || a.TraceHash == "" || a.TraceHash != b.TraceHash || a.Attempts == 0 {
		t.Fatalf("seed 7 twice: %+v and %+v", a, b)
	}
	mustSim(t, "run", "--scenario", "home", "--duration", "5d", "--check-determinism")

	// The trace replays through the model, one answer per line: the file
	// one command writes is one the other reads (that the answers equal the
	// run's decisions is sim's TestTraceReplaysExactly).
	in, err := os.ReadFile(trace)
	if err != nil {
		t.Fatal(err)
	}
	code, out, errOut := latchsim(t, string(in), "replay", "--preset", "latch")
	if code != 0 {
		t.Fatalf("replay: exit %d: %s", code, errOut)
	}
	if got, want := strings.Count(out, "\n"), strings.Count(string(in), "\n"); got != want || want == 0 {
		t.Fatalf("replay wrote %d lines for %d", got, want)
	}
}

// The headline: under a lockout-DoS the latch preset keeps the admin
// available where per-user presets do not.
func TestCompareDoS(t *testing.T) {
	out := mustSim(t, "compare", "--scenario", "dos", "--duration", "3d", "--presets", "latch,pam_faillock", "--json")
	var rows []struct {
		Policy struct {
			Preset string `json:"preset"`
		} `json:"policy"`
		runJSON
	}
	if err := json.Unmarshal([]byte(out), &rows); err != nil || len(rows) != 2 {
		t.Fatalf("compare --json: %v\n%s", err, out)
	}
	avail := map[string]float64{}
	for _, r := range rows {
		avail[r.Policy.Preset] = r.Metrics.Victim.Availability
	}
	if avail["latch"] < 0.99 || avail["pam_faillock"] > 0.5 {
		t.Fatalf("victim availability %v: want latch ≥ 99%% and pam_faillock ≤ 50%%\n%s", avail, out)
	}
}

func TestSweepWritesAPolicyLatchAccepts(t *testing.T) {
	dir := t.TempDir()
	mustSim(t, "sweep", "--scenario", "brute-force", "--duration", "2d", "--vary", "pair.threshold=3..4", "--vary", "pair.base=1m,5m", "--out", dir, "--jobs", "2")
	for _, f := range []string{"sweep.csv", "pareto.svg", "recommended-policy.yaml"} {
		if st, err := os.Stat(filepath.Join(dir, f)); err != nil || st.Size() == 0 {
			t.Fatalf("%s: %v", f, err)
		}
	}
	csv, _ := os.ReadFile(filepath.Join(dir, "sweep.csv"))
	if n := strings.Count(string(csv), "\n"); n != 5 { // header + 2×2 cells
		t.Fatalf("sweep.csv has %d lines, want 5:\n%s", n, csv)
	}
	y, _ := os.ReadFile(filepath.Join(dir, "recommended-policy.yaml"))
	p, err := policyfile.Unmarshal(y)
	if err != nil {
		t.Fatalf("recommended policy does not load: %v\n%s", err, y)
	}
	if err := p.Validate(); err != nil {
		t.Fatalf("recommended policy invalid: %v", err)
	}
}

func TestBadInputIsNamed(t *testing.T) {
	bad := filepath.Join(t.TempDir(), "site.yaml")
	if err := os.WriteFile(bad, []byte("name: x\nusers:\n  - name: a\n    typo: lots\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"run", "--scenario", bad, "--duration", "1d"}, "site.yaml:4:11: users[0].typo"},
		{[]string{"run", "--scenario", "nope"}, "nope"},
		{[]string{"run", "--scenario", "home", "--set", "pair.threshold=999"}, "pair.threshold"},
		{[]string{"run", "--scenario", "home", "--duration", "soon"}, "duration"},
		{[]string{"sweep", "--scenario", "home", "--vary", "pair.nothing=1..2"}, "pair.nothing"},
		{[]string{"frobnicate"}, "unknown command"},
	} {
		code, _, e := latchsim(t, "", c.args...)
		if code == 0 || !strings.Contains(e, c.want) {
			t.Errorf("latchsim %s: exit %d, stderr %q; want an error naming %q", strings.Join(c.args, " "), code, e, c.want)
		}
	}
}
