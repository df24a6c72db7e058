package store_test

import (
	"bytes"
	"context"
	"errors"
	"testing"

	"github.com/latchnvr/latch/nvr/store"
)

// populate writes at least one row to every table.
func populate(t *testing.T, db *store.DB) {
	t.Helper()
	ctx := context.Background()
	inTx(t, db, func(tx *store.Tx) error {
		if err := tx.ActivateDevice(ctx, "$argon2id$pin", t0); err != nil {
			return err
		}
		if err := tx.SetSettings(ctx, []byte(`{"time_warp":60}`)); err != nil {
			return err
		}
		uid, err := tx.InsertUser(ctx, store.User{Name: "admin", Role: store.RoleAdmin, PasswordHash: "$argon2id$x",
			Email: "admin@example.com", TOTPSecret: []byte("totp"), ExpiresNS: t0 + 99*minute, CreatedNS: t0, UpdatedNS: t0})
		if err != nil {
			return err
		}
		if err := tx.ReplaceRecoveryCodes(ctx, uid, []string{"h1", "h2"}, t0); err != nil {
			return err
		}
		if err := tx.InsertSession(ctx, store.Session{IDHash: store.SessionIDHash("tok"), UserID: uid, CreatedNS: t0,
			LastUsedNS: t0, IdleExpiresNS: t0 + minute, AbsoluteExpiresNS: t0 + 60*minute}); err != nil {
			return err
		}
		if err := tx.RevokeSession(ctx, store.SessionIDHash("tok"), t0+1, "logout"); err != nil {
			return err
		}
		if err := tx.PutRecoveryToken(ctx, store.RecoveryToken{Principal: "admin", UserID: uid, CodeHash: bytes.Repeat([]byte{7}, 32),
			CreatedNS: t0, ExpiresNS: t0 + 15*minute, WindowNS: t0, Issued: 1}); err != nil {
			return err
		}
		for _, k := range []store.KeyState{
			{KeyID: store.KeyID{Kind: store.KindPair, Principal: "admin", Source: "192.0.2.1"}, Mode: store.ModeLocked, RemainingNS: minute, WallAnchorNS: t0},
			{KeyID: store.KeyID{Kind: store.KindSource, Source: "192.0.2.1"}, Mode: store.ModeOpen, WallAnchorNS: t0},
			{KeyID: store.KeyID{Kind: store.KindConsole, Principal: "admin"}, Mode: store.ModeOpen, WallAnchorNS: t0},
		} {
			if _, err := tx.PutKeyState(ctx, k); err != nil {
				return err
			}
		}
		if err := tx.SetPolicy(ctx, store.Policy{YAML: "preset: latch\n", UpdatedNS: t0, UpdatedBy: "admin"}); err != nil {
			return err
		}
		if _, err := tx.EnqueueOutbox(ctx, store.OutboxMessage{Kind: "recovery_codes", Recipient: "admin@example.com", CreatedNS: t0}); err != nil {
			return err
		}
		cam, err := tx.InsertCamera(ctx, store.Camera{Name: "door", FPS: 10, Width: 640, Height: 480, Enabled: true})
		if err != nil {
			return err
		}
		var ids []int64
		for i := range int64(3) {
			id, err := tx.InsertSegment(ctx, segmentAt(cam, i))
			if err != nil {
				return err
			}
			ids = append(ids, id)
		}
		if _, err := tx.MarkSegmentsGarbage(ctx, ids[:1]); err != nil {
			return err
		}
		if _, err := tx.AppendAudit(ctx, auditRec(0, "admin", "lock")); err != nil {
			return err
		}
		_, _, err = tx.AppendOrAggregateRefusal(ctx, auditRec(1, "admin", "refused"), 1)
		return err
	})
}

// TestFactoryReset checks SPEC R-FACTORY: users, keys, sessions, settings
// and activation go; recordings, their index and the audit log stay.
func TestFactoryReset(t *testing.T) {
	ctx := context.Background()
	db, _ := openTemp(t)
	populate(t, db)
	before := mustDevice(t, db)
	segsBefore, _ := db.OldestSegments(ctx, 100)
	auditBefore, _ := db.ListAudit(ctx, store.AuditFilter{})

	inTx(t, db, func(tx *store.Tx) error {
		if err := tx.FactoryReset(ctx); err != nil {
			return err
		}
		rec := auditRec(2, "", "factory_reset")
		rec.Channel, rec.Actor, rec.KeyKind, rec.Source = store.ChannelConsole, "console", "", ""
		_, err := tx.AppendAudit(ctx, rec)
		return err
	})

	raw := db.ReadPool()
	for table, want := range map[string]int{
		"users": 0, "recovery_codes": 0, "recovery_tokens": 0, "sessions": 0, "key_states": 0, "policy": 0, "outbox": 0,
		"cameras": 1, "segments": 2, "garbage": 1, "audit_log": len(auditBefore) + 1,
	} {
		if got := count(t, raw, table); got != want {
			t.Errorf("%s: %d rows after factory reset, want %d", table, got, want)
		}
	}
	after := mustDevice(t, db)
	if after.Activated || after.ActivatedNS != 0 || after.MasterPINHash != "" || string(after.Settings) != "{}" {
		t.Errorf("device after reset = %+v, want inactive with empty settings", after)
	}
	if bytes.Equal(after.Secret, before.Secret) || len(after.Secret) != 32 {
		t.Errorf("device secret was not rotated")
	}
	if segs, _ := db.OldestSegments(ctx, 100); len(segs) != len(segsBefore) || segs[0] != segsBefore[0] {
		t.Errorf("segments changed: %+v -> %+v", segsBefore, segs)
	}
	if _, err := db.VerifyAuditChain(ctx); err != nil {
		t.Errorf("audit chain after reset: %v", err)
	}
	// The device can be activated again by its new owner.
	inTx(t, db, func(tx *store.Tx) error { return tx.ActivateDevice(ctx, "$argon2id$newpin", t0+10*minute) })
	err := db.WithTx(ctx, func(tx *store.Tx) error { return tx.ActivateDevice(ctx, "$argon2id$again", t0) })
	if !errors.Is(err, store.ErrAlreadyActivated) {
		t.Errorf("second activation = %v, want ErrAlreadyActivated", err)
	}
}
