package model

import (
	"math"
	"time"
)

// Snapshot is a key as persisted (R-RESTART): every instant is stored
// relative to the moment of saving (so Until is the remaining duration and
// a failure's time is minus its age), with the wall clock of that moment as
// the anchor. Instants do not survive a reboot; durations and the anchor do.
type Snapshot struct {
	Pair Pair // relative instants; for non-pair keys only Pair.Key is used
	// WallAnchor is the wall clock (Unix nanoseconds) when the snapshot was
	// taken or last re-anchored.
	WallAnchor int64
}

// Persist snapshots a pair key at instant now and wall time wall.
func Persist(pr Pair, now Instant, wall int64) Snapshot {
	return Snapshot{Pair: shiftPair(pr, -int64(now)), WallAnchor: wall}
}

// PersistKey snapshots a non-pair key.
func PersistKey(k Key, now Instant, wall int64) Snapshot {
	return Persist(Pair{Key: k}, now, wall)
}

// Restore brings a snapshot back at instant now and wall time wall:
// remaining' = remaining − clamp(wall − anchor, 0, remaining) (R-RESTART).
// A wall clock that went backwards (an RTC reset to 1970) counts as no time
// served, so it never lengthens a lock; a reboot never unlocks by itself,
// only time served does. Ages grow by the same served time, so windows,
// decay and familiarity see the downtime that the wall clock vouches for.
func Restore(s Snapshot, now Instant, wall int64) Pair {
	served := satAdd(wall, satNeg(s.WallAnchor))
	if served < 0 {
		served = 0
	}
	if served > int64(MaxDuration) {
		served = int64(MaxDuration)
	}
	return shiftPair(s.Pair, satAdd(int64(now), -served))
}

// RestoreKey brings back a non-pair key.
func RestoreKey(s Snapshot, now Instant, wall int64) Key {
	return Restore(s, now, wall).Key
}

// Reanchor is what a running service does when it sees the wall clock step
// (or shuts down cleanly): snapshot again at the current instant, so a
// later restart never counts the step as time served (R-RESTART).
func Reanchor(s Snapshot, savedAt, now Instant, wall int64) Snapshot {
	return Persist(shiftPair(s.Pair, int64(savedAt)), now, wall)
}

// shiftPair moves every meaningful instant of a pair by delta, saturating;
// Forever stays Forever and unused fields stay zero so states compare equal.
func shiftPair(pr Pair, delta int64) Pair {
	sh := func(i Instant) Instant {
		if i == Forever {
			return Forever
		}
		return Instant(satAdd(int64(i), delta))
	}
	k := &pr.Key
	if k.Mode != Open {
		k.Until = sh(k.Until)
		k.LockedAt = sh(k.LockedAt)
	}
	if k.Level > 0 {
		k.QuietFrom = sh(k.QuietFrom)
	}
	for i := 0; i < int(k.NFail); i++ {
		k.Failures[i] = sh(k.Failures[i])
	}
	if pr.Familiar {
		pr.LastSuccess = sh(pr.LastSuccess)
	}
	for i := 0; i < int(pr.NPrints); i++ {
		pr.Prints[i].Seen = sh(pr.Prints[i].Seen)
	}
	return pr
}

// RemainingAt is the lock time left in a snapshot, for the store's
// remaining_ns column (a person reads it; Restore does not).
func (s Snapshot) RemainingAt() time.Duration {
	k := s.Pair.Key
	switch {
	case k.Mode == Open:
		return 0
	case k.Until == Forever:
		return time.Duration(math.MaxInt64)
	case k.Until < 0:
		return 0
	}
	return time.Duration(k.Until)
}
