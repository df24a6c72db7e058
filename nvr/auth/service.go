package auth

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"hash/fnv"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/latchnvr/latch/model"
	"github.com/latchnvr/latch/nvr/clock"
	"github.com/latchnvr/latch/nvr/store"
)

// Config wires a Service.
type Config struct {
	Clock  clock.Clock
	Hasher *Hasher
	Policy model.Policy
	// BootID identifies this process's monotonic clock; 0 picks a random
	// one. Key states written under this boot are restored by instants
	// (R-MONO); those an earlier boot wrote, by the wall clock as of this
	// service's start (R-RESTART); those another process writes while this
	// one runs (the console CLI), by the wall clock now (see restore).
	BootID uint64
	// SessionIdle and SessionAbsolute bound sessions (0: 30 min and 12 h).
	SessionIdle, SessionAbsolute time.Duration
	// SessionPolicy, if set, overrides the session policy stored in the
	// device settings until an admin changes it (latch serve
	// --sessions-policy); "" uses the stored one, or notify.
	SessionPolicy SessionPolicy
	Log           *slog.Logger
}

// Service decides logins and administers users, keys and sessions.
type Service struct {
	// racy breaks R-ATOMIC on purpose (tests only: the linearizability
	// check must catch it): no stripes, and blind writes over whatever
	// version is stored.
	racy bool

	db     *store.DB
	clk    clock.Clock
	hasher *Hasher
	policy atomic.Pointer[model.Policy]
	bootID uint64
	log    *slog.Logger
	idle   time.Duration
	abs    time.Duration

	// Stripes serialise attempts per principal and per source for both
	// phases (R-ATOMIC): a principal's keys and a source's key are each
	// read, decided and written by one attempt at a time. Lock order is
	// always principal stripe, then source stripe.
	principalLocks [64]sync.Mutex
	sourceLocks    [64]sync.Mutex

	deviceKey atomic.Pointer[[]byte]

	// sessions is the session policy in force; sessionOverride the
	// start-up one (Config.SessionPolicy), which a factory reset restores.
	sessions        atomic.Pointer[sessionSetting]
	sessionOverride SessionPolicy

	// recovery holds the in-memory rate limits of self-service recovery.
	recovery recoveryLimits

	// bootInstant and bootWall are the clock when this service started:
	// keys written by an earlier boot are restored as of that moment
	// (R-RESTART), and from then on only instants count (R-MONO).
	bootInstant model.Instant
	bootWall    int64
	// preBoot holds, for every key stored when this service started, the
	// version and wall anchor it had: a key of another boot id still at
	// them is an earlier boot's; any other was written since by another
	// process running beside this one (the console CLI). Read-only after
	// New.
	preBoot map[uint64]preBootKey

	reader *reader
	commit committer
	// cache holds the keys and users attempts read (see keyCache).
	cache *keyCache
	// strong remembers passwords found strong at a login (strongHashes).
	strong strongHashes
}

// ErrInvalidInput names a malformed request field.
var ErrInvalidInput = errors.New("invalid input")

// New returns a service over an open store.
func New(db *store.DB, cfg Config) (*Service, error) {
	if cfg.Clock == nil {
		cfg.Clock = clock.Real{}
	}
	if cfg.Hasher == nil {
		cfg.Hasher = NewHasher(OWASPParams, 2)
	}
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	if cfg.BootID == 0 {
		var b [8]byte
		if _, err := rand.Read(b[:]); err != nil {
			return nil, fmt.Errorf("auth: boot id: %w", err)
		}
		cfg.BootID = binary.BigEndian.Uint64(b[:]) | 1
	}
	if cfg.SessionIdle == 0 {
		cfg.SessionIdle = 30 * time.Minute
	}
	if cfg.SessionAbsolute == 0 {
		cfg.SessionAbsolute = 12 * time.Hour
	}
	if err := cfg.Policy.Validate(); err != nil {
		return nil, fmt.Errorf("auth: %w", err)
	}
	if cfg.SessionPolicy != "" {
		if _, err := ParseSessionPolicy(string(cfg.SessionPolicy)); err != nil {
			return nil, fmt.Errorf("auth: %w", err)
		}
	}
	s := &Service{db: db, clk: cfg.Clock, hasher: cfg.Hasher, bootID: cfg.BootID, log: cfg.Log,
		idle: cfg.SessionIdle, abs: cfg.SessionAbsolute, commit: committer{db: db}, sessionOverride: cfg.SessionPolicy,
		recovery: newRecoveryLimits(), cache: newKeyCache(),
		bootInstant: model.Instant(cfg.Clock.Instant()), bootWall: cfg.Clock.Now().UnixNano()}
	s.commit.first = s.cache.checkOthers
	p := cfg.Policy
	s.policy.Store(&p)
	if err := s.loadDevice(context.Background()); err != nil {
		return nil, err
	}
	var err error
	if s.reader, err = openReader(db); err != nil {
		return nil, err
	}
	if s.preBoot, err = s.reader.preBootKeys(context.Background()); err != nil {
		s.reader.close()
		return nil, err
	}
	return s, nil
}

