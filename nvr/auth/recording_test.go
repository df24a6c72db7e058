package auth

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/latchnvr/latch/model"
	"github.com/latchnvr/latch/nvr/camera"
	"github.com/latchnvr/latch/nvr/clock"
	"github.com/latchnvr/latch/nvr/recorder"
	"github.com/latchnvr/latch/nvr/store"
)

// storeIndex is the recorder's segment index on the same SQLite store the
// auth service writes, so index writes and login commits share the one
// writer connection, as they do in the NVR.
type storeIndex struct {
	db   *store.DB
	rows map[string]int64 // camera id → row id; read-only after setup
}

func (x *storeIndex) AddSegment(ctx context.Context, s recorder.Segment) error {
	err := x.db.WithTx(ctx, func(tx *store.Tx) error {
		_, err := tx.InsertSegment(ctx, store.Segment{CameraID: x.rows[s.CameraID], StartWallNS: s.Start.UnixNano(),
			EndWallNS: s.End().UnixNano(), StartInstantNS: s.StartInstant, DurationNS: int64(s.Duration),
			Bytes: s.Bytes, Frames: int64(s.Frames), Path: s.Path})
		return err
	})
	if errors.Is(err, store.ErrExists) {
		return nil // a retry of a commit that happened
	}
	return err
}

