package service

import (
	"fmt"
	"testing"
	"time"

	"github.com/latchnvr/latch/model"
	"github.com/latchnvr/latch/sim"
)

// testSeed is the seed of every agreement run; failures print it with the
// command that repeats the run.
const testSeed = 1

const day = 24 * time.Hour

// decided is one attempt and its decision, as the simulator saw it.
type decided struct {
	at model.Instant
	a  sim.Attempt
	d  model.Decision
}

// agreeCase is one scenario run through both engines: a built-in,
// shortened (and for clock-chaos, made busier) so that the whole test
// stays well under a minute under -race on two cores. race is the
// duration under the race detector, which makes the service engine about
// thirty times slower.
type agreeCase struct {
	scenario string
	preset   string
	duration time.Duration
	race     time.Duration
	edit     func(*sim.Scenario)
}

var agreeCases = []agreeCase{
	// Three users, a stale phone app, scanners; typos, forgotten
	// passwords, self-service and helpdesk resets.
	{scenario: "home", preset: "latch", duration: 30 * day, race: 2 * day},
	// The same family forgetting passwords twice a week under a
	// per-user lockout with whole-second resolution: self-service and
	// helpdesk resets (R-RESET) and helpdesk unlocks (R-UNLOCK) between
	// attempts.
	{scenario: "home", preset: "pam_faillock", duration: 20 * day, race: 6 * day, edit: forgetful},
	// One source guessing every second, waiting out each Retry-After.
	{scenario: "brute-force", preset: "latch", duration: 2 * day, race: 2 * day},
	{scenario: "brute-force", preset: "annke", duration: 2 * day, race: day},
	// 100 sources hammering the admin from day 2; the admin keeps
	// logging in from familiar sources (P-NODOS).
	{scenario: "dos", preset: "latch", duration: 2*day + 12*time.Hour, race: 2*day + 10*time.Minute},
	{scenario: "dos", preset: "keycloak", duration: 2*day + 6*time.Hour, race: 2*day + 10*time.Minute},
	// Wall steps of a minute to a year every 6 h and a reboot every day,
	// the RTC back at 1970 70% of the time (R-MONO, R-RESTART).
	{scenario: "clock-chaos", preset: "latch", duration: 6 * day, race: 3 * day, edit: dailyChaos},
	{scenario: "clock-chaos", preset: "fail2ban", duration: 6 * day, race: 2 * day, edit: dailyChaos},
	// Fifty accounts, a VMS service account polling every minute.
	{scenario: "small-business", preset: "latch", duration: 2 * day, race: 6 * time.Hour},
	// Stuffing scaled down: 2,000 principals instead of 10,000.
	{scenario: "stuffing", preset: "latch", duration: day, race: 3 * time.Hour, edit: func(sc *sim.Scenario) {
		for i := range sc.Attacks {
			sc.Attacks[i].Principals = min(sc.Attacks[i].Principals, 2000)
		}
	}},
}

// forgetful makes every user forget the password twice a week and call
// the helpdesk about any lock longer than a minute.
func forgetful(sc *sim.Scenario) {
	for i := range sc.Users {
		u := &sc.Users[i]
		u.ForgetPerYear, u.ForgetTries, u.Patience = 100, 6, sim.Duration(time.Minute)
	}
}

// dailyChaos is the clock-chaos scenario with its year of clock trouble
// squeezed into days, as sim's own clock tests do.
func dailyChaos(sc *sim.Scenario) {
	c := *sc.Clock
	c.RebootEvery, c.StepEvery, c.RTCReset = sim.Duration(day), sim.Duration(6*time.Hour), 0.7
	sc.Clock = &c
}

