// Package policyfile reads and writes lock policies as YAML files, and
// builds a policy from the command line's --preset, --policy and --set.
// Errors name the line and column of the offending field and the broken
// constraint (R-VALID). A policy written and read back is identical.
//
// It owns the file format only; the fields, presets and validation are the
// model's (model.Fields, model.Preset, Policy.Validate).
package policyfile

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"gopkg.in/yaml.v3"

	"github.com/latchnvr/latch/model"
)

// MaxFileBytes bounds a policy file.
const MaxFileBytes = 1 << 20

// Error is a problem at a place in a policy file.
type Error struct {
	Line, Column int
	Field        string
	Reason       string
}

func (e *Error) Error() string {
	var b strings.Builder
	if e.Line > 0 {
		fmt.Fprintf(&b, "line %d, column %d: ", e.Line, e.Column)
	}
	if e.Field != "" {
		b.WriteString(e.Field + ": ")
	}
	b.WriteString(e.Reason)
	return b.String()
}

// Unwrap lets errors.Is(err, model.ErrInvalidPolicy) hold.
func (e *Error) Unwrap() error { return model.ErrInvalidPolicy }

// Errors is every problem found in a file.
type Errors []*Error

func (es Errors) Error() string {
	parts := make([]string, len(es))
	for i, e := range es {
		parts[i] = e.Error()
	}
	return "invalid policy: " + strings.Join(parts, "; ")
}

// Unwrap exposes each Error.
func (es Errors) Unwrap() []error {
	out := make([]error, len(es))
	for i, e := range es {
		out[i] = e
	}
	return out
}

// Marshal writes every field of p, grouped by key kind, in model.Fields
// order.
func Marshal(p model.Policy) []byte {
	var b bytes.Buffer
	b.WriteString("# Latch lock policy (docs/SPEC.md). Durations are Go durations; 0 switches a mechanism off.\n")
	if p.Preset != "" {
		fmt.Fprintf(&b, "preset: %s\n", p.Preset)
	}
	section := ""
	inRoles := false
	for _, f := range model.Fields() {
		kind, name, nested := strings.Cut(f.Name, ".")
		if !nested {
			fmt.Fprintf(&b, "%s: %s\n", f.Name, quote(f.Get(&p)))
			continue
		}
		if kind != section {
			fmt.Fprintf(&b, "%s:\n", kind)
			section, inRoles = kind, false
		}
		if role, ok := strings.CutPrefix(name, "roleThreshold."); ok {
			if !inRoles {
				b.WriteString("  roleThreshold:\n")
				inRoles = true
			}
			fmt.Fprintf(&b, "    %s: %s\n", role, f.Get(&p))
			continue
		}
		fmt.Fprintf(&b, "  %s: %s\n", name, quote(f.Get(&p)))
	}
	return b.Bytes()
}

func quote(s string) string {
	if s == "" {
		return `""`
	}
	return s
}

// Unmarshal reads a policy file: it starts from the named preset (or, with
// none, from a policy where every mechanism is off), applies each field,
// and validates. Every error names its line, column and field.
func Unmarshal(data []byte) (model.Policy, error) {
	if len(data) > MaxFileBytes {
		return model.Policy{}, &Error{Reason: fmt.Sprintf("file larger than %d bytes", MaxFileBytes)}
	}
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		return model.Policy{}, &Error{Reason: "not YAML: " + strings.TrimPrefix(err.Error(), "yaml: ")}
	}
	if len(doc.Content) == 0 {
		return model.Policy{}, &Error{Line: 1, Column: 1, Reason: "empty policy file"}
	}
	root := doc.Content[0]
	if root.Kind != yaml.MappingNode {
		return model.Policy{}, &Error{Line: root.Line, Column: root.Column, Reason: "a policy file is a mapping of fields"}
	}
	p := empty()
	var errs Errors
	where := map[string]*yaml.Node{}
	// The preset goes first: the other fields override it.
	for i := 0; i+1 < len(root.Content); i += 2 {
		if k, v := root.Content[i], root.Content[i+1]; k.Value == "preset" {
			pp, err := model.Preset(v.Value)
			if err != nil {
				return model.Policy{}, Errors{{Line: v.Line, Column: v.Column, Field: "preset", Reason: err.Error()}}
			}
			p = pp
		}
	}
	walk(root, "", &p, where, &errs)
	if len(errs) > 0 {
		return p, errs
	}
	if err := p.Validate(); err != nil {
		var ves model.ValidationErrors
		errors.As(err, &ves)
		for _, ve := range ves {
			e := &Error{Field: ve.Field, Reason: ve.Constraint}
			if n := where[ve.Field]; n != nil {
				e.Line, e.Column = n.Line, n.Column
			}
			errs = append(errs, e)
		}
		return p, errs
	}
	return p, nil
}

