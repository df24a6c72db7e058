package soak

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/latchnvr/latch/model"
	"github.com/latchnvr/latch/model/policyfile"
	"github.com/latchnvr/latch/model/world"
	"github.com/latchnvr/latch/nvr/store"
	"github.com/latchnvr/latch/sim"
)

// Options configure the http engine. Configure them before sim.Run picks
// the engine by name ("http").
type Options struct {
	// Binary is the latch binary to run (`latch serve`); required.
	Binary string
	// Dir is the engine's working folder: the data folder (Dir/data), one
	// log per boot, the policy file. Required; kept after the run.
	Dir string
	// Warp is --time-warp: virtual seconds per real second.
	Warp float64
	// Cameras, FPS, Segment, Width and Height are the server's cameras.
	Cameras       int
	FPS           float64
	Segment       time.Duration
	Width, Height int
	// RetainBytes is --retain-bytes (0: 4 GiB).
	RetainBytes int64
	// ArgonMemory (KiB) and ArgonTime are the server's password hashing
	// cost; the soak uses the cheapest (64 KiB, 1 pass).
	ArgonMemory, ArgonTime uint32
	// ExtraArgs are added to `latch serve`'s flags.
	ExtraArgs []string
	// Faults are injected at their simulator instants, in order.
	Faults []Fault
	// Noise sends concurrent logins of other principals around each
	// kill, so the kill lands on requests in flight.
	Noise bool
	// Seed drives the engine's own random choices (noise timing).
	Seed uint64
	// PrepareDB runs before the first boot on the database path (the
	// upgrade test puts an old-schema database there).
	PrepareDB func(dbPath string) error
	// RSSEvery is how often the server's VmRSS is sampled (0: never).
	RSSEvery time.Duration
	// Logf receives progress lines (nil: none).
	Logf func(format string, args ...any)
	// Created receives the engine once it is running, so a test can read
	// its report after sim.Run closed it.
	Created func(*Engine)
	// KeepDisagreements is how many disagreements are kept in full (0: 50).
	KeepDisagreements int
	// CheckGaps checks recording continuity at the end (off when
	// retention deletes segments on purpose).
	CheckGaps bool
}

// FaultKind names an injected fault.
type FaultKind int

// Faults.
const (
	// Kill is kill -9 of the server and a relaunch on the same data folder.
	Kill FaultKind = iota
	// Term is a clean shutdown (SIGTERM) and a relaunch.
	Term
	// Step steps the server's wall clock by By (POST /debug/clock/step).
	Step
	// StepTo steps the server's wall clock to To.
	StepTo
	// Unstep undoes every step so far (NTP fixing the clock).
	Unstep
	// Downgrade is a clean shutdown, the database taken back to schema
	// version 1 with its data, and a relaunch (which migrates it again).
	Downgrade
)

var faultNames = [...]string{"kill -9", "SIGTERM", "wall step", "wall step to", "wall unstep", "downgrade to schema 1"}

func (k FaultKind) String() string {
	if int(k) < len(faultNames) {
		return faultNames[k]
	}
	return "fault(" + strconv.Itoa(int(k)) + ")"
}

// Fault is one injected fault at a simulator instant.
type Fault struct {
	At   time.Duration
	Kind FaultKind
	By   time.Duration // Step
	To   time.Time     // StepTo
}

var (
	optMu   sync.Mutex
	current *Options
)

// Configure sets the options the next "http" engine is built with.
func Configure(o Options) {
	optMu.Lock()
	defer optMu.Unlock()
	current = &o
}

func init() {
	sim.RegisterEngine("http", func(c sim.EngineConfig) (sim.Engine, error) {
		optMu.Lock()
		o := current
		optMu.Unlock()
		if o == nil {
			return nil, errors.New("http engine: call soak.Configure first (it needs a latch binary and a working folder)")
		}
		return New(*o, c)
	})
}

