package auth

import (
	"bufio"
	"bytes"
	"context"
	"flag"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/latchnvr/latch/model"
	"github.com/latchnvr/latch/nvr/camera"
	"github.com/latchnvr/latch/nvr/clock"
	"github.com/latchnvr/latch/nvr/recorder"
	"github.com/latchnvr/latch/nvr/store"
)

var crashSeed = flag.Uint64("crash.seed", 7, "seed of the crash test's kill point (printed on failure)")

// crashEnv names the database a crash-test child floods; set only in the
// child.
const crashEnv = "LATCH_AUTH_CRASH_CHILD"

const (
	crashWorkers = 4
	crashPairs   = 64 // each takes fewer failures than its threshold: no lock
)

// crashPolicy counts every wrong guess on the pair key only, and never
// locks within the flood, so each acknowledged failure must show as one
// failure on one key.
func crashPolicy() model.Policy {
	p := model.Default()
	for _, kv := range []string{"pair.threshold=32", "pair.replayDedup=false", "source.threshold=0", "principal.threshold=0"} {
		if err := p.Set(kv); err != nil {
			panic(err)
		}
	}
	return p
}

func crashPair(i int) (string, model.Source) {
	return fmt.Sprintf("user%02d", i%16), mustSource(fmt.Sprintf("198.51.100.%d", 1+i/16))
}

