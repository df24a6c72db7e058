//go:build soak

package soak

import (
	"flag"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/latchnvr/latch/model"
	"github.com/latchnvr/latch/model/policyfile"
	"github.com/latchnvr/latch/model/world"
)

var (
	flagPerf      = flag.Bool("soak.perf", false, "measure login throughput and latency over HTTP (docs/PERFORMANCE.md)")
	flagPerfArgon = flag.String("soak.perf-argon", "default", "the server's argon2id cost: default (19 MiB, 2 passes) or cheap (64 KiB, 1 pass)")
	flagPerfN     = flag.Int("soak.perf-n", 2000, "requests per throughput measurement")
)

// perfServer starts a real-time `latch serve` (no warp) with the shipping
// camera defaults (4 cameras, 1 fps, 640×360) and one user, alice.
func perfServer(t *testing.T) (*Engine, string) {
	t.Helper()
	dir := workDir(t, "perf")
	pol, err := policyfile.Build("latch", "", nil)
	if err != nil {
		t.Fatal(err)
	}
	o := Options{Binary: latchBinary(t), Dir: dir, Warp: 1, Cameras: 4, FPS: 1, Segment: time.Minute, Width: 640, Height: 360,
		RetainBytes: 4 << 30, ArgonMemory: 19456, ArgonTime: 2, RSSEvery: 0}
	if *flagPerfArgon == "cheap" {
		o.ArgonMemory, o.ArgonTime = 64, 1
	}
	if err := os.MkdirAll(filepath.Join(dir, "data"), 0o750); err != nil {
		t.Fatal(err)
	}
	e := &Engine{opt: o, policy: pol, began: time.Now(), shadow: world.New(pol), accounts: map[model.Principal]*account{},
		http: &http.Client{Timeout: time.Minute, Transport: &http.Transport{MaxIdleConnsPerHost: 64, DisableCompression: true}}}
	if err := os.WriteFile(e.policyFile(), policyfile.Marshal(pol), 0o644); err != nil {
		t.Fatal(err)
	}
	s, err := e.startServer()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.term(30 * time.Second) })
	e.srv = s
	pw := Password("soakadmin")
	if code, b, err := e.post(s.url+"/api/v1/activate", "", "", map[string]string{"username": adminUser, "password": pw, "pin": adminPIN}); err != nil || code != 201 {
		t.Fatalf("activate: %d %s %v", code, b, err)
	}
	ans, err := e.login(s.url, adminUser, pw, adminSource.String())
	if err != nil || ans.status != 200 {
		t.Fatalf("admin login: %v %v", ans, err)
	}
	e.admin = adminSession{cookie: ans.cookie, csrf: ans.csrf}
	if code, b, err := e.do("POST", s.url+"/api/v1/users", e.admin.cookie, e.admin.csrf, map[string]string{
		"name": "alice", "password": Password("alice"), "role": "viewer"}); err != nil || code != 201 {
		t.Fatalf("create alice: %d %s %v", code, b, err)
	}
	return e, s.url
}

type perfResult struct {
	name  string
	n     int
	dur   time.Duration
	codes map[int]int
}

func (p perfResult) rate() float64 { return float64(p.n) / p.dur.Seconds() }

// hammer sends n requests from workers goroutines; req(i) gives the i-th.
func hammer(e *Engine, base string, n, workers int, req func(i int) (user, pw, src string)) perfResult {
	var next atomic.Int64
	var mu sync.Mutex
	codes := map[int]int{}
	var wg sync.WaitGroup
	start := time.Now()
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			local := map[int]int{}
			for {
				i := int(next.Add(1)) - 1
				if i >= n {
					break
				}
				u, p, s := req(i)
				a, err := e.login(base, u, p, s)
				if err != nil {
					local[-1]++
					continue
				}
				local[a.status]++
			}
			mu.Lock()
			for k, v := range local {
				codes[k] += v
			}
			mu.Unlock()
		}()
	}
	wg.Wait()
	return perfResult{n: n, dur: time.Since(start), codes: codes}
}

func quantiles(ds []time.Duration) (p50, p99 time.Duration) {
	sort.Slice(ds, func(i, j int) bool { return ds[i] < ds[j] })
	return ds[len(ds)/2], ds[len(ds)*99/100]
}

// legit times n logins of alice from her familiar source, one at a time.
func legit(t *testing.T, e *Engine, base string, n int) (p50, p99 time.Duration) {
	t.Helper()
	ds := make([]time.Duration, 0, n)
	for range n {
		t0 := time.Now()
		a, err := e.login(base, "alice", Password("alice"), "10.0.0.1")
		d := time.Since(t0)
		if err != nil || a.status != 200 {
			t.Fatalf("alice refused: %v %v", a, err)
		}
		ds = append(ds, d)
		time.Sleep(5 * time.Millisecond)
	}
	return quantiles(ds)
}