// Close releases what the service holds beside the store (its read
// connections). Close the service before the store.
func (s *Service) Close() error { return s.reader.close() }

// loadDevice reads what the service keeps of the device row: the device
// secret (R-REPLAY fingerprints) and the session policy.
func (s *Service) loadDevice(ctx context.Context) error {
	dev, err := s.db.GetDevice(ctx)
	if err != nil {
		return fmt.Errorf("auth: device: %w", err)
	}
	k := append([]byte(nil), dev.Secret...)
	s.deviceKey.Store(&k)
	s.loadSessionPolicy(ctx, dev)
	return nil
}

// Policy returns the policy in force.
func (s *Service) Policy() model.Policy { return *s.policy.Load() }

// Clock returns the service's clock.
func (s *Service) Clock() clock.Clock { return s.clk }

// Hasher returns the service's password hasher.
func (s *Service) Hasher() *Hasher { return s.hasher }

// DB returns the store.
func (s *Service) DB() *store.DB { return s.db }

func stripe(name string, n int) int {
	h := fnv.New32a()
	h.Write([]byte(name))
	return int(h.Sum32() % uint32(n))
}

// lockKeys takes the principal's and the source's stripes, in that order.
func (s *Service) lockKeys(pr model.Principal, src model.Source) func() {
	if s.racy {
		return func() {}
	}
	pm := &s.principalLocks[stripe(string(pr), len(s.principalLocks))]
	pm.Lock()
	if src.IsZero() {
		return pm.Unlock
	}
	sm := &s.sourceLocks[stripe(src.String(), len(s.sourceLocks))]
	sm.Lock()
	return func() { sm.Unlock(); pm.Unlock() }
}

// keyIDs names the four keys of a View in store terms.
func keyIDs(pr model.Principal, src model.Source) [model.NumKinds]store.KeyID {
	var ids [model.NumKinds]store.KeyID
	ids[model.KindPrincipal] = store.KeyID{Kind: store.KindPrincipal, Principal: string(pr)}
	ids[model.KindConsole] = store.KeyID{Kind: store.KindConsole, Principal: string(pr)}
	if !src.IsZero() {
		ids[model.KindPair] = store.KeyID{Kind: store.KindPair, Principal: string(pr), Source: src.String()}
		ids[model.KindSource] = store.KeyID{Kind: store.KindSource, Source: src.String()}
	}
	return ids
}

// keyReader is what loading needs of a *store.DB or *store.Tx.
type keyReader interface {
	GetKeyState(ctx context.Context, id store.KeyID) (store.KeyState, error)
}

// loadedKey is one key as read: its value restored to the current instant,
// the store version it was read at (0: no row), and whether this boot
// wrote it. The persistence rule (storeKey) needs all three.
type loadedKey struct {
	value   model.Pair
	version int64
	ours    bool
}

// loaded is a View with what was read of each of its keys.
type loaded struct {
	view model.View
	keys [model.NumKinds]loadedKey
}

// fromStored restores a stored key (version 0: no row, a fresh open key).
func (s *Service) fromStored(id store.KeyID, st storedKey, now model.Instant, wall int64) loadedKey {
	if st.version == 0 {
		return loadedKey{ours: true}
	}
	return loadedKey{value: s.restore(id, st.version, st.sk, now, wall), version: st.version, ours: st.sk.BootID == s.bootID}
}

