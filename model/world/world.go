// Package world keeps the lock state of a whole device in memory — every
// pair, source, principal and console key — and applies attempts and
// operations to it through the model. It is the model engine of the
// simulator, the state of `latchsim replay`, and how the explorer's
// counterexamples are replayed.
//
// It owns no clock and does no I/O; iteration order never affects results
// (every operation over many keys is commutative).
package world

import (
	"github.com/latchnvr/latch/model"
)

// PairID names a pair key.
type PairID struct {
	Principal model.Principal
	Source    model.Source
}

// World is the lock state of one device.
type World struct {
	Policy     model.Policy
	Pairs      map[PairID]model.Pair
	Sources    map[model.Source]model.Key
	Principals map[model.Principal]model.Key
	Consoles   map[model.Principal]model.Key
}

// New returns an empty world under policy p.
func New(p model.Policy) *World {
	return &World{
		Policy:     p,
		Pairs:      map[PairID]model.Pair{},
		Sources:    map[model.Source]model.Key{},
		Principals: map[model.Principal]model.Key{},
		Consoles:   map[model.Principal]model.Key{},
	}
}

// View gathers the keys an attempt by pr from src involves. A console
// attempt has the zero Source.
func (w *World) View(pr model.Principal, src model.Source) model.View {
	v := model.View{Principal: w.Principals[pr], Console: w.Consoles[pr]}
	if !src.IsZero() {
		v.Pair = w.Pairs[PairID{pr, src}]
		v.Source = w.Sources[src]
	}
	return v
}

// Store writes a View back; keys equal to the zero key are dropped, so
// memory follows the keys that hold state.
func (w *World) Store(pr model.Principal, src model.Source, v model.View) {
	if !src.IsZero() {
		put(w.Pairs, PairID{pr, src}, v.Pair)
		put(w.Sources, src, v.Source)
	}
	put(w.Principals, pr, v.Principal)
	put(w.Consoles, pr, v.Console)
}

func put[K comparable, V comparable](m map[K]V, k K, v V) {
	var zero V
	if v == zero {
		delete(m, k)
		return
	}
	m[k] = v
}

// Decide decides one attempt and stores the result.
func (w *World) Decide(pr model.Principal, src model.Source, ev model.Event, now model.Instant) model.Decision {
	if ev.Channel == model.Console {
		src = model.Source{}
	}
	v, d := model.Decide(w.View(pr, src), ev, now, &w.Policy)
	w.Store(pr, src, v)
	return d
}

// UnlockPair opens one pair and its source key (R-UNLOCK for "user, source").
func (w *World) UnlockPair(pr model.Principal, src model.Source) {
	id := PairID{pr, src}
	put(w.Pairs, id, model.UnlockPair(w.Pairs[id]))
	put(w.Sources, src, model.Unlock(w.Sources[src]))
}

// UnlockPrincipal opens every key of a principal: the principal, its
// console key and all its pairs (R-UNLOCK "all keys of a principal", and
// the key side of R-RESET).
func (w *World) UnlockPrincipal(pr model.Principal) {
	put(w.Principals, pr, model.Unlock(w.Principals[pr]))
	put(w.Consoles, pr, model.Unlock(w.Consoles[pr]))
	for id, p := range w.Pairs {
		if id.Principal == pr {
			put(w.Pairs, id, model.UnlockPair(p))
		}
	}
}

// UnlockAll opens every key (R-UNLOCK "everything").
func (w *World) UnlockAll() {
	for id, p := range w.Pairs {
		put(w.Pairs, id, model.UnlockPair(p))
	}
	for s, k := range w.Sources {
		put(w.Sources, s, model.Unlock(k))
	}
	for pr, k := range w.Principals {
		put(w.Principals, pr, model.Unlock(k))
	}
	for pr, k := range w.Consoles {
		put(w.Consoles, pr, model.Unlock(k))
	}
}

// SetDisabled disables or enables a principal (an admin act, not a lock).
func (w *World) SetDisabled(pr model.Principal, disabled bool) {
	k := w.Principals[pr]
	k.Disabled = disabled
	put(w.Principals, pr, k)
}

// FactoryReset erases every key (R-FACTORY).
func (w *World) FactoryReset() {
	*w = *New(w.Policy)
}

// Restart persists every key at (now, wallBefore) and restores it at
// (now, wallAfter), as a reboot does (R-RESTART).
func (w *World) Restart(now model.Instant, wallBefore, wallAfter int64) {
	for id, p := range w.Pairs {
		put(w.Pairs, id, model.Restore(model.Persist(p, now, wallBefore), now, wallAfter))
	}
	restore := func(k model.Key) model.Key {
		return model.RestoreKey(model.PersistKey(k, now, wallBefore), now, wallAfter)
	}
	for s, k := range w.Sources {
		put(w.Sources, s, restore(k))
	}
	for pr, k := range w.Principals {
		put(w.Principals, pr, restore(k))
	}
	for pr, k := range w.Consoles {
		put(w.Consoles, pr, restore(k))
	}
}
