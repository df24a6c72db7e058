package model

import (
	"errors"
	"fmt"
	"math"
	"strings"
	"time"
)

// ResetScope says which keys a verified right secret clears (R-SUCCESS).
type ResetScope uint8

const (
	// ResetPair clears the pair only (default; NIST 800-63B §5.2.2).
	ResetPair ResetScope = iota
	// ResetPrincipal clears the pair and the principal.
	ResetPrincipal
	// ResetAll clears the pair, the principal and the source.
	ResetAll
)

var resetNames = [...]string{"pair", "principal", "all"}

func (r ResetScope) String() string {
	if int(r) < len(resetNames) {
		return resetNames[r]
	}
	return fmt.Sprintf("ResetScope(%d)", r)
}

// ParseResetScope maps "pair", "principal" or "all" to its ResetScope.
func ParseResetScope(s string) (ResetScope, error) {
	for i, n := range resetNames {
		if n == s {
			return ResetScope(i), nil
		}
	}
	return 0, fmt.Errorf("want pair, principal or all, got %q", s)
}

// RoleThresholds override a key's threshold per role (0: use Threshold).
type RoleThresholds [NumRoles]int

// KeyPolicy is the policy of one key kind: the fields of SPEC §2. A zero
// field switches its mechanism off.
type KeyPolicy struct {
	// Threshold N: N counted failures within Window lock the key (0: never).
	Threshold int
	// Window W: a failure at t is forgotten once now−t ≥ W.
	Window time.Duration
	// Base B, Growth g, Cap C: lock k lasts min(B·g^(k−1), C). Base 0 with a
	// threshold means there is no timed lock: reaching the threshold holds.
	Base   time.Duration
	Growth float64
	Cap    time.Duration
	// HoldAfter H: lock number H+1 is a hold (0: never).
	HoldAfter int
	// HoldFor: how long a hold lasts (0: until an admin act or a reset).
	HoldFor time.Duration
	// Decay D: each full D of quiet time lowers the level by one (0: never).
	Decay time.Duration
	// ExtendOnAttempt E (pair only): a refused attempt on the Locked pair
	// sets until = max(until, now+E), never beyond now+Cap (R-EXTEND).
	ExtendOnAttempt time.Duration
	// ReplayDedup (pair only): R-REPLAY.
	ReplayDedup bool
	// RoleThreshold overrides Threshold per role (not for source keys: a
	// source is not one principal's).
	RoleThreshold RoleThresholds
}

// Policy is the whole lock policy. It is a value: copy it freely.
type Policy struct {
	// Preset names the preset this policy started from ("" for none); it
	// selects the compatibility parameter names --set accepts.
	Preset string
	// Disabled switches all protection off (R-VALID allows it; callers audit
	// it and show a warning wherever settings are shown).
	Disabled bool
	Pair     KeyPolicy
	Source   KeyPolicy
	// Principal applies only to unfamiliar sources (R-ADMIT, R-FAIL).
	Principal KeyPolicy
	// Console is the console channel's key (R-CONSOLE): never holds.
	Console        KeyPolicy
	ResetOnSuccess ResetScope
	// TrustTTL is how long a success keeps a source familiar (0: no source
	// is ever familiar).
	TrustTTL time.Duration
	// Resolution truncates instants before any arithmetic (0: nanoseconds).
	// pam_faillock counts whole seconds; its preset sets 1s.
	Resolution time.Duration
}

// Key returns the policy of one key kind.
func (p *Policy) Key(k Kind) *KeyPolicy {
	switch k {
	case KindPair:
		return &p.Pair
	case KindSource:
		return &p.Source
	case KindPrincipal:
		return &p.Principal
	default:
		return &p.Console
	}
}

// threshold is N for a role on this key.
func (kp *KeyPolicy) threshold(r Role) int {
	if r < NumRoles && kp.RoleThreshold[r] > 0 {
		return kp.RoleThreshold[r]
	}
	return kp.Threshold
}

// lockDuration is min(B·g^level, C) (R-LOCK), computed without overflow
// (R-SATURATE).
func (kp *KeyPolicy) lockDuration(level int) time.Duration {
	d := float64(kp.Base)
	c := float64(kp.Cap)
	for i := 0; i < level && d < c; i++ {
		d *= kp.Growth
	}
	if d >= c {
		return kp.Cap
	}
	return time.Duration(d)
}

// MaxDuration bounds every duration a policy may name: 100 years keeps
// now+duration far from int64 overflow for any instant a device will see.
const MaxDuration = 100 * 365 * 24 * time.Hour

// MaxGrowth bounds growth: larger factors make the second lock the cap.
const MaxGrowth = 1000

