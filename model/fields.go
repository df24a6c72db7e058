package model

import (
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Field is one native policy field: its dotted name as --set and policy
// files spell it ("pair.threshold", "trustTTL") and its text form. Get and
// Set are inverse, so a policy written and read back is identical.
type Field struct {
	Name string
	Get  func(*Policy) string
	Set  func(*Policy, string) error
}

// keyFieldNames are the per-kind fields of SPEC §2, in file order.
var keyFieldNames = []string{"threshold", "window", "base", "growth", "cap", "holdAfter", "holdFor", "decay", "extendOnAttempt", "replayDedup", "roleThreshold.admin", "roleThreshold.operator", "roleThreshold.viewer"}

// Fields lists every native field in file order: the top-level fields, then
// pair, source, principal and console.
func Fields() []Field { return fields }

var fields = buildFields()

var fieldIndex = func() map[string]Field {
	m := make(map[string]Field, len(fields))
	for _, f := range fields {
		m[f.Name] = f
	}
	return m
}()

func buildFields() []Field {
	fs := []Field{
		{"enabled", func(p *Policy) string { return strconv.FormatBool(!p.Disabled) },
			func(p *Policy, s string) error {
				b, err := parseBool(s)
				p.Disabled = !b
				return err
			}},
		{"resetOnSuccess", func(p *Policy) string { return p.ResetOnSuccess.String() },
			func(p *Policy, s string) (err error) { p.ResetOnSuccess, err = ParseResetScope(s); return }},
		{"trustTTL", func(p *Policy) string { return FormatDuration(p.TrustTTL) },
			func(p *Policy, s string) (err error) { p.TrustTTL, err = ParseDuration(s); return }},
		{"resolution", func(p *Policy) string { return FormatDuration(p.Resolution) },
			func(p *Policy, s string) (err error) { p.Resolution, err = ParseDuration(s); return }},
	}
	for k := Kind(0); k < NumKinds; k++ {
		k := k
		for _, name := range keyFieldNames {
			get, set := keyField(k, name)
			fs = append(fs, Field{Name: k.String() + "." + name, Get: get, Set: set})
		}
	}
	return fs
}

func keyField(k Kind, name string) (func(*Policy) string, func(*Policy, string) error) {
	dur := func(f func(*KeyPolicy) *time.Duration) (func(*Policy) string, func(*Policy, string) error) {
		return func(p *Policy) string { return FormatDuration(*f(p.Key(k))) },
			func(p *Policy, s string) (err error) { *f(p.Key(k)), err = ParseDuration(s); return }
	}
	num := func(f func(*KeyPolicy) *int) (func(*Policy) string, func(*Policy, string) error) {
		return func(p *Policy) string { return strconv.Itoa(*f(p.Key(k))) },
			func(p *Policy, s string) error {
				n, err := strconv.Atoi(strings.TrimSpace(s))
				if err != nil {
					return fmt.Errorf("want an integer, got %q", s)
				}
				*f(p.Key(k)) = n
				return nil
			}
	}
	switch name {
	case "threshold":
		return num(func(kp *KeyPolicy) *int { return &kp.Threshold })
	case "window":
		return dur(func(kp *KeyPolicy) *time.Duration { return &kp.Window })
	case "base":
		return dur(func(kp *KeyPolicy) *time.Duration { return &kp.Base })
	case "growth":
		return func(p *Policy) string { return strconv.FormatFloat(p.Key(k).Growth, 'g', -1, 64) },
			func(p *Policy, s string) error {
				g, err := strconv.ParseFloat(strings.TrimSpace(s), 64)
				if err != nil {
					return fmt.Errorf("want a number, got %q", s)
				}
				p.Key(k).Growth = g
				return nil
			}
	case "cap":
		return dur(func(kp *KeyPolicy) *time.Duration { return &kp.Cap })
	case "holdAfter":
		return num(func(kp *KeyPolicy) *int { return &kp.HoldAfter })
	case "holdFor":
		return dur(func(kp *KeyPolicy) *time.Duration { return &kp.HoldFor })
	case "decay":
		return dur(func(kp *KeyPolicy) *time.Duration { return &kp.Decay })
	case "extendOnAttempt":
		return dur(func(kp *KeyPolicy) *time.Duration { return &kp.ExtendOnAttempt })
	case "replayDedup":
		return func(p *Policy) string { return strconv.FormatBool(p.Key(k).ReplayDedup) },
			func(p *Policy, s string) (err error) { p.Key(k).ReplayDedup, err = parseBool(s); return }
	}
	role, _ := ParseRole(strings.TrimPrefix(name, "roleThreshold."))
	return num(func(kp *KeyPolicy) *int { return &kp.RoleThreshold[role] })
}

func parseBool(s string) (bool, error) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "true", "yes", "on", "1":
		return true, nil
	case "false", "no", "off", "0":
		return false, nil
	}
	return false, fmt.Errorf("want true or false, got %q", s)
}

// SetError names the --set assignment that could not be applied.
type SetError struct {
	Name   string
	Reason string
}

func (e *SetError) Error() string { return e.Name + ": " + e.Reason }

// Unwrap lets errors.Is(err, ErrInvalidPolicy) hold.
func (e *SetError) Unwrap() error { return ErrInvalidPolicy }

// Set applies one "NAME=VALUE" assignment: a native field
// ("pair.threshold=3", "trustTTL=720h") or a compatibility parameter of the
// policy's preset in its reference's own names and units
// ("deny=3", "bantime.increment=true"). It does not validate the whole
// policy; call Validate after the last Set.
func (p *Policy) Set(assignment string) error {
	name, value, ok := strings.Cut(assignment, "=")
	name = strings.TrimSpace(name)
	if !ok || name == "" {
		return &SetError{Name: assignment, Reason: "want NAME=VALUE"}
	}
	// Setters work on a copy: a bad value leaves the policy as it was.
	q := *p
	if f, ok := fieldIndex[name]; ok {
		if err := f.Set(&q, value); err != nil {
			return &SetError{Name: name, Reason: err.Error()}
		}
		*p = q
		return nil
	}
	if c, ok := compat[p.Preset]; ok {
		if set, ok := c[name]; ok {
			if err := set(&q, strings.TrimSpace(value)); err != nil {
				return &SetError{Name: name, Reason: err.Error()}
			}
			*p = q
			return nil
		}
	}
	return &SetError{Name: name, Reason: "unknown policy field" + compatHint(p.Preset)}
}

func compatHint(preset string) string {
	c, ok := compat[preset]
	if !ok || len(c) == 0 {
		return " (want KIND.FIELD with KIND pair, source, principal or console, or a top-level field)"
	}
	names := make([]string, 0, len(c))
	for n := range c {
		names = append(names, n)
	}
	sortStrings(names)
	return fmt.Sprintf(" (want KIND.FIELD, a top-level field, or one of %s's: %s)", preset, strings.Join(names, ", "))
}
