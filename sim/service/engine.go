// Package service is the simulator's "service" engine: it runs every
// simulated login through the real NVR auth service (nvr/auth) on a real
// SQLite file (nvr/store), with a simulated clock (clock.Sim) as the
// service's only clock, so a scenario's months of virtual time exercise the
// code a device runs rather than the lock model alone (issue 6).
//
// # What it owns
//
// The mapping of sim.Engine onto the service: Attempt is Service.Login
// (console attempts on the console channel), Unlock is Service.Unlock
// (R-UNLOCK), Reset is an admin password reset, Service.SetPassword
// (R-RESET), Restart is a clean shutdown and a new boot on the same
// database file (R-RESTART), WallJump steps the simulated wall clock
// (R-MONO, INV-CLOCK). It also owns the device's setup (activation, the
// universe's accounts) and the deterministic passwords that stand for the
// simulator's secrets. It owns no lock logic: the decision it returns is
// the one the service committed, so a disagreement with the model engine
// is a disagreement between the service and the lock model.
//
// It must never reach into the service's tables or keys, read the real
// clock, or change what the service decides; what the service cannot do
// through its API, the engine does not do either.
//
// It does not implement sim.SegmentRecorder: cameras are independent of
// authentication (INV-RECORDING), and running nvr/recorder here would
// measure the recorder, not the lock; the soak (sim/soak) runs real
// cameras.
//
// # Use
//
// The engine registers itself as "service" with sim.RegisterEngine when
// the package is imported (cmd/latchsim imports it: `latchsim run
// --engine service`), with a temporary folder for the database ($TMPDIR;
// /dev/shm saves the file system's share) and the cheapest argon2id
// parameters (auth.CheapParams): hashing cost is the device's, not the
// policy's, and decides nothing. Its store defers durability
// (DefaultCommitEvery): the service's transactions run in one SQLite
// transaction committed every few hundred, which changes nothing it
// decides or reads and removes most of an attempt's cost. It is still
// two orders of magnitude slower than the model engine
// (docs/PERFORMANCE.md, "Service engine"): every attempt runs the
// service's statements.
//
// # Agreement
//
// The tests run built-in scenarios through this engine and the model
// engine with the same seed and require identical decisions, attempt by
// attempt (agree_test.go), and a seeded random mix of every operation,
// including those the scenarios never make (console attempts, unlocking
// everything, reboots with the RTC ahead), under every preset
// (ops_test.go).
package service

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"time"

	"github.com/latchnvr/latch/model"
	"github.com/latchnvr/latch/nvr/auth"
	"github.com/latchnvr/latch/nvr/clock"
	"github.com/latchnvr/latch/nvr/store"
	"github.com/latchnvr/latch/sim"
)

func init() {
	sim.RegisterEngine("service", func(c sim.EngineConfig) (sim.Engine, error) {
		return New(c, Options{})
	})
}

// Options configure a service engine; the zero value is what the
// registered "service" engine uses.
type Options struct {
	// Dir holds the database (Dir/latch.db) and is kept after Close; ""
	// makes a temporary folder that Close removes. A database already
	// there is an error: the engine activates a new device.
	Dir string
	// Hash is the argon2id cost; zero is auth.CheapParams (8 KiB, one
	// pass), which is what makes the engine fast enough for sweeps.
	Hash auth.HashParams
	// MaintainEvery is how often (virtual time) the engine runs the
	// service's housekeeping (sealing audit aggregates, pruning dead
	// sessions), as `latch serve` does once a minute; 0 is one hour. It
	// decides nothing; it keeps the database the size a device's would be.
	MaintainEvery time.Duration
	// CommitEvery is how many of the service's transactions share one
	// SQLite commit (store.Options.CommitEvery); 0 is DefaultCommitEvery,
	// 1 commits each, as the appliance does. See DefaultCommitEvery.
	CommitEvery int
}

