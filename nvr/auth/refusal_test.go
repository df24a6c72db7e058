package auth

import (
	"bufio"
	"bytes"
	"context"
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
	"github.com/latchnvr/latch/nvr/clock"
	"github.com/latchnvr/latch/nvr/store"
)

// refusalCounts sums the refusal aggregates of the log per principal and
// source, and reports how many rows hold them.
func refusalCounts(t *testing.T, db *store.DB) (map[[2]string]int64, int) {
	t.Helper()
	recs, err := db.ListAudit(context.Background(), store.AuditFilter{Outcome: "refused", Limit: 1 << 20})
	if err != nil {
		t.Fatal(err)
	}
	n := map[[2]string]int64{}
	for _, r := range recs {
		n[[2]string{r.Principal, r.Source}] += r.Count
	}
	return n, len(recs)
}

// R-AUDIT under a concurrent flood: every refusal answered is counted once
// in its key's aggregate for the minute, however the group commit batched
// and merged them; the minute's row is sealed by the next minute's first
// refusal and the chain then covers its final count.
func TestR_AUDIT_FloodCountsEveryRefusalOnce(t *testing.T) {
	r := newRig(t, latch(t))
	const src = "10.0.0.9"
	for i := 0; r.login("admin", fmt.Sprintf("wrong-%d", i), src).Decision.Verdict != model.Refused; i++ {
		if i > 10 {
			t.Fatal("the pair never locked")
		}
	}
	before, _ := refusalCounts(t, r.db)
	key := [2]string{"admin", src}

	const clients, each = 8, 40
	source, err := model.ParseSource(src)
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for c := 0; c < clients; c++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < each; i++ {
				res, err := r.svc.Login(context.Background(), Attempt{Username: "admin", Secret: adminPW, Source: source})
				if err != nil || res.Decision.Verdict != model.Refused {
					t.Errorf("flood: %v %+v", err, res.Decision)
					return
				}
			}
		}()
	}
	wg.Wait()
	got, rows := refusalCounts(t, r.db)
	if got[key]-before[key] != clients*each || rows != 1 {
		t.Fatalf("%d refusals answered; the log counts %d in %d rows, want %d in one row",
			clients*each, got[key]-before[key], rows, clients*each)
	}

	// Half a minute on, a refusal extends the pair's lock (R-EXTEND): the
	// slow path, which aggregates into the same row.
	r.clk.Advance(30 * time.Second)
	if res := r.login("admin", adminPW, src); res.Decision.Verdict != model.Refused {
		t.Fatalf("after 30s: %+v", res.Decision)
	}
	sealedBefore, err := r.db.VerifyAuditChain(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	// The next minute's first refusal seals the last minute's row.
	r.clk.Advance(30 * time.Second)
	if res := r.login("admin", adminPW, src); res.Decision.Verdict != model.Refused {
		t.Fatalf("next minute: %+v", res.Decision)
	}
	recs, err := r.db.ListAudit(context.Background(), store.AuditFilter{Outcome: "refused"})
	if err != nil || len(recs) != 2 {
		t.Fatalf("refusal rows %+v, %v; want one per minute", recs, err)
	}
	last, this := recs[1], recs[0] // newest first
	if last.Count != clients*each+1+before[key] || last.Seq == 0 || this.Count != 1 || this.Seq != 0 {
		t.Fatalf("last minute %+v, this minute %+v; want the last sealed with %d, this open with 1",
			last, this, clients*each+1+before[key])
	}
	sealed, err := r.db.VerifyAuditChain(context.Background())
	if err != nil || sealed <= sealedBefore {
		t.Fatalf("VerifyAuditChain = %d, %v; want more than %d sealed rows", sealed, err, sealedBefore)
	}
}

