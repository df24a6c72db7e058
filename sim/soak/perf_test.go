//go:build soak

package soak

import (
	"bufio"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
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
	flagPerf       = flag.Bool("soak.perf", false, "measure login throughput and latency over HTTP, and memory (docs/PERFORMANCE.md)")
	flagPerfArgon  = flag.String("soak.perf-argon", "default", "the server's argon2id cost: default (19 MiB, 2 passes) or cheap (64 KiB, 1 pass)")
	flagPerfN      = flag.Int("soak.perf-n", 2000, "requests per throughput measurement (a fifth of it for hashed answers with the default cost)")
	flagPerfRounds = flag.Int("soak.perf-rounds", 3, "rounds of the latch-versus-bare-handler comparison (medians are reported)")
	flagPerfLegit  = flag.Int("soak.perf-legit", 300, "legitimate logins timed idle and during each flood (at most 200 during the flood of verified guesses)")
	flagPerfSettle = flag.Duration("soak.perf-settle", 3*time.Minute, "how long TestPerfMemory lets each server record before reading its memory")
)

// perfServer starts a real-time `latch serve` (no warp) with the shipping
// camera defaults (1 fps, 640×360, 1-minute segments), the given number
// of cameras, and one user, alice.
func perfServer(t *testing.T, cameras int) (*Engine, string) {
	t.Helper()
	dir := workDir(t, fmt.Sprintf("perf-%d", cameras))
	pol, err := policyfile.Build("latch", "", nil)
	if err != nil {
		t.Fatal(err)
	}
	o := Options{Binary: latchBinary(t), Dir: dir, Warp: 1, Cameras: cameras, FPS: 1, Segment: time.Minute, Width: 640, Height: 360,
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

// bareEnv makes the test binary serve the baseline handler (serveBare)
// instead of running tests.
const bareEnv = "LATCH_SOAK_BARE_SERVER"

// serveBare is TestPerf's baseline: the cheapest JSON login endpoint
// net/http makes, in a process of its own like latch serve. Its one
// handler decodes the login's JSON and answers as latch refuses a locked
// pair (429, Retry-After, a JSON error, and the --debug-clock headers the
// engine's client reads), so both servers are driven by the same client
// code with the same requests and answers of the same shape.
func serveBare() {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	fmt.Printf("bare serving http://%s\n", ln.Addr())
	err = http.Serve(ln, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var in struct {
			Username string `json:"username"`
			Password string `json:"password"`
		}
		if err := json.NewDecoder(io.LimitReader(r.Body, 64<<10)).Decode(&in); err != nil || in.Username == "" {
			http.Error(w, `{"error":"bad_request"}`, http.StatusBadRequest)
			return
		}
		h := w.Header()
		h.Set("Content-Type", "application/json; charset=utf-8")
		h.Set("Retry-After", "60")
		h.Set("X-Latch-Instant", "0")
		h.Set("X-Latch-Wall", "0")
		w.WriteHeader(http.StatusTooManyRequests)
		_ = json.NewEncoder(w).Encode(map[string]any{"error": "locked", "scope": "pair", "retry_after_seconds": 60})
	}))
	fmt.Fprintln(os.Stderr, err)
	os.Exit(1)
}