// Engine drives a running `latch serve` over loopback HTTP (sim.Engine)
// and checks every answer against a shadow model (see the package doc).
type Engine struct {
	opt       Options
	uni       *sim.Universe
	policy    model.Policy
	wallStart int64
	http      *http.Client
	began     time.Time
	rng       *rand.Rand

	srv  *server
	boot int // number of the current boot, from 1
	// boots describes every boot (index boot-1).
	boots []*BootInfo

	admin adminSession

	// The shadow model and what it needs to verify secrets.
	shadow    *world.World
	accounts  map[model.Principal]*account
	deviceKey []byte
	// snapshots of every sim key as the database held it at the last
	// restart, by key; see reconcile.
	remembered map[store.KeyID][]byte

	// Pacing: the simulator's instant anchorSim was the real time
	// anchorReal; the server runs Warp times faster than real time.
	anchorSim  model.Instant
	anchorReal time.Time
	anchorInst int64 // the server instant seen at the anchor
	simNow     atomic.Int64
	lag        atomic.Int64 // the last decision's pacing lag
	// The last server instant and wall time seen, and when (real).
	lastInst, lastWall int64
	lastSeen           time.Time

	faults []Fault
	next   int
	steps  time.Duration // the sum of the engine's wall steps (Unstep undoes it)

	rssMu sync.Mutex
	rss   []RSSSample

	rep      Report
	closed   bool
	segMaxID []int64 // the largest segment id indexed at the end of each boot
	orphans  int     // orphan segment files at the last inspection
	// camOrphans are the orphan files at the last inspection by camera folder.
	camOrphans map[string]int
	prSet      map[model.Principal]struct{}
	snaps      map[store.KeyID]model.Snapshot // what the next boot restores
	planted    int64                          // the unclamped probe's wall anchor

	noiseEpisode int
	noiseAcked   []noiseFailure // failures the noise was answered, not yet checked
}

// account is a declared user as the shadow verifies it.
type account struct {
	role     model.Role
	password string // the current password text the server has
	admin    bool
}

// BootInfo is one boot of the server.
type BootInfo struct {
	Boot   int    `json:"boot"`
	BootID uint64 `json:"boot_id,string"`
	// BootInstant and BootWall are the clock the server restored earlier
	// boots' keys at (measured exactly with probe keys; 0 for boot 1).
	BootInstant int64 `json:"boot_instant"`
	BootWall    int64 `json:"boot_wall"`
	// StartedAt is the simulator instant the boot began at.
	StartedAt time.Duration `json:"started_at"`
	// EndedBy is how the boot ended ("kill -9", "SIGTERM", "close").
	EndedBy string `json:"ended_by,omitempty"`
	// LastInstant is the last server instant seen before it ended;
	// KillInstant estimates the instant it was stopped at.
	LastInstant int64 `json:"last_instant"`
	KillInstant int64 `json:"kill_instant"`
	// DownReal is the real time from the stop to the next boot answering.
	DownReal time.Duration `json:"down_real"`
	// RealSeconds is how long the boot ran (real).
	RealSeconds float64 `json:"real_s"`
	// Reanchors counts the server's "wall clock stepped" re-anchors (its
	// log); InjectedSteps the steps the engine made. More re-anchors than
	// steps are phantom steps (see the package doc).
	Reanchors     int `json:"reanchors"`
	InjectedSteps int `json:"injected_steps"`
	// RefInstant is a server instant read at RefReal (real seconds since
	// the engine began): the boot's first answer. It maps the boot's
	// instants to real time, to compare them with the RSS samples.
	RefInstant int64   `json:"ref_instant"`
	RefReal    float64 `json:"ref_real_s"`
	// StartReal is when the process was started and StealAtStartMs the
	// machine's steal time then (the baseline of its first sample).
	StartReal      float64 `json:"start_real_s"`
	StealAtStartMs float64 `json:"steal_at_start_ms"`
	// Unfinished counts, by camera folder, the segment files the stop
	// left that the index does not name (temp and orphan files).
	Unfinished map[string]int `json:"unfinished,omitempty"`
	started    time.Time
}

// Sources the engine uses besides the simulator's (documentation ranges,
// never in the simulator's pools 10/8 and 100.64/10).
var adminSource = model.SourceOf(mustAddr("192.0.2.1"))

const (
	adminUser = "soakadmin"
	adminPIN  = "482915"
)

