package sim

import (
	"bufio"
	"fmt"
	"io"
	"net/netip"
	"time"

	"github.com/latchnvr/latch/model"
	"github.com/latchnvr/latch/model/trace"
)

// WallStart is the wall clock at a run's instant 0: 2026-01-01T00:00:00Z,
// the epoch `latchsim replay` uses too.
var WallStart = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

// DefaultDuration is a run's virtual time when neither the command nor the
// scenario sets one.
const DefaultDuration = 365 * day

// PolicyInfo says where a run's policy came from, so it can be reproduced.
type PolicyInfo struct {
	Preset string   `json:"preset,omitempty"`
	File   string   `json:"file,omitempty"`
	Sets   []string `json:"sets,omitempty"`
}

func (p PolicyInfo) String() string {
	s := "preset " + p.Preset
	if p.File != "" {
		s = "file " + p.File
		if p.Preset != "" {
			s += " (preset " + p.Preset + ")"
		}
	}
	if p.Preset == "" && p.File == "" {
		s = "custom"
	}
	for _, set := range p.Sets {
		s += " --set " + set
	}
	return s
}

// Config is one run.
type Config struct {
	Scenario   *Scenario
	Policy     model.Policy
	PolicyInfo PolicyInfo
	Seed       uint64
	// Duration of virtual time; 0: the scenario's, or DefaultDuration.
	Duration time.Duration
	// Engine names a registered engine; "" is "model".
	Engine string
	// Trace receives the SPEC §9 trace of the run when set.
	Trace io.Writer
	// Progress is called from the run's goroutine now and then with the
	// virtual time done; it must not touch the run.
	Progress func(done, total time.Duration)
	// Observe sees every attempt and its decision (tests).
	Observe func(at model.Instant, a Attempt, d model.Decision)
}

func (c *Config) duration() time.Duration {
	switch {
	case c.Duration > 0:
		return c.Duration
	case c.Scenario.Duration > 0:
		return c.Scenario.Duration.D()
	}
	return DefaultDuration
}

// Result is what a run reports.
type Result struct {
	Scenario       string     `json:"scenario"`
	ScenarioSource string     `json:"scenario_source"`
	Seed           uint64     `json:"seed"`
	Policy         PolicyInfo `json:"policy"`
	Engine         string     `json:"engine"`
	Duration       Duration   `json:"duration"`
	// TraceHash digests every decision and operation in order: equal
	// hashes, equal runs.
	TraceHash string  `json:"trace_hash"`
	Events    int64   `json:"events"`
	Attempts  int64   `json:"attempts"`
	Metrics   Metrics `json:"metrics"`
	// Speed is measured, not simulated: it varies between runs.
	Speed Speed `json:"speed"`
}

// Speed is how fast a run went in real time.
type Speed struct {
	Seconds           float64 `json:"seconds"`
	AttemptsPerSecond float64 `json:"attempts_per_second"`
	EventsPerSecond   float64 `json:"events_per_second"`
	// Speedup is virtual time over real time.
	Speedup float64 `json:"speedup"`
}

// Reproduce is the command that repeats the run.
func (r *Result) Reproduce() string {
	s := fmt.Sprintf("latchsim run --scenario %s", r.Scenario)
	if r.ScenarioSource != "built-in" {
		s = fmt.Sprintf("latchsim run --scenario %s", r.ScenarioSource)
	}
	switch {
	case r.Policy.File != "":
		s += " --policy " + r.Policy.File
	case r.Policy.Preset != "":
		s += " --preset " + r.Policy.Preset
	}
	for _, set := range r.Policy.Sets {
		s += " --set " + set
	}
	s += fmt.Sprintf(" --duration %s --seed %d", r.Duration, r.Seed)
	if r.Engine != "model" {
		s += " --engine " + r.Engine
	}
	return s
}