func (l *loaded) set(k model.Kind, lk loadedKey) {
	l.keys[k] = lk
	switch k {
	case model.KindPair:
		l.view.Pair = lk.value
	case model.KindSource:
		l.view.Source = lk.value.Key
	case model.KindPrincipal:
		l.view.Principal = lk.value.Key
	case model.KindConsole:
		l.view.Console = lk.value.Key
	}
}

func (s *Service) loadKey(ctx context.Context, q keyReader, id store.KeyID, now model.Instant, wall int64) (loadedKey, error) {
	ks, err := q.GetKeyState(ctx, id)
	if errors.Is(err, store.ErrNotFound) {
		return loadedKey{ours: true}, nil
	}
	if err != nil {
		return loadedKey{}, fmt.Errorf("auth: load %s: %w", id, err)
	}
	sk, err := DecodeKey(ks.State)
	if err != nil {
		return loadedKey{}, fmt.Errorf("auth: load %s: %w", id, err)
	}
	return s.fromStored(id, storedKey{sk: sk, version: ks.Version}, now, wall), nil
}

// restore brings a stored key, read at the given store version, to the
// current instant:
//
//   - a key this boot wrote, by the monotonic clock: a wall step never
//     counts (R-MONO);
//   - a key an earlier boot wrote, as of this boot's start, by the wall
//     clock then (R-RESTART: remaining' = remaining − clamp(wall_now −
//     wall_saved)), so a wall step after the restart is not time served
//     either;
//   - a key another process wrote while this one runs (the console CLI,
//     with its own boot id and instants), by the wall clock now: the two
//     processes share only that. A wall step between its write and now
//     counts; the step watch re-anchors every key within seconds of one.
func (s *Service) restore(id store.KeyID, version int64, sk StoredKey, now model.Instant, wall int64) model.Pair {
	switch {
	case sk.BootID == s.bootID:
		// Written by this boot: its instants are this boot's, exactly.
		// Restoring "at SavedAt with no wall time served" says so without
		// reference to now, which may be earlier than SavedAt (a caller
		// that read the clock before a login committed, as Reanchor does):
		// measuring served time from now would clamp the negative span to
		// 0 and move every instant back by it, shortening locks
		// (INV-NOSHORTEN; the soak found it).
		return model.Restore(sk.Snapshot, sk.SavedAt, sk.Snapshot.WallAnchor)
	case s.preBoot[keyHash(id)] == preBootKey{version: version, anchor: sk.Snapshot.WallAnchor}:
		return model.Restore(sk.Snapshot, s.bootInstant, s.bootWall)
	}
	return model.Restore(sk.Snapshot, now, wall)
}

// preBootKey is a key as it was stored when the service started.
type preBootKey struct{ version, anchor int64 }

// keyHash names a key in preBoot in 8 bytes rather than its strings (a
// flood leaves many keys); a collision would also need equal versions and
// nanosecond anchors to matter.
func keyHash(id store.KeyID) uint64 {
	h := fnv.New64a()
	h.Write([]byte(id.Kind))
	h.Write([]byte{0})
	h.Write([]byte(id.Principal))
	h.Write([]byte{0})
	h.Write([]byte(id.Source))
	return h.Sum64()
}

// keyWriter is what storing needs of a *store.Tx.
type keyWriter interface {
	keyReader
	PutKeyState(ctx context.Context, ks store.KeyState) (int64, error)
	DeleteKeyState(ctx context.Context, id store.KeyID) error
}

// errStale means a key changed since it was read (another process, such
// as the console, wrote it): decide again.
var errStale = errors.New("key state changed since it was read")

// needsWrite is the persistence rule: an act writes a key when it changed
// the key, or when the stored key is an earlier boot's (so that from now
// on it is restored by instants, R-MONO). An unchanged key of this boot
// stays as it is: a flood of refusals writes no key at all.
func (lk loadedKey) needsWrite(after model.Pair) bool { return !lk.ours || after != lk.value }

