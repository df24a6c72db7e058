package soak

import (
	"bytes"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/latchnvr/latch/model"
	"github.com/latchnvr/latch/model/trace"
	"github.com/latchnvr/latch/model/world"
	"github.com/latchnvr/latch/nvr/auth"
	"github.com/latchnvr/latch/nvr/store"
	"github.com/latchnvr/latch/sim"
)

func (e *Engine) simInstant() model.Instant { return model.Instant(e.simNow.Load()) }

// describe prints a decision as the comparison sees it.
func describe(d model.Decision) string {
	switch d.Verdict {
	case model.Allowed:
		return "ok"
	case model.Failed:
		return fmt.Sprintf("fail remaining=%d", d.Remaining)
	case model.Refused:
		return fmt.Sprintf("locked scope=%s retry_after=%ds (%s)", d.Scope, ceilSeconds(d.RetryAfter), d.RetryAfter)
	}
	return "admitted?"
}

func describeAnswer(a *loginAnswer) string {
	s := fmt.Sprintf("%d %s", a.status, a.raw)
	if a.retryHeader != "" {
		s += " Retry-After: " + a.retryHeader
	}
	return s
}

// compare checks one answer against the shadow's decision d (taken at the
// instant the server decided at) and records a disagreement with the
// trace line that caused it. before is the shadow's view before deciding.
func (e *Engine) compare(pr model.Principal, src model.Source, text string, now model.Instant, a *loginAnswer, d model.Decision, before model.View) {
	var why []string
	switch a.status {
	case http.StatusOK:
		if d.Verdict != model.Allowed {
			why = append(why, "verdict")
		}
	case http.StatusUnauthorized:
		switch {
		case a.errCode != "invalid_credentials":
			why = append(why, "error "+a.errCode)
		case d.Verdict != model.Failed:
			why = append(why, "verdict")
		case a.remaining == nil || *a.remaining != d.Remaining:
			why = append(why, "remaining_attempts")
		}
	case http.StatusTooManyRequests:
		switch {
		case a.errCode != "locked":
			why = append(why, "error "+a.errCode)
		case d.Verdict != model.Refused:
			why = append(why, "verdict")
		case a.scope != d.Scope.String():
			why = append(why, "scope")
		default:
			got := int64(0)
			if a.retryAfter != nil {
				got = *a.retryAfter
			}
			want := ceilSeconds(d.RetryAfter)
			if d.Scope == model.ScopePrincipal || d.Scope == model.ScopeDisabled {
				want = 0 // R-DISCLOSE: not told
			}
			if got != want {
				why = append(why, "retry_after")
			}
		}
	default:
		why = append(why, "status")
	}
	// P-NODOS: a declared admin from a familiar source is refused only for
	// its own pair or source.
	if acc := e.accounts[pr]; acc != nil && acc.admin && before.Pair.Familiar &&
		model.Instant(a.instant).Sub(before.Pair.LastSuccess) < e.policy.TrustTTL {
		e.rep.AdminFamiliar++
		if a.status == http.StatusTooManyRequests {
			if a.scope == "pair" || a.scope == "source" {
				e.rep.AdminFamiliarOwnLock++
			} else {
				e.rep.AdminFamiliarRefused++
				e.problem("boot %d: admin %s refused from familiar source %s at %s: %s", e.boot, pr, src, sim.FormatDuration(time.Duration(now)), describeAnswer(a))
			}
		}
	}
	if len(why) == 0 {
		return
	}
	e.rep.Disagreements++
	if len(e.rep.Examples) < e.opt.KeepDisagreements {
		var buf bytes.Buffer
		_ = trace.NewWriter(&buf).Write(trace.Line{At: trace.At(time.Duration(now)), User: string(pr), Source: src.String(), Password: text})
		e.rep.Examples = append(e.rep.Examples, Disagreement{Boot: e.boot, Instant: a.instant,
			Trace: bytes.TrimSpace(buf.Bytes()), Server: describeAnswer(a), Model: describe(d), Why: strings.Join(why, ",")})
	}
}

// keyPair reads one shadow key by its store identity (non-pair keys in
// Pair.Key), and whether the identity belongs to the shadow's world.
func (e *Engine) keyPair(id store.KeyID, srcs map[string]model.Source) (model.Pair, bool) {
	switch id.Kind {
	case store.KindPair:
		src, ok := srcs[id.Source]
		if !ok || !e.isPrincipal(id.Principal) {
			return model.Pair{}, false
		}
		return e.shadow.Pairs[world.PairID{Principal: model.Principal(id.Principal), Source: src}], true
	case store.KindSource:
		src, ok := srcs[id.Source]
		if !ok {
			return model.Pair{}, false
		}
		return model.Pair{Key: e.shadow.Sources[src]}, true
	case store.KindPrincipal:
		if !e.isPrincipal(id.Principal) {
			return model.Pair{}, false
		}
		return model.Pair{Key: e.shadow.Principals[model.Principal(id.Principal)]}, true
	case store.KindConsole:
		if !e.isPrincipal(id.Principal) {
			return model.Pair{}, false
		}
		return model.Pair{Key: e.shadow.Consoles[model.Principal(id.Principal)]}, true
	}
	return model.Pair{}, false
}

func (e *Engine) isPrincipal(name string) bool {
	if name == adminUser {
		return true
	}
	_, ok := e.principalIDs()[model.Principal(name)]
	return ok
}

func (e *Engine) principalIDs() map[model.Principal]struct{} {
	if e.prSet == nil || len(e.prSet) < len(e.uni.Principals) {
		e.prSet = make(map[model.Principal]struct{}, len(e.uni.Principals))
		for _, p := range e.uni.Principals {
			e.prSet[p] = struct{}{}
		}
	}
	return e.prSet
}

