package model

import (
	"fmt"
	"math"
	"time"
)

// Instant is a point on the monotonic time line, in nanoseconds (SPEC §1).
// The lock logic compares only instants; wall time is for people (R-MONO).
type Instant int64

// Forever is the until of a hold with no timed end (holdFor 0).
const Forever Instant = math.MaxInt64

// Add returns i+d, saturating at the ends of the int64 range (R-SATURATE).
func (i Instant) Add(d time.Duration) Instant { return Instant(satAdd(int64(i), int64(d))) }

// Sub returns i−j, saturating (R-SATURATE).
func (i Instant) Sub(j Instant) time.Duration {
	return time.Duration(satAdd(int64(i), satNeg(int64(j))))
}

func satNeg(a int64) int64 {
	if a == math.MinInt64 {
		return math.MaxInt64
	}
	return -a
}

func satAdd(a, b int64) int64 {
	s := a + b
	// Overflow happened iff a and b share a sign that s does not.
	if (a >= 0) == (b >= 0) && (s >= 0) != (a >= 0) {
		if a >= 0 {
			return math.MaxInt64
		}
		return math.MinInt64
	}
	return s
}

// Mode is the discrete state of one key's lock machine (SPEC §2).
type Mode uint8

const (
	Open Mode = iota
	Locked
	Held
)

var modeNames = [...]string{"Open", "Locked", "Held"}

func (m Mode) String() string {
	if int(m) < len(modeNames) {
		return modeNames[m]
	}
	return fmt.Sprintf("Mode(%d)", m)
}

// Kind names one of the key kinds of SPEC §1.
type Kind uint8

const (
	KindPair Kind = iota
	KindSource
	KindPrincipal
	KindConsole
	NumKinds
)

var kindNames = [...]string{"pair", "source", "principal", "console"}

func (k Kind) String() string {
	if k < NumKinds {
		return kindNames[k]
	}
	return fmt.Sprintf("Kind(%d)", k)
}

// ParseKind maps "pair", "source", "principal" or "console" to its Kind.
func ParseKind(s string) (Kind, error) {
	for i, n := range kindNames {
		if n == s {
			return Kind(i), nil
		}
	}
	return 0, fmt.Errorf("unknown key kind %q (want pair, source, principal or console)", s)
}

// Role is a principal's role. Unknown principals decide as RoleViewer, the
// least privileged role, so a name that does not exist locks exactly like a
// viewer's (R-ENUM).
type Role uint8

const (
	RoleViewer Role = iota
	RoleOperator
	RoleAdmin
	NumRoles
)

var roleNames = [...]string{"viewer", "operator", "admin"}

func (r Role) String() string {
	if r < NumRoles {
		return roleNames[r]
	}
	return fmt.Sprintf("Role(%d)", r)
}

// ParseRole maps "admin", "operator" or "viewer" (and "guest", a viewer) to
// its Role.
func ParseRole(s string) (Role, error) {
	switch s {
	case "admin":
		return RoleAdmin, nil
	case "operator":
		return RoleOperator, nil
	case "viewer", "guest", "":
		return RoleViewer, nil
	}
	return 0, fmt.Errorf("unknown role %q (want admin, operator or viewer)", s)
}

// Channel says where an attempt was made (SPEC §1).
type Channel uint8

const (
	Remote Channel = iota
	Console
)

func (c Channel) String() string {
	if c == Console {
		return "console"
	}
	return "remote"
}

// MaxThreshold bounds every threshold so that a key's failures fit in a
// fixed array and states stay comparable values (DESIGN: no maps in state).
const MaxThreshold = 32

// MaxPrints is how many recent wrong-secret fingerprints a pair retains for
// R-REPLAY; when more distinct wrong secrets arrive within the window, the
// least recently seen is forgotten (its next replay counts again: the safe
// direction).
const MaxPrints = 16

// MaxLevel bounds the escalation level (INV-BOUNDED).
const MaxLevel = 64

// Key is the state of one lock machine (SPEC §2). Times are instants.
// Fields not meaningful in the current mode are zero, so equal situations
// compare equal.
type Key struct {
	Mode  Mode
	Level uint8
	// NFail counts the valid entries of Failures, oldest first.
	NFail uint8
	// Disabled is the principal's administrative switch; it is not a lockout
	// and no automatic rule sets it (SPEC §2, R-ADMIT).
	Disabled bool
	// Until ends a Locked or Held key; Forever for a hold with no end.
	Until Instant
	// LockedAt is the start of the current lock or its last extension
	// (INV-TERMINATE measures from it).
	LockedAt Instant
	// QuietFrom anchors decay: the last counted failure or the instant the
	// key last opened, whichever is later (R-ADVANCE).
	QuietFrom Instant
	Failures  [MaxThreshold]Instant
}