// DefaultCommitEvery is the engine's deferred durability: the service's
// transactions run in one SQLite transaction that commits every
// DefaultCommitEvery of them and at every reboot (Restart closes the
// store). A service error that follows a write rolls the batch back and
// ends the store's use (store.Options.CommitEvery); the engine reports
// the first error from Close, as it reports any. The service decides and writes exactly as on the appliance, and
// every read sees every earlier write; only the commit, which the
// simulator never needs (nothing crashes the engine's process mid-run:
// its reboots are clean), is paid once per batch instead of once per
// attempt. The commit was most of an attempt's cost (docs/PERFORMANCE.md,
// "Service engine"): the engine waits for each answer, so attempts could
// never share one the way a flood's do in `latch serve`.
const DefaultCommitEvery = 256

// Engine drives an auth.Service on SQLite with a simulated clock
// (sim.Engine). Like every engine, it is used from one goroutine.
type Engine struct {
	opt    Options
	uni    *sim.Universe
	policy model.Policy
	dir    string
	ownDir bool
	clk    *clock.Sim
	hasher *auth.Hasher
	db     *store.DB
	svc    *auth.Service
	ctx    context.Context

	boot  uint64 // the current boot, from 1
	known []bool // per principal: an account exists on the device
	actor auth.Actor

	nextMaintain model.Instant

	err  error // the first failure; Close returns it
	errs int
}

// adminPIN is the master PIN the engine activates the device with; it is
// digits only, so no simulator secret (Password) can ever equal it and
// console attempts never succeed by the PIN (R-LASTADMIN).
const adminPIN = "482915"

// engineAdmin is the first admin's name when the universe declares no
// admin: the device must be activated with one. It is never attempted.
const engineAdmin = "latchsim-admin"

// deviceSeed seeds the store's device secret (the fingerprint key of
// R-REPLAY), so two runs build the same device.
const deviceSeed = 0x6c61746368736964

// New builds the device: a database in o.Dir (or a temporary folder), the
// service on a clock.Sim at c.WallStart, activated with the universe's
// first admin (or engineAdmin) and every declared account created with the
// role the universe gives it.
func New(c sim.EngineConfig, o Options) (*Engine, error) {
	if o.Hash == (auth.HashParams{}) {
		o.Hash = auth.CheapParams
	}
	if o.MaintainEvery <= 0 {
		o.MaintainEvery = time.Hour
	}
	if o.CommitEvery <= 0 {
		o.CommitEvery = DefaultCommitEvery
	}
	e := &Engine{opt: o, uni: c.Universe, policy: c.Policy, dir: o.Dir, ctx: context.Background(),
		clk:    clock.NewSim(time.Unix(0, c.WallStart).UTC()),
		hasher: auth.NewHasher(o.Hash, 1),
		known:  make([]bool, len(c.Universe.Principals)),
	}
	if e.dir == "" {
		d, err := os.MkdirTemp("", "latchsim-service-")
		if err != nil {
			return nil, fmt.Errorf("service engine: %w", err)
		}
		e.dir, e.ownDir = d, true
	} else if err := os.MkdirAll(e.dir, 0o750); err != nil {
		return nil, fmt.Errorf("service engine: %w", err)
	}
	if err := e.setUp(); err != nil {
		e.shutDown(false)
		e.removeDir()
		return nil, fmt.Errorf("service engine: %w", err)
	}
	return e, nil
}

// DBPath is the database file the engine runs on.
func (e *Engine) DBPath() string { return filepath.Join(e.dir, "latch.db") }

// open starts a boot: the store and a service with a boot id of its own,
// so keys of earlier boots are restored by the wall clock as of now
// (R-RESTART) and this boot's by instants (R-MONO).
func (e *Engine) open() error {
	e.boot++
	db, err := store.Open(e.DBPath(), store.Options{Rand: rand.NewChaCha8(seedBytes(deviceSeed)), CommitEvery: e.opt.CommitEvery})
	if err != nil {
		return err
	}
	svc, err := auth.New(db, auth.Config{Clock: e.clk, Hasher: e.hasher, Policy: e.policy, BootID: e.boot<<1 | 1})
	if err != nil {
		db.Close()
		return err
	}
	e.db, e.svc = db, svc
	return nil
}

func seedBytes(x uint64) [32]byte {
	var b [32]byte
	for i := range 4 {
		x = x*0x9E3779B97F4A7C15 + 1
		for j := range 8 {
			b[i*8+j] = byte(x >> (8 * j))
		}
	}
	return b
}

