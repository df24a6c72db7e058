package auth

import (
	"sync"
	"time"
)

// throttle limits events per key (a source, or a principal) in memory: a
// key that has seen threshold events within window is refused for
// base·2^level, at most ceiling, level rising with each refusal period and
// returning to 0 after a quiet ceiling. It is for the recovery endpoints'
// rate limits (R-RESET: recovery is itself rate-limited), not for logins:
// those are the lock model's. Like tailscale's rate.Limiter it reads no
// clock: every call takes the instant (R-MONO: monotonic, so wall-clock
// steps neither open nor extend a throttle).
//
// It remembers at most maxKeys keys. A full table first forgets keys that
// are neither refused nor counting; when every key is, failClosed decides:
// refuse the new key (a throttle on a principal, where forgetting a
// victim's key would hand an attacker fresh guesses), or forget the key
// idle longest (a throttle on sources, where refusing would let a botnet
// that fills the table shut everyone out).
type throttle struct {
	threshold  int
	window     time.Duration
	base       time.Duration
	ceiling    time.Duration
	maxKeys    int
	failClosed bool

	mu   sync.Mutex
	keys map[string]*throttleKey
}

type throttleKey struct {
	events []int64 // instants of the events within the window, oldest first
	until  int64   // refused before this instant
	level  int
	last   int64 // the latest event or refusal
}

// refusedFor is how long key is still refused at now (0: admitted).
func (t *throttle) refusedFor(key string, now int64) time.Duration {
	t.mu.Lock()
	defer t.mu.Unlock()
	k, ok := t.keys[key]
	if !ok {
		if t.failClosed && len(t.keys) >= t.maxKeys && !t.makeRoom(now) {
			return t.window
		}
		return 0
	}
	if now < k.until {
		return time.Duration(k.until - now)
	}
	return 0
}

// add records one event for key at now (check refusedFor first: an event
// while refused is not recorded) and returns how long the key is refused
// from now on (0: not refused). The event that reaches the threshold is
// the last one admitted.
func (t *throttle) add(key string, now int64) time.Duration {
	t.mu.Lock()
	defer t.mu.Unlock()
	k, ok := t.keys[key]
	if !ok {
		if len(t.keys) >= t.maxKeys && !t.makeRoom(now) {
			if t.failClosed {
				return t.window
			}
			t.forgetIdlest()
		}
		if t.keys == nil {
			t.keys = map[string]*throttleKey{}
		}
		k = &throttleKey{}
		t.keys[key] = k
	}
	if now < k.until {
		return time.Duration(k.until - now)
	}
	if now-k.last >= int64(t.ceiling) {
		k.level = 0
	}
	kept := k.events[:0]
	for _, e := range k.events {
		if now-e < int64(t.window) {
			kept = append(kept, e)
		}
	}
	k.events = append(kept, now)
	k.last = now
	if len(k.events) < t.threshold {
		return 0
	}
	d := t.base
	for i := 0; i < k.level && d < t.ceiling; i++ {
		d *= 2
	}
	d = min(d, t.ceiling)
	k.until, k.events = now+int64(d), k.events[:0]
	k.level++
	return d
}

// reset forgets key (a success clears nothing else).
func (t *throttle) reset(key string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	delete(t.keys, key)
}

// makeRoom forgets every key that is neither refused nor counting at now,
// and reports whether there is room now.
func (t *throttle) makeRoom(now int64) bool {
	for name, k := range t.keys {
		if now >= k.until && (len(k.events) == 0 || now-k.events[len(k.events)-1] >= int64(t.window)) &&
			now-k.last >= int64(t.ceiling) {
			delete(t.keys, name)
		}
	}
	return len(t.keys) < t.maxKeys
}

func (t *throttle) forgetIdlest() {
	var idlest string
	first := true
	for name, k := range t.keys {
		if first || k.last < t.keys[idlest].last {
			idlest, first = name, false
		}
	}
	delete(t.keys, idlest)
}
