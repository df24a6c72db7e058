package auth

import (
	"context"
	"sync"
	"sync/atomic"

	"github.com/latchnvr/latch/model"
	"github.com/latchnvr/latch/nvr/store"
)

// keyCache is an exact in-memory copy of the stored keys and users that
// recent attempts read: what reader.readAttempt would return. A flood of
// refusals decides from it without reading SQLite while holding the
// principal's stripe, which was the serial part of a flood on one pair.
// Entries are the stored form (version and StoredKey, as read), restored
// to the attempt's instant exactly as a read would be, so the cache knows
// nothing of policies, clocks or boots.
//
// # Why a hit is the stored state
//
// Every write of key_states or users is of one of three kinds, and each
// keeps the copy exact:
//
//   - Login's own writes. Login holds the stripes of every key it reads or
//     writes (a pair key is under its principal's stripe, a source key
//     under its source's), and so does every Login that reads the key
//     from the cache. After its commit, still holding them, it puts what
//     it committed into the cache (put), or drops its keys if the commit
//     failed (drop). Login's other writes (a weak password's flag, TOTP
//     steps, recovery codes) touch no column the cache holds.
//   - Every other write in this process (unlock, reset, disable, user
//     changes, re-anchoring, factory reset) runs through Service.writeTx,
//     which marks the cache busy and empties it before its transaction
//     begins and empties it again after the transaction ended; while busy,
//     nothing is looked up or filled.
//   - Writes by another process (the console CLI beside `latch serve`) or
//     another store.DB on the file. This process cannot see them happen;
//     it learns of them in its next group commit: every batch asks
//     store.Tx.OthersCommitted first, and a yes empties the cache and
//     moves the epoch on. A decision made from the cache commits only if
//     the epoch of its batch is still the one it looked up under
//     (fresh); otherwise it writes nothing and decides again from SQLite.
//
// A fill (after a read from SQLite) carries the generation from before the
// read and is dropped if anything emptied the cache since: a write that
// committed between the read and the fill cannot be overwritten by the
// older value.
//
// # Linearizability
//
// A refusal that changes no key (a flood's common case) decided from a hit
// at instant t linearizes at t, as one decided from a read linearizes at
// the read: at t the cache was not busy and the entries were present, so
// no write of this process was in flight and none committed since the
// entries were read or put (a commit would have emptied the cache, or,
// for Login's own writes, put its result, under the stripes this attempt
// holds); and its batch's OthersCommitted, which runs after t, said no
// other connection committed since the check that preceded the entries'
// read or put. So the stored keys at t were the entries, and the decision
// is model.Decide's on the state at t (R-ADMIT). Its audit count commits
// before the answer (R-ATOMIC, R-AUDIT), as before; a write that commits
// between t and that commit is ordered after the refusal, which is allowed
// because the refusal's interval contains t.
//
// An attempt decided from a hit that does write keys commits them with
// compare-and-swap on the versions it looked up, as with a read, and is
// also subject to fresh. Anything else the cache cannot vouch for (an
// error, a busy cache, a miss) is a read from SQLite, as before.
//
// The racy test service (no stripes) uses no cache: it must stay as broken
// as it was, for the linearizability checker to catch.
type keyCache struct {
	mu    sync.Mutex
	keys  map[store.KeyID]storedKey
	users map[model.Principal]userRow
	// gen moves on whenever the cache is emptied.
	gen uint64
	// busy counts this process's writes outside Login in flight.
	busy int
	// epoch moves on whenever a batch learns that another connection
	// committed; read without the mutex by fresh.
	epoch atomic.Uint64
}

// maxCacheEntries bounds the cache (keys plus users): a botnet's sources
// must not grow it without end. Evicting is always safe: a miss reads.
const maxCacheEntries = 1 << 16

func newKeyCache() *keyCache {
	return &keyCache{keys: map[store.KeyID]storedKey{}, users: map[model.Principal]userRow{}}
}

// cacheTag is what a lookup or a read saw: the generation (for a fill) and
// the epoch (for fresh).
type cacheTag struct {
	gen, epoch uint64
	hit, ok    bool // hit: the decision is from the cache; ok: fill allowed
}

// lookup returns an attempt's keys and user if all of them are cached and
// the cache is not busy; otherwise a tag for filling after a read.
func (c *keyCache) lookup(ids *[model.NumKinds]store.KeyID, pr model.Principal) (keys [model.NumKinds]storedKey, u userRow, tag cacheTag) {
	c.mu.Lock()
	defer c.mu.Unlock()
	tag = cacheTag{gen: c.gen, epoch: c.epoch.Load(), ok: c.busy == 0}
	if c.busy != 0 {
		return keys, u, tag
	}
	var ok bool
	if u, ok = c.users[pr]; !ok {
		return keys, u, tag
	}
	for k := range ids {
		if ids[k].Kind == "" {
			continue
		}
		if keys[k], ok = c.keys[ids[k]]; !ok {
			return [model.NumKinds]storedKey{}, userRow{}, tag
		}
	}
	tag.hit = true
	return keys, u, tag
}

