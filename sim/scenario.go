package sim

import (
	"embed"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/latchnvr/latch/model"
)

// Scenario is a site and what happens to it: legitimate users and their
// devices, a helpdesk, attacks, clock chaos and cameras. It is read from a
// YAML file (see the built-ins under sim/scenarios for every field).
type Scenario struct {
	Pos         origin `yaml:"-" json:"-"`
	Name        string `yaml:"name"`
	Description string `yaml:"description"`
	// Extends names a built-in scenario this one starts from: every section
	// set here replaces the base's, except attacks, which are added.
	Extends string `yaml:"extends"`
	// Duration is the default virtual time of a run (--duration overrides).
	Duration Duration `yaml:"duration"`
	// Victim names the user whose availability is reported as the victim's
	// (the target of a lockout-DoS).
	Victim    string       `yaml:"victim"`
	Users     []UserSpec   `yaml:"users"`
	Helpdesk  HelpdeskSpec `yaml:"helpdesk"`
	Passwords PasswordSpec `yaml:"passwords"`
	Attacks   []AttackSpec `yaml:"attacks"`
	Clock     *ClockSpec   `yaml:"clock"`
	Cameras   *CameraSpec  `yaml:"cameras"`
	Source    string       `yaml:"-"` // "built-in" or the file it was read from
	present   map[string]bool
}

// UserSpec is a group of legitimate users with the same habits.
type UserSpec struct {
	Pos  origin `yaml:"-" json:"-"`
	Name string `yaml:"name"`
	// Count users named Name01, Name02, … (or Name alone when 1).
	Count int    `yaml:"count"`
	Role  string `yaml:"role"`
	// LoginsPerDay is the mean of a Poisson number of logins on each
	// active day, at uniform times within Hours.
	LoginsPerDay float64 `yaml:"logins_per_day"`
	Hours        Hours   `yaml:"hours"`
	Days         Days    `yaml:"days"`
	// Typo is the probability that one typed password is mistyped.
	Typo float64 `yaml:"typo"`
	// ForgetPerYear is how often a user forgets the password: they then
	// try ForgetTries wrong passwords and recover (self-service reset, or a
	// reset by the helpdesk).
	ForgetPerYear float64 `yaml:"forget_per_year"`
	ForgetTries   int     `yaml:"forget_tries"`
	SelfService   bool    `yaml:"self_service"`
	// Sources is how many devices (addresses) each user logs in from.
	Sources int `yaml:"sources"`
	// NewSourcesPerYear is how often a user logs in from a new address
	// (new phone, travel).
	NewSourcesPerYear float64 `yaml:"new_sources_per_year"`
	// Patience is the longest Retry-After a user waits out; beyond it, or
	// when locked with no end, the user asks the helpdesk.
	Patience Duration `yaml:"patience"`
	// Devices log in by themselves with a stored password (phone apps,
	// a VMS): each user of the group has each device.
	Devices []DeviceSpec `yaml:"devices"`
}

// DeviceSpec is an app or VMS that logs in periodically with a stored
// password.
type DeviceSpec struct {
	Pos   origin   `yaml:"-" json:"-"`
	Name  string   `yaml:"name"`
	Every Duration `yaml:"every"`
	// Stale devices hold an old password from the start and never update.
	Stale bool `yaml:"stale"`
	// UpdateAfter is how long after a password change the owner updates
	// the device (0: never).
	UpdateAfter Duration `yaml:"update_after"`
}

// HelpdeskSpec is the admin who unlocks or resets on request.
type HelpdeskSpec struct {
	Pos origin `yaml:"-" json:"-"`
	// Delay is the mean time to act on a request (uniform in ½–1½ of it).
	Delay Duration `yaml:"delay"`
}

// PasswordSpec is the strength of the users' passwords: the number of
// guesses an optimal attacker needs (guesses-to-crack, as zxcvbn
// estimates it) is log-normal: log10(G) ~ Normal(log10(MedianGuesses),
// SigmaLog10). The probability that n distinct verified guesses compromise
// an account is P(G ≤ n).
type PasswordSpec struct {
	Pos           origin  `yaml:"-" json:"-"`
	MedianGuesses float64 `yaml:"median_guesses"`
	SigmaLog10    float64 `yaml:"sigma_log10"`
}

