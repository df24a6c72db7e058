package auth

import (
	"context"
	"fmt"
	"time"

	"github.com/latchnvr/latch/model"
	"github.com/latchnvr/latch/nvr/store"
)

// auditAttempt writes the attempt's record and one record per key whose
// mode or level changed (R-AUDIT). A refusal goes through the per-key,
// per-minute aggregation, so a flood of refusals is a counter, not rows.
func (s *Service) auditAttempt(ctx context.Context, tx *store.Tx, pr model.Principal, a Attempt, before, after model.View, d model.Decision, totpRequired bool, now model.Instant, wall int64) error {
	console := a.Channel == model.Console
	src := ""
	if !console {
		src = a.Source.String()
	}
	det := detail{Modes: modesJSON(d, console), Effects: d.Effects.Names()}
	rec := store.AuditRecord{
		WallNS: wall, InstantNS: int64(now), Principal: string(pr), Source: src,
		Channel: store.Channel(a.Channel.String()), Count: 1, FirstWallNS: wall, LastWallNS: wall,
	}
	switch {
	case totpRequired:
		rec.Outcome, rec.Reason = "totp_required", "right password; second factor needed"
	case d.Verdict == model.Refused:
		rec.Outcome = "refused"
		rec.Reason = "refused before verification: " + d.Scope.String() + " (R-ADMIT)"
		rec.KeyKind = scopeKind(d.Scope, console)
		det.Scope = d.Scope.String()
		det.RetryAfter = d.RetryAfter.Seconds()
	case d.Verdict == model.Allowed:
		rec.Outcome, rec.Reason = "success", "right secret (R-SUCCESS)"
	case d.Effects&model.EffRepeat != 0:
		rec.Outcome, rec.Reason = "repeat", "repeated wrong secret: recorded, not counted (R-REPLAY)"
	case d.Effects&model.EffCounted == 0:
		rec.Outcome, rec.Reason = "wrong_secret", "wrong secret; protection disabled"
	default:
		rec.Outcome, rec.Reason = "wrong_secret", "wrong secret: counted (R-FAIL)"
		if d.Remaining >= 0 {
			r := d.Remaining
			det.Remaining = &r
		}
	}
	rec.Detail = mustJSON(det)
	var err error
	if d.Verdict == model.Refused {
		rec.Aggregate = true
		_, _, err = tx.AppendOrAggregateRefusal(ctx, rec, wall/int64(time.Minute))
	} else {
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
	changes := []change{{model.KindPrincipal, before.Principal, after.Principal}, {model.KindConsole, before.Console, after.Console}}
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
		r.Detail = mustJSON(map[string]any{"mode": c.after.Mode.String(), "level": c.after.Level, "remaining_seconds": c.after.Remaining(now).Seconds()})
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