// Pair is the key of one (principal, source) plus what only a pair knows:
// whether the source is familiar (SPEC §1) and the fingerprints of recent
// wrong secrets (R-REPLAY).
type Pair struct {
	Key
	// Familiar is set by a verified right secret from this source; it lasts
	// trustTTL from LastSuccess.
	Familiar    bool
	LastSuccess Instant
	NPrints     uint8
	Prints      [MaxPrints]Print
}

// Print is a keyed MAC of a wrong secret and when it was last presented.
type Print struct {
	Tag  uint64
	Seen Instant
}

// View is every key one attempt involves: the pair (principal, source), the
// source, the principal and the principal's console key. Decide reads and
// returns a View; the caller stores each key under its own identity.
type View struct {
	Pair      Pair
	Source    Key
	Principal Key
	Console   Key
}

// Attempt describes a login attempt before its secret is looked at.
type Attempt struct {
	Channel Channel
	Role    Role
	// Print is the keyed MAC of the presented secret (see Fingerprint); 0
	// when the caller has none. Only R-REPLAY reads it.
	Print uint64
}

// Outcome is what verification found, for phase two.
type Outcome uint8

const (
	// RightSecret is a verified right secret (and second factor, if any).
	RightSecret Outcome = iota
	// WrongSecret is a verified wrong password (or console PIN).
	WrongSecret
	// WrongSecondFactor is a right password with a wrong TOTP (R-2FA).
	WrongSecondFactor
)

// Verdict is the answer to one attempt.
type Verdict uint8

const (
	// Admitted is phase one's answer: verify the secret, then call Record.
	Admitted Verdict = iota
	// Refused: refused before verification (R-ADMIT). The trace says "locked".
	Refused
	// Allowed: the secret was verified right. The trace says "ok".
	Allowed
	// Failed: the secret was verified wrong. The trace says "fail".
	Failed
)

var verdictNames = [...]string{"admitted", "locked", "ok", "fail"}

func (v Verdict) String() string {
	if int(v) < len(verdictNames) {
		return verdictNames[v]
	}
	return fmt.Sprintf("Verdict(%d)", v)
}

// Scope says which key refused an attempt (R-DISCLOSE decides how much of it
// a client may see).
type Scope uint8

const (
	ScopeNone Scope = iota
	ScopePair
	ScopeSource
	ScopePrincipal
	ScopeHeld
	ScopeDisabled
	ScopeConsole
)

var scopeNames = [...]string{"", "pair", "source", "principal", "held", "disabled", "console"}

func (s Scope) String() string {
	if int(s) < len(scopeNames) {
		return scopeNames[s]
	}
	return fmt.Sprintf("Scope(%d)", s)
}

// Effects are the state changes a decision made, as data: the caller audits
// them and sends notifications after commit (R-AUDIT, DESIGN Notify).
type Effects uint32

const (
	EffLocked    Effects = 1 << iota // some key became Locked
	EffHeld                          // some key became Held
	EffExtended                      // a Locked pair's until moved later (R-EXTEND)
	EffExpired                       // a lock or hold ended with time (R-ADVANCE)
	EffDecayed                       // some level went down (R-ADVANCE)
	EffCleared                       // a success cleared keys (R-SUCCESS)
	EffRepeat                        // a replayed wrong secret was not counted (R-REPLAY)
	EffNewDevice                     // a success from a source that was not familiar
	EffCounted                       // a failure was counted on at least one key
)

var effectNames = []string{"locked", "held", "extended", "expired", "decayed", "cleared", "repeat", "new_device", "counted"}

// Names lists the set effects in a fixed order.
func (e Effects) Names() []string {
	var out []string
	for i, n := range effectNames {
		if e&(1<<i) != 0 {
			out = append(out, n)
		}
	}
	return out
}

// Decision is the answer to one attempt: a comparable value.
type Decision struct {
	Verdict Verdict
	// Verified is true when the secret's verification result was used
	// (INV-NOORACLE: never for a refusal).
	Verified bool
	// Scope is the key that refused (Refused only).
	Scope Scope
	// RetryAfter is how long until an identical attempt could be admitted;
	// 0 with Scope held or disabled means no timed end.
	RetryAfter time.Duration
	// Remaining is how many more counted failures this client may make
	// before one of its keys locks; -1 when no key limits it.
	Remaining int
	Effects   Effects
	// Locks lists, per Kind, the mode each key is in after the decision.
	Modes [NumKinds]Mode
}