// ErrInvalidPolicy is wrapped by every validation error.
var ErrInvalidPolicy = errors.New("invalid policy")

// FieldError names a policy field and the constraint it breaks (R-VALID).
type FieldError struct {
	Field      string // e.g. "pair.cap"
	Constraint string // e.g. "must be ≥ pair.base (5m0s)"
}

func (e *FieldError) Error() string { return e.Field + ": " + e.Constraint }

// Unwrap lets errors.Is(err, ErrInvalidPolicy) hold.
func (e *FieldError) Unwrap() error { return ErrInvalidPolicy }

// ValidationErrors is every broken constraint of a policy.
type ValidationErrors []*FieldError

func (es ValidationErrors) Error() string {
	parts := make([]string, len(es))
	for i, e := range es {
		parts[i] = e.Error()
	}
	return "invalid policy: " + strings.Join(parts, "; ")
}

// Unwrap exposes each FieldError to errors.As and errors.Is.
func (es ValidationErrors) Unwrap() []error {
	out := make([]error, len(es))
	for i, e := range es {
		out[i] = e
	}
	return out
}

// Validate checks R-VALID and every bound the model relies on (R-SATURATE).
// It returns nil or ValidationErrors naming each field and constraint.
func (p *Policy) Validate() error {
	var errs ValidationErrors
	bad := func(field, format string, args ...any) {
		errs = append(errs, &FieldError{Field: field, Constraint: fmt.Sprintf(format, args...)})
	}
	duration := func(field string, d time.Duration) {
		if d < 0 {
			bad(field, "must not be negative (got %s)", d)
		} else if d > MaxDuration {
			bad(field, "must be at most %s (100 years; got %s)", FormatDuration(MaxDuration), FormatDuration(d))
		}
	}
	for k := Kind(0); k < NumKinds; k++ {
		kp := p.Key(k)
		f := func(name string) string { return k.String() + "." + name }
		duration(f("window"), kp.Window)
		duration(f("base"), kp.Base)
		duration(f("cap"), kp.Cap)
		duration(f("holdFor"), kp.HoldFor)
		duration(f("decay"), kp.Decay)
		duration(f("extendOnAttempt"), kp.ExtendOnAttempt)
		thresholds := []struct {
			name string
			n    int
		}{{"threshold", kp.Threshold}}
		for r := Role(0); r < NumRoles; r++ {
			thresholds = append(thresholds, struct {
				name string
				n    int
			}{"roleThreshold." + r.String(), kp.RoleThreshold[r]})
		}
		locks := false
		for _, t := range thresholds {
			switch {
			case t.n < 0:
				bad(f(t.name), "must not be negative (got %d)", t.n)
			case t.n > MaxThreshold:
				bad(f(t.name), "must be at most %d (got %d)", MaxThreshold, t.n)
			case t.n > 0:
				locks = true
			}
		}
		if k == KindSource {
			for r := Role(0); r < NumRoles; r++ {
				if kp.RoleThreshold[r] != 0 {
					bad(f("roleThreshold."+r.String()), "must be 0: a source key is shared by every principal, so it has no role")
				}
			}
		}
		if math.IsNaN(kp.Growth) || kp.Growth < 1 {
			bad(f("growth"), "must be ≥ 1 (got %v)", kp.Growth)
		} else if kp.Growth > MaxGrowth {
			bad(f("growth"), "must be at most %d (got %v)", MaxGrowth, kp.Growth)
		}
		if kp.Cap < kp.Base {
			bad(f("cap"), "must be ≥ %s (%s; got %s)", f("base"), FormatDuration(kp.Base), FormatDuration(kp.Cap))
		}
		if locks && kp.Window == 0 {
			bad(f("window"), "must be > 0 when a threshold is set (a threshold with no window)")
		}
		if kp.Decay > 0 && kp.Decay < kp.Cap {
			bad(f("decay"), "must be ≥ %s (%s) or 0: decay shorter than cap forgets escalation during a lock", f("cap"), FormatDuration(kp.Cap))
		}
		if kp.HoldAfter < 0 {
			bad(f("holdAfter"), "must not be negative (got %d)", kp.HoldAfter)
		} else if kp.HoldAfter >= MaxLevel {
			bad(f("holdAfter"), "must be below %d (got %d)", MaxLevel, kp.HoldAfter)
		}
		if k != KindPair {
			if kp.ExtendOnAttempt != 0 {
				bad(f("extendOnAttempt"), "must be 0: only the pair key extends, so an attacker prolongs only its own lock (R-EXTEND)")
			}
			if kp.ReplayDedup {
				bad(f("replayDedup"), "must be false: replay deduplication applies to the pair key only (R-REPLAY)")
			}
		} else if kp.ExtendOnAttempt > kp.Cap {
			bad(f("extendOnAttempt"), "must be ≤ %s (%s): a lock never extends beyond now+cap (R-EXTEND)", f("cap"), FormatDuration(kp.Cap))
		}
		if kp.ReplayDedup && kp.Window == 0 {
			bad(f("replayDedup"), "needs a window: fingerprints are kept only for the window")
		}
	}
	if r := p.Resolution; r > 1 {
		// Whole multiples keep every until on the grid decisions see, so a
		// lock lasts exactly its duration in truncated time.
		for k := Kind(0); k < NumKinds; k++ {
			kp := p.Key(k)
			for _, d := range []struct {
				name string
				v    time.Duration
			}{{"window", kp.Window}, {"base", kp.Base}, {"cap", kp.Cap}, {"holdFor", kp.HoldFor}, {"decay", kp.Decay}, {"extendOnAttempt", kp.ExtendOnAttempt}} {
				if d.v > 0 && d.v%r != 0 {
					bad(k.String()+"."+d.name, "must be a whole multiple of resolution (%s) when a resolution is set (got %s)", FormatDuration(r), FormatDuration(d.v))
				}
			}
		}
		if p.TrustTTL%r != 0 {
			bad("trustTTL", "must be a whole multiple of resolution (%s) (got %s)", FormatDuration(r), FormatDuration(p.TrustTTL))
		}
	}
	c := &p.Console
	if c.HoldAfter != 0 {
		bad("console.holdAfter", "must be 0: the console key never holds (R-CONSOLE, R-LASTADMIN)")
	}
	if c.HoldFor != 0 {
		bad("console.holdFor", "must be 0: the console key never holds (R-CONSOLE)")
	}
	if c.Threshold > 0 || anyRole(c.RoleThreshold) {
		if c.Base == 0 {
			bad("console.base", "must be > 0 when the console locks: a console lock with no timed end is a hold, leaving the last admin no way in (R-LASTADMIN)")
		}
		if c.Cap > 24*time.Hour {
			bad("console.cap", "must be at most 24h: the owner at the box always gets in after at most the console cap (R-LASTADMIN)")
		}
	}
	if p.TrustTTL < 0 {
		bad("trustTTL", "must not be negative (got %s)", p.TrustTTL)
	} else if p.TrustTTL > MaxDuration {
		bad("trustTTL", "must be at most 100 years")
	}
	if p.Resolution < 0 {
		bad("resolution", "must not be negative (got %s)", p.Resolution)
	} else if p.Resolution > time.Hour {
		bad("resolution", "must be at most 1h (got %s)", p.Resolution)
	}
	if p.ResetOnSuccess > ResetAll {
		bad("resetOnSuccess", "must be pair, principal or all")
	}
	if len(errs) == 0 {
		return nil
	}
	return errs
}