// fill stores what a read returned, unless the cache was emptied (or was
// busy) since the tag was taken.
func (c *keyCache) fill(tag cacheTag, ids *[model.NumKinds]store.KeyID, pr model.Principal, keys *[model.NumKinds]storedKey, u userRow) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !tag.ok || c.busy != 0 || c.gen != tag.gen {
		return
	}
	c.makeRoom(int(model.NumKinds) + 1)
	c.users[pr] = u
	for k := range ids {
		if ids[k].Kind != "" {
			c.keys[ids[k]] = keys[k]
		}
	}
}

// put records keys Login committed (version 0: deleted), under the stripes
// that guard them. Unless the cache was emptied since tag (taken before
// the commit): a write of this process outside Login may have followed.
func (c *keyCache) put(tag cacheTag, ids *[model.NumKinds]store.KeyID, w *writtenKeys) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !tag.ok || c.busy != 0 || c.gen != tag.gen {
		return
	}
	c.makeRoom(int(model.NumKinds))
	for k := range ids {
		if w.did[k] {
			c.keys[ids[k]] = w.keys[k]
		}
	}
}

// dropUser forgets a principal's user row (Login found it changed).
func (c *keyCache) dropUser(pr model.Principal) {
	c.mu.Lock()
	delete(c.users, pr)
	c.mu.Unlock()
}

// tag is the cache's state now, for a put after a commit.
func (c *keyCache) tag() cacheTag {
	c.mu.Lock()
	defer c.mu.Unlock()
	return cacheTag{gen: c.gen, epoch: c.epoch.Load(), ok: c.busy == 0}
}

// attemptCache is the cache Login uses: none for the racy test service.
func (s *Service) attemptCache() *keyCache {
	if s.racy {
		return nil
	}
	return s.cache
}

// readKeys returns an attempt's keys and user: from the cache when it
// holds all of them, else read from SQLite (and cached).
func (s *Service) readKeys(ctx context.Context, c *keyCache, ids *[model.NumKinds]store.KeyID, pr model.Principal, src string) ([model.NumKinds]storedKey, userRow, cacheTag, error) {
	if c == nil {
		keys, u, err := s.reader.readAttempt(ctx, pr, src)
		return keys, u, cacheTag{}, err
	}
	keys, u, tag := c.lookup(ids, pr)
	if tag.hit {
		return keys, u, tag, nil
	}
	keys, u, err := s.reader.readAttempt(ctx, pr, src)
	if err == nil {
		c.fill(tag, ids, pr, &keys, u)
	}
	return keys, u, tag, err
}

// drop forgets an attempt's keys (its commit failed: what is stored is
// not known).
func (c *keyCache) drop(ids *[model.NumKinds]store.KeyID) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for k := range ids {
		if ids[k].Kind != "" {
			delete(c.keys, ids[k])
		}
	}
}

// makeRoom empties the cache when n more entries would not fit: simpler
// than choosing victims, and a flood's working set refills it at once.
// Called with mu held.
func (c *keyCache) makeRoom(n int) {
	if len(c.keys)+len(c.users)+n > maxCacheEntries {
		c.clear()
	}
}

// clear empties the cache. Called with mu held.
func (c *keyCache) clear() {
	clear(c.keys)
	clear(c.users)
	c.gen++
}

// beginWrite and endWrite bracket a write transaction of this process
// outside Login.
func (c *keyCache) beginWrite() {
	c.mu.Lock()
	c.busy++
	c.clear()
	c.mu.Unlock()
}

func (c *keyCache) endWrite() {
	c.mu.Lock()
	c.busy--
	c.clear()
	c.mu.Unlock()
}

// checkOthers runs first in every group commit: if another connection may
// have committed since the previous batch, the cache is emptied and the
// epoch moves on, so the batch's decisions made from the cache write
// nothing and decide again.
func (c *keyCache) checkOthers(ctx context.Context, tx *store.Tx) {
	changed, _ := tx.OthersCommitted(ctx) // an error answers true
	if !changed {
		return
	}
	c.mu.Lock()
	c.clear()
	c.epoch.Add(1)
	c.mu.Unlock()
}

// fresh reports whether a decision made from the cache under tag may
// commit: no batch since learned of another connection's commit. Call it
// inside a group commit, after its checkOthers.
func (c *keyCache) fresh(tag cacheTag) bool {
	return c == nil || !tag.hit || c.epoch.Load() == tag.epoch
}

// writeTx runs fn in a write transaction of its own with the cache
// bracketed (see keyCache): every write of key_states or users outside
// Login goes through it. Writes of other tables (sessions, audit
// housekeeping) may use the store directly.
func (s *Service) writeTx(ctx context.Context, fn func(tx *store.Tx) error) error {
	if s.cache != nil {
		s.cache.beginWrite()
		defer s.cache.endWrite()
	}
	return s.db.WithTx(ctx, fn)
}
