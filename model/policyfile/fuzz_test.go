package policyfile

import (
	"errors"
	"testing"

	"github.com/latchnvr/latch/model"
)

// FuzzPolicyFile: a file is either a valid policy that round-trips, or an
// error that says it is an invalid policy — never a panic, never an
// accepted policy that validation would reject.
func FuzzPolicyFile(f *testing.F) {
	// Small seeds: the fuzzer minimises every interesting input, and large
	// ones make that phase crawl.
	for _, n := range model.PresetNames() {
		f.Add("preset: " + n + "\n")
	}
	f.Add("preset: latch\npair:\n  threshold: 3\n  roleThreshold:\n    admin: 4\n")
	f.Add("pair:\n  threshold: 3\n  window: 1m\n  base: 1s\n  cap: 1s\n")
	f.Add("preset: latch\npair: {cap: -1s}\n")
	f.Add("&a [*a]")
	f.Fuzz(func(t *testing.T, text string) {
		p, err := Unmarshal([]byte(text))
		if err != nil {
			if !errors.Is(err, model.ErrInvalidPolicy) {
				t.Fatalf("error is not an invalid-policy error: %v", err)
			}
			return
		}
		if verr := p.Validate(); verr != nil {
			t.Fatalf("accepted a policy validation rejects: %v", verr)
		}
		back, err := Unmarshal(Marshal(p))
		if err != nil || back != p {
			t.Fatalf("round trip: %v\n%+v\n%+v", err, p, back)
		}
	})
}

// FuzzSet: a --set either applies and leaves a policy that validates or
// is reported invalid, or fails naming the field and changes nothing.
func FuzzSet(f *testing.F) {
	for _, s := range []string{"pair.threshold=3", "deny=4", "unlock_time=never", "bantime.increment=true", "pair.window=1d2h", "trustTTL=-1s", "pair.growth=NaN", "console.roleThreshold.admin=40"} {
		f.Add(s)
	}
	names := model.PresetNames()
	f.Fuzz(func(t *testing.T, assignment string) {
		for _, n := range names {
			p, _ := model.Preset(n)
			before := p
			if err := p.Set(assignment); err != nil {
				if p != before {
					t.Fatalf("%s: failed Set %q changed the policy", n, assignment)
				}
				if !errors.Is(err, model.ErrInvalidPolicy) {
					t.Fatalf("%s: %v", n, err)
				}
				continue
			}
			if p.Validate() == nil {
				back, err := Unmarshal(Marshal(p))
				if err != nil || back != p {
					t.Fatalf("%s after %q: round trip %v", n, assignment, err)
				}
			}
		}
	})
}