// R-AUDIT and R-EXTEND: with extendOnAttempt (the latch and annke
// presets), a refused attempt on a locked pair extends its lock whenever
// time has moved, which in production is every refusal. Each extension is
// recorded, aggregated like the refusal that caused it (per key per
// minute, with count, first and last), so a flood on a locked pair adds
// two rows a minute, not one row per attempt.
func TestR_AUDIT_ExtendsOfAFloodAreAggregated(t *testing.T) {
	r := newRig(t, latch(t))
	const src = "10.0.0.9"
	for i := 0; r.login("admin", fmt.Sprintf("wrong-%d", i), src).Decision.Verdict != model.Refused; i++ {
		if i > 10 {
			t.Fatal("the pair never locked")
		}
	}
	ctx := context.Background()
	before, err := r.db.ListAudit(ctx, store.AuditFilter{Limit: 1 << 20})
	if err != nil {
		t.Fatal(err)
	}
	refused, _ := refusalCounts(t, r.db)
	key := [2]string{"admin", src}
	const flood = 50
	for i := 0; i < flood; i++ {
		r.clk.Advance(100 * time.Millisecond) // all within the lock's first minute
		if res := r.login("admin", adminPW, src); res.Decision.Verdict != model.Refused || res.Decision.Effects&model.EffExtended == 0 {
			t.Fatalf("refusal %d: %+v; want refused and extended", i, res.Decision)
		}
	}
	after, err := r.db.ListAudit(ctx, store.AuditFilter{Limit: 1 << 20})
	if err != nil {
		t.Fatal(err)
	}
	added := after[:len(after)-len(before)] // newest first
	if len(added) != 1 {
		outcomes := make([]string, len(added))
		for i, rec := range added {
			outcomes[i] = rec.Outcome
		}
		t.Fatalf("%d refusals that extended added %d rows %v; want one extend aggregate", flood, len(added), outcomes)
	}
	if e := added[0]; e.Outcome != "extend" || e.Count != flood || !e.Aggregate || e.KeyKind != store.KindPair ||
		e.FirstWallNS != epoch.Add(100*time.Millisecond).UnixNano() || e.LastWallNS != epoch.Add(flood*100*time.Millisecond).UnixNano() {
		t.Fatalf("extend aggregate = %+v; want count %d from the first to the last refusal", e, flood)
	}
	if now, _ := refusalCounts(t, r.db); now[key]-refused[key] != flood {
		t.Fatalf("refusals counted %d, want %d", now[key]-refused[key], flood)
	}
	// A refusal with nothing to extend (the clock stood still) adds to the
	// refusals only.
	if res := r.login("admin", adminPW, src); res.Decision.Effects&model.EffExtended != 0 {
		t.Fatalf("no time passed, yet %+v", res.Decision)
	}
	if now, rows := refusalCounts(t, r.db); now[key]-refused[key] != flood+1 || rows != 1 {
		t.Fatalf("refusals counted %d in %d rows, want %d in one", now[key]-refused[key], rows, flood+1)
	}
}

// refusalCrashEnv names the database a refusal-crash child floods; set
// only in the child.
const refusalCrashEnv = "LATCH_AUTH_REFUSAL_CRASH_CHILD"

const (
	refusalCrashWorkers = 4
	refusalCrashPairs   = 16
)

// refusalCrashPolicy locks a pair at its first wrong guess for an hour, so
// the flood's pairs stay locked however the child's clock moves.
func refusalCrashPolicy() model.Policy {
	p := model.Default()
	for _, kv := range []string{"pair.threshold=1", "pair.base=1h"} {
		if err := p.Set(kv); err != nil {
			panic(err)
		}
	}
	return p
}

func refusalCrashPair(i int) (string, model.Source) {
	return fmt.Sprintf("user%02d", i%8), mustSource(fmt.Sprintf("198.51.100.%d", 1+i/8))
}

