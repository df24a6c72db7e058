package auth

// The numbers (benchmarks, not timed tests):
//
//	go test ./nvr/auth/ -run '^$' -bench . -benchtime 2s
//
// Refused attempts go through Login exactly as the web layer calls it,
// with the audit aggregation of R-AUDIT, on a real SQLite file.

import (
	"context"
	"fmt"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/latchnvr/latch/model"
	"github.com/latchnvr/latch/nvr/clock"
	"github.com/latchnvr/latch/nvr/store"
)

type benchRig struct {
	db  *store.DB
	svc *Service
	clk clock.Clock
}

// newBenchRig opens a service on a fresh database. The clock is simulated
// and stands still unless clk is given: then refused attempts happen at
// distinct instants, and a policy with extendOnAttempt extends the pair's
// lock at every one of them (R-EXTEND), as it does in production.
func newBenchRig(b *testing.B, hp HashParams, p model.Policy, clk ...clock.Clock) *benchRig {
	b.Helper()
	db, err := store.Open(filepath.Join(b.TempDir(), "latch.db"), store.Options{})
	if err != nil {
		b.Fatal(err)
	}
	r := &benchRig{db: db, clk: clock.NewSim(epoch)}
	if len(clk) > 0 {
		r.clk = clk[0]
	}
	r.svc, err = New(db, Config{Clock: r.clk, Hasher: NewHasher(hp, 2), Policy: p, BootID: 1})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() {
		r.svc.Close()
		db.Close()
	})
	if _, err := r.svc.Activate(context.Background(), "admin", adminPW, pin); err != nil {
		b.Fatal(err)
	}
	return r
}

func (r *benchRig) login(b *testing.B, user, pw string, src model.Source) Result {
	res, err := r.svc.Login(context.Background(), Attempt{Username: user, Secret: pw, Source: src})
	if err != nil {
		b.Fatal(err)
	}
	return res
}

// lockPair makes distinct wrong guesses until the pair refuses.
func (r *benchRig) lockPair(b *testing.B, user string, src model.Source) {
	b.Helper()
	for i := 0; ; i++ {
		if r.login(b, user, fmt.Sprintf("wrong-%d", i), src).Decision.Verdict == model.Refused {
			return
		}
		if i > 64 {
			b.Fatalf("%s from %s never locked", user, src)
		}
	}
}

// cpuTime is the process's user+system CPU time so far. The benchmarks
// report CPU per attempt beside throughput: this machine is shared, and
// wall-clock throughput depends on what else runs, CPU per attempt much
// less; on an idle machine with n cores, throughput is at most n seconds
// divided by it.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// measure runs a benchmark body and reports attempts per second, CPU
// microseconds per attempt and, for the service's group commit, how many
// requests shared a commit on average.
func measure(b *testing.B, unit string, svc *Service, body func()) {
	b.ReportAllocs()
	start := cpuTime()
	batches, requests := svc.commit.batches.Load(), svc.commit.requests.Load()
	b.ResetTimer()
	body()
	b.StopTimer()
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), unit+"/s")
	b.ReportMetric(float64((cpuTime()-start).Microseconds())/float64(b.N), "cpu-µs/op")
	if n := svc.commit.batches.Load() - batches; n > 0 {
		b.ReportMetric(float64(svc.commit.requests.Load()-requests)/float64(n), "reqs/commit")
	}
}

func benchSource(i int) model.Source {
	return mustSource(fmt.Sprintf("198.51.%d.%d", i/250, 1+i%250))
}

// BenchmarkRefused measures refused attempts per second: one attacker
// hammering one locked pair (serialised by the principal's stripe), and a
// botnet hammering 64 locked pairs of 64 accounts from 8 goroutines.
func BenchmarkRefused(b *testing.B) {
	for _, preset := range []string{"latch", "annke"} {
		p, err := model.Preset(preset)
		if err != nil {
			b.Fatal(err)
		}
		b.Run(preset+"/one-pair", func(b *testing.B) {
			r := newBenchRig(b, CheapParams, p)
			src := benchSource(0)
			r.lockPair(b, "admin", src)
			measure(b, "refusals", r.svc, func() {
				for i := 0; i < b.N; i++ {
					if r.login(b, "admin", adminPW, src).Decision.Verdict != model.Refused {
						b.Fatal("admitted")
					}
				}
			})
		})
		// real-clock: time moves between refusals, so with extendOnAttempt
		// (both presets) every refusal extends the pair's lock and writes
		// the key, its extend record and its aggregate: the slow path.
		for _, realClock := range []bool{false, true} {
			name := preset + "/one-pair-8-clients"
			var clk []clock.Clock
			if realClock {
				name += "/real-clock"
				clk = append(clk, clock.Real{})
			}
			b.Run(name, func(b *testing.B) {
				r := newBenchRig(b, CheapParams, p, clk...)
				src := benchSource(0)
				r.lockPair(b, "admin", src)
				b.SetParallelism(4) // 8 goroutines on 2 cores
				measure(b, "refusals", r.svc, func() {
					b.RunParallel(func(pb *testing.PB) {
						for pb.Next() {
							res, err := r.svc.Login(context.Background(), Attempt{Username: "admin", Secret: adminPW, Source: src})
							if err != nil || res.Decision.Verdict != model.Refused {
								b.Errorf("%v %+v", err, res.Decision)
								return
							}
						}
					})
				})
			})
		}
		for _, pairs := range []int{64, 1024} {
			b.Run(fmt.Sprintf("%s/%d-pairs", preset, pairs), func(b *testing.B) {
				r := newBenchRig(b, CheapParams, p)
				users := make([]string, pairs)
				for i := range users {
					users[i] = fmt.Sprintf("user%04d", i)
					r.lockPair(b, users[i], benchSource(i))
				}
				var next atomic.Int64
				b.SetParallelism(4) // 8 goroutines on 2 cores
				measure(b, "refusals", r.svc, func() {
					b.RunParallel(func(pb *testing.PB) {
						for pb.Next() {
							i := int(next.Add(1) % int64(pairs))
							res, err := r.svc.Login(context.Background(), Attempt{Username: users[i], Secret: "x", Source: benchSource(i)})
							if err != nil || res.Decision.Verdict != model.Refused {
								b.Errorf("%v %+v", err, res.Decision)
								return
							}
						}
					})
				})
			})
		}
	}
}