// New starts the server, activates it, creates the universe's accounts and
// returns the engine.
func New(o Options, c sim.EngineConfig) (*Engine, error) {
	if o.Binary == "" || o.Dir == "" {
		return nil, errors.New("http engine: Options.Binary and Options.Dir are required")
	}
	if o.Warp <= 0 {
		o.Warp = 1
	}
	if o.Cameras < 0 {
		o.Cameras = 0
	}
	if o.FPS <= 0 {
		o.FPS = 0.05
	}
	if o.Segment <= 0 {
		o.Segment = 10 * time.Minute
	}
	if o.Width <= 0 || o.Height <= 0 {
		// Wide enough for the frame numbers checkGaps reads (frames.go).
		o.Width, o.Height = 320, 90
	}
	if o.RetainBytes <= 0 {
		o.RetainBytes = 4 << 30
	}
	if o.ArgonMemory == 0 {
		o.ArgonMemory = 64
	}
	if o.ArgonTime == 0 {
		o.ArgonTime = 1
	}
	if o.KeepDisagreements <= 0 {
		o.KeepDisagreements = 50
	}
	if err := os.MkdirAll(filepath.Join(o.Dir, "data"), 0o750); err != nil {
		return nil, err
	}
	e := &Engine{
		opt: o, uni: c.Universe, policy: c.Policy, wallStart: c.WallStart,
		http: &http.Client{Timeout: 2 * time.Minute, Transport: &http.Transport{
			MaxIdleConnsPerHost: 32, DisableCompression: true, Proxy: nil}},
		began:      time.Now(),
		rng:        rand.New(rand.NewPCG(o.Seed, 0x50a4)),
		shadow:     world.New(c.Policy),
		accounts:   map[model.Principal]*account{},
		remembered: map[store.KeyID][]byte{},
		faults:     append([]Fault(nil), o.Faults...),
	}
	e.rep.Warp = o.Warp
	e.rep.Cameras = o.Cameras
	for _, a := range c.Universe.Accounts {
		pr := c.Universe.Principals[a.User]
		e.accounts[pr] = &account{role: a.Role, password: Password(a.Secret.Text()), admin: a.Role == model.RoleAdmin}
	}
	e.accounts[adminUser] = &account{role: model.RoleAdmin, password: Password("soakadmin"), admin: false}
	if err := os.WriteFile(e.policyFile(), policyfile.Marshal(c.Policy), 0o644); err != nil {
		return nil, err
	}
	if o.PrepareDB != nil {
		if err := o.PrepareDB(e.dbPath()); err != nil {
			return nil, fmt.Errorf("http engine: prepare database: %w", err)
		}
	}
	if err := e.firstBoot(); err != nil {
		if e.srv != nil {
			e.srv.kill()
		}
		return nil, err
	}
	if o.Created != nil {
		o.Created(e)
	}
	return e, nil
}

// Password is the password the server knows for a simulator secret: the
// simulator's secret texts ("pw.3.1") are too weak for the server's
// zxcvbn check, so each maps to a strong, deterministic one. Guesses map
// the same way, so equal texts stay equal (R-REPLAY) and different texts
// stay different.
func Password(text string) string {
	h := sha256.Sum256([]byte(text))
	return "S!" + text + "-" + hex.EncodeToString(h[:])[:12]
}

func (e *Engine) dataDir() string    { return filepath.Join(e.opt.Dir, "data") }
func (e *Engine) dbPath() string     { return filepath.Join(e.dataDir(), "latch.db") }
func (e *Engine) policyFile() string { return filepath.Join(e.opt.Dir, "policy.yaml") }

func (e *Engine) logf(format string, args ...any) {
	if e.opt.Logf != nil {
		e.opt.Logf(format, args...)
	}
}

func (e *Engine) problem(format string, args ...any) {
	e.rep.addProblem(fmt.Sprintf(format, args...))
}

// firstBoot starts the server on a fresh (or prepared) data folder,
// activates it and creates every declared account.
func (e *Engine) firstBoot() error {
	s, err := e.startServer()
	if err != nil {
		return err
	}
	e.srv = s
	e.boots = append(e.boots, e.newBoot(s, 0))
	code, body, err := e.post(s.url+"/api/v1/activate", "", "", map[string]string{
		"username": adminUser, "password": e.accounts[adminUser].password, "pin": adminPIN})
	if err != nil || code != http.StatusCreated {
		return fmt.Errorf("activate: %d %s %v", code, body, err)
	}
	if err := e.adminLogin(); err != nil {
		return err
	}
	for _, a := range e.uni.Accounts {
		pr := e.uni.Principals[a.User]
		code, body, err := e.adminDo("POST", "/api/v1/users", map[string]string{
			"name": string(pr), "password": e.accounts[pr].password, "role": a.Role.String()})
		if err != nil || code != http.StatusCreated {
			return fmt.Errorf("create user %s: %d %s %v", pr, code, body, err)
		}
	}
	if e.deviceKey, err = readDeviceKey(e.dbPath()); err != nil {
		return err
	}
	if err := e.learnBootID(); err != nil {
		return err
	}
	e.anchor(0)
	e.logf("boot 1: %s pid %d, %d accounts created", s.url, s.pid, len(e.uni.Accounts))
	return nil
}

