// Package cli holds what both commands share for parsing flags: the
// repeatable --set flag and the policy flags. It owns no behaviour.
package cli

import (
	"flag"
	"strings"

	"github.com/latchnvr/latch/model"
	"github.com/latchnvr/latch/model/policyfile"
)

// Strings is a repeatable string flag.
type Strings []string

func (s *Strings) String() string     { return strings.Join(*s, ",") }
func (s *Strings) Set(v string) error { *s = append(*s, v); return nil }

// PolicyFlags are --preset, --policy and --set.
type PolicyFlags struct {
	Preset string
	File   string
	Sets   Strings
}

// Register adds the policy flags to fs.
func (p *PolicyFlags) Register(fs *flag.FlagSet) {
	fs.StringVar(&p.Preset, "preset", "", "start from a preset: "+strings.Join(model.PresetNames(), ", ")+" (default latch)")
	fs.StringVar(&p.File, "policy", "", "read the policy from a YAML `file`")
	fs.Var(&p.Sets, "set", "override a field: `NAME=VALUE` (pair.threshold=3, trustTTL=720h, or the preset's own names such as deny=3); repeatable")
}

// Build returns the validated policy the flags describe.
func (p *PolicyFlags) Build() (model.Policy, error) {
	return policyfile.Build(p.Preset, p.File, p.Sets)
}