// startBare runs serveBare in a child process and returns its URL.
func startBare(t *testing.T) string {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(exe, "-test.run=^$")
	cmd.Env = append(os.Environ(), bareEnv+"=1")
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	line, err := bufio.NewReader(out).ReadString('\n')
	if err != nil {
		t.Fatalf("bare server: %v", err)
	}
	u, ok := strings.CutPrefix(strings.TrimSpace(line), "bare serving ")
	if !ok {
		t.Fatalf("bare server said %q", line)
	}
	return u
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

// quantiles are the median and the 99th percentile (nearest rank).
func quantiles(ds []time.Duration) (p50, p99 time.Duration) {
	s := append([]time.Duration(nil), ds...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	return s[(len(s)-1)/2], s[(len(s)*99+99)/100-1]
}

// legit times n logins of alice from her familiar source, one at a time.
func legit(t *testing.T, e *Engine, base string, n int) []time.Duration {
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
	return ds
}

// TestPerf measures what docs/PERFORMANCE.md reports: login throughput
// over HTTP by kind of answer, sequential and with 8 clients, while the
// server records 4 cameras; refused logins against a bare net/http JSON
// handler (serveBare, its own process) in alternating rounds; and the
// latency of a legitimate login idle, during a flood of refused logins
// (R-NOORACLE: they cost no hashing) and during a flood of verified wrong
// guesses from ever-new addresses (they do). Measurements, not
// assertions. Opt-in: -soak.perf.
func TestPerf(t *testing.T) {
	if !*flagPerf {
		t.Skip("opt-in: -soak.perf (real-time measurements, not assertions)")
	}
	e, base := perfServer(t, 4)
	bare := startBare(t)
	n := *flagPerfN
	// alice's source becomes familiar.
	if a, err := e.login(base, "alice", Password("alice"), "10.0.0.1"); err != nil || a.status != 200 {
		t.Fatalf("alice: %v %v", a, err)
	}
	// The victim's pair is locked before every flood of refusals: a lock
	// the floods do not extend ends while the hashed measurements run.
	var locks atomic.Int64
	lockVictim := func() {
		for range 20 {
			a, err := e.login(base, "victim", Password(fmt.Sprint("lock", locks.Add(1))), "10.9.9.9")
			if err != nil {
				t.Fatal(err)
			}
			if a.status == http.StatusTooManyRequests {
				return
			}
		}
		t.Fatal("the victim's pair does not lock")
	}
	var rows []string
	add := func(name string, workers int, r perfResult) {
		rows = append(rows, fmt.Sprintf("| %s | %d | %d | %.0f | %v |", name, workers, r.n, r.rate(), r.codes))
	}
	var seq atomic.Int64
	kinds := []struct {
		name   string
		hashed bool
		req    func(i int) (string, string, string)
	}{
		{"verified wrong password (401), new address each", true, func(i int) (string, string, string) {
			k := seq.Add(1)
			return fmt.Sprintf("u%d", k), Password(fmt.Sprint("w", k)), fmt.Sprintf("10.%d.%d.%d", 100+k>>16&63, k>>8&255, k&255)
		}},
		{"refused, locked pair (429)", false, func(i int) (string, string, string) {
			return "victim", Password(fmt.Sprint("r", i)), "10.9.9.9"
		}},
		{"right password (200, new session)", true, func(i int) (string, string, string) {
			return "alice", Password("alice"), "10.0.0.1"
		}},
	}
	for _, k := range kinds {
		kn := n
		if k.hashed && *flagPerfArgon != "cheap" {
			kn = max(n/5, 50)
		}
		for _, w := range []int{1, 8} {
			if !k.hashed {
				lockVictim()
			}
			add(k.name, w, hammer(e, base, kn, w, k.req))
		}
	}
	// Refused logins against the bare handler, alternating, so that both
	// see the same host.
	refused := kinds[1].req
	var cmp []string
	for _, w := range []int{1, 8} {
		var lr, br []float64
		for range *flagPerfRounds {
			lockVictim()
			l := hammer(e, base, n, w, refused)
			b := hammer(e, bare, n, w, refused)
			if l.codes[http.StatusTooManyRequests] != n || b.codes[http.StatusTooManyRequests] != n {
				t.Errorf("%d clients: latch answered %v, the bare handler %v; want %d 429s each", w, l.codes, b.codes, n)
			}
			lr, br = append(lr, l.rate()), append(br, b.rate())
		}
		lm, bm := median(lr), median(br)
		cmp = append(cmp, fmt.Sprintf("| %d | %.0f (%s) | %.0f (%s) | %.2f |", w, lm, fmtRates(lr), bm, fmtRates(br), lm/bm))
	}
	ln := *flagPerfLegit
	idle := legit(t, e, base, ln)
	flood := func(ln int, req func(i int) (string, string, string)) ([]time.Duration, perfResult) {
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
		ds := legit(t, e, base, ln)
		r := perfResult{n: int(sent.Load() - s0), dur: time.Since(t0)}
		close(stop)
		wg.Wait()
		return ds, r
	}
	lockVictim()
	ref, refR := flood(ln, refused)
	wr, wrR := flood(min(ln, 200), kinds[0].req)
	var b strings.Builder
	fmt.Fprintf(&b, "argon2id: %s; 4 cameras recording at 1 fps, 640×360\n\n| requests | clients | n | per second | answers |\n|---|---:|---:|---:|---|\n%s\n\n", *flagPerfArgon, strings.Join(rows, "\n"))
	fmt.Fprintf(&b, "| refused logins (429), clients | latch serve, per second (rounds) | bare net/http JSON handler, per second (rounds) | latch / bare |\n|---:|---:|---:|---:|\n%s\n\n", strings.Join(cmp, "\n"))
	i50, i99 := quantiles(idle)
	fmt.Fprintf(&b, "| legitimate login (alice, familiar source) | n | p50 | p99 | p50 / idle | p99 / idle | flood rate |\n|---|---:|---:|---:|---:|---:|---:|\n")
	fmt.Fprintf(&b, "| idle | %d | %s | %s | 1 | 1 | |\n", len(idle), i50.Round(time.Microsecond), i99.Round(time.Microsecond))
	for _, x := range []struct {
		name string
		ds   []time.Duration
		r    perfResult
	}{{"8 clients flooding refused logins", ref, refR}, {"8 clients flooding verified wrong guesses", wr, wrR}} {
		p50, p99 := quantiles(x.ds)
		fmt.Fprintf(&b, "| %s | %d | %s | %s | %.2f | %.2f | %.0f/s |\n", x.name, len(x.ds), p50.Round(time.Microsecond), p99.Round(time.Microsecond),
			float64(p50)/float64(i50), float64(p99)/float64(i99), x.r.rate())
	}
	t.Log("\n" + b.String())
	kib, _ := readVmRSS(fmt.Sprintf("/proc/%d/status", e.srv.pid))
	t.Logf("server RSS after the measurements: %d KiB", kib)
}

// TestPerfMemory measures the resident memory (VmRSS) of a real-time
// `latch serve` recording 4 and then 16 cameras at the shipping camera
// defaults (1 fps, 640×360, 1-minute segments), activated, with no logins
// after the first ones: sampled every second for -soak.perf-settle.
// Opt-in: -soak.perf.
func TestPerfMemory(t *testing.T) {
	if !*flagPerf {
		t.Skip("opt-in: -soak.perf (real-time measurements, not assertions)")
	}
	var b strings.Builder
	fmt.Fprintf(&b, "\n| cameras | after 1 min | last third of %s (median) | max | segments recorded |\n|---:|---:|---:|---:|---:|\n", *flagPerfSettle)
	for _, cams := range []int{4, 16} {
		e, _ := perfServer(t, cams)
		path := fmt.Sprintf("/proc/%d/status", e.srv.pid)
		var kib []int64
		var at1 int64
		t0 := time.Now()
		for time.Since(t0) < *flagPerfSettle {
			time.Sleep(time.Second)
			k, err := readVmRSS(path)
			if err != nil {
				t.Fatal(err)
			}
			kib = append(kib, k)
			if at1 == 0 && time.Since(t0) >= time.Minute {
				at1 = k
			}
		}
		if err := e.srv.term(30 * time.Second); err != nil {
			t.Error(err)
		}
		last := append([]int64(nil), kib[len(kib)-len(kib)/3:]...)
		sort.Slice(last, func(i, j int) bool { return last[i] < last[j] })
		segs, _ := filepath.Glob(filepath.Join(e.dataDir(), "recordings", "*", "*.mjpeg"))
		fmt.Fprintf(&b, "| %d | %.1f MiB | %.1f MiB | %.1f MiB | %d |\n", cams, mib(at1), mib(last[len(last)/2]), mib(slices.Max(kib)), len(segs))
	}
	t.Log(b.String())
}

func mib(kib int64) float64 { return float64(kib) / 1024 }

func median(xs []float64) float64 {
	s := append([]float64(nil), xs...)
	sort.Float64s(s)
	return s[len(s)/2]
}

func fmtRates(xs []float64) string {
	parts := make([]string, len(xs))
	for i, x := range xs {
		parts[i] = fmt.Sprintf("%.0f", x)
	}
	return strings.Join(parts, ", ")
}
