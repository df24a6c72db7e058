package model

import (
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"
)

// Presets are named starting policies (SPEC §2). docs/SPEC.md justifies the
// numbers of latch and annke and lists every compatibility preset's
// reference and deviations.
var presetBuilders = map[string]func() Policy{
	"latch":        presetLatch,
	"annke":        presetAnnke,
	"pam_faillock": presetPamFaillock,
	"fail2ban":     presetFail2ban,
	"keycloak":     presetKeycloak,
	"authelia":     presetAuthelia,
	"auth0":        presetAuth0,
	"nist":         presetNIST,
}

// PresetNames lists the presets, latch first, then alphabetically.
func PresetNames() []string {
	names := []string{"latch"}
	for n := range presetBuilders {
		if n != "latch" {
			names = append(names, n)
		}
	}
	sort.Strings(names[1:])
	return names
}

// Preset returns a copy of the named preset.
func Preset(name string) (Policy, error) {
	b, ok := presetBuilders[name]
	if !ok {
		return Policy{}, fmt.Errorf("unknown preset %q (want one of %s)", name, strings.Join(PresetNames(), ", "))
	}
	return b(), nil
}

// Default is the latch preset: the recommended policy.
func Default() Policy { return presetLatch() }

const day = 24 * time.Hour

// off is a key kind that never locks.
var off = KeyPolicy{Growth: 1}

// latch: per-pair hard locks that escalate, per-source spray limits, and a
// principal lock that only unfamiliar sources feel (P-NODOS). Reasoning in
// docs/SPEC.md §"The latch preset".
func presetLatch() Policy {
	return Policy{
		Preset: "latch",
		Pair: KeyPolicy{Threshold: 5, Window: 15 * time.Minute, Base: time.Minute, Growth: 2, Cap: 24 * time.Hour,
			Decay: day, ExtendOnAttempt: time.Minute, ReplayDedup: true},
		Source: KeyPolicy{Threshold: 20, Window: time.Hour, Base: 5 * time.Minute, Growth: 2, Cap: day, Decay: day},
		Principal: KeyPolicy{Threshold: 10, Window: time.Hour, Base: 15 * time.Minute, Growth: 2, Cap: 4 * time.Hour,
			Decay: day},
		Console:        KeyPolicy{Threshold: 5, Window: 5 * time.Minute, Base: 30 * time.Second, Growth: 2, Cap: 5 * time.Minute, Decay: time.Hour},
		ResetOnSuccess: ResetPair,
		TrustTTL:       30 * day,
	}
}

// annke: the seed behaviour (SPEC §2): 5 tries (7 for admin), 5–10 minute
// locks extended up to 30 minutes, a 24 h administrative hold after
// repeated violations, each attempt during a lock extends it, 60 s console
// lock. Hikvision keys its lock by the client address and account role;
// the pair key is the closest model.
func presetAnnke() Policy {
	roles := RoleThresholds{RoleAdmin: 7}
	return Policy{
		Preset: "annke",
		Pair: KeyPolicy{Threshold: 5, Window: 30 * time.Minute, Base: 5 * time.Minute, Growth: 2, Cap: 30 * time.Minute,
			HoldAfter: 4, HoldFor: day, Decay: day, ExtendOnAttempt: 5 * time.Minute, RoleThreshold: roles},
		Source:    off,
		Principal: off,
		Console:   KeyPolicy{Threshold: 5, Window: 10 * time.Minute, Base: time.Minute, Growth: 1, Cap: time.Minute, RoleThreshold: roles},
		TrustTTL:  0,
	}
}

// pam_faillock (linux-pam modules/pam_faillock, defaults deny=3,
// fail_interval=900, unlock_time=600): per user, any source, whole seconds.
func presetPamFaillock() Policy {
	p := Policy{
		Preset:         "pam_faillock",
		Pair:           off,
		Source:         off,
		Principal:      KeyPolicy{Growth: 1},
		Console:        KeyPolicy{Growth: 1},
		ResetOnSuccess: ResetPrincipal,
		Resolution:     time.Second,
	}
	for _, s := range []string{"deny=3", "fail_interval=900", "unlock_time=600"} {
		if err := p.Set(s); err != nil {
			panic(err)
		}
	}
	return p
}

// fail2ban (config/jail.conf defaults maxretry=5, findtime=10m,
// bantime=10m, bantime.increment off): per source only; a success resets
// nothing.
func presetFail2ban() Policy {
	return Policy{
		Preset:    "fail2ban",
		Pair:      off,
		Source:    KeyPolicy{Threshold: 5, Window: 10 * time.Minute, Base: 10 * time.Minute, Growth: 1, Cap: 10 * time.Minute},
		Principal: off,
		Console:   KeyPolicy{Threshold: 5, Window: 10 * time.Minute, Base: 10 * time.Minute, Growth: 1, Cap: 10 * time.Minute},
	}
}