// BenchmarkVerified measures admitted attempts (right password from a
// familiar source) with the appliance's argon2id cost, on two hasher
// workers: one account per goroutine, since a principal's attempts are
// serialised.
func BenchmarkVerified(b *testing.B) {
	r := newBenchRig(b, OWASPParams, model.Default())
	const accounts = 4
	for i := 1; i < accounts; i++ {
		if _, err := r.svc.CreateUser(context.Background(), "admin:admin", NewUser{Name: fmt.Sprintf("user%d", i), Password: adminPW, Role: "viewer"}); err != nil {
			b.Fatal(err)
		}
	}
	src := benchSource(1)
	var next atomic.Int64
	b.SetParallelism(2) // 4 goroutines, one account each
	measure(b, "verified", r.svc, func() {
		b.RunParallel(func(pb *testing.PB) {
			user := "admin"
			if i := next.Add(1) - 1; i%accounts != 0 {
				user = fmt.Sprintf("user%d", i%accounts)
			}
			for pb.Next() {
				res, err := r.svc.Login(context.Background(), Attempt{Username: user, Secret: adminPW, Source: src, NoSession: true})
				if err != nil || res.Decision.Verdict != model.Allowed {
					b.Errorf("%v %+v", err, res.Decision)
					return
				}
			}
		})
	})
	b.ReportMetric(float64(OWASPParams.Memory)/1024, "argon2-MiB")
	b.ReportMetric(float64(OWASPParams.Time), "argon2-passes")
	b.ReportMetric(float64(OWASPParams.Threads), "argon2-lanes")
}

// BenchmarkLoginUnderFlood measures a legitimate login (right password,
// familiar source, OWASP argon2id) while 8 goroutines flood refused
// attempts — 4 at the same account from its locked pairs, 4 as a botnet at
// 64 other accounts' locked pairs — against the same login with nothing
// else running. ns/op is meaningless; read the percentiles.
func BenchmarkLoginUnderFlood(b *testing.B) {
	r := newBenchRig(b, OWASPParams, model.Default())
	home := benchSource(1000)
	if r.login(b, "admin", adminPW, home).Decision.Verdict != model.Allowed {
		b.Fatal("first login refused")
	}
	const flooders, botnet = 8, 64
	for i := 0; i < flooders/2; i++ {
		r.lockPair(b, "admin", benchSource(i))
	}
	bots := make([]string, botnet)
	for i := range bots {
		bots[i] = fmt.Sprintf("user%02d", i)
		r.lockPair(b, bots[i], benchSource(100+i))
	}
	measure := func(n int) []time.Duration {
		lat := make([]time.Duration, 0, n)
		for i := 0; i < n; i++ {
			start := time.Now()
			if res := r.login(b, "admin", adminPW, home); res.Decision.Verdict != model.Allowed {
				b.Fatalf("legitimate login: %+v", res.Decision)
			}
			lat = append(lat, time.Since(start))
		}
		slices.Sort(lat)
		return lat
	}
	n := max(b.N, 20)
	b.ResetTimer()
	idle := measure(n)
	stop := make(chan struct{})
	var wg sync.WaitGroup
	var refused atomic.Int64
	for g := 0; g < flooders; g++ {
		wg.Add(1)
		go func(g int) {
			defer wg.Done()
			for k := 0; ; k++ {
				select {
				case <-stop:
					return
				default:
				}
				a := Attempt{Username: "admin", Secret: "x", Source: benchSource(g)}
				if g >= flooders/2 {
					i := (k*flooders/2 + g) % botnet
					a = Attempt{Username: bots[i], Secret: "x", Source: benchSource(100 + i)}
				}
				res, err := r.svc.Login(context.Background(), a)
				if err != nil || res.Decision.Verdict != model.Refused {
					b.Errorf("flood: %v %+v", err, res.Decision)
					return
				}
				refused.Add(1)
			}
		}(g)
	}
	floodStart := time.Now()
	flood := measure(n)
	floodTime := time.Since(floodStart)
	close(stop)
	wg.Wait()
	pct := func(lat []time.Duration, q float64) float64 {
		return float64(lat[min(len(lat)-1, int(q*float64(len(lat))))].Microseconds()) / 1000
	}
	b.ReportMetric(pct(idle, 0.5), "idle-p50-ms")
	b.ReportMetric(pct(idle, 0.99), "idle-p99-ms")
	b.ReportMetric(pct(flood, 0.5), "flood-p50-ms")
	b.ReportMetric(pct(flood, 0.99), "flood-p99-ms")
	b.ReportMetric(pct(flood, 0.5)/pct(idle, 0.5), "p50-ratio")
	b.ReportMetric(pct(flood, 0.99)/pct(idle, 0.99), "p99-ratio")
	b.ReportMetric(float64(refused.Load())/floodTime.Seconds(), "flood-refusals/s")
}