func (c agreeCase) config(t testing.TB, engine string, seen *[]decided) sim.Config {
	t.Helper()
	sc, err := sim.LoadScenario(c.scenario)
	if err != nil {
		t.Fatal(err)
	}
	if c.edit != nil {
		c.edit(sc) // LoadScenario parses afresh: nothing else sees the edit
	}
	p, err := model.Preset(c.preset)
	if err != nil {
		t.Fatal(err)
	}
	dur := c.duration
	if raceEnabled && c.race > 0 {
		dur = c.race
	}
	cfg := sim.Config{Scenario: sc, Policy: p, PolicyInfo: sim.PolicyInfo{Preset: c.preset}, Seed: testSeed,
		Duration: dur, Engine: engine}
	if seen != nil {
		cfg.Observe = func(at model.Instant, a sim.Attempt, d model.Decision) { *seen = append(*seen, decided{at, a, d}) }
	}
	return cfg
}

// The agreement requirement: the same scenario and seed through
// the model engine (model.Decide) and the service engine (nvr/auth on
// SQLite with a simulated clock) give identical decision traces: every
// attempt's verdict, scope, retry-after, remaining tries, effects and key
// modes, in order, and so the same trace hash.
func TestServiceEngineMatchesModelEngine(t *testing.T) {
	// What the cases exercised, all together: every operation the
	// simulator has must have gone through the service at least once.
	var ops struct{ restarts, wallJumps, unlocks, resets, refused, allowed int64 }
	defer func() {
		if t.Failed() {
			return
		}
		t.Logf("exercised: %+v", ops)
		if ops.restarts == 0 || ops.wallJumps == 0 || ops.unlocks == 0 || ops.resets == 0 || ops.refused == 0 || ops.allowed == 0 {
			t.Errorf("the cases no longer exercise every operation: %+v", ops)
		}
	}()
	for _, c := range agreeCases {
		t.Run(fmt.Sprintf("%s/%s", c.scenario, c.preset), func(t *testing.T) {
			var want, got []decided
			m, err := sim.Run(c.config(t, "model", &want))
			if err != nil {
				t.Fatal(err)
			}
			repeat := m.Reproduce() + " --engine service"
			if c.edit != nil {
				repeat += " (with the scenario edited as agreeCases says)"
			}
			s, err := sim.Run(c.config(t, "service", &got))
			if err != nil {
				t.Fatalf("seed %d: service engine: %v; repeat: %s", testSeed, err, repeat)
			}
			t.Logf("seed %d, %s: %d attempts, trace %s; model %.0f attempts/s, service %.0f attempts/s",
				testSeed, sim.FormatDuration(time.Duration(m.Duration)), m.Attempts, m.TraceHash, m.Speed.AttemptsPerSecond, s.Speed.AttemptsPerSecond)
			mm := &m.Metrics
			ops.restarts += int64(mm.Clock.Restarts)
			ops.wallJumps += int64(mm.Clock.WallJumps)
			ops.unlocks += mm.Legit.HelpdeskUnlocks
			ops.resets += mm.Legit.HelpdeskResets + mm.Legit.SelfServiceResets
			for _, d := range want {
				switch d.d.Verdict {
				case model.Refused:
					ops.refused++
				case model.Allowed:
					ops.allowed++
				}
			}
			if m.Attempts < 50 {
				t.Errorf("only %d attempts: the case exercises too little", m.Attempts)
			}
			for i := range min(len(want), len(got)) {
				if want[i] != got[i] {
					t.Fatalf("seed %d: attempt %d of %d differs:\n  model:   %s\n  service: %s\nrepeat: %s",
						testSeed, i, len(want), describe(want[i]), describe(got[i]), repeat)
				}
			}
			if len(want) != len(got) || m.TraceHash != s.TraceHash {
				t.Fatalf("seed %d: model engine %d attempts, trace %s; service engine %d attempts, trace %s; repeat: %s",
					testSeed, len(want), m.TraceHash, len(got), s.TraceHash, repeat)
			}
		})
	}
}

func describe(x decided) string {
	where := "console"
	if x.a.Channel == model.Remote && x.a.Source != sim.NoSource {
		where = fmt.Sprintf("source #%d", x.a.Source)
	}
	return fmt.Sprintf("at %s user #%d from %s secret %s: %+v", sim.FormatDuration(time.Duration(x.at)), x.a.User, where, x.a.Secret.Text(), x.d)
}