// AttackSpec is one attack.
type AttackSpec struct {
	Pos  origin `yaml:"-" json:"-"`
	Kind string `yaml:"kind"` // brute_force, distributed, stuffing, dos
	Name string `yaml:"name"`
	// Targets are site user names, "@site" (every user) or "@admins".
	Targets []string `yaml:"targets"`
	// Sources is how many addresses the attack uses.
	Sources int `yaml:"sources"`
	// Every is each source's interval between attempts.
	Every Duration `yaml:"every"`
	Start Duration `yaml:"start"`
	Stop  Duration `yaml:"stop"`
	// OnRefusal: "wait" waits out Retry-After (MaxWait when there is none);
	// "hammer" keeps its pace regardless.
	OnRefusal string   `yaml:"on_refusal"`
	MaxWait   Duration `yaml:"max_wait"`
	// Principals is the size of a stuffing list; the site's users are in
	// it, and Reuse is the fraction of them whose leaked password is still
	// their password.
	Principals int     `yaml:"principals"`
	Reuse      float64 `yaml:"reuse"`
}

// ClockSpec is clock chaos: wall-clock steps while running and reboots,
// some with the RTC reset to 1970.
type ClockSpec struct {
	Pos origin `yaml:"-" json:"-"`
	// StepEvery is the mean interval between wall-clock steps of a
	// magnitude log-uniform in [StepMin, StepMax], either sign, undone by
	// NTP after FixAfter (0: never).
	StepEvery Duration `yaml:"step_every"`
	StepMin   Duration `yaml:"step_min"`
	StepMax   Duration `yaml:"step_max"`
	FixAfter  Duration `yaml:"fix_after"`
	// RebootEvery is the mean interval between reboots; RTCReset is the
	// probability that the RTC comes up at 1970, corrected by NTP after
	// NTPSync.
	RebootEvery Duration `yaml:"reboot_every"`
	RTCReset    float64  `yaml:"rtc_reset"`
	NTPSync     Duration `yaml:"ntp_sync"`
}

// CameraSpec is the cameras recording on the virtual clock.
type CameraSpec struct {
	Pos     origin   `yaml:"-" json:"-"`
	Count   int      `yaml:"count"`
	Segment Duration `yaml:"segment"`
}

// Attack kinds.
const (
	BruteForce  = "brute_force"
	Distributed = "distributed"
	Stuffing    = "stuffing"
	DoS         = "dos"
)

// Duration is a duration in a scenario: a Go duration, or with a d (day)
// or y (365 days) suffix ("30d", "1y").
type Duration time.Duration

// ParseDuration reads a scenario duration.
func ParseDuration(s string) (time.Duration, error) {
	s = strings.TrimSpace(s)
	if n, ok := strings.CutSuffix(s, "y"); ok {
		var years int64
		if _, err := fmt.Sscanf(n, "%d", &years); err != nil || fmt.Sprint(years) != n || years < 0 || years > 100 {
			return 0, fmt.Errorf("invalid duration %q (years: 0 to 100)", s)
		}
		return time.Duration(years) * 365 * 24 * time.Hour, nil
	}
	d, err := model.ParseDuration(s)
	if err != nil {
		return 0, err
	}
	if d < 0 {
		return 0, fmt.Errorf("duration %q must not be negative", s)
	}
	return d, nil
}

func (d *Duration) parseScalar(s string) error {
	v, err := ParseDuration(s)
	*d = Duration(v)
	return err
}

// D is the duration as a time.Duration.
func (d Duration) D() time.Duration { return time.Duration(d) }

func (d Duration) String() string { return FormatDuration(time.Duration(d)) }

// MarshalJSON writes the duration as text ("30d", "1h30m").
func (d Duration) MarshalJSON() ([]byte, error) { return json.Marshal(d.String()) }

// UnmarshalJSON reads what MarshalJSON writes.
func (d *Duration) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return fmt.Errorf("want a duration string like \"30d\", got %s", b)
	}
	return d.parseScalar(s)
}

// FormatDuration prints durations of a day or more with a day count
// ("30d", "6d18h57m") and others as Go does, compactly; ParseDuration
// reads every form back.
func FormatDuration(d time.Duration) string {
	const day = 24 * time.Hour
	if d >= day {
		s := fmt.Sprintf("%dd", d/day)
		if r := d % day; r != 0 {
			s += model.FormatDuration(r)
		}
		return s
	}
	return model.FormatDuration(d)
}

// Hours is a daily interval "08:00-18:00" (to may be 24:00).
type Hours struct{ From, To time.Duration }