func anyRole(r RoleThresholds) bool {
	for _, n := range r {
		if n > 0 {
			return true
		}
	}
	return false
}

// FormatDuration prints d compactly ("15m", "1h30m", "720h", "1.5s").
func FormatDuration(d time.Duration) string {
	s := d.String()
	if strings.HasSuffix(s, "m0s") {
		s = s[:len(s)-2]
	}
	if strings.HasSuffix(s, "h0m") {
		s = s[:len(s)-2]
	}
	return s
}

// ParseDuration reads a Go duration, also accepting a day suffix ("30d",
// "1d12h") because lock policies speak in days.
func ParseDuration(s string) (time.Duration, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return 0, errors.New("empty duration")
	}
	if i := strings.IndexByte(s, 'd'); i > 0 {
		var days int64
		if _, err := fmt.Sscanf(s[:i], "%d", &days); err != nil || fmt.Sprint(days) != strings.TrimPrefix(s[:i], "+") {
			return 0, fmt.Errorf("invalid duration %q", s)
		}
		if days < 0 || days > int64(MaxDuration/(24*time.Hour)) {
			return 0, fmt.Errorf("duration %q out of range", s)
		}
		rest := time.Duration(0)
		if i+1 < len(s) {
			r, err := time.ParseDuration(s[i+1:])
			if err != nil {
				return 0, fmt.Errorf("invalid duration %q", s)
			}
			rest = r
		}
		return time.Duration(days)*24*time.Hour + rest, nil
	}
	d, err := time.ParseDuration(s)
	if err != nil {
		return 0, fmt.Errorf("invalid duration %q", s)
	}
	return d, nil
}
