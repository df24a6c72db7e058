package sim

import (
	"bytes"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/latchnvr/latch/model"
	"github.com/latchnvr/latch/model/trace"
	"github.com/latchnvr/latch/model/world"
)

// A run's --trace is a SPEC §9 trace that `latchsim replay` (world.Run)
// reproduces exactly: replayed under the same policy, every attempt line
// gets the decision, Retry-After, remaining tries, effects and key modes
// the simulator saw, and every operation line replays as that operation.
func TestTraceReplaysExactly(t *testing.T) {
	for _, c := range []struct {
		scenario, preset string
		days             float64
		mod              func(*Scenario) *Scenario
	}{
		{"brute-force", "latch", 3, nil},
		{"brute-force", "keycloak", 3, nil}, // helpdesk unlocks
		{"home", "pam_faillock", 3, nil},    // whole-second resolution, a stale app
		{"dos", "latch", 2.3, nil},
		{"dos", "authelia", 2.3, nil},
		{"clock-chaos", "latch", 4, withDailyReboots}, // restarts, RTC at 1970, wall steps
		{"stuffing", "annke", 1.3, nil},               // unknown principals, reused passwords
		{"small-business", "latch", 4, forgetful},     // resets, new devices
	} {
		t.Run(c.scenario+"/"+c.preset, func(t *testing.T) {
			sc := mustScenario(t, c.scenario)
			if c.mod != nil {
				sc = c.mod(sc)
			}
			var buf bytes.Buffer
			var got []seen
			r := simulate(t, sc, c.preset, c.days, testSeed, func(cf *Config) {
				cf.Trace = &buf
				cf.Observe = record(&got)
			})
			text := buf.String()
			ops := map[string]int{}
			i := 0
			err := world.Run(mustPreset(t, c.preset), &buf, func(res world.Result) error {
				switch res.Decision {
				case "ok", "fail", "locked":
				default:
					ops[res.Decision]++
					return nil
				}
				if i >= len(got) {
					return fmt.Errorf("line %d: replay has more attempts than the run (%d)", res.Line, len(got))
				}
				s := got[i]
				i++
				d := s.d
				if res.Decision != d.Verdict.String() || time.Duration(res.At) != time.Duration(s.at) {
					return fmt.Errorf("line %d: replay %s at %s, the run %s at %s", res.Line, res.Decision, time.Duration(res.At), d.Verdict, time.Duration(s.at))
				}
				if d.Verdict == model.Refused && (res.RetryAfter == nil || time.Duration(*res.RetryAfter) != d.RetryAfter) {
					return fmt.Errorf("line %d: retry_after %s, the run %s", res.Line, deref(res.RetryAfter), d.RetryAfter)
				}
				if d.Verdict == model.Failed && (res.Remaining == nil || *res.Remaining != d.Remaining) {
					return fmt.Errorf("line %d: remaining %s, the run %d", res.Line, deref(res.Remaining), d.Remaining)
				}
				if !slices.Equal(res.Effects, d.Effects.Names()) {
					return fmt.Errorf("line %d: effects %v, the run %v", res.Line, res.Effects, d.Effects.Names())
				}
				for k := model.Kind(0); k < model.NumKinds; k++ {
					if m, ok := res.Modes[k.String()]; ok && m != d.Modes[k].String() {
						return fmt.Errorf("line %d: %s key %s, the run %s", res.Line, k, m, d.Modes[k])
					}
				}
				return nil
			})
			if err != nil {
				t.Fatalf("seed %d, repeat: %s --trace FILE; %v", testSeed, r.Reproduce(), err)
			}
			if i != len(got) || int64(i) != r.Attempts {
				t.Fatalf("replayed %d attempts, the run made %d (%d)", i, len(got), r.Attempts)
			}
			if ops[trace.OpUser] != r.Metrics.Users {
				t.Fatalf("%d users declared, %d in the run", ops[trace.OpUser], r.Metrics.Users)
			}
			l := r.Metrics.Legit
			if n := int64(ops[trace.OpReset]); n != l.HelpdeskResets+l.SelfServiceResets {
				t.Fatalf("%d resets replayed, %d in the run", n, l.HelpdeskResets+l.SelfServiceResets)
			}
			if ops[trace.OpRestart] != r.Metrics.Clock.Restarts {
				t.Fatalf("%d restarts replayed, %d in the run", ops[trace.OpRestart], r.Metrics.Clock.Restarts)
			}
			if c.scenario == "clock-chaos" && (ops[trace.OpRestart] == 0 || ops[trace.OpWallJump] == 0) {
				t.Fatalf("no clock chaos in the trace: %v", ops)
			}
			if c.preset == "keycloak" && ops[trace.OpUnlock] == 0 {
				t.Fatalf("no helpdesk unlock in the trace: %v", ops)
			}
			if c.scenario == "small-business" && ops[trace.OpReset] == 0 {
				t.Fatalf("no password reset in the trace: %v", ops)
			}
			if len(text) == 0 || text[0] != '{' {
				t.Fatalf("trace starts %.40q", text)
			}
		})
	}
}

// forgetful makes a site's users forget their passwords often.
func forgetful(sc *Scenario) *Scenario {
	c := *sc
	c.Users = slices.Clone(sc.Users)
	for i := range c.Users {
		c.Users[i].ForgetPerYear = 40
		c.Users[i].SelfService = i%2 == 0
	}
	return &c
}

func deref[T any](p *T) string {
	if p == nil {
		return "none"
	}
	return fmt.Sprint(*p)
}
