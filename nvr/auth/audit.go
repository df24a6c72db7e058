package auth

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"strconv"
	"time"

	"github.com/latchnvr/latch/model"
	"github.com/latchnvr/latch/nvr/store"
)

// auditAttempt writes the attempt's record and one record per key whose
// mode or level changed (R-AUDIT). A refusal, and the extension of the
// pair's lock it may cause (R-EXTEND), go through the per-key, per-minute
// aggregation, so a flood of refusals is a counter, not rows.
func (s *Service) auditAttempt(ctx context.Context, tx *store.Tx, pr model.Principal, a Attempt, before, after model.View, d model.Decision, totpRequired bool, now model.Instant, wall int64) error {
	console := a.Channel == model.Console
	src := ""
	if !console {
		src = a.Source.String()
	}
	var (
		rec    store.AuditRecord
		err    error
		bucket int64
	)
	refusal := d.Verdict == model.Refused && !totpRequired
	if refusal {
		rec, bucket = s.refusalRecord(pr, a.Channel, src, d, now, wall)
		_, _, err = tx.AppendOrAggregateRefusal(ctx, rec, bucket)
	} else {
		rec = store.AuditRecord{
			WallNS: wall, InstantNS: int64(now), Principal: string(pr), Source: src,
			Channel: store.Channel(a.Channel.String()), Count: 1, FirstWallNS: wall, LastWallNS: wall,
		}
		remaining := -1
		switch {
		case totpRequired:
			rec.Outcome, rec.Reason = "totp_required", "right password; second factor needed"
		case d.Verdict == model.Allowed:
			rec.Outcome, rec.Reason = "success", "right secret (R-SUCCESS)"
		case d.Effects&model.EffRepeat != 0:
			rec.Outcome, rec.Reason = "repeat", "repeated wrong secret: recorded, not counted (R-REPLAY)"
		case d.Effects&model.EffCounted == 0:
			rec.Outcome, rec.Reason = "wrong_secret", "wrong secret; protection disabled"
		default:
			rec.Outcome, rec.Reason = "wrong_secret", "wrong secret: counted (R-FAIL)"
			remaining = d.Remaining
		}
		rec.Detail = detailJSON(d, console, false, remaining)
		_, err = tx.AppendAudit(ctx, rec)
	}
	if err != nil {
		return fmt.Errorf("audit: %w", err)
	}
	type change struct {
		kind   model.Kind
		before model.Key
		after  model.Key
	}
	var buf [model.NumKinds]change // on the stack: no allocation per attempt
	changes := append(buf[:0], change{model.KindPrincipal, before.Principal, after.Principal}, change{model.KindConsole, before.Console, after.Console})
	if !console {
		changes = append(changes, change{model.KindPair, before.Pair.Key, after.Pair.Key}, change{model.KindSource, before.Source, after.Source})
	}
	for _, c := range changes {
		outcome, reason := keyChange(c.before, c.after, now)
		if outcome == "" {
			continue
		}
		r := rec
		r.Aggregate, r.KeyKind, r.Outcome, r.Reason = false, store.KeyKind(c.kind.String()), outcome, reason
		if c.kind == model.KindSource || c.kind == model.KindPair {
			r.Source = src
		}
		if c.kind == model.KindSource {
			r.Principal = ""
		}
		r.Detail = keyDetailJSON(c.after, now)
		if refusal && outcome == "extend" {
			// The extension a refused attempt makes (R-EXTEND) happens at
			// every refusal on a locked pair once time has moved, so it is
			// aggregated like the refusal itself (R-AUDIT: per key per
			// minute, with count, first and last): otherwise a flood on a
			// locked pair would add a chained row per attempt and fill the
			// disk. The row keeps the first extension's detail; the lock
			// then runs until extendOnAttempt after last_wall_ns.
			r.Aggregate, r.Count, r.FirstWallNS, r.LastWallNS = true, 1, wall, wall
			if _, _, err := tx.AppendOrAggregateRefusal(ctx, r, bucket); err != nil {
				return fmt.Errorf("audit: %w", err)
			}
			continue
		}
		if _, err := tx.AppendAudit(ctx, r); err != nil {
			return fmt.Errorf("audit: %w", err)
		}
		if (outcome == "lock" || outcome == "hold") && c.kind != model.KindSource {
			if err := s.notifyLock(ctx, tx, string(pr), outcome, c.kind, c.after, now, wall); err != nil {
				return err
			}
		}
	}
	return nil
}

