package world

import (
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/latchnvr/latch/model"
	"github.com/latchnvr/latch/model/trace"
)

// replayKey is the device key replay fingerprints secrets with: traces are
// test data, so a fixed key keeps outputs reproducible.
var replayKey = []byte("latch-replay")

// wallEpoch is the wall clock at a trace's start; only differences matter.
const wallEpoch = int64(1767225600) * int64(time.Second) // 2026-01-01T00:00:00Z

// Result is one output line of replay (SPEC §9).
type Result struct {
	Line       int               `json:"line"`
	At         trace.Duration    `json:"at"`
	User       string            `json:"user,omitempty"`
	Source     string            `json:"source,omitempty"`
	Channel    string            `json:"channel,omitempty"`
	Decision   string            `json:"decision"`
	Reason     string            `json:"reason,omitempty"`
	RetryAfter *trace.Duration   `json:"retry_after,omitempty"`
	Remaining  *int              `json:"remaining,omitempty"`
	Modes      map[string]string `json:"modes,omitempty"`
	Levels     map[string]int    `json:"levels,omitempty"`
	Effects    []string          `json:"effects,omitempty"`
}

type account struct {
	password string
	role     model.Role
}

// Replayer applies trace lines to a World, verifying secrets against the
// passwords the trace declares. Unknown users are never verified right and
// lock exactly like known ones (R-ENUM).
type Replayer struct {
	World *World
	users map[model.Principal]account
	pin   string
	wall  int64 // wall offset from wallEpoch+at, moved by wall_jump
}

// NewReplayer starts a replay under policy p.
func NewReplayer(p model.Policy) *Replayer {
	return &Replayer{World: New(p), users: map[model.Principal]account{}}
}

// Apply applies one line and describes what happened.
func (r *Replayer) Apply(n int, l trace.Line) (Result, error) {
	at := l.Time()
	now := model.Instant(at)
	res := Result{Line: n, At: trace.Duration(at), Decision: l.Op}
	var pr model.Principal
	if l.User != "" {
		var err error
		if pr, err = model.CanonicalPrincipal(l.User); err != nil {
			return res, err
		}
		res.User = string(pr)
	}
	switch l.Op {
	case "":
		return r.attempt(res, pr, l, now)
	case trace.OpUser:
		role, _ := model.ParseRole(l.Role)
		r.users[pr] = account{password: l.Password, role: role}
		res.Reason = "declared " + role.String()
	case trace.OpDevice:
		r.pin = l.PIN
		res.Reason = "console master PIN set"
	case trace.OpUnlock:
		switch {
		case l.All:
			r.World.UnlockAll()
			res.Reason = "every key opened (R-UNLOCK)"
		case l.Source != "":
			src, err := model.ParseSource(l.Source)
			if err != nil {
				return res, err
			}
			res.Source = src.String()
			r.World.UnlockPair(pr, src)
			res.Reason = "pair and source keys opened (R-UNLOCK)"
		default:
			r.World.UnlockPrincipal(pr)
			res.Reason = "every key of the principal opened (R-UNLOCK)"
		}
	case trace.OpReset:
		r.World.UnlockPrincipal(pr)
		if l.Password != "" {
			if a, ok := r.users[pr]; ok {
				a.password = l.Password
				r.users[pr] = a
			}
		}
		res.Reason = "password reset: principal and its pairs opened, level 0 (R-RESET)"
	case trace.OpDisable, trace.OpEnable:
		r.World.SetDisabled(pr, l.Op == trace.OpDisable)
		res.Reason = "administrative " + l.Op
	case trace.OpFactoryReset:
		r.World.FactoryReset()
		r.users = map[model.Principal]account{}
		r.pin = ""
		res.Reason = "users, keys and settings erased (R-FACTORY)"
	case trace.OpRestart:
		wall := wallEpoch + int64(at) + r.wall
		after := wall
		if l.By != nil {
			// The wall clock moved while the device was off; instants did
			// not (a reboot takes no trace time).
			after += int64(*l.By)
			r.wall += int64(*l.By)
		}
		r.World.Restart(now, wall, after)
		res.Reason = "state persisted and restored (R-RESTART)"
	case trace.OpWallJump:
		r.wall += int64(*l.By)
		res.Reason = "wall clock stepped by " + model.FormatDuration(time.Duration(*l.By)) + "; no lock changes (R-MONO)"
	default:
		return res, fmt.Errorf("unknown op %q", l.Op)
	}
	if pr != "" {
		r.describe(&res, pr, model.Source{}, now)
	}
	return res, nil
}

