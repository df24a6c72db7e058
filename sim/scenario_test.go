package sim

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// Bad scenario files get errors naming file, line, column and field.
func TestScenarioErrorsNameLineAndColumn(t *testing.T) {
	for _, c := range []struct{ doc, want string }{
		{"name: x\nusers:\n  - name: a\n    colour: red\n", "x.yaml:4:5: users[0].colour: unknown field (want one of"},
		{"users:\n  - name: a\n    typo: lots\n", `x.yaml:3:11: users[0].typo: want a number, got "lots"`},
		{"duration: 3 weeks\n", `x.yaml:1:11: duration: invalid duration "3 weeks"`},
		{"users:\n  - name: a\n    hours: 9-5\n", "x.yaml:3:12: users[0].hours: want a time of day"},
		{"victim: nobody\nusers:\n  - name: a\n", `x.yaml:1:9: victim: must name a declared user (got "nobody")`},
		{"users:\n  - name: a\nattacks:\n  - kind: dos\n    targets: [a, zed]\n", `x.yaml:5:18: attacks[0].targets[1]: must name a declared user, @site or @admins (got "zed")`},
		{"attacks:\n  - kind: laser\n", `x.yaml:2:11: attacks[0].kind: want brute_force, distributed, stuffing or dos (got "laser")`},
		{"cameras:\n  count: 4\n  segment: 7m\n", "x.yaml:3:12: cameras.segment: must be at least 1s and divide an hour evenly (got 7m)"},
		{"extends: nowhere\n", `x.yaml:1:10: extends: unknown built-in scenario "nowhere"`},
		{"users: everyone\n", "x.yaml:1:8: users: want a list"},
		{"users:\n  - name: a\n    name: b\n", "x.yaml:3:5: users[0].name: duplicate field"},
		{"users:\n  - name: a\n  - name: A\n", `x.yaml:3:11: users[1].name: user "a" is declared twice`},
		{"clock:\n  rtc_reset: 2\n", "x.yaml:2:14: clock.rtc_reset: must be a probability between 0 and 1"},
		// extends keeps positions in the child file for the child's attacks
		{"extends: home\nattacks:\n  - kind: dos\n    targets: [admin]\n    every: 0s\n", "x.yaml:5:12: attacks[0].every: must be at least 1ms"},
		// YAML syntax errors: the YAML library reports the line only
		{"users:\n  - name: a\n bad: [\n", "x.yaml:2: YAML syntax: did not find expected key"},
		{"", "x.yaml:1:1: empty scenario"},
	} {
		_, err := ParseScenario("x.yaml", []byte(c.doc))
		if err == nil {
			t.Errorf("%q: no error, want %q", c.doc, c.want)
			continue
		}
		var se ScenarioErrors
		if !errors.As(err, &se) {
			t.Errorf("%q: error %T %v is not ScenarioErrors", c.doc, err, err)
			continue
		}
		if !strings.Contains(err.Error(), c.want) {
			t.Errorf("%q:\n got %v\nwant %s", c.doc, err, c.want)
		}
	}
}

// Every problem in a file is reported, top to bottom.
func TestScenarioErrorsAllReportedInOrder(t *testing.T) {
	doc := "users:\n  - name: a\n    count: 0\n    sources: 99\nattacks:\n  - kind: brute_force\n    targets: [a]\n    sources: 3\n"
	_, err := ParseScenario("x.yaml", []byte(doc))
	var se ScenarioErrors
	if !errors.As(err, &se) || len(se) != 3 {
		t.Fatalf("want 3 errors, got %v", err)
	}
	for i, want := range []string{"x.yaml:3:12: users[0].count", "x.yaml:4:14: users[0].sources", "x.yaml:8:14: attacks[0].sources"} {
		if !strings.HasPrefix(se[i].Error(), want) {
			t.Errorf("error %d: %v, want %s…", i, se[i], want)
		}
	}
}

// Every built-in parses; a file extending one adds its attacks and can
// override sections.
func TestBuiltinsAndExtends(t *testing.T) {
	for _, n := range BuiltinNames() {
		sc := mustScenario(t, n)
		if sc.Name != n || sc.Description == "" || sc.Source != "built-in" || len(sc.Users) == 0 || len(sc.Attacks) == 0 {
			t.Errorf("%s: %+v", n, sc)
		}
	}
	dir := t.TempDir()
	f := filepath.Join(dir, "mine.yaml")
	doc := "extends: dos\nduration: 1d\nhelpdesk:\n  delay: 10m\nattacks:\n  - kind: brute_force\n    targets: [staff1]\n"
	if err := os.WriteFile(f, []byte(doc), 0o644); err != nil {
		t.Fatal(err)
	}
	sc, err := LoadScenario(f)
	if err != nil {
		t.Fatal(err)
	}
	base := mustScenario(t, "dos")
	if sc.Name != "mine" || sc.Duration.D() != 24*time.Hour || sc.Helpdesk.Delay.D() != 10*time.Minute ||
		len(sc.Attacks) != len(base.Attacks)+1 || sc.Victim != "admin" || len(sc.Users) != len(base.Users) {
		t.Fatalf("merged scenario: %+v", sc)
	}
	if _, err := LoadScenario("no-such-scenario"); err == nil || !strings.Contains(err.Error(), "built-ins: home") {
		t.Fatalf("unknown name: %v", err)
	}
}

func TestDurations(t *testing.T) {
	for in, want := range map[string]time.Duration{"30d": 30 * day, "1y": 365 * day, "90m": 90 * time.Minute, "1d12h": 36 * time.Hour} {
		got, err := ParseDuration(in)
		if err != nil || got != want {
			t.Errorf("ParseDuration(%q) = %v, %v; want %v", in, got, err, want)
		}
		if back, err := ParseDuration(FormatDuration(got)); err != nil || back != got {
			t.Errorf("FormatDuration(%v) = %q does not read back (%v, %v)", got, FormatDuration(got), back, err)
		}
	}
	for _, bad := range []string{"", "3 weeks", "-1d", "1.5y", "101y"} {
		if _, err := ParseDuration(bad); err == nil {
			t.Errorf("ParseDuration(%q): no error", bad)
		}
	}
}
