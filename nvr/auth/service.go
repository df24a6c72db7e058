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
	// one. Key states written under another boot are restored by wall time
	// (R-RESTART), those of this boot by instants (R-MONO).
	BootID uint64
	// SessionIdle and SessionAbsolute bound sessions (0: 30 min and 12 h).
	SessionIdle, SessionAbsolute time.Duration
	Log                          *slog.Logger
}

// Service decides logins and administers users, keys and sessions.
type Service struct {
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
	s := &Service{db: db, clk: cfg.Clock, hasher: cfg.Hasher, bootID: cfg.BootID, log: cfg.Log,
		idle: cfg.SessionIdle, abs: cfg.SessionAbsolute}
	p := cfg.Policy
	s.policy.Store(&p)
	if err := s.loadDeviceKey(context.Background()); err != nil {
		return nil, err
	}
	return s, nil
}

func (s *Service) loadDeviceKey(ctx context.Context) error {
	dev, err := s.db.GetDevice(ctx)
	if err != nil {
		return fmt.Errorf("auth: device: %w", err)
	}
	k := append([]byte(nil), dev.Secret...)
	s.deviceKey.Store(&k)
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

// loaded is a View with the store versions it was read at.
type loaded struct {
	view     model.View
	versions [model.NumKinds]int64
}

func (s *Service) load(ctx context.Context, q keyReader, ids [model.NumKinds]store.KeyID, now model.Instant, wall int64) (loaded, error) {
	var l loaded
	for k := model.Kind(0); k < model.NumKinds; k++ {
		if ids[k].Kind == "" {
			continue
		}
		pr, version, err := s.loadKey(ctx, q, ids[k], now, wall)
		if err != nil {
			return l, err
		}
		l.versions[k] = version
		switch k {
		case model.KindPair:
			l.view.Pair = pr
		case model.KindSource:
			l.view.Source = pr.Key
		case model.KindPrincipal:
			l.view.Principal = pr.Key
		case model.KindConsole:
			l.view.Console = pr.Key
		}
	}
	return l, nil
}

func (s *Service) loadKey(ctx context.Context, q keyReader, id store.KeyID, now model.Instant, wall int64) (model.Pair, int64, error) {
	ks, err := q.GetKeyState(ctx, id)
	if errors.Is(err, store.ErrNotFound) {
		return model.Pair{}, 0, nil
	}
	if err != nil {
		return model.Pair{}, 0, fmt.Errorf("auth: load %s: %w", id, err)
	}
	sk, err := DecodeKey(ks.State)
	if err != nil {
		return model.Pair{}, 0, fmt.Errorf("auth: load %s: %w", id, err)
	}
	return s.restore(sk, now, wall), ks.Version, nil
}

// restore brings a stored key to the current instant: within this boot by
// the monotonic clock (a wall step never counts, R-MONO), after a reboot by
// the wall clock, clamped (R-RESTART).
func (s *Service) restore(sk StoredKey, now model.Instant, wall int64) model.Pair {
	if sk.BootID == s.bootID {
		return model.Restore(sk.Snapshot, now, sk.Snapshot.WallAnchor+int64(now.Sub(sk.SavedAt)))
	}
	return model.Restore(sk.Snapshot, now, wall)
}

// keyWriter is what storing needs of a *store.Tx.
type keyWriter interface {
	keyReader
	PutKeyState(ctx context.Context, ks store.KeyState) (int64, error)
	DeleteKeyState(ctx context.Context, id store.KeyID) error
}

// errStale means a key changed since it was loaded (another process, such
// as the console, wrote it): decide again.
var errStale = errors.New("key state changed since it was read")

// storeKey writes one key if it is still at the version it was read at.
func (s *Service) storeKey(ctx context.Context, tx keyWriter, id store.KeyID, version int64, pr model.Pair, now model.Instant, wall int64) error {
	cur := int64(0)
	ks, err := tx.GetKeyState(ctx, id)
	switch {
	case err == nil:
		cur = ks.Version
	case !errors.Is(err, store.ErrNotFound):
		return fmt.Errorf("auth: store %s: %w", id, err)
	}
	if cur != version {
		return errStale
	}
	if pr == (model.Pair{}) {
		if version == 0 {
			return nil
		}
		return tx.DeleteKeyState(ctx, id)
	}
	snap := model.Persist(pr, now, wall)
	_, err = tx.PutKeyState(ctx, store.KeyState{
		KeyID:        id,
		Mode:         storeMode(pr.Mode),
		State:        EncodeKey(StoredKey{Snapshot: snap, BootID: s.bootID, SavedAt: now}),
		RemainingNS:  int64(snap.RemainingAt()),
		WallAnchorNS: wall,
		Version:      version,
	})
	if errors.Is(err, store.ErrVersionConflict) {
		return errStale
	}
	return err
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

func (s *Service) storeView(ctx context.Context, tx keyWriter, ids [model.NumKinds]store.KeyID, l loaded, v model.View, now model.Instant, wall int64) error {
	pairs := [model.NumKinds]model.Pair{
		model.KindPair:      v.Pair,
		model.KindSource:    {Key: v.Source},
		model.KindPrincipal: {Key: v.Principal},
		model.KindConsole:   {Key: v.Console},
	}
	for k := model.Kind(0); k < model.NumKinds; k++ {
		if ids[k].Kind == "" {
			continue
		}
		if err := s.storeKey(ctx, tx, ids[k], l.versions[k], pairs[k], now, wall); err != nil {
			return err
		}
	}
	return nil
}

// detail is the JSON detail of an attempt's audit record.
type detail struct {
	Modes      map[string]string `json:"modes"`
	Effects    []string          `json:"effects,omitempty"`
	RetryAfter float64           `json:"retry_after_seconds,omitempty"`
	Remaining  *int              `json:"remaining,omitempty"`
	Scope      string            `json:"scope,omitempty"`
}

func modesJSON(d model.Decision, console bool) map[string]string {
	m := map[string]string{"principal": d.Modes[model.KindPrincipal].String(), "console": d.Modes[model.KindConsole].String()}
	if !console {
		m["pair"] = d.Modes[model.KindPair].String()
		m["source"] = d.Modes[model.KindSource].String()
	}
	return m
}

func mustJSON(v any) json.RawMessage {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return b
}
