package sim

import (
	"fmt"
	"net/netip"
	"runtime"
	"testing"
	"time"

	"github.com/latchnvr/latch/model"
)

// BenchmarkModelEngineAttempt is the model engine alone: one attempt per
// op, in three working sets: one pair; a DoS (100 sources on one account,
// a failure every 0.6 s); a botnet spraying 50 accounts from 1,000
// sources (50,000 pairs).
//
//	go test -run '^$' -bench ModelEngine -benchmem ./sim/
func BenchmarkModelEngineAttempt(b *testing.B) {
	for _, ws := range []struct {
		name           string
		users, sources int
	}{{"one-pair", 1, 1}, {"dos-100-sources", 1, 100}, {"botnet-50k-pairs", 50, 1000}} {
		for _, preset := range []string{"latch", "keycloak"} {
			b.Run(ws.name+"/"+preset, func(b *testing.B) {
				u := &Universe{}
				for i := range ws.users {
					id, _ := u.addPrincipal(fmt.Sprintf("user%d", i))
					u.Accounts = append(u.Accounts, Account{User: id, Role: model.RoleAdmin, Secret: MakeSecret(SecretPassword, id, 1)})
				}
				for i := range ws.sources {
					u.addSource(model.SourceOf(netip.AddrFrom4([4]byte{100, 64, byte(i >> 8), byte(i)})))
				}
				e := NewModelEngine(EngineConfig{Policy: mustPreset(b, preset), Universe: u})
				b.ReportAllocs()
				x := uint64(testSeed)
				for i := 0; b.Loop(); i++ {
					x = splitmix(x)
					a := Attempt{User: UserID(x % uint64(ws.users)), Source: SourceID((x >> 32) % uint64(ws.sources)), Secret: MakeSecret(SecretGuess, 0, uint32(i))}
					e.Attempt(model.Instant(i)*600e6, a)
				}
				b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "attempts/s")
			})
		}
	}
}

// BenchmarkRun is the whole simulator (event queue, actors, engine,
// metrics, trace hash) on built-in scenarios; one op is one run.
//
//	go test -run '^$' -bench Run -benchtime 3x ./sim/
func BenchmarkRun(b *testing.B) {
	for _, c := range []struct {
		scenario, preset string
		days             int
	}{
		{"dos", "latch", 30}, {"dos", "keycloak", 30},
		{"botnet", "latch", 30}, {"botnet", "fail2ban", 30},
		{"small-business", "latch", 365},
	} {
		b.Run(fmt.Sprintf("%s/%s/%dd", c.scenario, c.preset, c.days), func(b *testing.B) {
			sc := mustScenario(b, c.scenario)
			cfg := Config{Scenario: sc, Policy: mustPreset(b, c.preset), Seed: testSeed, Duration: time.Duration(c.days) * day}
			var attempts, events int64
			var before, after runtime.MemStats
			runtime.ReadMemStats(&before)
			for b.Loop() {
				r, err := Run(cfg)
				if err != nil {
					b.Fatal(err)
				}
				attempts += r.Attempts
				events += r.Events
			}
			runtime.ReadMemStats(&after)
			secs := b.Elapsed().Seconds()
			b.ReportMetric(float64(attempts)/secs, "attempts/s")
			b.ReportMetric(float64(events)/secs, "events/s")
			b.ReportMetric(float64(after.Mallocs-before.Mallocs)/float64(events), "allocs/event")
			b.ReportMetric(float64(cfg.Duration)*float64(b.N)/float64(b.Elapsed()), "virtual/real")
		})
	}
}