// newBoot describes the boot server s began, at simulator instant at.
func (e *Engine) newBoot(s *server, at model.Instant) *BootInfo {
	return &BootInfo{Boot: s.boot, StartedAt: time.Duration(at), started: time.Now(),
		StartReal: s.started.Sub(e.began).Seconds(), StealAtStartMs: s.stealAtStart}
}

// anchor ties the simulator's instant now to the present real time.
func (e *Engine) anchor(now model.Instant) {
	// The server's instant now: the last one seen plus the time since.
	e.anchorSim, e.anchorReal = now, time.Now()
	e.anchorInst = e.lastInst + int64(float64(e.anchorReal.Sub(e.lastSeen))*e.opt.Warp)
}

// pace waits until the server's virtual clock reaches the simulator's
// instant now (sleeping is fine in a soak harness) and processes the
// faults due by then.
func (e *Engine) pace(now model.Instant) {
	for e.next < len(e.faults) && model.Instant(e.faults[e.next].At) <= now {
		f := e.faults[e.next]
		e.next++
		e.wait(model.Instant(f.At))
		e.inject(f)
	}
	e.wait(now)
}

func (e *Engine) wait(now model.Instant) {
	e.simNow.Store(int64(now))
	due := e.anchorReal.Add(time.Duration(float64(now-e.anchorSim) / e.opt.Warp))
	if d := time.Until(due); d > 0 {
		time.Sleep(d)
	}
}

// Attempt implements sim.Engine: one login over HTTP, compared with the
// shadow model's decision at the instant the server decided at.
func (e *Engine) Attempt(now model.Instant, a sim.Attempt) model.Decision {
	e.pace(now)
	pr := e.uni.Principals[a.User]
	if a.Channel == model.Console || a.Source == sim.NoSource {
		// The console is the `latch` CLI on the box, not HTTP: decided by
		// the shadow alone and counted.
		e.rep.ConsoleSkipped++
		return e.shadow.Decide(pr, model.Source{}, e.event(pr, Password(a.Secret.Text()), model.Console), model.Instant(e.lastInst))
	}
	src := e.uni.Sources[a.Source]
	d, _ := e.attempt(pr, src, a.Secret.Text(), now, false)
	return d
}

// event is the model's view of an attempt: the verifier's outcome and the
// secret's fingerprint, keyed as the server keys it (R-REPLAY).
func (e *Engine) event(pr model.Principal, password string, ch model.Channel) model.Event {
	ev := model.Event{Attempt: model.Attempt{Channel: ch, Role: model.RoleViewer, Print: model.Fingerprint(e.deviceKey, password)},
		Outcome: model.WrongSecret}
	if acc := e.accounts[pr]; acc != nil {
		ev.Role = acc.role
		if acc.password == password {
			ev.Outcome = model.RightSecret
		}
	}
	return ev
}

// attempt sends one login, decides it in the shadow at the server's
// instant and compares. text is the secret's simulator text.
func (e *Engine) attempt(pr model.Principal, src model.Source, text string, now model.Instant, engineOwn bool) (model.Decision, *loginAnswer) {
	password := Password(text)
	if engineOwn {
		password = e.accounts[pr].password
	}
	before := e.shadow.View(pr, src)
	t0 := time.Now()
	ans, err := e.login(e.srv.url, string(pr), password, src.String())
	rtt := time.Since(t0)
	if err != nil {
		e.problem("boot %d: login %s from %s at %s: %v", e.boot, pr, src, sim.FormatDuration(time.Duration(now)), err)
		if !e.srv.alive() {
			e.problem("boot %d: the server died by itself; relaunching", e.boot)
			e.restart(now, Kill)
		}
		ev := e.event(pr, password, model.Remote)
		return e.shadow.Decide(pr, src, ev, model.Instant(e.lastInst)), nil
	}
	e.noteClock(ans.instant, ans.wall, now)
	ev := e.event(pr, password, model.Remote)
	v, d := model.Decide(before, ev, model.Instant(ans.instant), &e.policy)
	e.shadow.Store(pr, src, v)
	e.rep.count(ans.status, engineOwn)
	e.rep.RTT.add(ans.status, rtt)
	e.compare(pr, src, text, now, ans, d, before)
	return e.answerDecision(d, ans), ans
}