func (h *Hours) parseScalar(s string) error {
	from, to, ok := strings.Cut(s, "-")
	if !ok {
		return fmt.Errorf("want HH:MM-HH:MM, got %q", s)
	}
	var err error
	if h.From, err = clockTime(from); err != nil {
		return err
	}
	if h.To, err = clockTime(to); err != nil {
		return err
	}
	if h.To <= h.From {
		return fmt.Errorf("want HH:MM-HH:MM with the end after the start, got %q", s)
	}
	return nil
}

func clockTime(s string) (time.Duration, error) {
	var hh, mm int
	if n, err := fmt.Sscanf(strings.TrimSpace(s), "%d:%d", &hh, &mm); err != nil || n != 2 || hh < 0 || mm < 0 || mm > 59 || hh*60+mm > 24*60 {
		return 0, fmt.Errorf("want a time of day HH:MM, got %q", s)
	}
	return time.Duration(hh)*time.Hour + time.Duration(mm)*time.Minute, nil
}

// MarshalJSON writes "08:00-18:00".
func (h Hours) MarshalJSON() ([]byte, error) {
	f := func(d time.Duration) string { return fmt.Sprintf("%02d:%02d", int(d.Hours()), int(d.Minutes())%60) }
	return json.Marshal(f(h.From) + "-" + f(h.To))
}

// Days says on which days users log in.
type Days uint8

const (
	AllDays Days = iota
	Weekdays
	Weekends
)

var dayNames = [...]string{"all", "weekdays", "weekends"}

func (d *Days) parseScalar(s string) error {
	for i, n := range dayNames {
		if n == s {
			*d = Days(i)
			return nil
		}
	}
	return fmt.Errorf("want all, weekdays or weekends, got %q", s)
}

// MarshalJSON writes the name.
func (d Days) MarshalJSON() ([]byte, error) { return json.Marshal(dayNames[d]) }

// active reports whether day number n since the start (2026-01-01, a
// Thursday) is a login day.
func (d Days) active(n int64) bool {
	wd := (4 + n) % 7 // 0 Sunday
	switch d {
	case Weekdays:
		return wd >= 1 && wd <= 5
	case Weekends:
		return wd == 0 || wd == 6
	}
	return true
}

//go:embed scenarios/*.yaml
var builtinFS embed.FS

// builtinOrder is the order `latchsim scenarios` lists the built-ins.
var builtinOrder = []string{"home", "small-business", "brute-force", "botnet", "stuffing", "dos", "clock-chaos"}

// BuiltinNames lists the built-in scenarios.
func BuiltinNames() []string { return append([]string(nil), builtinOrder...) }

// BuiltinYAML returns a built-in scenario's file.
func BuiltinYAML(name string) ([]byte, bool) {
	b, err := builtinFS.ReadFile("scenarios/" + name + ".yaml")
	return b, err == nil
}

// MaxScenarioBytes bounds a scenario file.
const MaxScenarioBytes = 1 << 20

// LoadScenario reads a built-in by name or a scenario file by path. A name
// ending in .yaml or .yml, or containing a slash, is a file.
func LoadScenario(nameOrFile string) (*Scenario, error) {
	isFile := strings.ContainsRune(nameOrFile, '/') || strings.HasSuffix(nameOrFile, ".yaml") || strings.HasSuffix(nameOrFile, ".yml")
	if !isFile {
		if data, ok := BuiltinYAML(nameOrFile); ok {
			return parseScenario(nameOrFile+".yaml", data, "built-in", 0)
		}
		if _, err := os.Stat(nameOrFile); err != nil {
			return nil, fmt.Errorf("unknown scenario %q (built-ins: %s; or give a YAML file)", nameOrFile, strings.Join(builtinOrder, ", "))
		}
	}
	f, err := os.Open(nameOrFile)
	if err != nil {
		return nil, fmt.Errorf("scenario: %w", err)
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, MaxScenarioBytes+1))
	if err != nil {
		return nil, fmt.Errorf("scenario %s: %w", nameOrFile, err)
	}
	if len(data) > MaxScenarioBytes {
		return nil, fmt.Errorf("scenario %s: larger than %d bytes", nameOrFile, MaxScenarioBytes)
	}
	return ParseScenario(nameOrFile, data)
}

