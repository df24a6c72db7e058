package proofs

import (
	"github.com/latchnvr/latch/model"
)

// Machine is the lock logic the explorer drives: the model's own functions
// (Model), or a deliberately broken variant of them (Mutants) that the
// explorer must catch. Every state change the explorer makes goes through a
// Machine; the explorer's own bookkeeping (making instants relative to now)
// does not.
type Machine interface {
	// Decide is model.Decide: one attempt, both phases.
	Decide(v model.View, ev model.Event, now model.Instant, p *model.Policy) (model.View, model.Decision)
	// Advance is model.Advance: R-ADVANCE on one key.
	Advance(k model.Key, kind model.Kind, now model.Instant, p *model.Policy) model.Key
	// Unlock and UnlockPair are R-UNLOCK / R-RESET on one key.
	Unlock(k model.Key) model.Key
	UnlockPair(pr model.Pair) model.Pair
	// Persist, Restore and Reanchor are R-RESTART.
	Persist(pr model.Pair, now model.Instant, wall int64) model.Snapshot
	Restore(s model.Snapshot, now model.Instant, wall int64) model.Pair
	Reanchor(s model.Snapshot, savedAt, now model.Instant, wall int64) model.Snapshot
}

// Model is the Machine of package model itself.
type Model struct{}

var _ Machine = Model{}

// Decide calls model.Decide.
func (Model) Decide(v model.View, ev model.Event, now model.Instant, p *model.Policy) (model.View, model.Decision) {
	return model.Decide(v, ev, now, p)
}

// Advance calls model.Advance.
func (Model) Advance(k model.Key, kind model.Kind, now model.Instant, p *model.Policy) model.Key {
	k, _ = model.Advance(k, kind, now, p)
	return k
}

// Unlock calls model.Unlock.
func (Model) Unlock(k model.Key) model.Key { return model.Unlock(k) }

// UnlockPair calls model.UnlockPair.
func (Model) UnlockPair(pr model.Pair) model.Pair { return model.UnlockPair(pr) }

// Persist calls model.Persist.
func (Model) Persist(pr model.Pair, now model.Instant, wall int64) model.Snapshot {
	return model.Persist(pr, now, wall)
}

// Restore calls model.Restore.
func (Model) Restore(s model.Snapshot, now model.Instant, wall int64) model.Pair {
	return model.Restore(s, now, wall)
}

// Reanchor calls model.Reanchor.
func (Model) Reanchor(s model.Snapshot, savedAt, now model.Instant, wall int64) model.Snapshot {
	return model.Reanchor(s, savedAt, now, wall)
}