// noteClock records the last server clock seen and the pacing lag.
func (e *Engine) noteClock(inst, wall int64, now model.Instant) {
	e.seen(inst, wall)
	lag := time.Duration((inst - e.anchorInst) - int64(now-e.anchorSim))
	e.rep.Lag.add(lag)
	e.lag.Store(int64(lag))
}

// seen records a server clock reading taken from an answer. The first of
// each boot ties the boot's instants to real time (BootInfo.RefInstant).
func (e *Engine) seen(inst, wall int64) {
	e.lastInst, e.lastWall, e.lastSeen = inst, wall, time.Now()
	if b := e.boots[e.boot-1]; b.RefReal == 0 {
		b.RefInstant, b.RefReal = inst, e.lastSeen.Sub(e.began).Seconds()
	}
}

// realOf is when (real seconds since the engine began) boot b's clock
// read instant inst: the warped clock is its process's monotonic clock
// scaled by the warp (exact up to the round trip of the reference answer).
func (e *Engine) realOf(b *BootInfo, inst int64) float64 {
	return b.RefReal + float64(inst-b.RefInstant)/e.opt.Warp/1e9
}

// answerDecision is what the simulator's actors see: the server's verdict,
// scope and remaining tries, with the shadow's exact retry-after when the
// two agree on it.
func (e *Engine) answerDecision(d model.Decision, ans *loginAnswer) model.Decision {
	out := d
	switch ans.status {
	case http.StatusOK:
		out.Verdict = model.Allowed
	case http.StatusUnauthorized:
		out.Verdict = model.Failed
		if ans.remaining != nil {
			out.Remaining = *ans.remaining
		}
	case http.StatusTooManyRequests:
		out.Verdict = model.Refused
		out.Scope = parseScope(ans.scope)
		if ans.retryAfter != nil && *ans.retryAfter != ceilSeconds(d.RetryAfter) {
			out.RetryAfter = time.Duration(*ans.retryAfter) * time.Second
		}
	}
	return out
}

func parseScope(s string) model.Scope {
	for sc := model.ScopeNone; sc <= model.ScopeConsole; sc++ {
		if sc.String() == s {
			return sc
		}
	}
	return model.ScopeNone
}

// ceilSeconds is how the server rounds Retry-After (nvr/web).
func ceilSeconds(d time.Duration) int64 {
	if d <= 0 {
		return 0
	}
	return int64(math.Ceil(d.Seconds()))
}

// Unlock implements sim.Engine through POST /api/v1/locks/unlock.
func (e *Engine) Unlock(now model.Instant, u sim.Unlock) {
	e.pace(now)
	body := map[string]any{}
	switch {
	case u.All:
		body["all"] = true
		e.shadow.UnlockAll()
	case u.Source != sim.NoSource:
		pr, src := e.uni.Principals[u.User], e.uni.Sources[u.Source]
		body["user"], body["source"] = string(pr), src.String()
		e.shadow.UnlockPair(pr, src)
	default:
		pr := e.uni.Principals[u.User]
		body["user"] = string(pr)
		e.shadow.UnlockPrincipal(pr)
	}
	code, resp, err := e.adminDo("POST", "/api/v1/locks/unlock", body)
	if err != nil || code != http.StatusOK {
		e.problem("boot %d: unlock %v at %s: %d %s %v", e.boot, body, sim.FormatDuration(time.Duration(now)), code, resp, err)
	}
	e.rep.Unlocks++
}