func (r *Replayer) attempt(res Result, pr model.Principal, l trace.Line, now model.Instant) (Result, error) {
	ev := model.Event{}
	var src model.Source
	if l.Channel == "console" {
		ev.Channel = model.Console
		res.Channel = "console"
	} else {
		var err error
		if src, err = model.ParseSource(l.Source); err != nil {
			return res, err
		}
		res.Source = src.String()
	}
	acct, known := r.users[pr]
	ev.Role = acct.role
	ev.Print = model.Fingerprint(replayKey, l.Password)
	right := known && l.Password == acct.password
	if ev.Channel == model.Console && r.pin != "" && l.Password == r.pin {
		right = true
	}
	switch {
	case right && l.SecondFactor == "fail":
		ev.Outcome = model.WrongSecondFactor
	case right:
		ev.Outcome = model.RightSecret
	default:
		ev.Outcome = model.WrongSecret
	}
	d := r.World.Decide(pr, src, ev, now)
	res.Decision = d.Verdict.String()
	res.Reason = reason(d, ev.Outcome)
	if d.Verdict == model.Refused {
		ra := trace.Duration(d.RetryAfter)
		res.RetryAfter = &ra
	}
	if d.Verdict == model.Failed {
		rem := d.Remaining
		res.Remaining = &rem
	}
	res.Effects = d.Effects.Names()
	r.describe(&res, pr, src, now)
	return res, nil
}

// describe adds the modes and levels of the keys a line involved.
func (r *Replayer) describe(res *Result, pr model.Principal, src model.Source, now model.Instant) {
	v := r.World.View(pr, src)
	res.Modes = map[string]string{"principal": mode(v.Principal), "console": v.Console.Mode.String()}
	res.Levels = map[string]int{}
	add := func(name string, k model.Key) {
		if k.Level > 0 {
			res.Levels[name] = int(k.Level)
		}
	}
	if !src.IsZero() {
		res.Modes["pair"] = v.Pair.Mode.String()
		res.Modes["source"] = v.Source.Mode.String()
		add("pair", v.Pair.Key)
		add("source", v.Source)
	}
	add("principal", v.Principal)
	add("console", v.Console)
	if len(res.Levels) == 0 {
		res.Levels = nil
	}
}

func mode(k model.Key) string {
	if k.Disabled {
		return k.Mode.String() + "+Disabled"
	}
	return k.Mode.String()
}

func reason(d model.Decision, o model.Outcome) string {
	switch d.Verdict {
	case model.Refused:
		return "refused before verification: " + d.Scope.String() + " (R-ADMIT)"
	case model.Allowed:
		if d.Effects&model.EffNewDevice != 0 {
			return "right secret; source now familiar (R-SUCCESS)"
		}
		return "right secret (R-SUCCESS)"
	}
	var b strings.Builder
	switch {
	case d.Effects&model.EffRepeat != 0:
		b.WriteString("repeated wrong secret within the window: recorded, not counted (R-REPLAY)")
	case o == model.WrongSecondFactor:
		b.WriteString("wrong second factor: counted on the pair (R-2FA)")
	case d.Effects&model.EffCounted == 0:
		b.WriteString("wrong secret; protection disabled")
	default:
		b.WriteString("wrong secret: counted (R-FAIL)")
	}
	if d.Effects&model.EffHeld != 0 {
		b.WriteString("; key held (R-LOCK)")
	} else if d.Effects&model.EffLocked != 0 {
		b.WriteString("; key locked (R-LOCK)")
	}
	return b.String()
}

// Run replays a whole trace from in, writing one JSON result per line to
// out via emit. It stops at the first malformed line, returning its error
// after the lines before it were emitted.
func Run(p model.Policy, in io.Reader, emit func(Result) error) error {
	rd := trace.NewReader(in)
	rp := NewReplayer(p)
	for {
		l, n, err := rd.Next()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err
		}
		res, err := rp.Apply(n, l)
		if err != nil {
			return &trace.ParseError{Line: n, Err: err}
		}
		if err := emit(res); err != nil {
			return err
		}
	}
}