// sources maps the store's source strings to the shadow's sources.
func (e *Engine) sources() map[string]model.Source {
	m := make(map[string]model.Source, len(e.uni.Sources)+1)
	for _, s := range e.uni.Sources {
		m[s.String()] = s
	}
	m[adminSource.String()] = adminSource
	return m
}

// storeID names a shadow key in store terms.
func pairID(id world.PairID) store.KeyID {
	return store.KeyID{Kind: store.KindPair, Principal: string(id.Principal), Source: id.Source.String()}
}

// eachShadowKey visits every key the shadow holds.
func (e *Engine) eachShadowKey(f func(store.KeyID, model.Pair)) {
	for id, p := range e.shadow.Pairs {
		f(pairID(id), p)
	}
	for s, k := range e.shadow.Sources {
		f(store.KeyID{Kind: store.KindSource, Source: s.String()}, model.Pair{Key: k})
	}
	for p, k := range e.shadow.Principals {
		f(store.KeyID{Kind: store.KindPrincipal, Principal: string(p)}, model.Pair{Key: k})
	}
	for p, k := range e.shadow.Consoles {
		f(store.KeyID{Kind: store.KindConsole, Principal: string(p)}, model.Pair{Key: k})
	}
}

// dbKey is one row of key_states.
type dbKey struct {
	id    store.KeyID
	state []byte
	sk    auth.StoredKey
}

// reconcile compares the database's key states, read while the server is
// down, with the shadow, and prepares the snapshots the shadow restores
// from at the next boot (see the package doc, "Restarts").
//
// A key the boot that just ended wrote (its BootID) holds its snapshot
// relative to SavedAt with the wall anchor of that moment: shifted back to
// absolute instants it must equal the shadow's key exactly (every
// acknowledged failure, lock, extension, level, fingerprint and familiar
// source is there). A key that boot never wrote must still be, byte for
// byte, what the database held at the previous restart, and the shadow
// must not have changed it either (it holds what it restored then).
func (e *Engine) reconcile(rows []dbKey, ended *BootInfo) {
	srcs := e.sources()
	snaps := map[store.KeyID]model.Snapshot{}
	remembered := map[store.KeyID][]byte{}
	seen := map[store.KeyID]bool{}
	bad := 0
	for _, r := range rows {
		want, ok := e.keyPair(r.id, srcs)
		if !ok {
			continue
		}
		seen[r.id] = true
		e.rep.Keys.Checked++
		remembered[r.id] = r.state
		if r.sk.BootID == ended.BootID {
			got := model.Restore(r.sk.Snapshot, r.sk.SavedAt, r.sk.Snapshot.WallAnchor)
			if got != want {
				bad++
				e.problem("boot %d: key %s as persisted differs from the model's: persisted %s, model %s", ended.Boot, r.id, fmtPair(got), fmtPair(want))
			}
			// The shadow's own state, persisted at the server's anchor.
			snaps[r.id] = model.Persist(want, r.sk.SavedAt, r.sk.Snapshot.WallAnchor)
			continue
		}
		rem, had := e.remembered[r.id]
		if !had || !bytes.Equal(rem, r.state) {
			bad++
			e.problem("boot %d: key %s was not written by the boot that ended (boot id %x) but is not what the database held at its start", ended.Boot, r.id, r.sk.BootID)
		} else if exp := model.Restore(r.sk.Snapshot, model.Instant(ended.BootInstant), ended.BootWall); exp != want {
			bad++
			e.problem("boot %d: key %s changed in the model (%s) but the server never wrote it (%s)", ended.Boot, r.id, fmtPair(want), fmtPair(exp))
		}
		snaps[r.id] = r.sk.Snapshot
	}
	e.eachShadowKey(func(id store.KeyID, p model.Pair) {
		if seen[id] || p == (model.Pair{}) {
			return
		}
		bad++
		e.problem("boot %d: key %s is in the model (%s) but not in the database", ended.Boot, id, fmtPair(p))
		snaps[id] = model.Persist(p, model.Instant(e.lastInst), e.lastWall)
	})
	e.snaps, e.remembered = snaps, remembered
	if bad > 0 {
		e.logf("boot %d: %d keys differ from the model", ended.Boot, bad)
	}
}

// restoreShadow rebuilds the shadow from the snapshots as the server
// restores them: model.Restore at the new boot's instant and wall clock.
func (e *Engine) restoreShadow(bootInstant, bootWall int64) {
	srcs := e.sources()
	w := world.New(e.policy)
	for id, snap := range e.snaps {
		p := model.Restore(snap, model.Instant(bootInstant), bootWall)
		if p == (model.Pair{}) {
			continue
		}
		e.rep.Keys.Restored++
		switch id.Kind {
		case store.KindPair:
			w.Pairs[world.PairID{Principal: model.Principal(id.Principal), Source: srcs[id.Source]}] = p
		case store.KindSource:
			w.Sources[srcs[id.Source]] = p.Key
		case store.KindPrincipal:
			w.Principals[model.Principal(id.Principal)] = p.Key
		case store.KindConsole:
			w.Consoles[model.Principal(id.Principal)] = p.Key
		}
	}
	e.shadow = w
}

func fmtPair(p model.Pair) string {
	k := p.Key
	s := fmt.Sprintf("{%s level %d until %d locked_at %d quiet %d failures %v", k.Mode, k.Level, k.Until, k.LockedAt, k.QuietFrom, k.Failures[:k.NFail])
	if k.Disabled {
		s += " disabled"
	}
	if p.Familiar {
		s += fmt.Sprintf(" familiar since %d", p.LastSuccess)
	}
	if p.NPrints > 0 {
		s += fmt.Sprintf(" prints %v", p.Prints[:p.NPrints])
	}
	return s + "}"
}