// Run simulates one scenario under one policy. It is deterministic: the
// same Config gives the same TraceHash, trace and metrics (Speed aside).
func Run(c Config) (*Result, error) {
	if c.Scenario == nil {
		return nil, ErrNoScenario
	}
	if err := c.Policy.Validate(); err != nil {
		return nil, err
	}
	if c.Engine == "" {
		c.Engine = "model"
	}
	start := time.Now()
	s, users, err := build(&c)
	if err != nil {
		return nil, err
	}
	s.loop()
	if err := s.eng.Close(); err != nil {
		return nil, fmt.Errorf("engine %s: %w", c.Engine, err)
	}
	if s.tr != nil {
		if err := s.tr.flush(); err != nil {
			return nil, fmt.Errorf("trace: %w", err)
		}
	}
	if c.Progress != nil {
		c.Progress(time.Duration(s.end), time.Duration(s.end))
	}
	dur := c.duration()
	r := &Result{
		Scenario:       c.Scenario.Name,
		ScenarioSource: c.Scenario.Source,
		Seed:           c.Seed,
		Policy:         c.PolicyInfo,
		Engine:         c.Engine,
		Duration:       Duration(dur),
		TraceHash:      fmt.Sprintf("%016x", s.h.h),
		Events:         s.events,
		Attempts:       s.attempts,
		Metrics:        s.m.finish(s, c.Scenario, users, dur),
	}
	el := time.Since(start).Seconds()
	r.Speed = Speed{Seconds: el}
	if el > 0 {
		r.Speed.AttemptsPerSecond = float64(s.attempts) / el
		r.Speed.EventsPerSecond = float64(s.events) / el
		r.Speed.Speedup = dur.Seconds() / el
	}
	return r, nil
}

// CheckDeterminism runs c twice (the second time without trace or
// progress) and reports both trace hashes; they must be equal.
func CheckDeterminism(c Config) (first, second *Result, err error) {
	if first, err = Run(c); err != nil {
		return nil, nil, err
	}
	c.Trace, c.Progress, c.Observe = nil, nil, nil
	if second, err = Run(c); err != nil {
		return nil, nil, err
	}
	return first, second, nil
}

// build makes the universe, the engine and the actors of a run.
func build(c *Config) (*sim, int, error) {
	sc := c.Scenario
	s := &sim{seed: c.Seed, end: model.Instant(c.duration()), wallStart: WallStart.UnixNano(), observe: c.Observe, progress: c.Progress}
	uni := &Universe{}
	s.uni = uni

	// Declared users, group by group.
	ids := make([][]UserID, len(sc.Users))
	byName := map[model.Principal]UserID{}
	users := 0
	var admins, all []UserID
	for gi := range sc.Users {
		g := &sc.Users[gi]
		role, _ := model.ParseRole(g.Role)
		for _, n := range g.names() {
			id, err := uni.addPrincipal(n)
			if err != nil {
				return nil, 0, fmt.Errorf("user %q: %w", n, err)
			}
			ids[gi] = append(ids[gi], id)
			byName[uni.Principals[id]] = id
			uni.Accounts = append(uni.Accounts, Account{User: id, Role: role, Secret: MakeSecret(SecretPassword, id, 1)})
			all = append(all, id)
			if role == model.RoleAdmin {
				admins = append(admins, id)
			}
			users++
		}
	}
	lookup := func(names []string) []UserID {
		var out []UserID
		for _, n := range names {
			switch n {
			case "@site":
				out = append(out, all...)
			case "@admins":
				out = append(out, admins...)
			default:
				p, _ := model.CanonicalPrincipal(n)
				out = append(out, byName[p])
			}
		}
		return out
	}
	// Stuffing lists: the site's users plus made-up names, shuffled.
	type stuffList struct {
		list []UserID
		leak []SecretID
	}
	lists := make([]stuffList, len(sc.Attacks))
	for i := range sc.Attacks {
		a := &sc.Attacks[i]
		if a.Kind != Stuffing {
			continue
		}
		r := s.stream(fmt.Sprintf("stuffing:%d:%s", i, a.Name), 0)
		var l stuffList
		for _, u := range all {
			sec := MakeSecret(SecretLeak, u, uint32(i))
			if r.Float64() < a.Reuse {
				sec = MakeSecret(SecretPassword, u, 1) // reused: still the password
			}
			l.list, l.leak = append(l.list, u), append(l.leak, sec)
		}
		for k := 0; len(l.list) < a.Principals; k++ {
			id, err := uni.addPrincipal(fmt.Sprintf("leak%d-%07d", i, k))
			if err != nil {
				return nil, 0, err
			}
			l.list, l.leak = append(l.list, id), append(l.leak, MakeSecret(SecretLeak, id, uint32(i)))
		}
		r.Shuffle(len(l.list), func(x, y int) {
			l.list[x], l.list[y] = l.list[y], l.list[x]
			l.leak[x], l.leak[y] = l.leak[y], l.leak[x]
		})
		lists[i] = l
	}
	victim := UserID(-1)
	if sc.Victim != "" {
		p, _ := model.CanonicalPrincipal(sc.Victim)
		victim = byName[p]
	}
	s.m = newCollector(len(uni.Principals), victim)
	s.m.exists = make([]bool, len(uni.Principals))
	for _, a := range uni.Accounts {
		s.m.exists[a.User] = true
	}
	if victim >= 0 {
		s.m.m.Victim = &VictimMetrics{User: string(uni.Principals[victim])}
	}
	s.cursor = make([]uint32, len(uni.Principals))

	// Every legitimate source exists before the engine starts; attackers'
	// sources are made by their actors below, and users may add more.
	s.helpdesk = newHelpdesk(s, sc)
	if len(sc.Users) > 0 {
		s.site = newSite(s, sc, ids)
	}
	for i := range sc.Attacks {
		a := &sc.Attacks[i]
		newAttack(s, i, a, lookup(a.Targets), lists[i].list, lists[i].leak)
	}
	if sc.Clock != nil {
		newClockChaos(s, sc.Clock)
	}
	if sc.Cameras != nil && sc.Cameras.Count > 0 {
		newCameras(s, sc.Cameras)
	}
	eng, err := newEngine(c.Engine, EngineConfig{Policy: c.Policy, Universe: uni, WallStart: s.wallStart})
	if err != nil {
		return nil, 0, err
	}
	s.eng = eng
	s.rec, _ = eng.(SegmentRecorder)
	if c.Trace != nil {
		s.tr = newTraceOut(c.Trace, uni)
		s.tr.header()
	}
	return s, users, nil
}