// setUp starts the first boot, activates the device and creates the
// accounts, all at instant 0.
func (e *Engine) setUp() error {
	if err := e.open(); err != nil {
		return err
	}
	first := -1
	for i, a := range e.uni.Accounts {
		if a.Role == model.RoleAdmin {
			first = i
			break
		}
	}
	admin, password := engineAdmin, Password(sim.MakeSecret(sim.SecretPassword, 0, 0))
	if first >= 0 {
		a := e.uni.Accounts[first]
		admin, password = string(e.uni.Principals[a.User]), Password(a.Secret)
	} else {
		for _, p := range e.uni.Principals {
			if p == engineAdmin {
				return fmt.Errorf("the universe has a principal %q but no admin account", engineAdmin)
			}
		}
	}
	if _, err := e.svc.Activate(e.ctx, admin, password, adminPIN); err != nil {
		return err
	}
	e.actor = auth.Actor("admin:" + admin)
	for i, a := range e.uni.Accounts {
		e.known[a.User] = true
		if i == first {
			continue
		}
		nu := auth.NewUser{Name: string(e.uni.Principals[a.User]), Password: Password(a.Secret), Role: storeRole(a.Role)}
		if _, err := e.svc.CreateUser(e.ctx, e.actor, nu); err != nil {
			return err
		}
	}
	e.nextMaintain = model.Instant(e.opt.MaintainEvery)
	return nil
}

func storeRole(r model.Role) store.Role {
	switch r {
	case model.RoleAdmin:
		return store.RoleAdmin
	case model.RoleOperator:
		return store.RoleOperator
	}
	return store.RoleViewer
}

// Password is the password the device knows for a simulator secret. The
// simulator's texts ("pw.3.1") are far too weak for the service's
// strength check (CreateUser, SetPassword), so each maps to a strong one;
// the map is injective, so equal secrets stay equal and different ones
// different (R-REPLAY decides alike). It is the http engine's mapping
// (sim/soak.Password), so both devices know the same passwords.
func Password(s sim.SecretID) string {
	text := s.Text()
	h := sha256.Sum256([]byte(text))
	return "S!" + text + "-" + hex.EncodeToString(h[:])[:12]
}

// advance moves the service's clock to the simulator's instant now and
// runs the housekeeping that came due on the way. It reports false when
// there is no service to act on: a boot failed, and Close will say why.
func (e *Engine) advance(now model.Instant) bool {
	e.clk.AdvanceTo(int64(now))
	if e.svc == nil {
		e.errs++
		return false
	}
	if now < e.nextMaintain {
		return true
	}
	if err := e.svc.Maintain(e.ctx); err != nil {
		e.fail(now, "maintain", err)
	}
	e.nextMaintain = now + model.Instant(e.opt.MaintainEvery)
	return true
}

// fail keeps the first failure for Close; the run goes on so that it
// still ends, and its trace shows where decisions went wrong.
func (e *Engine) fail(now model.Instant, what string, err error) {
	e.errs++
	if e.err == nil {
		e.err = fmt.Errorf("boot %d at %s: %s: %w", e.boot, sim.FormatDuration(time.Duration(now)), what, err)
	}
}

// Attempt implements sim.Engine: one Service.Login at instant now, and
// the decision the service committed.
func (e *Engine) Attempt(now model.Instant, a sim.Attempt) model.Decision {
	if !e.advance(now) {
		return model.Decision{}
	}
	at := auth.Attempt{Username: string(e.uni.Principals[a.User]), Secret: Password(a.Secret), Channel: model.Remote}
	if a.Channel == model.Console || a.Source == sim.NoSource {
		at.Channel = model.Console
	} else {
		at.Source = e.uni.Sources[a.Source]
	}
	res, err := e.svc.Login(e.ctx, at)
	if err != nil {
		e.fail(now, "login "+at.Username, err)
		return model.Decision{}
	}
	return res.Decision
}