// ParseScenario reads a scenario file's contents; errors are
// ScenarioErrors naming line and column.
func ParseScenario(file string, data []byte) (*Scenario, error) {
	return parseScenario(file, data, filepath.Clean(file), 0)
}

func parseScenario(file string, data []byte, source string, depth int) (*Scenario, error) {
	sc := &Scenario{present: map[string]bool{}}
	if errs := parseYAML(file, data, sc, sc.present); len(errs) > 0 {
		return nil, errs
	}
	sc.Source = source
	if sc.Extends != "" {
		if depth > 4 {
			return nil, ScenarioErrors{{File: file, Line: sc.Pos.where["extends"].line, Column: sc.Pos.where["extends"].col, Field: "extends", Reason: "extends nests too deeply"}}
		}
		bdata, ok := BuiltinYAML(sc.Extends)
		if !ok {
			p := sc.Pos.where["extends"]
			return nil, ScenarioErrors{{File: file, Line: p.line, Column: p.col, Field: "extends", Reason: fmt.Sprintf("unknown built-in scenario %q (want one of %s)", sc.Extends, strings.Join(builtinOrder, ", "))}}
		}
		base, err := parseScenario(sc.Extends+".yaml", bdata, "built-in", depth+1)
		if err != nil {
			return nil, err
		}
		sc = merge(base, sc)
	}
	if sc.Name == "" {
		sc.Name = strings.TrimSuffix(filepath.Base(file), filepath.Ext(file))
	}
	sc.defaults()
	var errs ScenarioErrors
	sc.validate(&errs)
	if len(errs) > 0 {
		return nil, errs
	}
	return sc, nil
}

// merge lays child over base: each top-level section the child sets
// replaces the base's, except attacks, which are added.
func merge(base, child *Scenario) *Scenario {
	out := *base
	out.Pos = child.Pos
	out.Name, out.Description, out.Extends = child.Name, child.Description, child.Extends
	out.Source = child.Source
	set := child.present
	if set["duration"] {
		out.Duration = child.Duration
	}
	if set["victim"] {
		out.Victim = child.Victim
	}
	if set["users"] {
		out.Users = child.Users
	}
	if set["helpdesk"] {
		out.Helpdesk = child.Helpdesk
	}
	if set["passwords"] {
		out.Passwords = child.Passwords
	}
	if set["clock"] {
		out.Clock = child.Clock
	}
	if set["cameras"] {
		out.Cameras = child.Cameras
	}
	out.Attacks = append(append([]AttackSpec(nil), base.Attacks...), child.Attacks...)
	out.present = map[string]bool{}
	for k := range base.present {
		out.present[k] = true
	}
	for k := range set {
		out.present[k] = true
	}
	return &out
}

func (sc *Scenario) defaults() {
	for i := range sc.Users {
		u := &sc.Users[i]
		o := &u.Pos
		if !o.set("count") {
			u.Count = 1
		}
		if !o.set("role") {
			u.Role = "viewer"
		}
		if !o.set("hours") {
			u.Hours = Hours{From: 8 * time.Hour, To: 18 * time.Hour}
		}
		if !o.set("forget_tries") {
			u.ForgetTries = 3
		}
		if !o.set("sources") {
			u.Sources = 1
		}
		if !o.set("patience") {
			u.Patience = Duration(30 * time.Minute)
		}
		for j := range u.Devices {
			if u.Devices[j].Name == "" {
				u.Devices[j].Name = fmt.Sprintf("device%d", j+1)
			}
		}
	}
	if !sc.Helpdesk.Pos.set("delay") {
		sc.Helpdesk.Delay = Duration(time.Hour)
	}
	if !sc.Passwords.Pos.set("median_guesses") {
		sc.Passwords.MedianGuesses = 1e6
	}
	if !sc.Passwords.Pos.set("sigma_log10") {
		sc.Passwords.SigmaLog10 = 2
	}
	for i := range sc.Attacks {
		a := &sc.Attacks[i]
		o := &a.Pos
		if a.Name == "" {
			a.Name = fmt.Sprintf("%s%d", a.Kind, i+1)
		}
		if !o.set("sources") {
			switch a.Kind {
			case Distributed:
				a.Sources = 100
			case DoS:
				a.Sources = 50
			case Stuffing:
				a.Sources = 10
			default:
				a.Sources = 1
			}
		}
		if !o.set("every") {
			a.Every = Duration(10 * time.Second)
		}
		if !o.set("on_refusal") {
			a.OnRefusal = "wait"
			if a.Kind == DoS {
				a.OnRefusal = "hammer"
			}
		}
		if !o.set("max_wait") {
			a.MaxWait = Duration(time.Hour)
		}
	}
	if c := sc.Clock; c != nil {
		if !c.Pos.set("step_min") {
			c.StepMin = Duration(time.Minute)
		}
		if !c.Pos.set("step_max") {
			c.StepMax = Duration(365 * 24 * time.Hour)
		}
		if !c.Pos.set("ntp_sync") {
			c.NTPSync = Duration(2 * time.Minute)
		}
	}
	if c := sc.Cameras; c != nil && !c.Pos.set("segment") {
		c.Segment = Duration(time.Minute)
	}
}

