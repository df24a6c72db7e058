package proofs

import (
	"fmt"
	"time"

	"github.com/latchnvr/latch/model"
	"github.com/latchnvr/latch/model/trace"
)

// The names a counterexample trace uses.
const (
	traceUser     = "alice"
	rightPassword = "right-secret"
)

// sourceAddr is the address of source s (0-based) in traces.
func sourceAddr(s int) string { return fmt.Sprintf("10.0.0.%d", s+1) }

// tracer turns a path of the abstraction into SPEC §9 trace lines that
// `latchsim replay` (wstate.Run) reproduces. It follows the canonical
// relabelling of sources and fingerprints so that every line names the
// physical source and the very password the path meant.
type tracer struct {
	role   model.Role
	dedup  bool
	lines  []trace.Line
	t      time.Duration
	src    [maxSources]string
	pw     [maxSources]map[uint64]string
	nwrong int
	// added records the fingerprint labels given a password since mark.
	added []tracerLabel
	// decided holds, per line index, the decision the explorer saw for an
	// attempt (tests compare it with what replay decides).
	decided map[int]model.Decision
}

type tracerLabel struct {
	s     int
	label uint64
}

// tracerMark is a point a tracer can roll back to.
type tracerMark struct {
	lines, nwrong, added int
}

func (t *tracer) mark() tracerMark {
	return tracerMark{len(t.lines), t.nwrong, len(t.added)}
}

// rollback undoes every line and password since m.
func (t *tracer) rollback(m tracerMark) {
	for i := m.lines; i < len(t.lines); i++ {
		delete(t.decided, i)
	}
	t.lines, t.nwrong = t.lines[:m.lines], m.nwrong
	for _, a := range t.added[m.added:] {
		delete(t.pw[a.s], a.label)
	}
	t.added = t.added[:m.added]
}

func newTracer(role model.Role, dedup bool) *tracer {
	t := &tracer{role: role, dedup: dedup}
	for s := range t.src {
		t.src[s] = sourceAddr(s)
		t.pw[s] = map[uint64]string{}
	}
	t.declare()
	return t
}

// decide records the explorer's decision for the last line.
func (t *tracer) decide(d model.Decision) {
	if t.decided == nil {
		t.decided = map[int]model.Decision{}
	}
	t.decided[len(t.lines)-1] = d
}

func (t *tracer) declare() {
	t.lines = append(t.lines, trace.Line{Op: trace.OpUser, User: traceUser, Password: rightPassword, Role: t.role.String()})
}

func (t *tracer) at() *trace.Duration { return trace.At(t.t) }

func (t *tracer) wrong() string {
	t.nwrong++
	return fmt.Sprintf("wrong-%d", t.nwrong)
}

func (t *tracer) attempt(s int, ch model.Channel, o model.Outcome, label uint64) {
	l := trace.Line{At: t.at(), User: traceUser}
	if ch == model.Console {
		l.Channel = "console"
	} else {
		l.Source = t.src[s]
	}
	switch o {
	case model.RightSecret:
		l.Password = rightPassword
	case model.WrongSecondFactor:
		l.Password = rightPassword
		l.SecondFactor = "fail"
	default:
		if ch == model.Remote && t.dedup {
			p, ok := t.pw[s][label]
			if !ok {
				p = t.wrong()
				t.pw[s][label] = p
				t.added = append(t.added, tracerLabel{s, label})
			}
			l.Password = p
		} else {
			l.Password = t.wrong()
		}
	}
	t.lines = append(t.lines, l)
}

// probe is the line of a state check: a right-secret attempt after a delay.
func (t *tracer) probe(s int, ch model.Channel, after int64) {
	l := trace.Line{At: trace.At(t.t + time.Duration(after)), User: traceUser, Password: rightPassword}
	if ch == model.Console {
		l.Channel = "console"
	} else {
		l.Source = t.src[s]
	}
	t.lines = append(t.lines, l)
}

func (t *tracer) op(e edge) {
	l := trace.Line{At: t.at(), User: traceUser}
	switch e.op {
	case opUnlockPrincipal:
		l.Op = trace.OpUnlock
	case opUnlockPair:
		l.Op = trace.OpUnlock
		l.Source = t.src[e.src]
	case opUnlockAll:
		l.Op, l.User, l.All = trace.OpUnlock, "", true
	case opReset:
		l.Op = trace.OpReset
	case opDisable:
		l.Op = trace.OpDisable
	case opEnable:
		l.Op = trace.OpEnable
	case opFactory:
		l.Op, l.User = trace.OpFactoryReset, ""
	}
	t.lines = append(t.lines, l)
	if e.op == opFactory {
		// Activation after the factory reset: the same account again.
		t.declare()
		for s := range t.pw {
			t.pw[s] = map[uint64]string{}
		}
	}
}

func (t *tracer) advance(d int64) { t.t += time.Duration(d) }

// restart writes a reboot whose wall clock moved by d. Replay restarts with
// the wall clock unchanged, so a downtime d > 0 is written as d passing
// before the restart (the same relative state), and an RTC reset as a wall
// step followed by a restart (no time served either way).
func (t *tracer) restart(d int64) {
	switch {
	case d > 0:
		t.t += time.Duration(d)
	case d < 0:
		by := trace.Duration(d)
		t.lines = append(t.lines, trace.Line{At: t.at(), Op: trace.OpWallJump, By: &by})
	}
	t.lines = append(t.lines, trace.Line{At: t.at(), Op: trace.OpRestart})
}

func (t *tracer) wallJump(by int64) {
	b := trace.Duration(by)
	t.lines = append(t.lines, trace.Line{At: t.at(), Op: trace.OpWallJump, By: &b})
}

func (t *tracer) relabel(s int, olds, news []uint64) {
	m := make(map[uint64]string, len(olds))
	for j, o := range olds {
		if p, ok := t.pw[s][o]; ok {
			m[news[j]] = p
		}
	}
	t.pw[s] = m
}

func (t *tracer) permute(perm [maxSources]int) {
	var src [maxSources]string
	var pw [maxSources]map[uint64]string
	for i, p := range perm {
		src[i], pw[i] = t.src[p], t.pw[p]
	}
	t.src, t.pw = src, pw
}