// keyChange names a key's state change, if any: lock, hold, extend,
// expire, decay (R-AUDIT).
func keyChange(b, a model.Key, now model.Instant) (string, string) {
	switch {
	case b.Mode != model.Held && a.Mode == model.Held:
		return "hold", "held: lock number past holdAfter (R-LOCK)"
	case b.Mode != model.Locked && a.Mode == model.Locked:
		return "lock", fmt.Sprintf("locked at level %d for %s (R-LOCK)", a.Level, model.FormatDuration(a.Remaining(now)))
	case b.Mode != model.Open && a.Mode == model.Open && a.Level == b.Level:
		return "expire", "lock ended with time (R-ADVANCE)"
	case a.Mode == model.Locked && a.Until > b.Until && b.Mode == model.Locked:
		return "extend", "refused attempt extended the pair's lock (R-EXTEND)"
	case a.Level < b.Level && a.Mode == b.Mode:
		return "decay", fmt.Sprintf("level decayed from %d to %d (R-ADVANCE)", b.Level, a.Level)
	}
	return "", ""
}

// refusalReasons are the audit reasons of refusals, by scope: built once,
// not per refusal.
var refusalReasons = func() [model.ScopeConsole + 1]string {
	var r [model.ScopeConsole + 1]string
	for s := range r {
		r[s] = "refused before verification: " + model.Scope(s).String() + " (R-ADMIT)"
	}
	return r
}()

// refusalRecord is a refusal's aggregated audit record and its minute
// bucket (R-AUDIT).
func (s *Service) refusalRecord(pr model.Principal, ch model.Channel, src string, d model.Decision, now model.Instant, wall int64) (store.AuditRecord, int64) {
	console := ch == model.Console
	channel := store.ChannelRemote
	if console {
		channel = store.ChannelConsole
	}
	reason := ""
	if int(d.Scope) < len(refusalReasons) {
		reason = refusalReasons[d.Scope]
	}
	return store.AuditRecord{
		WallNS: wall, InstantNS: int64(now), Principal: string(pr), Source: src, Channel: channel,
		Count: 1, FirstWallNS: wall, LastWallNS: wall, Aggregate: true,
		Outcome: "refused", Reason: reason, KeyKind: scopeKind(d.Scope, console),
		Detail: detailJSON(d, console, true, -1),
	}, wall / int64(time.Minute)
}

// detailJSON is an attempt's audit detail: the modes of its keys after the
// decision, its effects, and for a refusal the scope and retry-after, for
// a counted failure the remaining tries. It writes the same bytes
// encoding/json writes for
//
//	{"modes":{...},"effects":[...],"retry_after_seconds":N,"remaining":N,"scope":"..."}
//
// (empty fields omitted, map keys sorted), without reflection or maps: it
// runs for every refusal of a flood.
func detailJSON(d model.Decision, console, refusal bool, remaining int) json.RawMessage {
	b := make([]byte, 0, 160)
	b = append(b, `{"modes":{"console":"`...)
	b = append(b, d.Modes[model.KindConsole].String()...)
	if !console {
		b = append(b, `","pair":"`...)
		b = append(b, d.Modes[model.KindPair].String()...)
	}
	b = append(b, `","principal":"`...)
	b = append(b, d.Modes[model.KindPrincipal].String()...)
	if !console {
		b = append(b, `","source":"`...)
		b = append(b, d.Modes[model.KindSource].String()...)
	}
	b = append(b, `"}`...)
	if d.Effects != 0 {
		b = append(b, `,"effects":[`...)
		first := true
		for i, n := range effectNames {
			if d.Effects&(1<<i) == 0 {
				continue
			}
			if !first {
				b = append(b, ',')
			}
			first = false
			b = append(b, '"')
			b = append(b, n...)
			b = append(b, '"')
		}
		b = append(b, ']')
	}
	if refusal && d.RetryAfter != 0 {
		b = append(b, `,"retry_after_seconds":`...)
		b = appendJSONFloat(b, d.RetryAfter.Seconds())
	}
	if remaining >= 0 {
		b = append(b, `,"remaining":`...)
		b = strconv.AppendInt(b, int64(remaining), 10)
	}
	if refusal && d.Scope != model.ScopeNone {
		b = append(b, `,"scope":"`...)
		b = append(b, d.Scope.String()...)
		b = append(b, '"')
	}
	return append(b, '}')
}