// empty is the policy a file without a preset starts from: nothing locks.
func empty() model.Policy {
	off := model.KeyPolicy{Growth: 1}
	return model.Policy{Pair: off, Source: off, Principal: off, Console: off}
}

func walk(m *yaml.Node, prefix string, p *model.Policy, where map[string]*yaml.Node, errs *Errors) {
	seen := map[string]bool{}
	for i := 0; i+1 < len(m.Content); i += 2 {
		k, v := m.Content[i], m.Content[i+1]
		name := prefix + k.Value
		if seen[k.Value] {
			*errs = append(*errs, &Error{Line: k.Line, Column: k.Column, Field: name, Reason: "duplicate field"})
			continue
		}
		seen[k.Value] = true
		if name == "preset" {
			continue
		}
		if v.Kind == yaml.MappingNode {
			if _, err := model.ParseKind(name); err == nil || strings.HasSuffix(name, ".roleThreshold") {
				walk(v, name+".", p, where, errs)
				continue
			}
			*errs = append(*errs, &Error{Line: k.Line, Column: k.Column, Field: name, Reason: "unknown section"})
			continue
		}
		if v.Kind != yaml.ScalarNode {
			*errs = append(*errs, &Error{Line: v.Line, Column: v.Column, Field: name, Reason: "want a single value"})
			continue
		}
		f, ok := field(name)
		if !ok {
			*errs = append(*errs, &Error{Line: k.Line, Column: k.Column, Field: name, Reason: "unknown field"})
			continue
		}
		where[name] = v
		if err := f.Set(p, v.Value); err != nil {
			*errs = append(*errs, &Error{Line: v.Line, Column: v.Column, Field: name, Reason: err.Error()})
		}
	}
}

func field(name string) (model.Field, bool) {
	for _, f := range model.Fields() {
		if f.Name == name {
			return f, true
		}
	}
	return model.Field{}, false
}

// Build makes the policy a command asked for: a preset (default "latch")
// or a policy file, then each --set in order, then validation.
func Build(preset, file string, sets []string) (model.Policy, error) {
	var p model.Policy
	switch {
	case preset != "" && file != "":
		return p, errors.New("give --preset or --policy, not both")
	case file != "":
		data, err := readFile(file)
		if err != nil {
			return p, err
		}
		if p, err = Unmarshal(data); err != nil {
			return p, fmt.Errorf("%s: %w", file, err)
		}
	default:
		if preset == "" {
			preset = "latch"
		}
		var err error
		if p, err = model.Preset(preset); err != nil {
			return p, err
		}
	}
	for _, s := range sets {
		if err := p.Set(s); err != nil {
			return p, fmt.Errorf("--set %s: %w", s, err)
		}
	}
	return p, p.Validate()
}

func readFile(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("policy file: %w", err)
	}
	defer f.Close()
	var b bytes.Buffer
	if _, err := b.ReadFrom(io.LimitReader(f, MaxFileBytes+1)); err != nil {
		return nil, fmt.Errorf("policy file %s: %w", path, err)
	}
	return b.Bytes(), nil
}
