package model

// Exactness of the pam_faillock preset (SPEC §2: "pam_faillock (exact: deny,
// unlock_time, fail_interval)") against a straight transcription of
// linux-pam's modules/pam_faillock check_tally and write_tally
// (reference/lockout-anchors.md §4.3), for a non-root user whose PAM stack
// runs preauth, then authfail or authsucc.
//
// Deviations by design (docs/SPEC.md): the console has its own key
// (R-CONSOLE), so only remote attempts are compared; root exemption
// (even_deny_root) is not modelled.

import (
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"
	"time"
)

// pamRecord is one struct tally entry (time in whole seconds, VALID bit).
type pamRecord struct {
	time  int64
	valid bool
}

// pamFaillock is the per-user tally file and the module options.
type pamFaillock struct {
	deny         int
	failInterval int64 // seconds
	unlockTime   int64 // seconds; 0 = never (only faillock --reset)
	tally        []pamRecord
}

// checkTally transcribes check_tally: the newest valid record anchors the
// window; at deny failures within fail_interval of it the user is locked
// until latest + unlock_time < now, after which FAILLOCK_FLAG_UNLOCKED is
// set and the check passes.
func (f *pamFaillock) checkTally(now int64) (locked, unlocked bool) {
	var latest int64
	for _, r := range f.tally {
		if r.valid && r.time > latest {
			latest = r.time
		}
	}
	failures := 0
	for _, r := range f.tally {
		if r.valid && latest-r.time < f.failInterval {
			failures++
		}
	}
	if f.deny > 0 && failures >= f.deny {
		if f.unlockTime != 0 && latest+f.unlockTime < now {
			return false, true
		}
		return true, false
	}
	return false, false
}

// pamVerdict is what the stack answers.
type pamVerdict string

const (
	pamRefused pamVerdict = "refused" // preauth: PAM_AUTH_ERR before the password
	pamAllowed pamVerdict = "allowed" // authsucc
	pamFailed  pamVerdict = "failed"  // authfail
)

// attempt runs one login at second now: preauth, then authsucc (reset the
// tally when not locked) or authfail (write_tally: drop records that expired
// or all of them after an expired lock, append now).
func (f *pamFaillock) attempt(now int64, right bool) pamVerdict {
	if locked, _ := f.checkTally(now); locked {
		return pamRefused
	}
	locked, unlocked := f.checkTally(now)
	if right {
		if !locked {
			f.tally = f.tally[:0]
		}
		return pamAllowed
	}
	if locked {
		return pamFailed // not written: nothing extends (cannot happen after preauth)
	}
	kept := f.tally[:0]
	for _, r := range f.tally {
		if unlocked || now-r.time >= f.failInterval {
			r.valid = false
		}
		if r.valid {
			kept = append(kept, r) // invalid slots are reused: same as dropping them
		}
	}
	f.tally = append(kept, pamRecord{time: now, valid: true})
	return pamFailed
}

// admitsAt is the first whole second at which preauth passes again (locked
// only, unlock_time > 0): latest + unlock_time < now.
func (f *pamFaillock) admitsAt() int64 {
	var latest int64
	for _, r := range f.tally {
		if r.valid && r.time > latest {
			latest = r.time
		}
	}
	return latest + f.unlockTime + 1
}

// pamConfig is one set of module options.
type pamConfig struct{ deny, failInterval, unlockTime int64 }

func (c pamConfig) String() string {
	return fmt.Sprintf("deny=%d fail_interval=%d unlock_time=%d", c.deny, c.failInterval, c.unlockTime)
}

// policy is the pam_faillock preset with the options set by their own names.
func (c pamConfig) policy(t *testing.T) Policy {
	t.Helper()
	p, err := Preset("pam_faillock")
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range []string{
		fmt.Sprintf("deny=%d", c.deny),
		fmt.Sprintf("fail_interval=%d", c.failInterval),
		fmt.Sprintf("unlock_time=%d", c.unlockTime),
	} {
		if err := p.Set(s); err != nil {
			t.Fatalf("%s: %v", s, err)
		}
	}
	if err := p.Validate(); err != nil {
		t.Fatalf("%v: %v", c, err)
	}
	return p
}

func (c pamConfig) reference() *pamFaillock {
	return &pamFaillock{deny: int(c.deny), failInterval: c.failInterval, unlockTime: c.unlockTime}
}

// pamModel drives the model for one principal from several sources, as the
// service would (one pair and one source key per source, shared principal).
type pamModel struct {
	p       *Policy
	pairs   [4]Pair
	sources [4]Key
	prin    Key
	console Key
}