// storeKey writes one key at instant now and wall time wall if the
// persistence rule (or force: re-anchoring) says so, and only if it is
// still at the version it was read at; a key that became zero is deleted.
func (s *Service) storeKey(ctx context.Context, tx keyWriter, id store.KeyID, lk loadedKey, pr model.Pair, now model.Instant, wall int64, force bool) error {
	_, _, err := s.storeKeyWritten(ctx, tx, id, lk, pr, now, wall, force)
	return err
}

// storeKeyWritten is storeKey reporting whether it wrote and what is
// stored after it, as a read would return it (version 0: no row), for the
// key cache.
func (s *Service) storeKeyWritten(ctx context.Context, tx keyWriter, id store.KeyID, lk loadedKey, pr model.Pair, now model.Instant, wall int64, force bool) (storedKey, bool, error) {
	if !force && !lk.needsWrite(pr) {
		return storedKey{}, false, nil
	}
	if s.racy {
		if ks, err := tx.GetKeyState(ctx, id); err == nil {
			lk.version = ks.Version
		} else {
			lk.version = 0
		}
	}
	if pr == (model.Pair{}) {
		if lk.version == 0 {
			return storedKey{}, true, nil
		}
		// Deleting has no compare-and-swap of its own.
		ks, err := tx.GetKeyState(ctx, id)
		switch {
		case errors.Is(err, store.ErrNotFound):
			return storedKey{}, false, errStale
		case err != nil:
			return storedKey{}, false, fmt.Errorf("auth: store %s: %w", id, err)
		case ks.Version != lk.version:
			return storedKey{}, false, errStale
		}
		return storedKey{}, true, tx.DeleteKeyState(ctx, id)
	}
	snap := model.Persist(pr, now, wall)
	sk := StoredKey{Snapshot: snap, BootID: s.bootID, SavedAt: now}
	version, err := tx.PutKeyState(ctx, store.KeyState{
		KeyID:        id,
		Mode:         storeMode(pr.Mode),
		State:        EncodeKey(sk),
		RemainingNS:  int64(snap.RemainingAt()),
		WallAnchorNS: wall,
		Version:      lk.version,
	})
	if errors.Is(err, store.ErrVersionConflict) {
		return storedKey{}, false, errStale
	}
	return storedKey{sk: sk, version: version}, err == nil, err
}

func storeMode(m model.Mode) store.KeyMode {
	switch m {
	case model.Locked:
		return store.ModeLocked
	case model.Held:
		return store.ModeHeld
	}
	return store.ModeOpen
}

// viewKeys splits a View into its keys, indexed by kind.
func viewKeys(v model.View) [model.NumKinds]model.Pair {
	return [model.NumKinds]model.Pair{
		model.KindPair:      v.Pair,
		model.KindSource:    {Key: v.Source},
		model.KindPrincipal: {Key: v.Principal},
		model.KindConsole:   {Key: v.Console},
	}
}

// viewNeedsWrite reports whether storing v would write any key.
func viewNeedsWrite(ids [model.NumKinds]store.KeyID, l *loaded, v model.View) bool {
	after := viewKeys(v)
	for k := model.Kind(0); k < model.NumKinds; k++ {
		if ids[k].Kind != "" && l.keys[k].needsWrite(after[k]) {
			return true
		}
	}
	return false
}

// storeView stores the keys of v that need it, recording in w what it
// wrote.
func (s *Service) storeView(ctx context.Context, tx keyWriter, ids [model.NumKinds]store.KeyID, l *loaded, v model.View, now model.Instant, wall int64, w *writtenKeys) error {
	after := viewKeys(v)
	*w = writtenKeys{}
	for k := model.Kind(0); k < model.NumKinds; k++ {
		if ids[k].Kind == "" {
			continue
		}
		var err error
		if w.keys[k], w.did[k], err = s.storeKeyWritten(ctx, tx, ids[k], l.keys[k], after[k], now, wall, false); err != nil {
			return err
		}
	}
	return nil
}

// writtenKeys is what storeView wrote, by kind.
type writtenKeys struct {
	keys [model.NumKinds]storedKey
	did  [model.NumKinds]bool
}

func mustJSON(v any) json.RawMessage {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return b
}