// TestPerf measures what docs/PERFORMANCE.md reports: login throughput
// over HTTP by kind of answer, sequential and with 8 clients, and the
// latency of a legitimate login idle, during a flood of refused logins
// (R-NOORACLE: they cost no hashing) and during a flood of verified wrong
// guesses from ever-new addresses (they do). Opt-in: -soak.perf.
func TestPerf(t *testing.T) {
	if !*flagPerf {
		t.Skip("opt-in: -soak.perf (real-time measurements, not assertions)")
	}
	e, base := perfServer(t)
	n := *flagPerfN
	// alice's source becomes familiar; the victim's pair gets locked.
	if a, err := e.login(base, "alice", Password("alice"), "10.0.0.1"); err != nil || a.status != 200 {
		t.Fatalf("alice: %v %v", a, err)
	}
	for i := range 5 {
		_, _ = e.login(base, "victim", Password(fmt.Sprint("lock", i)), "10.9.9.9")
	}
	var rows []string
	add := func(name string, workers int, r perfResult) {
		rows = append(rows, fmt.Sprintf("| %s | %d | %d | %.0f | %v |", name, workers, r.n, r.rate(), r.codes))
	}
	var seq atomic.Int64
	kinds := []struct {
		name string
		req  func(i int) (string, string, string)
	}{
		{"verified wrong password (401), new address each", func(i int) (string, string, string) {
			k := seq.Add(1)
			return fmt.Sprintf("u%d", k), Password(fmt.Sprint("w", k)), fmt.Sprintf("10.%d.%d.%d", 100+k>>16&63, k>>8&255, k&255)
		}},
		{"refused, locked pair (429)", func(i int) (string, string, string) {
			return "victim", Password(fmt.Sprint("r", i)), "10.9.9.9"
		}},
		{"right password (200, new session)", func(i int) (string, string, string) {
			return "alice", Password("alice"), "10.0.0.1"
		}},
	}
	for _, k := range kinds {
		for _, w := range []int{1, 8} {
			add(k.name, w, hammer(e, base, n, w, k.req))
		}
	}
	idle50, idle99 := legit(t, e, base, 200)
	flood := func(req func(i int) (string, string, string)) (time.Duration, time.Duration, perfResult) {
		stop := make(chan struct{})
		var sent atomic.Int64
		var wg sync.WaitGroup
		for range 8 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for {
					select {
					case <-stop:
						return
					default:
					}
					i := int(sent.Add(1))
					u, p, s := req(i)
					_, _ = e.login(base, u, p, s)
				}
			}()
		}
		time.Sleep(500 * time.Millisecond)
		t0 := time.Now()
		s0 := sent.Load()
		p50, p99 := legit(t, e, base, 200)
		r := perfResult{n: int(sent.Load() - s0), dur: time.Since(t0)}
		close(stop)
		wg.Wait()
		return p50, p99, r
	}
	ref50, ref99, refR := flood(kinds[1].req)
	wr50, wr99, wrR := flood(func(i int) (string, string, string) {
		k := seq.Add(1)
		return fmt.Sprintf("u%d", k), Password(fmt.Sprint("w", k)), fmt.Sprintf("10.%d.%d.%d", 100+k>>16&63, k>>8&255, k&255)
	})
	var b strings.Builder
	fmt.Fprintf(&b, "argon2id: %s\n\n| requests | clients | n | per second | answers |\n|---|---:|---:|---:|---|\n%s\n\n", *flagPerfArgon, strings.Join(rows, "\n"))
	fmt.Fprintf(&b, "| legitimate login (alice, familiar source) | p50 | p99 | p50 ratio to idle | flood rate |\n|---|---:|---:|---:|---:|\n")
	fmt.Fprintf(&b, "| idle | %s | %s | 1.0 | |\n", idle50.Round(time.Microsecond), idle99.Round(time.Microsecond))
	fmt.Fprintf(&b, "| 8 clients flooding refused logins | %s | %s | %.2f | %.0f/s |\n", ref50.Round(time.Microsecond), ref99.Round(time.Microsecond), float64(ref50)/float64(idle50), refR.rate())
	fmt.Fprintf(&b, "| 8 clients flooding verified wrong guesses | %s | %s | %.2f | %.0f/s |\n", wr50.Round(time.Microsecond), wr99.Round(time.Microsecond), float64(wr50)/float64(idle50), wrR.rate())
	t.Log("\n" + b.String())
	kib, _ := readVmRSS(fmt.Sprintf("/proc/%d/status", e.srv.pid))
	t.Logf("server RSS after the measurements: %d KiB", kib)
}