// keyDetailJSON is a key change's audit detail, the bytes encoding/json
// writes for map[string]any{"mode": ..., "level": ..., "remaining_seconds":
// ...}, without reflection: an extension's runs at every refusal of a
// flood on a locked pair.
func keyDetailJSON(k model.Key, now model.Instant) json.RawMessage {
	b := make([]byte, 0, 64)
	b = append(b, `{"level":`...)
	b = strconv.AppendUint(b, uint64(k.Level), 10)
	b = append(b, `,"mode":"`...)
	b = append(b, k.Mode.String()...)
	b = append(b, `","remaining_seconds":`...)
	b = appendJSONFloat(b, k.Remaining(now).Seconds())
	return append(b, '}')
}

// effectNames are model.Effects' names by bit, as Effects.Names gives them.
var effectNames = func() []string {
	var names []string
	for i := 0; i < 32; i++ {
		n := model.Effects(1 << i).Names()
		if len(n) == 0 {
			break
		}
		names = append(names, n[0])
	}
	return names
}()

// appendJSONFloat formats f as encoding/json does.
func appendJSONFloat(b []byte, f float64) []byte {
	abs := math.Abs(f)
	format := byte('f')
	if abs != 0 && (abs < 1e-6 || abs >= 1e21) {
		format = 'e'
	}
	b = strconv.AppendFloat(b, f, format, -1, 64)
	if format == 'e' {
		// clean up e-09 to e-9
		n := len(b)
		if n >= 4 && b[n-4] == 'e' && b[n-3] == '-' && b[n-2] == '0' {
			b[n-2] = b[n-1]
			b = b[:n-1]
		}
	}
	return b
}

func scopeKind(s model.Scope, console bool) store.KeyKind {
	switch {
	case console:
		return store.KindConsole
	case s == model.ScopePair:
		return store.KindPair
	case s == model.ScopeSource:
		return store.KindSource
	}
	return store.KindPrincipal
}

// notifyLock queues a lock or hold notice to the user and every admin with
// an address; delivery happens after commit, by the notifier.
func (s *Service) notifyLock(ctx context.Context, tx *store.Tx, principal, outcome string, kind model.Kind, k model.Key, now model.Instant, wall int64) error {
	users, err := tx.ListUsers(ctx)
	if err != nil {
		return err
	}
	for _, u := range users {
		if u.Email == "" || (u.Name != principal && u.Role != store.RoleAdmin) {
			continue
		}
		what := "locked for " + model.FormatDuration(k.Remaining(now))
		if outcome == "hold" {
			what = "held until an administrator unlocks it"
			if k.Until != model.Forever {
				what = "held for " + model.FormatDuration(k.Remaining(now))
			}
		}
		_, err := tx.EnqueueOutbox(ctx, store.OutboxMessage{Kind: outcome, Recipient: u.Email,
			Subject:   fmt.Sprintf("NVR account %s %s", principal, outcome),
			Body:      fmt.Sprintf("After failed logins, the %s key of account %s is %s (%s).", kind, principal, what, time.Unix(0, wall).UTC().Format(time.RFC3339)),
			CreatedNS: wall, NextAttemptNS: wall})
		if err != nil {
			return err
		}
	}
	return nil
}
