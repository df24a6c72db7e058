package sim

import (
	"fmt"
	"sort"
	"sync"
	"time"

	"github.com/latchnvr/latch/model"
	"github.com/latchnvr/latch/model/world"
)

// Engine is the device under simulation: whatever decides login attempts
// and applies administrative acts. The simulator drives it from one
// goroutine with non-decreasing instants; it never calls an Engine
// concurrently and never reads its state except through the returned
// decisions, so any implementation that decides like the lock model gives
// the same trace.
//
// Engines:
//   - "model": model.Decide over keys in slices and a compact pair table;
//     fast, for sweeps.
//   - "world": model/world.World, the state `latchsim replay` uses; slower,
//     the reference the model engine is tested against.
//   - "service" (nvr's auth service on SQLite with a simulated clock) and
//     "http" (the service through its JSON API) register themselves with
//     RegisterEngine; they only have to implement this interface.
//
// Verification belongs to the engine, as it does on a device: an attempt
// carries the presented secret and the engine decides whether it is the
// user's current one (EngineConfig.Universe names every principal, source
// and account; SecretID.Text is the password to type).
//
// For two engines to give the same trace hash, Attempt must return the
// decision model.Decide would: Verdict, Scope, RetryAfter, Remaining,
// Effects and Modes are all hashed. A service engine therefore advances
// its simulated clock to now before each call (instants are virtual time
// since the run began; the wall clock starts at EngineConfig.WallStart),
// creates the accounts of EngineConfig.Universe at start (a cheap password
// hash is fine), returns the decision its auth service committed, treats
// Reset as an admin reset to secret.Text(), and implements Restart as a
// clean shutdown at wallBefore, the wall clock set to wallAfter, and a
// start from the same database.
type Engine interface {
	// Attempt decides one login attempt at instant now: remote from
	// a.Source, or at the console when a.Source is NoSource.
	Attempt(now model.Instant, a Attempt) model.Decision
	// Unlock is an admin's R-UNLOCK.
	Unlock(now model.Instant, u Unlock)
	// Reset is a password reset (R-RESET): the principal and all its pairs
	// open at level 0, and secret becomes the user's password.
	Reset(now model.Instant, user UserID, secret SecretID)
	// Restart is a reboot at instant now (R-RESTART): every key is persisted
	// with the wall clock wallBefore and restored with the wall clock
	// wallAfter (Unix nanoseconds). The reboot takes no virtual time; an RTC
	// reset to 1970 is a wallAfter far before wallBefore.
	Restart(now model.Instant, wallBefore, wallAfter int64)
	// WallJump steps the device's wall clock by `by` while it runs (an NTP
	// step, someone setting the date). R-MONO: no lock may change.
	WallJump(now model.Instant, by time.Duration)
	// Close releases the engine's resources.
	Close() error
}

// SegmentRecorder is implemented by engines that run real cameras (the
// service engine). The simulator's cameras close a segment every segment
// length of virtual time and ask the engine to record it; an engine that
// does not implement it records every segment, as cameras are independent
// of authentication (INV-RECORDING).
type SegmentRecorder interface {
	RecordSegment(now model.Instant, camera int) bool
}

// UserID indexes Universe.Principals: a declared user or a name an
// attacker tries (unknown principals are principals too, R-ENUM).
type UserID int32

// SourceID indexes Universe.Sources.
type SourceID int32

// NoSource marks a console attempt.
const NoSource SourceID = -1

// Attempt is one login attempt as the simulator presents it.
type Attempt struct {
	User    UserID
	Source  SourceID // NoSource: the console channel
	Secret  SecretID
	Channel model.Channel
}

// Unlock names what an admin opens (R-UNLOCK): one pair and its source
// key (Source set), every key of a principal (Source NoSource), or
// everything (All).
type Unlock struct {
	User   UserID
	Source SourceID
	All    bool
}

