//go:build soak

package soak

import (
	"encoding/json"
	"flag"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/latchnvr/latch/model/policyfile"
	"github.com/latchnvr/latch/nvr/store"
	"github.com/latchnvr/latch/sim"
)

// The default is the short soak (`make soak-short`, CI, about two minutes
// of real time); `make soak` runs a warped week with 20 kills:
//
//	go test -tags soak -count=1 -timeout 60m -v -run 'TestSoak' ./sim/soak/ \
//	    -soak.virtual=168h -soak.kills=20 -soak.pressure=24h -soak.upgrade=24h \
//	    -soak.report=soak-report.json
var (
	flagVirtual  = flag.Duration("soak.virtual", 18*time.Hour, "virtual duration of the main soak run")
	flagWarp     = flag.Float64("soak.warp", 1000, "the server's --time-warp")
	flagKills    = flag.Int("soak.kills", 3, "kill -9 faults in the main run (plus one SIGTERM per five)")
	flagSeed     = flag.Uint64("soak.seed", 0, "seed of the simulation and the faults (0: from the clock)")
	flagCameras  = flag.Int("soak.cameras", 4, "cameras of the main run")
	flagPressure = flag.Duration("soak.pressure", 5*time.Hour, "virtual duration of the disk-pressure run")
	flagUpgrade  = flag.Duration("soak.upgrade", 5*time.Hour, "virtual duration of the upgrade run")
	flagBin      = flag.String("soak.bin", "", "latch binary to run (default: build ./cmd/latch)")
	flagDir      = flag.String("soak.dir", "", "work in this folder and keep it (default: a temporary one)")
	flagReport   = flag.String("soak.report", "", "write the main run's report (JSON) to this file")
	flagRSSEvery = flag.Duration("soak.rss-every", 500*time.Millisecond, "how often the server's RSS is sampled (real time)")
)

// Cameras: at --time-warp 1000 a camera at --fps 0.02 (a frame every 50 s
// of virtual time) shoots 20 frames a second of real time, with 15-minute
// segments (18 frames each): four cameras keep up on two shared cores (at
// 0.05 fps they did not once other jobs took both cores), and a warped
// week records about 2,700 segments. Frames are 320×90: wide enough for
// the frame number the camera draws after the wall time, which tells a
// stall from a lost segment (frames.go). The server hashes passwords with
// argon2id at 64 KiB and one pass: the soak is about the lock logic, the
// database and the process, not the hash's cost (docs/PERFORMANCE.md
// measures that).
const (
	soakFPS     = 0.02
	soakSegment = 15 * time.Minute
	soakWidth   = 320
	soakHeight  = 90
)

var (
	buildOnce sync.Once
	built     string
	buildErr  error
)