// keycloak (DefaultBruteForceProtector, realm defaults failureFactor=30,
// waitIncrementSeconds=60, maxFailureWaitSeconds=900,
// maxDeltaTimeSeconds=43200, brute force detection switched on): per user
// only, all sources; success clears the user.
func presetKeycloak() Policy {
	k := KeyPolicy{Threshold: 30, Window: 12 * time.Hour, Base: time.Minute, Growth: 2, Cap: 15 * time.Minute}
	return Policy{
		Preset:         "keycloak",
		Pair:           off,
		Source:         off,
		Principal:      k,
		Console:        k,
		ResetOnSuccess: ResetPrincipal,
	}
}

// authelia (regulation defaults modes=[user], max_retries=3, find_time=2m,
// ban_time=5m): a fixed ban from the newest failure; success resets.
func presetAuthelia() Policy {
	k := KeyPolicy{Threshold: 3, Window: 2 * time.Minute, Base: 5 * time.Minute, Growth: 1, Cap: 5 * time.Minute}
	return Policy{
		Preset:         "authelia",
		Pair:           off,
		Source:         off,
		Principal:      k,
		Console:        k,
		ResetOnSuccess: ResetPrincipal,
	}
}

// auth0 (Brute-force Protection, mode count_per_identifier_and_ip,
// max_attempts=10; Suspicious IP Throttling 100 attempts per day): the
// pair is blocked until 30 days after the last failed attempt.
func presetAuth0() Policy {
	return Policy{
		Preset: "auth0",
		Pair: KeyPolicy{Threshold: 10, Window: 30 * day, Base: 30 * day, Growth: 1, Cap: 30 * day,
			ExtendOnAttempt: 30 * day},
		Source:    KeyPolicy{Threshold: 25, Window: 6 * time.Hour, Base: 6 * time.Hour, Growth: 1, Cap: 6 * time.Hour},
		Principal: off,
		Console:   KeyPolicy{Threshold: 10, Window: time.Hour, Base: 5 * time.Minute, Growth: 1, Cap: 5 * time.Minute},
	}
}

// nist (SP 800-63B §5.2.2): at most 100 consecutive failures per account
// (here 30, the model's bound is 32), waits growing from 30 s up to an
// hour, an allowlist of sources that authenticated before (familiar
// sources), and a success disregards failures from the same source only.
func presetNIST() Policy {
	return Policy{
		Preset:         "nist",
		Pair:           KeyPolicy{Threshold: 5, Window: time.Hour, Base: 30 * time.Second, Growth: 2, Cap: time.Hour, Decay: day},
		Source:         off,
		Principal:      KeyPolicy{Threshold: 30, Window: 30 * day, Base: 30 * time.Second, Growth: 2, Cap: time.Hour, Decay: 30 * day},
		Console:        KeyPolicy{Threshold: 5, Window: 10 * time.Minute, Base: 30 * time.Second, Growth: 2, Cap: 5 * time.Minute},
		ResetOnSuccess: ResetPair,
		TrustTTL:       30 * day,
	}
}