// Unlock implements sim.Engine: an admin's R-UNLOCK.
func (e *Engine) Unlock(now model.Instant, u sim.Unlock) {
	if !e.advance(now) {
		return
	}
	sc := auth.UnlockScope{All: u.All}
	if !u.All {
		sc.User = string(e.uni.Principals[u.User])
		if u.Source != sim.NoSource {
			sc.Source = e.uni.Sources[u.Source]
		}
	}
	if _, err := e.svc.Unlock(e.ctx, e.actor, sc); err != nil {
		e.fail(now, "unlock", err)
	}
}

// Reset implements sim.Engine: an admin's password reset, which opens
// every key of the principal (R-RESET). A principal with no account has no
// password to reset; the helpdesk can only unlock it, which opens the same
// keys.
func (e *Engine) Reset(now model.Instant, user sim.UserID, secret sim.SecretID) {
	if !e.advance(now) {
		return
	}
	name := string(e.uni.Principals[user])
	var err error
	if e.known[user] {
		err = e.svc.SetPassword(e.ctx, e.actor, name, Password(secret), true)
	} else {
		_, err = e.svc.Unlock(e.ctx, e.actor, auth.UnlockScope{User: name})
	}
	if err != nil {
		e.fail(now, "reset "+name, err)
	}
}

// Restart implements sim.Engine as `latch serve` reboots: a clean
// shutdown at wall time wallBefore, which re-anchors every key there
// (R-RESTART), the wall clock set to wallAfter (an RTC reset to 1970 is a
// wallAfter far before wallBefore), and a new boot on the same file, which
// restores the earlier boot's keys by the wall clock at its start. The
// simulated instants go on across the reboot; the service never compares
// instants of different boots (their boot ids differ).
func (e *Engine) Restart(now model.Instant, wallBefore, wallAfter int64) {
	if !e.advance(now) {
		return
	}
	e.setWall(wallBefore)
	e.shutDown(true)
	e.setWall(wallAfter)
	if err := e.open(); err != nil {
		// The run goes on without a service (every later act fails) so
		// that sim.Run ends and reports this error from Close.
		e.fail(now, "boot", err)
	}
}

// setWall steps the simulated wall clock to wall (Unix nanoseconds).
func (e *Engine) setWall(wall int64) {
	e.clk.WallJump(time.Duration(wall - e.clk.Now().UnixNano()))
}

// shutDown ends a boot; clean is `latch serve`'s shutdown, which
// re-anchors every key and seals the audit aggregates first.
func (e *Engine) shutDown(clean bool) {
	if e.svc != nil {
		if clean {
			if _, err := e.svc.Reanchor(e.ctx, true); err != nil {
				e.fail(model.Instant(e.clk.Instant()), "re-anchor on shutdown", err)
			}
		}
		if err := e.svc.Close(); err != nil {
			e.fail(model.Instant(e.clk.Instant()), "close service", err)
		}
		e.svc = nil
	}
	if e.db != nil {
		if err := e.db.Close(); err != nil {
			e.fail(model.Instant(e.clk.Instant()), "close store", err)
		}
		e.db = nil
	}
}

// WallJump implements sim.Engine: the wall clock steps while the service
// runs, and the service re-anchors every key, as `latch serve`'s step
// watch does within seconds of a step (R-RESTART). Neither may change a
// lock (R-MONO, INV-CLOCK): the agreement with the model engine, which
// ignores wall time, checks that.
func (e *Engine) WallJump(now model.Instant, by time.Duration) {
	if !e.advance(now) {
		return
	}
	e.clk.WallJump(by)
	if _, err := e.svc.Reanchor(e.ctx, false); err != nil {
		e.fail(now, "re-anchor after a wall step", err)
	}
}

// Close implements sim.Engine: a clean shutdown; the temporary folder is
// removed. It returns the first failure of the run, if any.
func (e *Engine) Close() error {
	e.shutDown(true)
	e.removeDir()
	if e.errs > 1 {
		return fmt.Errorf("%w (and %d more failures)", e.err, e.errs-1)
	}
	return e.err
}

func (e *Engine) removeDir() {
	if e.ownDir && e.dir != "" {
		if err := os.RemoveAll(e.dir); err != nil && e.err == nil {
			e.err = err
		}
		e.ownDir = false
	}
}

var _ sim.Engine = (*Engine)(nil)