// SecretID names a presented secret without building its text: the kind of
// secret, whose it is and its number. Text returns the string a trace or a
// service engine uses; two different IDs never have the same text.
type SecretID uint64

// Secret kinds.
const (
	SecretPassword uint8 = 1 + iota // a user's password: owner, generation
	SecretTypo                      // a mistyped password: owner, n
	SecretForgot                    // a wrong guess by a user who forgot: owner, n
	SecretGuess                     // the n-th word of the attackers' dictionary
	SecretLeak                      // a leaked password for a principal: owner, n
)

var secretPrefix = [...]string{"", "pw", "typo", "forgot", "guess", "leak"}

// MakeSecret builds a SecretID.
func MakeSecret(kind uint8, owner UserID, n uint32) SecretID {
	return SecretID(uint64(kind)<<56 | uint64(uint32(owner))&0xffffff<<32 | uint64(n))
}

// Kind, Owner and N take a SecretID apart.
func (s SecretID) Kind() uint8   { return uint8(s >> 56) }
func (s SecretID) Owner() UserID { return UserID(s >> 32 & 0xffffff) }
func (s SecretID) N() uint32     { return uint32(s) }

// Text is the secret as a trace writes it: "pw.3.1", "guess.1042".
func (s SecretID) Text() string {
	k := s.Kind()
	if k == 0 || int(k) >= len(secretPrefix) {
		return fmt.Sprintf("secret.%d", uint64(s))
	}
	if k == SecretGuess {
		return fmt.Sprintf("guess.%d", s.N())
	}
	return fmt.Sprintf("%s.%d.%d", secretPrefix[k], s.Owner(), s.N())
}

// Account is a declared user of the simulated device.
type Account struct {
	User   UserID
	Role   model.Role
	Secret SecretID // the password at the start
}

// Universe names everything a run refers to by number: principals,
// sources and declared accounts. Sources may be added while a run goes
// (a user's new phone); everything else is fixed before the engine starts.
type Universe struct {
	Principals []model.Principal
	Sources    []model.Source
	Accounts   []Account
}

func (u *Universe) addPrincipal(name string) (UserID, error) {
	p, err := model.CanonicalPrincipal(name)
	if err != nil {
		return 0, err
	}
	if len(u.Principals) >= 1<<24 {
		return 0, fmt.Errorf("more than %d principals", 1<<24)
	}
	u.Principals = append(u.Principals, p)
	return UserID(len(u.Principals) - 1), nil
}

// addSource appends a source; addresses come from pools, so they are
// canonical by construction.
func (u *Universe) addSource(s model.Source) SourceID {
	u.Sources = append(u.Sources, s)
	return SourceID(len(u.Sources) - 1)
}

// EngineConfig is what an engine is built from.
type EngineConfig struct {
	Policy   model.Policy
	Universe *Universe
	// WallStart is the device's wall clock at instant 0 (Unix nanoseconds).
	WallStart int64
}

// EngineFactory builds an engine.
type EngineFactory func(EngineConfig) (Engine, error)

var (
	enginesMu sync.Mutex
	engines   = map[string]EngineFactory{
		"model": func(c EngineConfig) (Engine, error) { return NewModelEngine(c), nil },
		"world": func(c EngineConfig) (Engine, error) { return NewWorldEngine(c), nil },
	}
)

// RegisterEngine makes an engine available by name (the service and http
// engines register from the packages that wire them, so sim does not
// import nvr).
func RegisterEngine(name string, f EngineFactory) {
	enginesMu.Lock()
	defer enginesMu.Unlock()
	engines[name] = f
}