// latchBinary builds ./cmd/latch once per test binary (without -race: the
// child is the device, not the code under the race detector).
func latchBinary(t *testing.T) string {
	t.Helper()
	if *flagBin != "" {
		return *flagBin
	}
	buildOnce.Do(func() {
		dir, err := os.MkdirTemp("", "latch-soak-bin-")
		if err != nil {
			buildErr = err
			return
		}
		built = filepath.Join(dir, "latch")
		cmd := exec.Command("go", "build", "-o", built, "./cmd/latch")
		cmd.Dir = filepath.Join("..", "..")
		if out, err := cmd.CombinedOutput(); err != nil {
			buildErr = fmt.Errorf("go build ./cmd/latch: %v\n%s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return built
}

func TestMain(m *testing.M) {
	if os.Getenv(bareEnv) != "" {
		serveBare() // the baseline server of TestPerf, in a process of its own
		return
	}
	flag.Parse()
	code := m.Run()
	if built != "" {
		os.RemoveAll(filepath.Dir(built))
	}
	os.Exit(code)
}

func seed(t *testing.T) uint64 {
	s := *flagSeed
	if s == 0 {
		s = uint64(time.Now().UnixNano()%1_000_000) + 1
	}
	t.Logf("seed %d", s)
	return s
}

// workDir is the engine's folder: kept with -soak.dir or when the test fails.
func workDir(t *testing.T, name string) string {
	t.Helper()
	if *flagDir != "" {
		d := filepath.Join(*flagDir, name)
		if err := os.RemoveAll(d); err != nil {
			t.Fatal(err)
		}
		return d
	}
	d, err := os.MkdirTemp("", "latch-soak-"+name+"-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("kept %s (server logs serve-NNN.log, data/)", d)
			return
		}
		os.RemoveAll(d)
	})
	return d
}

type run struct {
	t        *testing.T
	name     string
	seed     uint64
	duration time.Duration
	// attacksAt, if set, moves the botnet and the dos to start then (the
	// short runs that are about something else still need the load).
	attacksAt time.Duration
	opt       Options
	repro     string
	eng       *Engine
	res       *sim.Result
}

// soakRun runs the soak scenario through the http engine.
func soakRun(t *testing.T, r *run) *Report {
	t.Helper()
	sc, err := sim.LoadScenario(filepath.Join("testdata", "soak.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if r.attacksAt > 0 {
		for i := range sc.Attacks {
			if a := &sc.Attacks[i]; a.Kind == sim.DoS || a.Name == "botnet" {
				a.Start = sim.Duration(r.attacksAt)
			}
		}
	}
	pol, err := policyfile.Build("latch", "", nil)
	if err != nil {
		t.Fatal(err)
	}
	r.opt.Binary = latchBinary(t)
	r.opt.Dir = workDir(t, r.name)
	r.opt.Seed = r.seed
	if r.opt.Warp == 0 {
		r.opt.Warp = *flagWarp
	}
	r.opt.FPS, r.opt.Segment, r.opt.Width, r.opt.Height = soakFPS, soakSegment, soakWidth, soakHeight
	r.opt.ArgonMemory, r.opt.ArgonTime = 64, 1
	r.opt.RSSEvery = *flagRSSEvery
	r.opt.Created = func(e *Engine) { r.eng = e }
	r.opt.Logf = func(format string, args ...any) { t.Logf(format, args...) }
	Configure(r.opt)
	t.Logf("%s: %s virtual at warp %g, %d faults, seed %d; repeat with: %s", r.name, r.duration, r.opt.Warp, len(r.opt.Faults), r.seed, r.repro)
	defer func() {
		if t.Failed() {
			t.Logf("FAILED with seed %d; repeat with: %s", r.seed, r.repro)
		}
	}()
	res, err := sim.Run(sim.Config{Scenario: sc, Policy: pol, PolicyInfo: sim.PolicyInfo{Preset: "latch"},
		Seed: r.seed, Duration: r.duration, Engine: "http"})
	if err != nil {
		t.Fatal(err)
	}
	r.res = res
	if r.eng == nil {
		t.Fatal("the engine was never created")
	}
	rep := r.eng.Report()
	var atk []string
	for _, a := range res.Metrics.Attacks {
		atk = append(atk, fmt.Sprintf("%s %d attempts (%d refused, %d verified guesses)", a.Name, a.Attempts, a.Refused, a.Guesses))
	}
	t.Logf("%s: %d simulator attempts (%.0f/s real), legit availability %.4f, victim availability %.4f; %s\n%s",
		r.name, res.Attempts, res.Speed.AttemptsPerSecond, res.Metrics.Legit.Availability, victimAvail(res), strings.Join(atk, ", "), rep.Summary())
	return rep
}

func victimAvail(r *sim.Result) float64 {
	if r.Metrics.Victim == nil {
		return 1
	}
	return r.Metrics.Victim.Availability
}

// checkCommon asserts what every soak run must hold.
func checkCommon(t *testing.T, rep *Report) {
	t.Helper()
	for i, p := range rep.Problems {
		if i >= 30 {
			t.Errorf("… %d problems in all", len(rep.Problems))
			break
		}
		t.Errorf("problem: %s", p)
	}
	if rep.Disagreements > 0 {
		t.Errorf("%d answers disagree with the model; the first ones:", rep.Disagreements)
		for _, d := range rep.Examples {
			t.Errorf("  boot %d %s: server %s, model %s (%s)", d.Boot, d.Trace, d.Server, d.Model, d.Why)
		}
	}
	if rep.StatusOther > 0 {
		t.Errorf("%d answers were neither 200, 401 nor 429", rep.StatusOther)
	}
	if rep.AdminFamiliarRefused > 0 {
		t.Errorf("the admin was refused %d times from a familiar source", rep.AdminFamiliarRefused)
	}
	if rep.Status200 == 0 || rep.Status401 == 0 || rep.Status429 == 0 {
		t.Errorf("the run exercised too little: %d ok, %d failed, %d refused", rep.Status200, rep.Status401, rep.Status429)
	}
	if rep.Audit.Verified == 0 {
		t.Errorf("the audit chain verified no rows")
	}
}

// faults schedules kills (every fifth a SIGTERM) at seeded instants after
// a kill-free prefix, and wall-clock steps within the prefix: +1 year and
// back, −1 hour and back, to 1970 and back, then ten steps of ±2 minutes
// (R-MONO while running; each makes the server re-anchor every key).
func faults(seed uint64, d time.Duration, kills int, prefix float64) []Fault {
	rng := rand.New(rand.NewPCG(seed, 0xfa17))
	at := func(f float64) time.Duration { return time.Duration(f * float64(d)) }
	fs := []Fault{
		{At: at(0.10), Kind: Step, By: 365 * 24 * time.Hour},
		{At: at(0.13), Kind: Unstep},
		{At: at(0.17), Kind: Step, By: -time.Hour},
		{At: at(0.20), Kind: Unstep},
		{At: at(0.24), Kind: StepTo, To: time.Date(1970, 1, 1, 0, 0, 10, 0, time.UTC)},
		{At: at(0.28), Kind: Unstep},
	}
	// A storm of small steps, each re-anchoring every key while logins
	// are in flight.
	for i := range 10 {
		by := 2 * time.Minute
		if i%2 == 1 {
			by = -by
		}
		fs = append(fs, Fault{At: at(0.30 + 0.004*float64(i)), Kind: Step, By: by})
	}
	n := kills + kills/5
	var ks []time.Duration
	for range n {
		ks = append(ks, at(prefix+(0.97-prefix)*rng.Float64()))
	}
	sort.Slice(ks, func(i, j int) bool { return ks[i] < ks[j] })
	terms := 0
	for i, k := range ks {
		kind := Kill
		if (i+1)%6 == 0 && terms < kills/5 {
			kind, terms = Term, terms+1
		}
		fs = append(fs, Fault{At: k, Kind: kind})
	}
	sort.SliceStable(fs, func(i, j int) bool { return fs[i].At < fs[j].At })
	return fs
}

// TestSoak is the warped run of small-business + botnet + dos against
// `latch serve` with 4 cameras, with wall-clock steps (e) and kills (b):
// every answer agrees with the model, the admin is never refused from a
// familiar source, recordings have no gap (checkGaps), memory stays flat
// while the server runs without faults, the audit chain verifies, and at
// every stop the database passes integrity_check and holds exactly what
// the server acknowledged.
func TestSoak(t *testing.T) {
	s := seed(t)
	d := *flagVirtual
	const prefix = 0.35 // kill-free: memory, wall steps
	r := &run{t: t, name: "soak", seed: s, duration: d,
		opt:   Options{Cameras: *flagCameras, Faults: faults(s, d, *flagKills, prefix), Noise: true, CheckGaps: true},
		repro: fmt.Sprintf("go test -tags soak -count=1 -run 'TestSoak$' ./sim/soak/ -soak.seed=%d -soak.virtual=%s -soak.kills=%d -soak.warp=%g", s, d, *flagKills, *flagWarp)}
	rep := soakRun(t, r)
	if *flagReport != "" {
		b, _ := json.MarshalIndent(rep, "", "  ")
		if err := os.WriteFile(*flagReport, b, 0o644); err != nil {
			t.Error(err)
		}
	}
	checkCommon(t, rep)
	if rep.Kills < *flagKills {
		t.Errorf("%d kills survived, %d planned", rep.Kills, *flagKills)
	}
	if rep.AdminFamiliar == 0 && d >= 48*time.Hour {
		t.Errorf("the admin never logged in from a familiar source: the P-NODOS check saw nothing")
	}
	if rep.Segments.Checked == 0 {
		t.Errorf("no recording continuity was checked")
	}
	// A stall gap (checkGaps) is no loss, and the host's are not the
	// server's fault; but a server that stalls its own cameras, with CPU
	// to spare, as a habit is: at most 2% of the recorded time.
	recorded := time.Duration(rep.Segments.Indexed) * soakSegment
	if own := rep.Segments.StallGapTime - rep.Segments.HostStallGapTime; own > recorded/50 {
		t.Errorf("cameras captured nothing for %s of %s recorded while the host gave the server CPU (%d stall gaps, %s in all)",
			own, recorded, rep.Segments.StallGaps, rep.Segments.StallGapTime)
	}
	// Memory: a growth bound over the kill-free first boot, not a timing.
	med, mx, n := RSSThirds(rep.RSS, 1)
	t.Logf("RSS of boot 1 (%d samples): first third median %d KiB, last third max %d KiB", n, med, mx)
	if n < 9 {
		t.Errorf("only %d RSS samples in boot 1", n)
	} else if mx >= 2*med {
		t.Errorf("RSS grew: last third's max %d KiB ≥ 2× the first third's median %d KiB", mx, med)
	}
}

// TestSoakDiskPressure runs with a recordings quota far below what the
// cameras produce: the oldest segments go (the survivors are the newest,
// with no hole), the recordings stay within the quota, the database stays
// small, and logins keep deciding as the model does.
func TestSoakDiskPressure(t *testing.T) {
	s := seed(t)
	d := *flagPressure
	const quota = 1 << 20 // 1 MiB: about 14 segments, under an hour of 4 cameras
	r := &run{t: t, name: "pressure", seed: s, duration: d, attacksAt: time.Hour,
		opt:   Options{Cameras: 4, RetainBytes: quota, Faults: []Fault{{At: d / 2, Kind: Kill}}, Noise: true},
		repro: fmt.Sprintf("go test -tags soak -count=1 -run 'TestSoakDiskPressure$' ./sim/soak/ -soak.seed=%d -soak.pressure=%s", s, d)}
	rep := soakRun(t, r)
	checkCommon(t, rep)
	st := rep.Segments
	if st.Deleted == 0 {
		t.Errorf("retention deleted nothing (%d segments, %d bytes)", st.Indexed, st.Bytes)
	}
	// Prune runs every virtual minute; segments close every 15: after the
	// last prune each camera may add the segment that closed since and the
	// one the clean stop closes.
	sdb, err := store.Open(filepath.Join(r.eng.DataDir(), "latch.db"), store.Options{QuickCheck: true})
	if err != nil {
		t.Fatal(err)
	}
	defer sdb.Close()
	segs, err := sdb.OldestSegments(t.Context(), -1)
	if err != nil {
		t.Fatal(err)
	}
	var biggest, total int64
	for _, sg := range segs {
		biggest = max(biggest, sg.Bytes)
		total += sg.Bytes
	}
	if limit := int64(quota) + 8*biggest; total > limit {
		t.Errorf("%d bytes of recordings kept, quota %d (+%d)", total, quota, 8*biggest)
	}
	if len(segs) > 0 && segs[len(segs)-1].ID-segs[0].ID+1 != int64(len(segs)) {
		t.Errorf("the surviving segments are not the newest: ids %d…%d, %d segments", segs[0].ID, segs[len(segs)-1].ID, len(segs))
	}
	var disk int64
	_ = filepath.Walk(filepath.Join(r.eng.DataDir(), "recordings"), func(_ string, fi os.FileInfo, err error) error {
		if err == nil && !fi.IsDir() {
			disk += fi.Size()
		}
		return nil
	})
	t.Logf("recordings: %d segments, %d bytes indexed, %d bytes on disk (%d orphan files), %d deleted; database %d bytes",
		len(segs), total, disk, st.Orphans, st.Deleted, rep.DBBytes)
	if disk > total+int64(st.Orphans+8)*biggest {
		t.Errorf("%d bytes of recordings on disk for %d indexed", disk, total)
	}
	// The database holds the index and the audit log, not video.
	if rep.DBBytes > 64<<20 {
		t.Errorf("database %d bytes", rep.DBBytes)
	}
}

// TestSoakUpgrade starts the server on a database at schema version 1 (the
// first release's), runs it under load, then takes the database (with its
// data) back to version 1 at a clean stop and upgrades it again mid-run.
func TestSoakUpgrade(t *testing.T) {
	s := seed(t)
	d := *flagUpgrade
	mig := filepath.Join("..", "..", "nvr", "store", "migrations", "0001_init.sql")
	r := &run{t: t, name: "upgrade", seed: s, duration: d, attacksAt: time.Hour,
		opt: Options{Cameras: 2, Faults: []Fault{{At: d / 2, Kind: Downgrade}},
			PrepareDB: func(path string) error { return CreateV1(path, mig) }},
		repro: fmt.Sprintf("go test -tags soak -count=1 -run 'TestSoakUpgrade$' ./sim/soak/ -soak.seed=%d -soak.upgrade=%s", s, d)}
	rep := soakRun(t, r)
	checkCommon(t, rep)
	if rep.Downgrades != 1 {
		t.Errorf("%d downgrades", rep.Downgrades)
	}
	db, err := openRaw(filepath.Join(r.eng.DataDir(), "latch.db"), false)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var v, tables int
	if err := db.QueryRow(`PRAGMA user_version`).Scan(&v); err != nil {
		t.Fatal(err)
	}
	// What migrations 0002 and 0003 add.
	if err := db.QueryRow(`SELECT count(*) FROM sqlite_schema WHERE type = 'table' AND name IN ('outbox', 'recovery_tokens')`).Scan(&tables); err != nil {
		t.Fatal(err)
	}
	if v != store.SchemaVersion || tables != 2 {
		t.Errorf("schema version %d (want %d), %d of the tables outbox and recovery_tokens", v, store.SchemaVersion, tables)
	}
}
