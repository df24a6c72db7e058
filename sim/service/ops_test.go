package service

import (
	"flag"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"testing"
	"time"

	"github.com/latchnvr/latch/model"
	"github.com/latchnvr/latch/sim"
)

// The built-in scenarios never attempt at the console, never unlock
// everything, never reset a principal that has no account and only move
// the RTC backwards across a reboot (sim's doc says why). The engines
// must agree on those too: a seeded random mix of every operation, on a
// small universe so that keys lock, replay and collide, goes through the
// model engine and the service engine side by side, and every decision
// must match (R-UNLOCK, R-RESET, R-RESTART, R-MONO, R-REPLAY, R-ENUM).
// Each preset runs with the engine's deferred commits (DefaultCommitEvery),
// with a commit every 7 transactions (commits between any two operations,
// failed ones included), and with a commit per transaction, as the
// appliance runs: the service must decide alike in all three.
//
// More seeds and operations search further (seconds per seed):
//
//	go test -run TestEveryOperationAgrees ./sim/service/ -service.seeds=200 -service.ops=3000
func TestEveryOperationAgrees(t *testing.T) {
	for _, preset := range model.PresetNames() {
		t.Run(preset, func(t *testing.T) {
			p, err := model.Preset(preset)
			if err != nil {
				t.Fatal(err)
			}
			n := *opsCount
			if raceEnabled && n == defaultOps {
				n = defaultOps / 6 // a restart costs ~50 ms under -race
			}
			for _, every := range []int{DefaultCommitEvery, 7, 1} {
				for seed := uint64(testSeed); seed < testSeed+uint64(*opsSeeds); seed++ {
					runOps(t, p, preset, seed, n, every)
				}
			}
		})
	}
}

const defaultOps = 600

var (
	opsSeeds = flag.Int("service.seeds", 1, "TestEveryOperationAgrees: how many seeds, from 1")
	opsCount = flag.Int("service.ops", defaultOps, "TestEveryOperationAgrees: operations per seed")
)

// opsUniverse: an admin, an operator, a viewer, two names with no
// account, five sources.
func opsUniverse() *sim.Universe {
	u := &sim.Universe{}
	for i, n := range []string{"root", "ops", "guest", "nobody", "administrator"} {
		u.Principals = append(u.Principals, model.Principal(n))
		role := []model.Role{model.RoleAdmin, model.RoleOperator, model.RoleViewer}
		if i < len(role) {
			u.Accounts = append(u.Accounts, sim.Account{User: sim.UserID(i), Role: role[i], Secret: sim.MakeSecret(sim.SecretPassword, sim.UserID(i), 1)})
		}
	}
	for i := range 5 {
		u.Sources = append(u.Sources, model.SourceOf(netip.AddrFrom4([4]byte{10, 0, 0, byte(2 + i)})))
	}
	return u
}

func runOps(t *testing.T, p model.Policy, preset string, seed uint64, n, commitEvery int) {
	t.Helper()
	uni := opsUniverse()
	cfg := sim.EngineConfig{Policy: p, Universe: uni, WallStart: sim.WallStart.UnixNano()}
	want := sim.NewModelEngine(cfg)
	got, err := New(cfg, Options{Dir: t.TempDir(), CommitEvery: commitEvery})
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		if err := got.Close(); err != nil {
			t.Errorf("seed %d, commit every %d: close: %v", seed, commitEvery, err)
		}
	}()
	r := rand.New(rand.NewPCG(seed, 0x0b5))
	gen := []uint32{1, 1, 1, 1, 1} // each principal's password generation
	var (
		now     model.Instant
		wallErr int64 // the device's wall clock minus true time
		log     []string
	)
	wall := func() int64 { return cfg.WallStart + int64(now) + wallErr }
	for i := range n {
		// Time between operations: often none or seconds (bursts, keys
		// within their windows), sometimes hours or days (expiry, decay).
		switch k := r.IntN(10); {
		case k < 2:
		case k < 7:
			now += model.Instant(r.Int64N(int64(30 * time.Second)))
		case k < 9:
			now += model.Instant(r.Int64N(int64(2 * time.Hour)))
		default:
			now += model.Instant(r.Int64N(int64(3 * day)))
		}
		u := sim.UserID(r.IntN(len(uni.Principals)))
		src := sim.SourceID(r.IntN(len(uni.Sources)))
		var op string
		switch k := r.IntN(100); {
		case k < 75:
			a := sim.Attempt{User: u, Source: src, Channel: model.Remote}
			if r.IntN(8) == 0 {
				a.Source, a.Channel = sim.NoSource, model.Console
			}
			switch r.IntN(3) {
			case 0:
				a.Secret = sim.MakeSecret(sim.SecretPassword, u, gen[u])
			case 1: // a small dictionary: the same wrong secret again (R-REPLAY)
				a.Secret = sim.MakeSecret(sim.SecretGuess, 0, uint32(r.IntN(4)))
			default:
				a.Secret = sim.MakeSecret(sim.SecretGuess, 0, uint32(1000+i))
			}
			dw, dg := want.Attempt(now, a), got.Attempt(now, a)
			op = fmt.Sprintf("attempt %s %s %s → %+v", uni.Principals[u], where(uni, a.Source), a.Secret.Text(), dw)
			if dw != dg {
				t.Fatalf("seed %d, %s, commit every %d, op %d at %s: %s\nmodel:   %+v\nservice: %+v\nlast operations:\n%s",
					seed, preset, commitEvery, i, sim.FormatDuration(time.Duration(now)), op, dw, dg, tail(log, 12))
			}
		case k < 83:
			un := sim.Unlock{User: u, Source: sim.NoSource}
			switch r.IntN(3) {
			case 0:
				un.Source = src
			case 1:
				un.All = true
			}
			want.Unlock(now, un)
			got.Unlock(now, un)
			op = fmt.Sprintf("unlock %+v", un)
		case k < 88:
			gen[u]++
			sec := sim.MakeSecret(sim.SecretPassword, u, gen[u])
			want.Reset(now, u, sec)
			got.Reset(now, u, sec)
			op = fmt.Sprintf("reset %s to %s", uni.Principals[u], sec.Text())
		case k < 93:
			// A reboot: the RTC at 1970, a little behind, right, or ahead
			// (downtime the wall clock vouches for, R-RESTART).
			before := wall()
			after := before + []int64{-before, -int64(time.Hour), 0, int64(10 * time.Minute), int64(3 * day)}[r.IntN(5)]
			want.Restart(now, before, after)
			got.Restart(now, before, after)
			wallErr += after - before
			op = fmt.Sprintf("restart, wall %+v", time.Duration(after-before))
		default:
			by := time.Duration(r.Int64N(int64(365*day))) - 180*day
			want.WallJump(now, by)
			got.WallJump(now, by)
			wallErr += int64(by)
			op = fmt.Sprintf("wall jump %v", by)
		}
		log = append(log, fmt.Sprintf("  %d at %s: %s", i, sim.FormatDuration(time.Duration(now)), op))
	}
	if got.err != nil {
		t.Fatalf("seed %d, %s, commit every %d: %v", seed, preset, commitEvery, got.err)
	}
}

func where(uni *sim.Universe, s sim.SourceID) string {
	if s == sim.NoSource {
		return "console"
	}
	return "from " + uni.Sources[s].String()
}

func tail(log []string, n int) string {
	s := ""
	for _, l := range log[max(0, len(log)-n):] {
		s += l + "\n"
	}
	return s
}
