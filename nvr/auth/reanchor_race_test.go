package auth

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/latchnvr/latch/model"
	"github.com/latchnvr/latch/nvr/clock"
	"github.com/latchnvr/latch/nvr/store"
)

// hookClock runs hook once, right after the first Now that follows arm:
// Reanchor reads Instant, then Now, then opens its transaction.
type hookClock struct {
	*clock.Sim
	hook func()
}

func (h *hookClock) Now() time.Time {
	w := h.Sim.Now()
	if f := h.hook; f != nil {
		h.hook = nil
		f()
	}
	return w
}

// R-RESTART / INV-NOSHORTEN: a login that decides after Reanchor read the
// clock, and commits before Reanchor's transaction, must not be moved back
// in time by the re-anchor (the soak found it: make soak-short SOAKFLAGS=-soak.seed=417412,
// docs/RELIABILITY.md).
func TestReanchorDoesNotShortenALockCommittedAfterItsClockRead(t *testing.T) {
	p, err := model.Preset("latch")
	if err != nil {
		t.Fatal(err)
	}
	sim := clock.NewSim(time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC))
	clk := &hookClock{Sim: sim}
	db, err := store.Open(filepath.Join(t.TempDir(), "latch.db"), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	svc, err := New(db, Config{Clock: clk, Hasher: NewHasher(CheapParams, 2), Policy: p, BootID: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer svc.Close()
	ctx := context.Background()
	if _, err := svc.Activate(ctx, "Admin", adminPW, pin); err != nil {
		t.Fatal(err)
	}
	src, _ := model.ParseSource("203.0.113.9")
	login := func(pw string) Result {
		res, err := svc.Login(ctx, Attempt{Username: "Admin", Secret: pw, Source: src, Channel: model.Remote})
		if err != nil {
			t.Fatal(err)
		}
		return res
	}
	sim.Advance(time.Minute)
	clk.hook = func() {
		// Reanchor has read its clock; a second later five wrong
		// passwords lock the pair, and commit.
		sim.Advance(time.Second)
		for i := range p.Pair.Threshold {
			login("wrong-" + string(rune('a'+i)))
		}
	}
	if _, err := svc.Reanchor(ctx, false); err != nil {
		t.Fatal(err)
	}
	// What the database holds for the pair: the lock must run from the
	// locking failure's instant, a second after Reanchor read its clock.
	ks, err := db.GetKeyState(ctx, store.KeyID{Kind: store.KindPair, Principal: "admin", Source: src.String()})
	if err != nil {
		t.Fatal(err)
	}
	sk, err := DecodeKey(ks.State)
	if err != nil {
		t.Fatal(err)
	}
	got := model.Restore(sk.Snapshot, sk.SavedAt, sk.Snapshot.WallAnchor)
	locked := model.Instant(sim.Instant())
	if got.Mode != model.Locked || got.Until != locked.Add(p.Pair.Base) {
		t.Errorf("persisted pair: %v until %d; want locked until %d (the locking failure's instant %d + %s): moved back by %s",
			got.Mode, got.Until, locked.Add(p.Pair.Base), locked, p.Pair.Base, time.Duration(locked.Add(p.Pair.Base)-got.Until))
	}
	// Half a second before the lock ends, the right password is still refused.
	sim.AdvanceTo(int64(locked.Add(p.Pair.Base - 500*time.Millisecond)))
	if res := login(adminPW); res.Decision.Verdict != model.Refused {
		t.Errorf("%s before the lock ends: %v; want refused (INV-NOSHORTEN)", 500*time.Millisecond, res.Decision.Verdict)
	}
}