// compat maps each compatibility preset's own parameter names, in their own
// units, onto native fields.
var compat = map[string]map[string]func(*Policy, string) error{
	"pam_faillock": {
		// deny=N: lock after N failures (0 disables).
		"deny": func(p *Policy, v string) error {
			n, err := atoi(v)
			p.Principal.Threshold, p.Console.Threshold = n, n
			return err
		},
		// fail_interval=S seconds: failures within S of the newest count.
		"fail_interval": func(p *Policy, v string) error {
			s, err := seconds(v)
			p.Principal.Window, p.Console.Window = s, s
			return err
		},
		// unlock_time=S seconds (0 or "never": only an admin unlocks).
		// pam refuses while now ≤ last failure + S in whole seconds, so the
		// lock lasts S+1 s of truncated time.
		"unlock_time": func(p *Policy, v string) error {
			var s time.Duration
			if v != "never" {
				var err error
				if s, err = seconds(v); err != nil {
					return err
				}
			}
			if s == 0 {
				p.Principal.Base, p.Principal.Cap = 0, 0
				// The console key never holds (R-CONSOLE): the longest
				// console lock validation allows.
				p.Console.Base, p.Console.Cap = day, day
				return nil
			}
			p.Principal.Base, p.Principal.Cap = s+time.Second, s+time.Second
			p.Console.Base, p.Console.Cap = s+time.Second, s+time.Second
			if p.Console.Cap > day {
				p.Console.Base, p.Console.Cap = day, day
			}
			return nil
		},
	},
	"fail2ban": {
		"maxretry": func(p *Policy, v string) error { n, err := atoi(v); p.Source.Threshold = n; return err },
		"findtime": func(p *Policy, v string) error { d, err := f2bTime(v); p.Source.Window = d; return err },
		"bantime": func(p *Policy, v string) error {
			d, err := f2bTime(v)
			if err != nil {
				return err
			}
			if d < 0 { // -1: permanent
				p.Source.Base, p.Source.Cap = 0, 0
				return nil
			}
			p.Source.Base = d
			if p.Source.Growth == 1 || p.Source.Cap < d {
				p.Source.Cap = d
			}
			return nil
		},
		"bantime.increment": func(p *Policy, v string) error {
			on, err := parseBool(v)
			if err != nil {
				return err
			}
			if on {
				p.Source.Growth = 2
				if p.Source.Cap == p.Source.Base {
					p.Source.Cap = MaxDuration
				}
			} else {
				p.Source.Growth, p.Source.Cap = 1, p.Source.Base
			}
			return nil
		},
		"bantime.factor": func(p *Policy, v string) error {
			f, err := strconv.ParseFloat(v, 64)
			if err != nil {
				return fmt.Errorf("want a number, got %q", v)
			}
			p.Source.Growth = 2 * f
			return nil
		},
		"bantime.maxtime": func(p *Policy, v string) error { d, err := f2bTime(v); p.Source.Cap = d; return err },
	},
	"keycloak": {
		"failureFactor":         func(p *Policy, v string) error { n, err := atoi(v); p.Principal.Threshold = n; return err },
		"waitIncrementSeconds":  func(p *Policy, v string) error { d, err := seconds(v); p.Principal.Base = d; return err },
		"maxFailureWaitSeconds": func(p *Policy, v string) error { d, err := seconds(v); p.Principal.Cap = d; return err },
		"maxDeltaTimeSeconds":   func(p *Policy, v string) error { d, err := seconds(v); p.Principal.Window = d; return err },
		"permanentLockout": func(p *Policy, v string) error {
			on, err := parseBool(v)
			if on && p.Principal.HoldAfter == 0 {
				p.Principal.Base = 0 // maxTemporaryLockouts=0: straight to a hold
			}
			return err
		},
		"maxTemporaryLockouts": func(p *Policy, v string) error { n, err := atoi(v); p.Principal.HoldAfter = n; return err },
	},
	"authelia": {
		"max_retries": func(p *Policy, v string) error { n, err := atoi(v); p.Principal.Threshold = n; return err },
		"find_time":   func(p *Policy, v string) error { d, err := ParseDuration(v); p.Principal.Window = d; return err },
		"ban_time": func(p *Policy, v string) error {
			d, err := ParseDuration(v)
			p.Principal.Base, p.Principal.Cap = d, d
			return err
		},
		// modes=user | ip | user,ip: which keys regulation counts on.
		"modes": func(p *Policy, v string) error {
			k := p.Principal
			if k.Threshold == 0 {
				k = p.Source
			}
			p.Principal, p.Source = off, off
			for _, m := range strings.Split(v, ",") {
				switch strings.TrimSpace(m) {
				case "user":
					p.Principal = k
				case "ip":
					p.Source = k
				default:
					return fmt.Errorf("want user, ip or user,ip, got %q", v)
				}
			}
			return nil
		},
	},
	"auth0": {
		"max_attempts": func(p *Policy, v string) error { n, err := atoi(v); p.Pair.Threshold = n; return err },
	},
}

func atoi(v string) (int, error) {
	n, err := strconv.Atoi(v)
	if err != nil {
		return 0, fmt.Errorf("want an integer, got %q", v)
	}
	return n, nil
}

// seconds reads a whole number of seconds, as pam and Keycloak write them.
func seconds(v string) (time.Duration, error) {
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil || n < 0 || n > int64(MaxDuration/time.Second) {
		return 0, fmt.Errorf("want whole seconds between 0 and %d, got %q", int64(MaxDuration/time.Second), v)
	}
	return time.Duration(n) * time.Second, nil
}

// f2bTime reads fail2ban's time values: seconds or "10m"-style; -1 means
// permanent (bantime only).
func f2bTime(v string) (time.Duration, error) {
	if v == "-1" {
		return -1, nil
	}
	if n, err := strconv.ParseInt(v, 10, 64); err == nil {
		return seconds(strconv.FormatInt(n, 10))
	}
	return ParseDuration(v)
}

func sortStrings(s []string) { sort.Strings(s) }