// TestCrashChild is the child process of TestR_ATOMIC_CrashKeepsAcknowledgedFailures:
// it floods the service with wrong guesses from crashWorkers goroutines and
// prints "ack <pair>" after each Login returns, while a camera records. It
// runs until killed.
func TestCrashChild(t *testing.T) {
	dir := os.Getenv(crashEnv)
	if dir == "" {
		t.Skip("the crash test's child process")
	}
	clk := clock.NewSim(epoch)
	db, err := store.Open(filepath.Join(dir, "latch.db"), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	svc, err := New(db, Config{Clock: clk, Hasher: NewHasher(CheapParams, crashWorkers), Policy: crashPolicy(), BootID: 1})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	var camRow int64
	if err := db.WithTx(ctx, func(tx *store.Tx) error {
		camRow, err = tx.InsertCamera(ctx, store.Camera{Name: "cam1", FPS: 1, Width: 32, Height: 18, Enabled: true})
		return err
	}); err != nil {
		t.Fatal(err)
	}
	fleet, err := recorder.StartFleet(clk, &storeIndex{db: db, rows: map[string]int64{"cam1": camRow}},
		[]camera.Config{{ID: "cam1", Interval: time.Second, Width: 32, Height: 18}},
		recorder.Config{DataDir: dir, Segment: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer fleet.Stop()

	var out sync.Mutex
	tick := make(chan struct{}, 1)
	var wg sync.WaitGroup
	for w := 0; w < crashWorkers; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			for n := 0; ; n++ {
				pair := (n*crashWorkers + w) % crashPairs
				user, src := crashPair(pair)
				res, err := svc.Login(ctx, Attempt{Username: user, Secret: fmt.Sprintf("guess-%d-%d", w, n), Source: src})
				if err != nil || res.Decision.Verdict != model.Failed {
					fmt.Fprintf(os.Stderr, "attempt: %v %+v\n", err, res.Decision)
					os.Exit(3)
				}
				out.Lock()
				fmt.Fprintf(os.Stdout, "ack %d\n", pair)
				out.Unlock()
				select {
				case tick <- struct{}{}:
				default:
				}
			}
		}(w)
	}
	// Time passes as the flood goes on: cameras capture and segments close
	// and are indexed while logins commit.
	for range tick {
		clk.Advance(time.Second)
		fleet.Flush()
	}
	wg.Wait()
}

// R-ATOMIC and crash safety: a child process floods the service with
// failures and is SIGKILLed after a seeded number of acknowledgements.
// Afterwards the database opens (PRAGMA integrity_check passes), its audit
// chain verifies, every acknowledged failure is in the audit log and on
// its pair key (at most the attempts in flight more), and every indexed
// segment names a complete file.
func TestR_ATOMIC_CrashKeepsAcknowledgedFailures(t *testing.T) {
	if os.Getenv(crashEnv) != "" {
		t.Skip("in the child")
	}
	rounds := 3
	if testing.Short() || raceEnabled {
		rounds = 1
	}
	rng := rand.New(rand.NewPCG(*crashSeed, 0))
	for round := 0; round < rounds; round++ {
		killAt := 20 + rng.IntN(400)
		t.Run(fmt.Sprintf("kill-after-%d", killAt), func(t *testing.T) {
			crashRound(t, killAt)
		})
	}
}

func crashRound(t *testing.T, killAt int) {
	t.Logf("crash seed %d (rerun with -crash.seed=%d)", *crashSeed, *crashSeed)
	dir := t.TempDir()
	ctx := context.Background()
	// Create the database first, so the child's flood starts at once.
	db, err := store.Open(filepath.Join(dir, "latch.db"), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	db.Close()

	cmd := exec.Command(os.Args[0], "-test.run=^TestCrashChild$", "-test.count=1")
	cmd.Env = append(os.Environ(), crashEnv+"="+dir)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	acks := make([]int, crashPairs)
	total := 0
	sc := bufio.NewScanner(stdout)
	killed := false
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) != 2 || f[0] != "ack" {
			continue // the test framework's own output
		}
		pair, err := strconv.Atoi(f[1])
		if err != nil || pair < 0 || pair >= crashPairs {
			t.Fatalf("child said %q", sc.Text())
		}
		acks[pair]++
		total++
		if total == killAt && !killed {
			// SIGKILL: no deferred function, no clean shutdown.
			if err := cmd.Process.Kill(); err != nil {
				t.Fatal(err)
			}
			killed = true
		}
		// Lines already written before the kill are acknowledgements too.
	}
	werr := cmd.Wait()
	if !killed {
		t.Fatalf("child ended after %d acknowledgements: %v\n%s", total, werr, stderr.String())
	}
	t.Logf("killed after %d acknowledgements (%d read in all)", killAt, total)

	db, err = store.Open(filepath.Join(dir, "latch.db"), store.Options{}) // runs PRAGMA integrity_check
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, err := db.VerifyAuditChain(ctx); err != nil {
		t.Fatal(err)
	}
	clk := clock.NewSim(epoch.Add(time.Hour))
	svc, err := New(db, Config{Clock: clk, Hasher: NewHasher(CheapParams, 1), Policy: crashPolicy(), BootID: 2})
	if err != nil {
		t.Fatal(err)
	}
	defer svc.Close()
	audited := map[[2]string]int{}
	recs, err := db.ListAudit(ctx, store.AuditFilter{Outcome: "wrong_secret", Limit: 1 << 20})
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range recs {
		audited[[2]string{r.Principal, r.Source}]++
	}
	now, wall := model.Instant(clk.Instant()), clk.Now().UnixNano()
	inDB := 0
	for pair, acked := range acks {
		user, src := crashPair(pair)
		id := store.KeyID{Kind: store.KindPair, Principal: user, Source: src.String()}
		lk, err := svc.loadKey(ctx, db, id, now, wall)
		if err != nil {
			t.Fatal(err)
		}
		failures := int(lk.value.NFail)
		a := audited[[2]string{user, src.String()}]
		// Committed but unacknowledged: at most one attempt per worker.
		if failures < acked || failures > acked+crashWorkers || a != failures || lk.value.Mode != model.Open {
			t.Errorf("%s from %s: %d acknowledged, %d failures on the key (%s), %d audited",
				user, src, acked, failures, lk.value.Mode, a)
		}
		inDB += failures
	}
	if inDB < total || inDB > total+crashWorkers {
		t.Errorf("%d acknowledged, %d in the database", total, inDB)
	}
	// Every indexed segment names a complete, durable file.
	segs, err := db.OldestSegments(ctx, -1)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range segs {
		fi, err := os.Stat(filepath.Join(dir, filepath.FromSlash(s.Path)))
		if err != nil || fi.Size() != s.Bytes {
			t.Errorf("segment %s: indexed with %d bytes, file: %v %v", s.Path, s.Bytes, fi, err)
		}
	}
	t.Logf("%d failures in the database, %d segments indexed", inDB, len(segs))
}
