package auth

// Regression tests for bugs the commands test (commands_test.go) found;
// each failed before its fix.

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/latchnvr/latch/model"
)

// spray makes n counted failures from src, spread over principals so that
// no pair locks (latch: pair threshold 5), so only the source key counts
// toward its own threshold (20).
func (r *rig) spray(src string, n int) {
	r.t.Helper()
	for i := 0; i < n; i++ {
		user := fmt.Sprintf("victim%d", i/4)
		res := r.login(user, fmt.Sprintf("guess-%d", i), src)
		if res.Decision.Verdict != model.Failed {
			r.t.Fatalf("spray %d: %+v", i, res.Decision)
		}
	}
}

// R-RESTART: "a wall-clock step observed while running re-anchors every
// persisted lock" (docs/SPEC.md §5: every snapshot). Re-anchoring covered
// only keys that were not open and the keys of existing users, so an open
// source key's failures aged by the step at the next restart and a spray
// that should lock the source did not.
func TestR_RESTART_ObservedStepReanchorsOpenSourceKeys(t *testing.T) {
	p := latch(t)
	r := newRig(t, p)
	r.spray("203.0.113.7", p.Source.Threshold-1)
	// NTP steps the wall clock two hours forward; the service notices.
	r.clk.WallJump(2 * time.Hour)
	if _, err := r.svc.Reanchor(context.Background(), false); err != nil {
		t.Fatal(err)
	}
	// A crash a second later: the step is not time served (R-MONO).
	r.clk.Advance(time.Second)
	r.open(p, 2)
	res := r.login("victim9", "one-more", "203.0.113.7")
	if res.Decision.Verdict != model.Failed || res.Decision.Modes[model.KindSource] != model.Locked {
		t.Fatalf("20th failure within the window did not lock the source: %+v", res.Decision)
	}
}

// R-RESTART: after a reboot, remaining' = remaining − clamp(wall_now −
// wall_saved) with wall_now the wall clock at the restart; from then on
// only instants count (R-MONO: a wall step while running neither shortens
// nor lengthens a lock). A key written by the previous boot was restored
// at whatever the wall clock said when it was first read, so a forward
// step after the reboot — before anyone touched the key — counted as time
// served and unlocked it, and Reanchor baked the step into the key.
func TestR_RESTART_StepAfterRebootIsNotTimeServed(t *testing.T) {
	for _, observed := range []bool{false, true} {
		t.Run(fmt.Sprintf("reanchored=%v", observed), func(t *testing.T) {
			p := latch(t)
			r := newRig(t, p)
			for i := 0; i < p.Pair.Threshold; i++ {
				r.login("admin", fmt.Sprintf("bad-%d", i), "10.0.0.3")
			}
			// Crash; back 10 s later with a right clock.
			r.clk.Advance(10 * time.Second)
			r.open(p, 2)
			// Then someone sets the date a day ahead.
			r.clk.Advance(5 * time.Second)
			r.clk.WallJump(24 * time.Hour)
			if observed {
				if _, err := r.svc.Reanchor(context.Background(), false); err != nil {
					t.Fatal(err)
				}
			}
			res := r.login("admin", adminPW, "10.0.0.3")
			if res.Decision.Verdict != model.Refused {
				t.Fatalf("a wall step after the reboot shortened the lock: %+v", res.Decision)
			}
		})
	}
}

// INV-RESET: after unlock {all} every key is Open with counters 0 and
// level 0. Unlock-all opened only keys that were not open and the keys of
// existing users, so an open source key kept its failures and the next
// failure from that source locked it.
func TestINV_RESET_UnlockAllClearsOpenSourceKeys(t *testing.T) {
	p := latch(t)
	r := newRig(t, p)
	r.spray("203.0.113.8", p.Source.Threshold-1)
	if _, err := r.svc.Unlock(context.Background(), "admin:admin", UnlockScope{All: true}); err != nil {
		t.Fatal(err)
	}
	res := r.login("victim9", "one-more", "203.0.113.8")
	if res.Decision.Verdict != model.Failed || res.Decision.Modes[model.KindSource] != model.Open ||
		res.Decision.Remaining != p.Pair.Threshold-1 {
		t.Fatalf("unlock-all left the source's failures: %+v", res.Decision)
	}
}

// R-RESTART and R-CONSOLE: the console CLI is a second process on the same
// database, with its own boot id. Keys it writes while the server runs are
// not the server's previous boot's: restoring them as of the server's
// start (the reboot rule) aged them by the server's uptime, so the first
// remote attempt on the principal wrote the CLI's console lock back open.
func TestR_CONSOLE_ServerKeepsLocksTheConsoleProcessWrites(t *testing.T) {
	p := latch(t)
	r := newRig(t, p)
	r.clk.Advance(time.Hour) // the server has been up an hour
	console, err := New(r.db, Config{Clock: r.clk, Hasher: NewHasher(CheapParams, 1), Policy: p, BootID: 99})
	if err != nil {
		t.Fatal(err)
	}
	defer console.Close()
	ctx := context.Background()
	for i := 0; i < p.Console.Threshold; i++ {
		if _, err := console.Login(ctx, Attempt{Username: "admin", Secret: fmt.Sprintf("bad-%d", i), Channel: model.Console}); err != nil {
			t.Fatal(err)
		}
	}
	// Any remote attempt on the principal reads (and may rewrite) its
	// console key.
	r.login("admin", "nope", "10.0.0.5")
	res, err := console.Login(ctx, Attempt{Username: "admin", Secret: adminPW, Channel: model.Console})
	if err != nil {
		t.Fatal(err)
	}
	if res.Decision.Verdict != model.Refused || res.Decision.Scope != model.ScopeConsole {
		t.Fatalf("the console lock the console process set is gone: %+v", res.Decision)
	}
}