// Reset implements sim.Engine: an admin password reset (R-RESET).
func (e *Engine) Reset(now model.Instant, user sim.UserID, secret sim.SecretID) {
	e.pace(now)
	pr := e.uni.Principals[user]
	acc := e.accounts[pr]
	if acc == nil {
		e.shadow.UnlockPrincipal(pr)
		return
	}
	pw := Password(secret.Text())
	code, resp, err := e.adminDo("POST", "/api/v1/users/"+url.PathEscape(string(pr))+"/password", map[string]string{"password": pw})
	if err != nil || code != http.StatusOK {
		e.problem("boot %d: reset %s at %s: %d %s %v", e.boot, pr, sim.FormatDuration(time.Duration(now)), code, resp, err)
		return
	}
	acc.password = pw
	e.shadow.UnlockPrincipal(pr)
	e.rep.Resets++
}

// WallJump implements sim.Engine: the server's wall clock is stepped over
// HTTP (R-MONO: no lock may change, which the shadow's agreement checks).
func (e *Engine) WallJump(now model.Instant, by time.Duration) {
	e.pace(now)
	e.step(by)
}

// Restart implements sim.Engine as a kill -9 and a relaunch. The
// simulator's wall times are not the server's: its own clocks decide
// (see the package doc).
func (e *Engine) Restart(now model.Instant, wallBefore, wallAfter int64) {
	e.pace(now)
	e.restart(now, Kill)
}

// Close stops the server cleanly and runs the final checks.
func (e *Engine) Close() error {
	if e.closed {
		return nil
	}
	e.closed = true
	if e.srv == nil {
		return nil
	}
	e.stopServer(Term, "close")
	e.inspect(true)
	e.finish()
	return nil
}

// Report returns what the run found; valid after Close.
func (e *Engine) Report() *Report {
	e.rssMu.Lock()
	e.rep.RSS = append([]RSSSample(nil), e.rss...)
	e.rssMu.Unlock()
	return &e.rep
}

// DataDir is the server's data folder.
func (e *Engine) DataDir() string { return e.dataDir() }

// inject performs one fault.
func (e *Engine) inject(f Fault) {
	now := model.Instant(f.At)
	switch f.Kind {
	case Kill, Term, Downgrade:
		e.restart(now, f.Kind)
	case Step, StepTo, Unstep:
		// Logins in flight while the server notices the step and
		// re-anchors every key (R-RESTART).
		var nz *noise
		if e.opt.Noise {
			nz = e.startNoise(8)
			time.Sleep(5 * time.Millisecond)
		}
		switch f.Kind {
		case Step:
			e.step(f.By)
		case StepTo:
			wall := e.lastWall + int64(float64(time.Since(e.lastSeen))*e.opt.Warp)
			e.step(time.Duration(f.To.UnixNano() - wall))
		case Unstep:
			if e.steps != 0 {
				e.step(-e.steps)
			}
		}
		if nz != nil {
			// The step watch samples every 10 s of virtual time.
			time.Sleep(time.Duration(float64(40*time.Second)/e.opt.Warp) + 20*time.Millisecond)
			e.waitNoise(nz)
		}
	}
}

// step moves the server's wall clock.
func (e *Engine) step(by time.Duration) {
	req, _ := http.NewRequest("POST", e.srv.url+"/debug/clock/step?by="+url.QueryEscape(by.String()), nil)
	resp, err := e.http.Do(req)
	if err != nil {
		e.problem("boot %d: step %s: %v", e.boot, by, err)
		return
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		e.problem("boot %d: step %s: %s", e.boot, by, resp.Status)
		return
	}
	e.steps += by
	e.rep.Steps = append(e.rep.Steps, StepInfo{Boot: e.boot, At: time.Duration(e.simNow.Load()), By: by})
	e.boots[e.boot-1].InjectedSteps++
	e.logf("boot %d: wall clock stepped by %s at %s", e.boot, by, sim.FormatDuration(time.Duration(e.simNow.Load())))
}

// post sends a JSON body; cookie and csrf authenticate admin calls.
func (e *Engine) post(u, cookie, csrf string, body any) (int, []byte, error) {
	return e.do("POST", u, cookie, csrf, body)
}

func (e *Engine) do(method, u, cookie, csrf string, body any) (int, []byte, error) {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return 0, nil, err
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, u, rd)
	if err != nil {
		return 0, nil, err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if cookie != "" {
		req.Header.Set("Cookie", sessionCookie+"="+cookie)
	}
	if csrf != "" {
		req.Header.Set("X-CSRF-Token", csrf)
	}
	req.Header.Set("X-Forwarded-For", adminSource.String())
	resp, err := e.http.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	return resp.StatusCode, b, err
}