func (m *pamModel) attempt(now Instant, src int, right bool) Decision {
	ev := Event{Outcome: WrongSecret, Attempt: Attempt{Print: uint64(100 + src)}}
	if right {
		ev.Outcome, ev.Print = RightSecret, ptRightTag
	}
	v := View{Pair: m.pairs[src], Source: m.sources[src], Principal: m.prin, Console: m.console}
	v, d := Decide(v, ev, now, m.p)
	m.pairs[src], m.sources[src], m.prin, m.console = v.Pair, v.Source, v.Principal, v.Console
	return d
}

func pamVerdictOf(v Verdict) pamVerdict {
	switch v {
	case Refused:
		return pamRefused
	case Allowed:
		return pamAllowed
	case Failed:
		return pamFailed
	}
	return pamVerdict(v.String())
}

// pamSeconds is time(NULL) for an instant: whole seconds since the epoch of
// the instants (instants here are positive, so truncation is flooring).
func pamSeconds(now Instant) int64 { return int64(now) / int64(time.Second) }

// TestPamFaillockMatchesReference drives the preset and the transcription
// with the same seeded random sequences of failures and successes at
// sub-second instants from four sources, and requires identical
// refuse/allow/fail decisions at every step, and for every refusal with a
// timed end a Retry-After that is the time until pam admits again.
func TestPamFaillockMatchesReference(t *testing.T) {
	configs := []pamConfig{
		{3, 900, 600}, // pam's defaults
		{1, 1, 1},
		{2, 5, 3},
		{3, 10, 0}, // unlock_time=0: never
		{5, 60, 30},
		{0, 900, 600}, // deny=0: off
		{4, 2, 10},    // fail_interval shorter than unlock_time
		{2, 30, 1},
		{MaxThreshold, 3600, 5},
		{3, 604800, 604800}, // both at pam's maximum
	}
	const sequences, steps = 150, 80
	for ci, c := range configs {
		t.Run(c.String(), func(t *testing.T) {
			p := c.policy(t)
			rng := rand.New(rand.NewPCG(uint64(ptSeed), uint64(ci)))
			sec := func(s int64) time.Duration { return time.Duration(s) * time.Second }
			gaps := []func() time.Duration{
				func() time.Duration { return 0 },
				func() time.Duration { return 1 },
				func() time.Duration { return time.Millisecond },
				func() time.Duration { return 499 * time.Millisecond },
				func() time.Duration { return time.Second - 1 },
				func() time.Duration { return time.Second },
				func() time.Duration { return time.Second + 1 },
				func() time.Duration { return time.Duration(rng.Int64N(int64(5 * time.Second))) },
				func() time.Duration { return sec(c.failInterval) - time.Second },
				func() time.Duration { return sec(c.failInterval) - 1 },
				func() time.Duration { return sec(c.failInterval) },
				func() time.Duration { return sec(c.unlockTime) },
				func() time.Duration { return sec(c.unlockTime) + time.Second - 1 },
				func() time.Duration { return sec(c.unlockTime) + time.Second },
				func() time.Duration {
					return time.Duration(rng.Int64N(int64(sec(2*max(c.failInterval, c.unlockTime)) + 1)))
				},
			}
			for seq := 0; seq < sequences; seq++ {
				ref := c.reference()
				m := &pamModel{p: &p}
				now := Instant(10*time.Second) + Instant(rng.Int64N(int64(time.Second)))
				var trace strings.Builder
				for step := 0; step < steps; step++ {
					now = now.Add(gaps[rng.IntN(len(gaps))]())
					src := rng.IntN(4)
					right := rng.IntN(6) == 0
					s := pamSeconds(now)
					want := ref.attempt(s, right)
					d := m.attempt(now, src, right)
					got := pamVerdictOf(d.Verdict)
					fmt.Fprintf(&trace, "  t=%v (second %d) src%d right=%v: pam %s, model %s\n", time.Duration(now), s, src, right, want, got)
					if got != want {
						t.Fatalf("sequence %d step %d: pam_faillock says %s, the preset says %s (scope %v)\n%s",
							seq, step, want, got, d.Scope, trace.String())
					}
					if got == pamRefused && c.unlockTime > 0 {
						// R-DISCLOSE: Retry-After is when pam admits again:
						// exactly, or counted from the start of this second.
						exact := Instant(ref.admitsAt() * int64(time.Second)).Sub(now)
						if d.RetryAfter < exact || d.RetryAfter >= exact+time.Second {
							t.Fatalf("sequence %d step %d: Retry-After %v, pam admits again in %v\n%s",
								seq, step, d.RetryAfter, exact, trace.String())
						}
					}
				}
			}
		})
	}
}