// INV-RECORDING: no auth event stops, pauses or deletes a recording.
// Cameras record on the simulated clock into the auth service's own
// database while a brute-force storm runs concurrently: waves of wrong
// guesses at the admin and at unknown names, remote and at the console,
// that lock, escalate and finally hold keys (annke holds at the fifth
// lock), then a factory reset, then more storm. Every camera's timeline
// must have no gap: its segments abut exactly, and there are exactly as
// many, with as many frames, as the virtual time recorded allows.
func TestINV_RECORDING_StormAndFactoryResetLeaveNoGap(t *testing.T) {
	p, err := model.Preset("annke")
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	clk := clock.NewSim(epoch)
	db, err := store.Open(filepath.Join(dir, "latch.db"), store.Options{})
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
	if _, err := svc.Activate(ctx, "admin", adminPW, pin); err != nil {
		t.Fatal(err)
	}

	const (
		frameEvery = 10 * time.Second
		segment    = time.Minute
		period     = 40 * time.Minute // a storm, then quiet until every lock has ended
		stormFor   = 2 * time.Minute
		step       = 10 * time.Second
	)
	periods, resetAfter := 7, 5
	cams := []camera.Config{{ID: "cam1", Interval: frameEvery, Width: 32, Height: 18},
		{ID: "cam2", Interval: frameEvery, Width: 32, Height: 18}}
	idx := &storeIndex{db: db, rows: map[string]int64{}}
	for _, c := range cams {
		err := db.WithTx(ctx, func(tx *store.Tx) error {
			id, err := tx.InsertCamera(ctx, store.Camera{Name: c.ID, FPS: 1, Width: c.Width, Height: c.Height, Enabled: true})
			idx.rows[c.ID] = id
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	var recErrs []error
	var recMu sync.Mutex
	fleet, err := recorder.StartFleet(clk, idx, cams, recorder.Config{DataDir: dir, Segment: segment,
		OnError: func(err error) { recMu.Lock(); recErrs = append(recErrs, err); recMu.Unlock() }})
	if err != nil {
		t.Fatal(err)
	}
	start := clk.Instant()

	// One wave: concurrent attackers, each a burst of distinct wrong
	// guesses from its own place, racing the clock's advance (and with it
	// the cameras' captures and the recorder's index writes).
	guess := 0
	wave := func() *sync.WaitGroup {
		var wg sync.WaitGroup
		targets := []Attempt{
			{Username: "admin", Source: mustSource("203.0.113.1")},
			{Username: "admin", Source: mustSource("203.0.113.2")},
			{Username: "ghost", Source: mustSource("203.0.113.1")},
			{Username: "admin", Channel: model.Console},
		}
		for i, a := range targets {
			wg.Add(1)
			go func(a Attempt, first int) {
				defer wg.Done()
				for j := 0; j < 4; j++ {
					a.Secret = fmt.Sprintf("guess-%d", first+j)
					if _, err := svc.Login(ctx, a); err != nil {
						t.Error(err)
						return
					}
				}
			}(a, guess+100*i)
		}
		guess += 4
		return &wg
	}
	held := false
	for n := 0; n < periods; n++ {
		if n == resetAfter {
			if err := svc.FactoryReset(ctx, "console"); err != nil {
				t.Fatal(err)
			}
			if _, err := svc.Activate(ctx, "admin", adminPW, pin); err != nil {
				t.Fatal(err)
			}
		}
		for at := time.Duration(0); at < period; at += step {
			var wg *sync.WaitGroup
			if at < stormFor {
				wg = wave()
			}
			clk.Advance(step)
			// Virtual time outruns the disk by far; a real minute is
			// plenty to sync a segment. Flushing (while the wave still
			// runs) keeps the recorder's queue from overflowing, which
			// would be the test's speed, not auth, dropping a segment.
			fleet.Flush()
			if wg != nil {
				wg.Wait()
			}
		}
		if n == resetAfter-1 {
			locks, err := svc.ListLocks(ctx)
			if err != nil {
				t.Fatal(err)
			}
			for _, l := range locks {
				held = held || l.Mode == model.Held.String()
			}
		}
	}
	fleet.Stop()
	if !held {
		t.Fatal("the storm never held a key: the test does not test what it says")
	}
	recMu.Lock()
	for _, err := range recErrs {
		t.Errorf("recorder: %v", err)
	}
	recMu.Unlock()

	recorded := time.Duration(clk.Instant() - start)
	segs, err := db.OldestSegments(ctx, -1)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range cams {
		var mine []store.Segment
		for _, s := range segs {
			if s.CameraID == idx.rows[c.ID] {
				mine = append(mine, s)
			}
		}
		// Full segments of the virtual time, plus the zero-length one the
		// boundary frame opened just before Stop closed it.
		full := int(recorded / segment)
		if len(mine) != full+1 {
			t.Fatalf("%s: %d segments for %s of recording, want %d", c.ID, len(mine), recorded, full+1)
		}
		next := start
		for i, s := range mine {
			if s.StartInstantNS != next {
				t.Fatalf("%s: segment %d starts at %s, the previous ended at %s: a gap",
					c.ID, i, time.Duration(s.StartInstantNS-start), time.Duration(next-start))
			}
			want, frames := segment, int64(segment/frameEvery)
			if i == full {
				want, frames = 0, 1
			}
			if time.Duration(s.DurationNS) != want || s.Frames != frames {
				t.Fatalf("%s: segment %d lasts %s with %d frames, want %s with %d", c.ID, i, time.Duration(s.DurationNS), s.Frames, want, frames)
			}
			next = s.StartInstantNS + s.DurationNS
		}
		if got := time.Duration(next - start); got != recorded {
			t.Fatalf("%s: segments cover %s of %s", c.ID, got, recorded)
		}
	}
	if _, err := db.VerifyAuditChain(ctx); err != nil {
		t.Fatal(err)
	}
	// The storm was one: refusals by the hundred, locks, and a hold.
	counts := map[string]int64{}
	for _, outcome := range []string{"refused", "lock", "hold"} {
		recs, err := db.ListAudit(ctx, store.AuditFilter{Outcome: outcome, Limit: 100000})
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range recs {
			counts[outcome] += r.Count
		}
	}
	if counts["refused"] < 500 || counts["lock"] < 10 || counts["hold"] < 1 {
		t.Fatalf("storm audit: %v", counts)
	}
	t.Logf("storm: %v; %d segments", counts, len(segs))
}
