package auth

import (
	"context"
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/anishathalye/porcupine"

	"github.com/latchnvr/latch/model"
	"github.com/latchnvr/latch/nvr/clock"
	"github.com/latchnvr/latch/nvr/store"
	"github.com/latchnvr/latch/proofs"
)

// linPolicy puts the thresholds where 8 clients cross them quickly.
func linPolicy(t *testing.T) model.Policy {
	p, err := model.Preset("latch")
	if err != nil {
		t.Fatal(err)
	}
	p.Pair.Threshold, p.Principal.Threshold, p.Source.Threshold = 3, 5, 8
	if err := p.Validate(); err != nil {
		t.Fatal(err)
	}
	return p
}

// history runs 8 concurrent clients over 3 principals and 2 sources
// against the service and records what each observed. Call and return
// times come from a logical counter, never a clock (porcupine issue #40).
func history(t *testing.T, svc *Service, seed uint64) []porcupine.Operation {
	users := []string{"ann", "ben", "cat"}
	srcs := []string{"10.1.0.1", "10.1.0.2"}
	var counter atomic.Int64
	var mu sync.Mutex
	var ops []porcupine.Operation
	var wg sync.WaitGroup
	for c := 0; c < 8; c++ {
		wg.Add(1)
		go func(client int) {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(seed, uint64(client)))
			for i := 0; i < 6; i++ {
				user := users[rng.IntN(len(users))]
				src, _ := model.ParseSource(srcs[rng.IntN(len(srcs))])
				pw := fmt.Sprintf("wrong-%d-%d", client, i)
				outcome := model.WrongSecret
				if rng.IntN(6) == 0 {
					pw, outcome = userPW, model.RightSecret
				}
				call := counter.Add(1)
				res, err := svc.Login(context.Background(), Attempt{Username: user, Secret: pw, Source: src, NoSession: true})
				ret := counter.Add(1)
				if err != nil {
					t.Error(err)
					return
				}
				in := proofs.LinInput{Op: proofs.LinAttempt, Principal: model.Principal(user), Source: src.String(),
					Event: model.Event{Attempt: model.Attempt{Role: model.RoleOperator}, Outcome: outcome}, Now: res.DecidedAt}
				mu.Lock()
				ops = append(ops, porcupine.Operation{ClientId: client, Input: in, Call: call, Output: proofs.OutputOf(res.Decision), Return: ret})
				mu.Unlock()
			}
		}(c)
	}
	wg.Wait()
	return ops
}

func linRig(t *testing.T, p model.Policy, racy bool) *Service {
	t.Helper()
	db, err := store.Open(filepath.Join(t.TempDir(), "latch.db"), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	// Verification takes a little real time, so parallel attempts overlap.
	svc, err := New(db, Config{Clock: clock.NewSim(epoch), Hasher: NewHasher(HashParams{Time: 1, Memory: 2048, Threads: 1}, 8), Policy: p, BootID: 7})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { svc.Close() })
	ctx := context.Background()
	if _, err := svc.Activate(ctx, "root", adminPW, pin); err != nil {
		t.Fatal(err)
	}
	for _, u := range []string{"ann", "ben", "cat"} {
		if _, err := svc.CreateUser(ctx, "admin:root", NewUser{Name: u, Password: userPW, Role: store.RoleOperator}); err != nil {
			t.Fatal(err)
		}
	}
	svc.racy = racy
	return svc
}

// R-ATOMIC: concurrent attempts are linearizable against model.Decide —
// N parallel guesses consume N attempts, never a free one.
func TestR_ATOMIC_ServiceIsLinearizable(t *testing.T) {
	p := linPolicy(t)
	m := proofs.LinearizabilityModel(p)
	for seed := uint64(1); seed <= 3; seed++ {
		svc := linRig(t, p, false)
		ops := history(t, svc, seed)
		res, info := porcupine.CheckOperationsVerbose(m, ops, 30*time.Second)
		if res != porcupine.Ok {
			path := filepath.Join(t.TempDir(), "history.html")
			porcupine.VisualizePath(m, info, path)
			t.Fatalf("seed %d: history of %d operations is %v (visualisation: %s)", seed, len(ops), res, path)
		}
	}
}

// The same check catches a service whose admission runs outside the
// principal's critical section with blind writes: two parallel guesses
// that both saw the count below the threshold.
func TestR_ATOMIC_RacyServiceIsCaught(t *testing.T) {
	p := linPolicy(t)
	m := proofs.LinearizabilityModel(p)
	for seed := uint64(1); seed <= 20; seed++ {
		svc := linRig(t, p, true)
		ops := history(t, svc, seed)
		if res, _ := porcupine.CheckOperationsVerbose(m, ops, 30*time.Second); res == porcupine.Illegal {
			t.Logf("racy service caught at seed %d (%d operations)", seed, len(ops))
			return
		}
	}
	t.Fatal("20 histories of the racy service all looked linearizable: the check is not checking")
}
