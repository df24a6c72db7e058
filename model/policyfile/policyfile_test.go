package policyfile

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/latchnvr/latch/model"
)

func TestEveryPresetRoundTrips(t *testing.T) {
	for _, name := range model.PresetNames() {
		p, _ := model.Preset(name)
		text := Marshal(p)
		back, err := Unmarshal(text)
		if err != nil {
			t.Fatalf("%s: %v\n%s", name, err, text)
		}
		if back != p {
			t.Fatalf("%s: round trip changed the policy:\n%+v\n%+v", name, p, back)
		}
		if again := Marshal(back); string(again) != string(text) {
			t.Fatalf("%s: write, read, write is not identical", name)
		}
	}
}

func TestErrorsNameLineColumnAndField(t *testing.T) {
	cases := []struct {
		name, file, want string
	}{
		{"bad value", "preset: latch\npair:\n  threshold: many\n", "line 3, column 14: pair.threshold: want an integer"},
		{"unknown field", "preset: latch\npair:\n  treshold: 3\n", "line 3, column 3: pair.treshold: unknown field"},
		{"unknown section", "preset: latch\npairs:\n  threshold: 3\n", "line 2, column 1: pairs: unknown section"},
		{"validation names the field's place", "preset: latch\npair:\n  cap: 1s\n", "line 3, column 8: pair.cap: must be ≥ pair.base"},
		{"unknown preset", "preset: nope\n", "line 1, column 9: preset: unknown preset"},
		{"duplicate", "trustTTL: 1h\ntrustTTL: 2h\n", "line 2, column 1: trustTTL: duplicate field"},
		{"not a mapping", "- a\n- b\n", "a policy file is a mapping"},
		{"not yaml", "pair: [\n", "not YAML"},
		{"list value", "pair:\n  threshold: [1, 2]\n", "line 2, column 14: pair.threshold: want a single value"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := Unmarshal([]byte(c.file))
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("error %v, want it to contain %q", err, c.want)
			}
			if !errors.Is(err, model.ErrInvalidPolicy) {
				t.Fatalf("error does not wrap ErrInvalidPolicy: %v", err)
			}
		})
	}
}

func TestAFileWithoutPresetStartsWithEverythingOff(t *testing.T) {
	p, err := Unmarshal([]byte("pair:\n  threshold: 3\n  window: 10m\n  base: 1m\n  cap: 1m\n"))
	if err != nil {
		t.Fatal(err)
	}
	if p.Pair.Threshold != 3 || p.Source.Threshold != 0 || p.Principal.Threshold != 0 {
		t.Fatalf("%+v", p)
	}
}

func TestBuildAppliesSetsInOrderAndValidates(t *testing.T) {
	p, err := Build("pam_faillock", "", []string{"deny=5", "unlock_time=60"})
	if err != nil || p.Principal.Threshold != 5 {
		t.Fatalf("%v %+v", err, p.Principal)
	}
	if _, err := Build("latch", "", []string{"pair.cap=1s"}); err == nil || !strings.Contains(err.Error(), "pair.cap") {
		t.Fatalf("invalid --set accepted or unnamed: %v", err)
	}
	if _, err := Build("latch", "x.yaml", nil); err == nil {
		t.Fatal("both preset and file accepted")
	}
	dir := t.TempDir()
	path := filepath.Join(dir, "p.yaml")
	want, _ := model.Preset("nist")
	if err := os.WriteFile(path, Marshal(want), 0o644); err != nil {
		t.Fatal(err)
	}
	got, err := Build("", path, []string{"pair.threshold=7"})
	want.Pair.Threshold = 7
	if err != nil || got != want {
		t.Fatalf("%v\n%+v\n%+v", err, got, want)
	}
	if _, err := Build("", filepath.Join(dir, "missing.yaml"), nil); err == nil || !strings.Contains(err.Error(), "missing.yaml") {
		t.Fatalf("missing file: %v", err)
	}
}