// TestPamFaillockSecondBoundaries pins hand-computed cases at whole-second
// boundaries; each row is checked against both the transcription and the
// preset.
func TestPamFaillockSecondBoundaries(t *testing.T) {
	ms := func(n int64) Instant { return Instant(n * int64(time.Millisecond)) }
	type row struct {
		at    Instant
		src   int
		right bool
		want  pamVerdict
	}
	F, R := false, true
	cases := []struct {
		name string
		cfg  pamConfig
		rows []row
	}{
		{"lock ends after second latest+unlock_time", pamConfig{3, 900, 600}, []row{
			{ms(100), 0, F, pamFailed},
			{ms(1200), 1, F, pamFailed},
			{ms(2500), 2, F, pamFailed}, // third failure, latest second 2
			{ms(2600), 3, R, pamRefused},
			{ms(602999), 0, R, pamRefused}, // second 602 = 2+600: still locked
			{ms(603000), 0, R, pamAllowed}, // 2+600 < 603
		}},
		{"window anchored at whole seconds", pamConfig{3, 900, 600}, []row{
			{ms(500), 0, F, pamFailed},    // second 0
			{ms(1000), 1, F, pamFailed},   // second 1
			{ms(900700), 2, F, pamFailed}, // second 900: 900−0 ≥ 900 drops second 0; second 1 stays
			{ms(900990), 3, F, pamFailed}, // seconds 1, 900, 900: third failure locks
			{ms(901000), 0, R, pamRefused},
			{ms(1500999), 0, R, pamRefused}, // second 1500 = 900+600
			{ms(1501000), 0, R, pamAllowed},
		}},
		{"failures in one second", pamConfig{3, 900, 600}, []row{
			{ms(5000), 0, F, pamFailed},
			{ms(5300), 1, F, pamFailed},
			{ms(5999), 2, F, pamFailed},
			{ms(6000), 3, R, pamRefused},
			{ms(605999), 0, R, pamRefused},
			{ms(606000), 0, F, pamFailed}, // the lock expired: history forgotten, count 1
			{ms(606001), 0, F, pamFailed}, // count 2
			{ms(606002), 0, R, pamAllowed},
		}},
		{"first failure after an expired lock forgets all history", pamConfig{3, 900, 10}, []row{
			{ms(0), 0, F, pamFailed},
			{ms(1000), 1, F, pamFailed},
			{ms(2000), 2, F, pamFailed}, // locked, latest second 2
			{ms(12999), 0, F, pamRefused},
			{ms(13000), 0, F, pamFailed}, // 2+10 < 13: unlocked; tally wiped; count 1
			{ms(14000), 1, F, pamFailed}, // count 2 although seconds 0..2 are within fail_interval
			{ms(14500), 2, R, pamAllowed},
			{ms(15000), 3, F, pamFailed}, // the success cleared: count 1
			{ms(16000), 3, F, pamFailed},
			{ms(17000), 3, F, pamFailed}, // count 3: locked
			{ms(18000), 0, R, pamRefused},
		}},
		{"a refused attempt never extends", pamConfig{2, 900, 60}, []row{
			{ms(0), 0, F, pamFailed},
			{ms(500), 0, F, pamFailed}, // locked, latest second 0
			{ms(30000), 0, F, pamRefused},
			{ms(60999), 1, F, pamRefused},
			{ms(61000), 2, R, pamAllowed},
		}},
		{"success clears the tally", pamConfig{3, 900, 600}, []row{
			{ms(0), 0, F, pamFailed},
			{ms(1000), 1, F, pamFailed},
			{ms(2000), 2, R, pamAllowed},
			{ms(3000), 0, F, pamFailed},
			{ms(4000), 1, F, pamFailed},
			{ms(5000), 2, F, pamFailed}, // third since the success: locked
			{ms(6000), 2, R, pamRefused},
		}},
		{"unlock_time=0 never unlocks", pamConfig{2, 900, 0}, []row{
			{ms(0), 0, F, pamFailed},
			{ms(1000), 1, F, pamFailed},
			{ms(1000000000), 2, R, pamRefused},
		}},
		{"deny=0 never locks", pamConfig{0, 900, 600}, []row{
			{ms(0), 0, F, pamFailed},
			{ms(0), 0, F, pamFailed},
			{ms(1), 1, F, pamFailed},
			{ms(2), 2, F, pamFailed},
			{ms(3), 3, R, pamAllowed},
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			p := tc.cfg.policy(t)
			ref := tc.cfg.reference()
			m := &pamModel{p: &p}
			base := Instant(time.Hour) // whole seconds: pam's time(NULL) = 3600 + row's second
			for i, r := range tc.rows {
				now := base + r.at
				if got := ref.attempt(pamSeconds(now), r.right); got != r.want {
					t.Errorf("row %d (t=%v): the transcription says %s, want %s", i, time.Duration(r.at), got, r.want)
				}
				d := m.attempt(now, r.src, r.right)
				if got := pamVerdictOf(d.Verdict); got != r.want {
					t.Errorf("row %d (t=%v, src%d, right=%v): the preset says %s (scope %v, retry after %v), want %s",
						i, time.Duration(r.at), r.src, r.right, got, d.Scope, d.RetryAfter, r.want)
				}
			}
		})
	}
}