// EngineNames lists the registered engines, sorted.
func EngineNames() []string {
	enginesMu.Lock()
	defer enginesMu.Unlock()
	names := make([]string, 0, len(engines))
	for n := range engines {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

func newEngine(name string, c EngineConfig) (Engine, error) {
	enginesMu.Lock()
	f, ok := engines[name]
	enginesMu.Unlock()
	if !ok {
		return nil, fmt.Errorf("unknown engine %q (want one of %v)", name, EngineNames())
	}
	return f(c)
}

// verifier is the device's password table: who exists, their role and
// current secret. Engines share it; unknown principals verify wrong and
// decide as viewers (R-ENUM).
type verifier struct {
	known  []bool
	roles  []model.Role
	secret []SecretID
}

func newVerifier(u *Universe) verifier {
	n := len(u.Principals)
	v := verifier{known: make([]bool, n), roles: make([]model.Role, n), secret: make([]SecretID, n)}
	for _, a := range u.Accounts {
		v.known[a.User], v.roles[a.User], v.secret[a.User] = true, a.Role, a.Secret
	}
	return v
}

// event turns an attempt into the model's event; the secret's ID is its
// fingerprint (equal exactly when the texts are equal, like the keyed MAC
// replay computes, so R-REPLAY decides alike).
func (v *verifier) event(a Attempt) model.Event {
	ev := model.Event{Attempt: model.Attempt{Channel: a.Channel, Role: v.roles[a.User], Print: uint64(a.Secret)}, Outcome: model.WrongSecret}
	if v.known[a.User] && v.secret[a.User] == a.Secret {
		ev.Outcome = model.RightSecret
	}
	return ev
}

// ModelEngine decides with model.Decide over keys kept in slices indexed
// by principal and source, and pairs in a compact store (pairstore.go);
// per attempt it allocates nothing once a pair exists.
type ModelEngine struct {
	p          model.Policy
	v          verifier
	principals []model.Key
	consoles   []model.Key
	sources    []model.Key
	pairs      pairStore
	byUser     [][]SourceID // sources of each principal's stored pairs, for unlock and reset
}

// NewModelEngine builds the model engine.
func NewModelEngine(c EngineConfig) *ModelEngine {
	n := len(c.Universe.Principals)
	return &ModelEngine{
		p:          c.Policy,
		v:          newVerifier(c.Universe),
		principals: make([]model.Key, n),
		consoles:   make([]model.Key, n),
		sources:    make([]model.Key, len(c.Universe.Sources)),
		pairs:      newPairStore(&c.Policy),
		byUser:     make([][]SourceID, n),
	}
}

func (e *ModelEngine) source(s SourceID) *model.Key {
	for int(s) >= len(e.sources) {
		e.sources = append(e.sources, model.Key{})
	}
	return &e.sources[s]
}

// Attempt implements Engine.
func (e *ModelEngine) Attempt(now model.Instant, a Attempt) model.Decision {
	ev := e.v.event(a)
	var v model.View
	v.Principal, v.Console = e.principals[a.User], e.consoles[a.User]
	remote := a.Channel == model.Remote && a.Source != NoSource
	pi := int32(-1)
	if remote {
		if pi = e.pairs.get(a.User, a.Source); pi >= 0 {
			e.pairs.load(pi, &v.Pair)
		}
		v.Source = *e.source(a.Source)
	} else {
		ev.Channel = model.Console
	}
	v, d := model.Decide(v, ev, now, &e.p)
	e.principals[a.User], e.consoles[a.User] = v.Principal, v.Console
	if remote {
		e.sources[a.Source] = v.Source
		e.storePair(pi, a.User, a.Source, &v.Pair)
	}
	return d
}

var zeroPair model.Pair

// storePair writes a pair back; a pair never stored stays unstored while
// it is zero.
func (e *ModelEngine) storePair(pi int32, u UserID, s SourceID, p *model.Pair) {
	if pi < 0 {
		if *p == zeroPair {
			return
		}
		pi = e.pairs.add(u, s)
		e.byUser[u] = append(e.byUser[u], s)
	}
	e.pairs.store(pi, p)
}

// Unlock implements Engine, as world.World does.
func (e *ModelEngine) Unlock(now model.Instant, u Unlock) {
	switch {
	case u.All:
		e.pairs.each(func(i int32) { e.pairs.update(i, model.UnlockPair) })
		for _, ks := range [][]model.Key{e.sources, e.principals, e.consoles} {
			for i := range ks {
				ks[i] = model.Unlock(ks[i])
			}
		}
	case u.Source != NoSource:
		if pi := e.pairs.get(u.User, u.Source); pi >= 0 {
			e.pairs.update(pi, model.UnlockPair)
		}
		k := e.source(u.Source)
		*k = model.Unlock(*k)
	default:
		e.unlockPrincipal(u.User)
	}
}

func (e *ModelEngine) unlockPrincipal(u UserID) {
	e.principals[u] = model.Unlock(e.principals[u])
	e.consoles[u] = model.Unlock(e.consoles[u])
	for _, s := range e.byUser[u] {
		e.pairs.update(e.pairs.get(u, s), model.UnlockPair)
	}
}

// Reset implements Engine.
func (e *ModelEngine) Reset(now model.Instant, u UserID, secret SecretID) {
	e.unlockPrincipal(u)
	if e.v.known[u] {
		e.v.secret[u] = secret
	}
}

// Restart implements Engine: Persist then Restore every key (R-RESTART).
func (e *ModelEngine) Restart(now model.Instant, wallBefore, wallAfter int64) {
	e.pairs.each(func(i int32) {
		e.pairs.update(i, func(p model.Pair) model.Pair {
			return model.Restore(model.Persist(p, now, wallBefore), now, wallAfter)
		})
	})
	for _, ks := range [][]model.Key{e.sources, e.principals, e.consoles} {
		for i := range ks {
			ks[i] = model.RestoreKey(model.PersistKey(ks[i], now, wallBefore), now, wallAfter)
		}
	}
}

// WallJump implements Engine: the model never reads wall time (R-MONO).
func (e *ModelEngine) WallJump(model.Instant, time.Duration) {}

// Close implements Engine.
func (e *ModelEngine) Close() error { return nil }

// Pairs reports how many pair keys the engine holds (for memory figures).
func (e *ModelEngine) Pairs() int { return e.pairs.len() }

// WorldEngine decides through model/world.World, the in-memory device that
// `latchsim replay` uses. It is the reference the model engine is checked
// against, and the shape a service engine follows.
type WorldEngine struct {
	w *world.World
	u *Universe
	v verifier
}

// NewWorldEngine builds the world engine.
func NewWorldEngine(c EngineConfig) *WorldEngine {
	return &WorldEngine{w: world.New(c.Policy), u: c.Universe, v: newVerifier(c.Universe)}
}

// Attempt implements Engine.
func (e *WorldEngine) Attempt(now model.Instant, a Attempt) model.Decision {
	ev := e.v.event(a)
	var src model.Source
	if a.Channel == model.Remote && a.Source != NoSource {
		src = e.u.Sources[a.Source]
	} else {
		ev.Channel = model.Console
	}
	return e.w.Decide(e.u.Principals[a.User], src, ev, now)
}

// Unlock implements Engine.
func (e *WorldEngine) Unlock(now model.Instant, u Unlock) {
	switch {
	case u.All:
		e.w.UnlockAll()
	case u.Source != NoSource:
		e.w.UnlockPair(e.u.Principals[u.User], e.u.Sources[u.Source])
	default:
		e.w.UnlockPrincipal(e.u.Principals[u.User])
	}
}

// Reset implements Engine.
func (e *WorldEngine) Reset(now model.Instant, u UserID, secret SecretID) {
	e.w.UnlockPrincipal(e.u.Principals[u])
	if e.v.known[u] {
		e.v.secret[u] = secret
	}
}

// Restart implements Engine.
func (e *WorldEngine) Restart(now model.Instant, wallBefore, wallAfter int64) {
	e.w.Restart(now, wallBefore, wallAfter)
}

// WallJump implements Engine.
func (e *WorldEngine) WallJump(model.Instant, time.Duration) {}

// Close implements Engine.
func (e *WorldEngine) Close() error { return nil }