func (sc *Scenario) validate(errs *ScenarioErrors) {
	setErrs := func(o *origin) *origin { o.errs = errs; return o }
	root := setErrs(&sc.Pos)
	if sc.Duration < 0 || sc.Duration.D() > 100*365*24*time.Hour {
		root.errf("duration", "must be between 0 and 100 years")
	}
	names := map[model.Principal]bool{}
	for i := range sc.Users {
		u := &sc.Users[i]
		o := setErrs(&u.Pos)
		if u.Name == "" {
			o.errf("name", "a user group needs a name")
		}
		if u.Count < 1 || u.Count > 100000 {
			o.errf("count", "must be between 1 and 100000 (got %d)", u.Count)
		}
		if _, err := model.ParseRole(u.Role); err != nil {
			o.errf("role", "%v", err)
		}
		if u.Name != "" {
			// Names are checked with a valid count, so that a bad count
			// does not also make every reference to the group an error.
			g := *u
			g.Count = min(max(g.Count, 1), 100000)
			for _, n := range g.names() {
				p, err := model.CanonicalPrincipal(n)
				if err != nil {
					o.errf("name", "%v", err)
					break
				}
				if names[p] {
					o.errf("name", "user %q is declared twice", p)
					break
				}
				names[p] = true
			}
		}
		if u.LoginsPerDay < 0 || u.LoginsPerDay > 1000 {
			o.errf("logins_per_day", "must be between 0 and 1000")
		}
		if u.Typo < 0 || u.Typo > 0.9 {
			o.errf("typo", "must be a probability between 0 and 0.9")
		}
		if u.ForgetPerYear < 0 || u.ForgetPerYear > 365 {
			o.errf("forget_per_year", "must be between 0 and 365")
		}
		if u.ForgetTries < 1 || u.ForgetTries > 20 {
			o.errf("forget_tries", "must be between 1 and 20")
		}
		if u.Sources < 1 || u.Sources > 16 {
			o.errf("sources", "must be between 1 and 16")
		}
		if u.NewSourcesPerYear < 0 || u.NewSourcesPerYear > 365 {
			o.errf("new_sources_per_year", "must be between 0 and 365")
		}
		if u.Patience < Duration(time.Second) {
			o.errf("patience", "must be at least 1s")
		}
		for j := range u.Devices {
			d := &u.Devices[j]
			do := setErrs(&d.Pos)
			if d.Every < Duration(time.Second) {
				do.errf("every", "must be at least 1s")
			}
		}
	}
	if sc.Victim != "" {
		if p, err := model.CanonicalPrincipal(sc.Victim); err != nil || !names[p] {
			root.errf("victim", "must name a declared user (got %q)", sc.Victim)
		}
	}
	pw := setErrs(&sc.Passwords.Pos)
	if sc.Helpdesk.Delay < 0 {
		setErrs(&sc.Helpdesk.Pos).errf("delay", "must not be negative")
	}
	if sc.Passwords.MedianGuesses < 1 || math.IsInf(sc.Passwords.MedianGuesses, 0) {
		pw.errf("median_guesses", "must be at least 1")
	}
	if sc.Passwords.SigmaLog10 <= 0 || sc.Passwords.SigmaLog10 > 10 {
		pw.errf("sigma_log10", "must be above 0 and at most 10")
	}
	principals := len(names)
	for i := range sc.Attacks {
		a := &sc.Attacks[i]
		o := setErrs(&a.Pos)
		switch a.Kind {
		case BruteForce, Distributed, DoS:
			if len(a.Targets) == 0 {
				o.errf("targets", "a %s attack needs targets (user names, @site or @admins)", a.Kind)
			}
			for j, t := range a.Targets {
				if t == "@site" || t == "@admins" {
					continue
				}
				if p, err := model.CanonicalPrincipal(t); err != nil || !names[p] {
					o.errf(fmt.Sprintf("targets[%d]", j), "must name a declared user, @site or @admins (got %q)", t)
				}
			}
			if a.Principals != 0 {
				o.errf("principals", "only a stuffing attack has a list of principals")
			}
		case Stuffing:
			if a.Principals < 1 || a.Principals > 1000000 {
				o.errf("principals", "a stuffing list has between 1 and 1000000 principals (got %d)", a.Principals)
			}
			if len(a.Targets) > 0 {
				o.errf("targets", "a stuffing attack tries its list, not targets")
			}
			principals += a.Principals
		default:
			o.errf("kind", "want brute_force, distributed, stuffing or dos (got %q)", a.Kind)
		}
		if a.Kind == BruteForce && a.Sources != 1 {
			o.errf("sources", "brute_force comes from one source; use distributed for many")
		}
		if a.Sources < 1 || a.Sources > 1000000 {
			o.errf("sources", "must be between 1 and 1000000")
		}
		if a.Every < Duration(time.Millisecond) {
			o.errf("every", "must be at least 1ms")
		}
		if a.Stop != 0 && a.Stop <= a.Start {
			o.errf("stop", "must be after start")
		}
		if a.OnRefusal != "wait" && a.OnRefusal != "hammer" {
			o.errf("on_refusal", "want wait or hammer (got %q)", a.OnRefusal)
		}
		if a.MaxWait < Duration(time.Second) {
			o.errf("max_wait", "must be at least 1s")
		}
		if a.Reuse < 0 || a.Reuse > 1 {
			o.errf("reuse", "must be a probability between 0 and 1")
		}
	}
	if principals >= 1<<24 {
		root.errf("attacks", "too many principals (%d; at most %d)", principals, 1<<24-1)
	}
	if c := sc.Clock; c != nil {
		o := setErrs(&c.Pos)
		if c.StepMin > c.StepMax {
			o.errf("step_min", "must be ≤ step_max")
		}
		if c.StepEvery > 0 && c.StepMin < Duration(time.Second) {
			o.errf("step_min", "must be at least 1s")
		}
		if c.StepMax.D() > 50*365*24*time.Hour {
			o.errf("step_max", "must be at most 50y (the wall clock stays after 1970)")
		}
		if c.StepEvery != 0 && c.StepEvery < Duration(time.Minute) {
			o.errf("step_every", "must be 0 or at least 1m")
		}
		if c.RebootEvery != 0 && c.RebootEvery < Duration(time.Minute) {
			o.errf("reboot_every", "must be 0 or at least 1m")
		}
		if c.RTCReset < 0 || c.RTCReset > 1 {
			o.errf("rtc_reset", "must be a probability between 0 and 1")
		}
	}
	if c := sc.Cameras; c != nil {
		o := setErrs(&c.Pos)
		if c.Count < 0 || c.Count > 1000 {
			o.errf("count", "must be between 0 and 1000")
		}
		if c.Segment < Duration(time.Second) || time.Hour%c.Segment.D() != 0 {
			o.errf("segment", "must be at least 1s and divide an hour evenly (got %s)", c.Segment)
		}
	}
	sortErrors(*errs)
}

func sortErrors(es ScenarioErrors) {
	// Stable by file, then position: errors read top to bottom.
	for i := 1; i < len(es); i++ {
		for j := i; j > 0 && lessErr(es[j], es[j-1]); j-- {
			es[j], es[j-1] = es[j-1], es[j]
		}
	}
}

func lessErr(a, b *ScenarioError) bool {
	if a.File != b.File {
		return a.File < b.File
	}
	if a.Line != b.Line {
		return a.Line < b.Line
	}
	return a.Column < b.Column
}

// names lists the user names of a group.
func (u *UserSpec) names() []string {
	if u.Count == 1 {
		return []string{u.Name}
	}
	w := len(fmt.Sprint(u.Count))
	out := make([]string, u.Count)
	for i := range out {
		out[i] = fmt.Sprintf("%s%0*d", u.Name, w, i+1)
	}
	return out
}

// ErrNoScenario is returned when a command needs --scenario.
var ErrNoScenario = errors.New("--scenario is required (a built-in name or a YAML file; see latchsim scenarios)")
