package service

// The numbers for the service engine (floor: 20,000 attempts per
// second), with the model engine's in the same run so that their ratio
// travels between machines:
//
//	go test -run '^$' -bench . -benchmem ./sim/service/
//
// Besides attempts/s (real time, which a shared machine's other load
// lowers) every benchmark reports cpu-µs/attempt, the process's CPU time
// per attempt, which load changes much less. docs/PERFORMANCE.md
// ("Service engine") has the figures and where the time goes.

import (
	"fmt"
	"net/netip"
	"os"
	"syscall"
	"testing"
	"time"

	"github.com/latchnvr/latch/model"
	"github.com/latchnvr/latch/sim"
)

// BenchmarkEngineAttempt is one attempt per op straight into an engine, no
// simulator around it, in sim's BenchmarkModelEngineAttempt's working
// sets: one pair guessed every 0.6 s (locked and mostly refused once it
// locks); a DoS, 100 sources on one account; a botnet spraying 50
// accounts from 1,000 sources (50,000 pairs). Wrong guesses throughout:
// verified failures until keys lock, refusals after, as an attack makes
// them. "service" is the engine as latchsim runs it (DefaultCommitEvery);
// "service-commit-each" commits every transaction, as the appliance does,
// to show what the deferred commits save; "service-tmpfs" is the engine
// with its database on /dev/shm (TMPDIR=/dev/shm for latchsim): the same
// work without the file system's share.
func BenchmarkEngineAttempt(b *testing.B) {
	for _, ws := range []struct {
		name           string
		users, sources int
	}{{"one-pair", 1, 1}, {"dos-100-sources", 1, 100}, {"botnet-50k-pairs", 50, 1000}} {
		for _, engine := range []string{"model", "service", "service-commit-each", "service-tmpfs"} {
			b.Run(ws.name+"/"+engine, func(b *testing.B) {
				u := &sim.Universe{}
				for i := range ws.users {
					id := sim.UserID(i)
					u.Principals = append(u.Principals, model.Principal(fmt.Sprintf("user%d", i)))
					u.Accounts = append(u.Accounts, sim.Account{User: id, Role: model.RoleAdmin, Secret: sim.MakeSecret(sim.SecretPassword, id, 1)})
				}
				for i := range ws.sources {
					u.Sources = append(u.Sources, model.SourceOf(netip.AddrFrom4([4]byte{100, 64, byte(i >> 8), byte(i)})))
				}
				p, err := model.Preset("latch")
				if err != nil {
					b.Fatal(err)
				}
				e := benchEngine(b, engine, sim.EngineConfig{Policy: p, Universe: u, WallStart: sim.WallStart.UnixNano()})
				x := uint64(testSeed)
				b.ReportAllocs()
				cpu := cpuTime()
				for i := 0; b.Loop(); i++ {
					x = splitmix(x)
					a := sim.Attempt{User: sim.UserID(x % uint64(ws.users)), Source: sim.SourceID((x >> 32) % uint64(ws.sources)),
						Secret: sim.MakeSecret(sim.SecretGuess, 0, uint32(i)), Channel: model.Remote}
					e.Attempt(model.Instant(i)*600e6, a)
				}
				report(b, int64(b.N), cpuTime()-cpu)
				if err := e.Close(); err != nil {
					b.Fatal(err)
				}
			})
		}
	}
}

func benchEngine(b *testing.B, name string, c sim.EngineConfig) sim.Engine {
	b.Helper()
	dir := b.TempDir()
	o := Options{}
	switch name {
	case "service-commit-each":
		o.CommitEvery = 1
	case "model":
		return sim.NewModelEngine(c)
	case "service-tmpfs":
		if _, err := os.Stat("/dev/shm"); err != nil {
			b.Skip("no /dev/shm")
		}
		d, err := os.MkdirTemp("/dev/shm", "latch-bench-")
		if err != nil {
			b.Skip(err)
		}
		b.Cleanup(func() { os.RemoveAll(d) })
		dir = d
	}
	o.Dir = dir
	e, err := New(c, o)
	if err != nil {
		b.Fatal(err)
	}
	return e
}

// BenchmarkRun is the whole simulator (actors, metrics, trace hash) with
// each engine on built-in scenarios under the latch preset; one op is one
// run, the service engine's setup (activation, accounts) included.
// virtual/real is the speed-up of virtual time over real time.
func BenchmarkRun(b *testing.B) {
	for _, c := range []struct {
		scenario string
		dur      time.Duration
	}{
		{"dos", 3 * day},         // 100 sources hammering from day 2: refusals
		{"brute-force", 3 * day}, // one source waiting out each lock
		{"home", 30 * day},       // a stale phone app: verified failures
	} {
		for _, engine := range []string{"model", "service"} {
			b.Run(fmt.Sprintf("%s/%s/%s", c.scenario, sim.FormatDuration(c.dur), engine), func(b *testing.B) {
				cfg := agreeCase{scenario: c.scenario, preset: "latch", duration: c.dur}.config(b, engine, nil)
				var attempts int64
				cpu := cpuTime()
				for b.Loop() {
					r, err := sim.Run(cfg)
					if err != nil {
						b.Fatal(err)
					}
					attempts += r.Attempts
				}
				report(b, attempts, cpuTime()-cpu)
				b.ReportMetric(float64(c.dur)*float64(b.N)/float64(b.Elapsed()), "virtual/real")
			})
		}
	}
}

func report(b *testing.B, attempts int64, cpu time.Duration) {
	b.ReportMetric(float64(attempts)/b.Elapsed().Seconds(), "attempts/s")
	b.ReportMetric(float64(cpu.Nanoseconds())/1e3/float64(attempts), "cpu-µs/attempt")
}

// cpuTime is the process's user and system CPU time so far.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func splitmix(x uint64) uint64 {
	x += 0x9E3779B97F4A7C15
	x = (x ^ x>>30) * 0xBF58476D1CE4E5B9
	x = (x ^ x>>27) * 0x94D049BB133111EB
	return x ^ x>>31
}
