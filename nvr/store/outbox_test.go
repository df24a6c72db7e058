package store_test

import (
	"context"
	"errors"
	"testing"

	"github.com/latchnvr/latch/nvr/store"
)

func TestOutbox(t *testing.T) {
	ctx := context.Background()
	db, _ := openTemp(t)
	var lock, hold, later int64
	inTx(t, db, func(tx *store.Tx) error {
		var err error
		if lock, err = tx.EnqueueOutbox(ctx, store.OutboxMessage{Kind: "lock", Recipient: "a@example.com", Subject: "locked", CreatedNS: t0}); err != nil {
			return err
		}
		if hold, err = tx.EnqueueOutbox(ctx, store.OutboxMessage{Kind: "hold", Recipient: "https://hooks.example/x", CreatedNS: t0}); err != nil {
			return err
		}
		later, err = tx.EnqueueOutbox(ctx, store.OutboxMessage{Kind: "new_device", Recipient: "a@example.com", CreatedNS: t0, NextAttemptNS: t0 + 5*minute})
		return err
	})
	due := func(now int64) []int64 {
		t.Helper()
		ms, err := db.NextDueOutbox(ctx, now, 10)
		if err != nil {
			t.Fatal(err)
		}
		var ids []int64
		for _, m := range ms {
			ids = append(ids, m.ID)
		}
		return ids
	}
	if got := due(t0); len(got) != 2 || got[0] != lock || got[1] != hold {
		t.Fatalf("due at t0 = %v, want [%d %d]", got, lock, hold)
	}

	// lock is delivered; hold fails and backs off; later becomes due.
	inTx(t, db, func(tx *store.Tx) error {
		if err := tx.MarkOutboxDelivered(ctx, lock, t0+1); err != nil {
			return err
		}
		return tx.MarkOutboxFailed(ctx, hold, "connection refused", t0+10*minute)
	})
	if got := due(t0 + 5*minute); len(got) != 1 || got[0] != later {
		t.Fatalf("due at +5m = %v, want [%d]", got, later)
	}
	if got := due(t0 + 10*minute); len(got) != 2 || got[0] != later || got[1] != hold {
		t.Fatalf("due at +10m = %v, want [%d %d]", got, later, hold)
	}
	m, err := db.GetOutbox(ctx, hold)
	if err != nil || m.Attempts != 1 || m.LastError != "connection refused" || m.DeliveredNS != 0 {
		t.Fatalf("failed message = %+v, %v", m, err)
	}

	// Abandoning keeps the row (and its error) but never offers it again.
	inTx(t, db, func(tx *store.Tx) error { return tx.MarkOutboxFailed(ctx, hold, "gave up", 0) })
	if got := due(t0 + 100*minute); len(got) != 1 || got[0] != later {
		t.Fatalf("due after abandoning = %v", got)
	}
	// A delivered message cannot be delivered or failed again.
	for _, fn := range []func(tx *store.Tx) error{
		func(tx *store.Tx) error { return tx.MarkOutboxDelivered(ctx, lock, t0+2) },
		func(tx *store.Tx) error { return tx.MarkOutboxFailed(ctx, lock, "late", t0) },
	} {
		if err := db.WithTx(ctx, fn); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("changing a delivered message = %v, want ErrNotFound", err)
		}
	}
	if m, _ := db.GetOutbox(ctx, lock); m.DeliveredNS != t0+1 || m.Attempts != 1 || m.NextAttemptNS != 0 {
		t.Fatalf("delivered message = %+v", m)
	}
}
