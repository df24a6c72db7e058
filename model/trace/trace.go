// Package trace reads and writes the trace format of SPEC §9: JSON lines
// that declare users and then list attempts and operations at durations
// since the trace start. Replay, the simulator and the explorer's
// counterexamples all speak it.
//
// The package owns the format only: it never decides anything.
package trace

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/latchnvr/latch/model"
)

// Ops of SPEC §9; an attempt has no op.
const (
	OpUser         = "user"
	OpDevice       = "device" // declares the console master PIN
	OpUnlock       = "unlock"
	OpReset        = "reset"
	OpDisable      = "disable"
	OpEnable       = "enable"
	OpFactoryReset = "factory_reset"
	OpRestart      = "restart"
	OpWallJump     = "wall_jump"
)

var knownOps = map[string]bool{OpUser: true, OpDevice: true, OpUnlock: true, OpReset: true, OpDisable: true,
	OpEnable: true, OpFactoryReset: true, OpRestart: true, OpWallJump: true}

// Duration is a time.Duration written as a Go duration string ("1h30m").
type Duration time.Duration

// MarshalJSON writes the Go duration string.
func (d Duration) MarshalJSON() ([]byte, error) {
	return json.Marshal(model.FormatDuration(time.Duration(d)))
}

// UnmarshalJSON reads a Go duration string (a day suffix is accepted).
func (d *Duration) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return fmt.Errorf("want a duration string like \"30s\", got %s", b)
	}
	neg := strings.HasPrefix(s, "-")
	v, err := model.ParseDuration(strings.TrimPrefix(s, "-"))
	if err != nil {
		return err
	}
	if neg {
		v = -v
	}
	*d = Duration(v)
	return nil
}

// Line is one input line of a trace.
type Line struct {
	At *Duration `json:"at,omitempty"`
	Op string    `json:"op,omitempty"`
	// User is the account name as typed; it is canonicalised when applied.
	User     string `json:"user,omitempty"`
	Source   string `json:"source,omitempty"`
	Password string `json:"password,omitempty"`
	Role     string `json:"role,omitempty"`
	// Channel is "remote" (default) or "console".
	Channel string `json:"channel,omitempty"`
	// SecondFactor "fail" marks a right password with a wrong TOTP (R-2FA).
	SecondFactor string `json:"second_factor,omitempty"`
	// PIN is the console master PIN (op device).
	PIN string `json:"pin,omitempty"`
	// All unlocks every key (op unlock).
	All bool `json:"all,omitempty"`
	// By is the size of a wall-clock step (op wall_jump), or how far the
	// wall clock moved while the device was off (op restart: time served
	// under R-RESTART when positive; an RTC reset when negative).
	By *Duration `json:"by,omitempty"`
}

// Time is the line's offset from the trace start (0 when absent).
func (l *Line) Time() time.Duration {
	if l.At == nil {
		return 0
	}
	return time.Duration(*l.At)
}

// IsAttempt reports whether the line is a login attempt.
func (l *Line) IsAttempt() bool { return l.Op == "" }

// ParseError names the line of a malformed trace.
type ParseError struct {
	Line int
	Err  error
}

func (e *ParseError) Error() string { return fmt.Sprintf("line %d: %v", e.Line, e.Err) }
func (e *ParseError) Unwrap() error { return e.Err }

// MaxLineBytes bounds one trace line.
const MaxLineBytes = 1 << 20

// ParseLine decodes and checks one line. Empty lines are not lines.
func ParseLine(b []byte) (Line, error) {
	var l Line
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&l); err != nil {
		return l, fmt.Errorf("malformed JSON: %w", err)
	}
	if dec.More() {
		return l, errors.New("more than one JSON value on the line")
	}
	return l, l.Check()
}

// Check reports what is wrong with a line's fields.
func (l *Line) Check() error {
	if l.Op != "" && !knownOps[l.Op] {
		return fmt.Errorf("unknown op %q (want user, device, unlock, reset, disable, enable, factory_reset, restart or wall_jump)", l.Op)
	}
	if l.At != nil && *l.At < 0 {
		return fmt.Errorf("at must not be negative")
	}
	needsAt := l.Op != OpUser && l.Op != OpDevice
	if needsAt && l.At == nil {
		return fmt.Errorf("missing \"at\"")
	}
	switch l.Op {
	case "":
		if l.User == "" {
			return errors.New("an attempt needs \"user\"")
		}
		if l.Channel != "" && l.Channel != "remote" && l.Channel != "console" {
			return fmt.Errorf("channel must be remote or console, got %q", l.Channel)
		}
		if l.Channel != "console" && l.Source == "" {
			return errors.New("a remote attempt needs \"source\"")
		}
		if l.SecondFactor != "" && l.SecondFactor != "fail" && l.SecondFactor != "ok" {
			return fmt.Errorf("second_factor must be ok or fail, got %q", l.SecondFactor)
		}
	case OpUser:
		if l.User == "" {
			return errors.New("op user needs \"user\"")
		}
		if _, err := model.ParseRole(l.Role); err != nil {
			return err
		}
	case OpDevice:
		if l.PIN == "" {
			return errors.New("op device needs \"pin\"")
		}
	case OpUnlock:
		if !l.All && l.User == "" {
			return errors.New("op unlock needs \"user\" (and optionally \"source\") or \"all\":true")
		}
	case OpReset, OpDisable, OpEnable:
		if l.User == "" {
			return fmt.Errorf("op %s needs \"user\"", l.Op)
		}
	case OpWallJump:
		if l.By == nil {
			return errors.New("op wall_jump needs \"by\"")
		}
	}
	return nil
}

// Reader reads a trace line by line, checking that time never runs
// backwards; it reports the first malformed line and reads no further.
type Reader struct {
	sc   *bufio.Scanner
	n    int
	last time.Duration
	err  error
}

// NewReader reads a trace from r.
func NewReader(r io.Reader) *Reader {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64*1024), MaxLineBytes)
	return &Reader{sc: sc}
}

// Next returns the next line and its 1-based number, io.EOF at the end, or
// a *ParseError.
func (r *Reader) Next() (Line, int, error) {
	if r.err != nil {
		return Line{}, r.n, r.err
	}
	for r.sc.Scan() {
		r.n++
		b := bytes.TrimSpace(r.sc.Bytes())
		if len(b) == 0 {
			continue
		}
		l, err := ParseLine(b)
		if err == nil && l.At != nil {
			if t := l.Time(); t < r.last {
				err = fmt.Errorf("at %s is before the previous line's %s: a trace never goes back in time", model.FormatDuration(t), model.FormatDuration(r.last))
			} else {
				r.last = t
			}
		}
		if err != nil {
			r.err = &ParseError{Line: r.n, Err: err}
			return Line{}, r.n, r.err
		}
		return l, r.n, nil
	}
	if err := r.sc.Err(); err != nil {
		r.err = &ParseError{Line: r.n + 1, Err: err}
		return Line{}, r.n + 1, r.err
	}
	r.err = io.EOF
	return Line{}, r.n, io.EOF
}

// Writer writes trace lines.
type Writer struct{ enc *json.Encoder }

// NewWriter writes a trace to w.
func NewWriter(w io.Writer) *Writer {
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	return &Writer{enc: enc}
}

// Write writes one line.
func (w *Writer) Write(l Line) error { return w.enc.Encode(l) }

// At is a helper for building lines.
func At(d time.Duration) *Duration { v := Duration(d); return &v }