// Address pools: legitimate users in 10.0.0.0/8, attackers in
// 100.64.0.0/10, handed out in order.
func (s *sim) newSource(legit bool) SourceID {
	var base uint32 = 10<<24 | 2
	n := &s.legitAddrs
	if !legit {
		base, n = 100<<24|64<<16|1, &s.attackAddrs
	}
	a := base + *n
	*n++
	return s.uni.addSource(model.SourceOf(netip.AddrFrom4([4]byte{byte(a >> 24), byte(a >> 16), byte(a >> 8), byte(a)})))
}

// traceOut writes the SPEC §9 trace of a run.
type traceOut struct {
	bw  *bufio.Writer
	w   *trace.Writer
	uni *Universe
	err error
}

func newTraceOut(w io.Writer, uni *Universe) *traceOut {
	bw := bufio.NewWriterSize(w, 1<<16)
	return &traceOut{bw: bw, w: trace.NewWriter(bw), uni: uni}
}

func (t *traceOut) write(l trace.Line) {
	if t.err == nil {
		t.err = t.w.Write(l)
	}
}

func (t *traceOut) flush() error {
	if t.err != nil {
		return t.err
	}
	return t.bw.Flush()
}

// header declares every user with its password (replay's verifier).
func (t *traceOut) header() {
	for _, a := range t.uni.Accounts {
		t.write(trace.Line{Op: trace.OpUser, User: string(t.uni.Principals[a.User]), Password: a.Secret.Text(), Role: a.Role.String()})
	}
}

func (t *traceOut) attempt(now model.Instant, a Attempt) {
	l := trace.Line{At: trace.At(time.Duration(now)), User: string(t.uni.Principals[a.User]), Password: a.Secret.Text()}
	if a.Channel == model.Console || a.Source == NoSource {
		l.Channel = "console"
	} else {
		l.Source = t.uni.Sources[a.Source].String()
	}
	t.write(l)
}

func (t *traceOut) unlock(now model.Instant, u Unlock) {
	l := trace.Line{At: trace.At(time.Duration(now)), Op: trace.OpUnlock, All: u.All}
	if !u.All {
		l.User = string(t.uni.Principals[u.User])
		if u.Source != NoSource {
			l.Source = t.uni.Sources[u.Source].String()
		}
	}
	t.write(l)
}

func (t *traceOut) reset(now model.Instant, u UserID, secret SecretID) {
	t.write(trace.Line{At: trace.At(time.Duration(now)), Op: trace.OpReset, User: string(t.uni.Principals[u]), Password: secret.Text()})
}

// restart writes a reboot; an RTC that came up at another time is the
// wall_jump at the same instant (replay: neither changes a lock).
func (t *traceOut) restart(now model.Instant, rtc time.Duration) {
	t.write(trace.Line{At: trace.At(time.Duration(now)), Op: trace.OpRestart})
	if rtc != 0 {
		t.wallJump(now, rtc)
	}
}

func (t *traceOut) wallJump(now model.Instant, by time.Duration) {
	b := trace.Duration(by)
	t.write(trace.Line{At: trace.At(time.Duration(now)), Op: trace.OpWallJump, By: &b})
}