// TestRefusalCrashChild is the child process of
// TestR_ATOMIC_CrashKeepsAcknowledgedRefusals: it floods locked pairs from
// refusalCrashWorkers goroutines, printing "ack <pair>" after each refusal
// is answered, while its clock moves a second per answer, so minutes turn
// and aggregates are sealed during the flood. It runs until killed.
func TestRefusalCrashChild(t *testing.T) {
	dir := os.Getenv(refusalCrashEnv)
	if dir == "" {
		t.Skip("the refusal crash test's child process")
	}
	clk := clock.NewSim(epoch)
	db, err := store.Open(filepath.Join(dir, "latch.db"), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	svc, err := New(db, Config{Clock: clk, Hasher: NewHasher(CheapParams, 1), Policy: refusalCrashPolicy(), BootID: 2})
	if err != nil {
		t.Fatal(err)
	}
	var out sync.Mutex
	tick := make(chan struct{}, 1)
	for w := 0; w < refusalCrashWorkers; w++ {
		go func() {
			for n := 0; ; n++ {
				pair := (n*refusalCrashWorkers + w) % refusalCrashPairs
				user, src := refusalCrashPair(pair)
				res, err := svc.Login(context.Background(), Attempt{Username: user, Secret: "x", Source: src})
				if err != nil || res.Decision.Verdict != model.Refused {
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
		}()
	}
	for range tick {
		clk.Advance(time.Second)
	}
}

// R-ATOMIC and R-AUDIT across a crash: a child process floods refusals and
// is SIGKILLed after a seeded number of acknowledgements. Afterwards the
// database opens (integrity_check), its audit chain verifies, and every
// acknowledged refusal is counted in its pair's aggregates (at most the
// refusals in flight more: committed, not yet acknowledged), whether its
// row was sealed before the crash or left open by it; sealing what the
// crash left open, the chain covers every count.
func TestR_ATOMIC_CrashKeepsAcknowledgedRefusals(t *testing.T) {
	if os.Getenv(refusalCrashEnv) != "" || os.Getenv(crashEnv) != "" {
		t.Skip("in a child")
	}
	rng := rand.New(rand.NewPCG(*crashSeed, 1))
	killAt := 200 + rng.IntN(800)
	t.Logf("crash seed %d (rerun with -crash.seed=%d): kill after %d acknowledgements", *crashSeed, *crashSeed, killAt)
	dir := t.TempDir()
	ctx := context.Background()
	path := filepath.Join(dir, "latch.db")

	// Lock every pair the child will flood, in this process.
	db, err := store.Open(path, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	svc, err := New(db, Config{Clock: clock.NewSim(epoch), Hasher: NewHasher(CheapParams, 1), Policy: refusalCrashPolicy(), BootID: 1})
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < refusalCrashPairs; i++ {
		user, src := refusalCrashPair(i)
		if res, err := svc.Login(ctx, Attempt{Username: user, Secret: "wrong", Source: src}); err != nil || res.Decision.Verdict != model.Failed {
			t.Fatalf("locking %s from %s: %v %+v", user, src, err, res.Decision)
		}
	}
	svc.Close()
	db.Close()

	cmd := exec.Command(os.Args[0], "-test.run=^TestRefusalCrashChild$", "-test.count=1")
	cmd.Env = append(os.Environ(), refusalCrashEnv+"="+dir)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	acks := make([]int64, refusalCrashPairs)
	total := 0
	killed := false
	sc := bufio.NewScanner(stdout)
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) != 2 || f[0] != "ack" {
			continue // the test framework's own output
		}
		pair, err := strconv.Atoi(f[1])
		if err != nil || pair < 0 || pair >= refusalCrashPairs {
			t.Fatalf("child said %q", sc.Text())
		}
		acks[pair]++
		total++
		if total == killAt && !killed {
			if err := cmd.Process.Kill(); err != nil { // SIGKILL: no shutdown seal
				t.Fatal(err)
			}
			killed = true
		}
	}
	werr := cmd.Wait()
	if !killed {
		t.Fatalf("child ended after %d acknowledgements: %v\n%s", total, werr, stderr.String())
	}

	db, err = store.Open(path, store.Options{}) // runs PRAGMA integrity_check
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, err := db.VerifyAuditChain(ctx); err != nil {
		t.Fatal(err)
	}
	counted, rows := refusalCounts(t, db)
	var inDB int64
	for pair, acked := range acks {
		user, src := refusalCrashPair(pair)
		n := counted[[2]string{user, src.String()}]
		if n < acked || n > acked+refusalCrashWorkers {
			t.Errorf("%s from %s: %d refusals acknowledged, %d counted", user, src, acked, n)
		}
		inDB += n
	}
	if inDB < int64(total) || inDB > int64(total+refusalCrashWorkers) {
		t.Errorf("%d refusals acknowledged, %d counted", total, inDB)
	}
	var sealed int
	if err := db.WithTx(ctx, func(tx *store.Tx) error {
		sealed, err = tx.SealAllAuditAggregates(ctx)
		return err
	}); err != nil {
		t.Fatal(err)
	}
	all, err := db.ListAudit(ctx, store.AuditFilter{Limit: 1 << 20})
	if err != nil {
		t.Fatal(err)
	}
	if n, err := db.VerifyAuditChain(ctx); err != nil || n != len(all) {
		t.Fatalf("after sealing what the crash left open (%d rows): VerifyAuditChain = %d, %v; want all %d rows", sealed, n, err, len(all))
	}
	t.Logf("%d acknowledged, %d counted in %d aggregate rows (%d left open by the crash)", total, inDB, rows, sealed)
}
