package store

import (
	"context"
	"fmt"
)

// OutboxMessage is one notification waiting for (or done with) delivery.
type OutboxMessage struct {
	ID            int64
	Kind          string // the notify package's vocabulary: "lock", "hold", "new_device", ...
	Recipient     string // an e-mail address or a webhook URL
	Subject       string
	Body          string
	CreatedNS     int64
	Attempts      int
	NextAttemptNS int64 // 0: nothing left to do
	DeliveredNS   int64 // 0: not delivered
	LastError     string
}

// EnqueueOutbox queues m for delivery (ID, Attempts, DeliveredNS and
// LastError are ignored) and returns its id. NextAttemptNS 0 means due at
// CreatedNS. Enqueue in the transaction of the event being announced, so a
// notification exists exactly when its event committed.
func (tx *Tx) EnqueueOutbox(ctx context.Context, m OutboxMessage) (int64, error) {
	next := m.NextAttemptNS
	if next == 0 {
		next = m.CreatedNS
	}
	res, err := tx.q.ExecContext(ctx, `
		INSERT INTO outbox (kind, recipient, subject, body, created_ns, next_attempt_ns)
		VALUES (?, ?, ?, ?, ?, ?)`, m.Kind, m.Recipient, m.Subject, m.Body, m.CreatedNS, next)
	if err != nil {
		return 0, wrap(fmt.Sprintf("enqueue %s notification", m.Kind), err)
	}
	id, err := res.LastInsertId()
	return id, wrap("enqueue notification", err)
}

// MarkOutboxDelivered records a successful delivery.
func (tx *Tx) MarkOutboxDelivered(ctx context.Context, id, nowNS int64) error {
	res, err := tx.q.ExecContext(ctx, `
		UPDATE outbox SET attempts = attempts + 1, delivered_ns = ?, next_attempt_ns = NULL, last_error = ''
		WHERE id = ? AND delivered_ns IS NULL`, nowNS, id)
	return wrapAffected(fmt.Sprintf("mark notification %d delivered", id), res, err, "no undelivered notification with that id")
}

// MarkOutboxFailed records a failed attempt and when to try again; the
// backoff schedule is the notifier's. nextAttemptNS 0 abandons the message
// (it stays, with its last error, for the operator to see).
func (tx *Tx) MarkOutboxFailed(ctx context.Context, id int64, lastError string, nextAttemptNS int64) error {
	res, err := tx.q.ExecContext(ctx, `
		UPDATE outbox SET attempts = attempts + 1, last_error = ?, next_attempt_ns = ?
		WHERE id = ? AND delivered_ns IS NULL`, lastError, nullTime(nextAttemptNS), id)
	return wrapAffected(fmt.Sprintf("mark notification %d failed", id), res, err, "no undelivered notification with that id")
}

const outboxColumns = `id, kind, recipient, subject, body, created_ns, attempts,
	coalesce(next_attempt_ns, 0), coalesce(delivered_ns, 0), last_error`

func scanOutbox(row interface{ Scan(...any) error }) (OutboxMessage, error) {
	var m OutboxMessage
	err := row.Scan(&m.ID, &m.Kind, &m.Recipient, &m.Subject, &m.Body, &m.CreatedNS, &m.Attempts,
		&m.NextAttemptNS, &m.DeliveredNS, &m.LastError)
	return m, err
}

// NextDueOutbox returns up to limit (<= 0: all) pending messages due at
// or before nowNS, earliest first.
func (db *DB) NextDueOutbox(ctx context.Context, nowNS int64, limit int) ([]OutboxMessage, error) {
	return nextDueOutbox(ctx, db.reads(), nowNS, limit)
}

// NextDueOutbox returns due messages as this transaction sees them.
func (tx *Tx) NextDueOutbox(ctx context.Context, nowNS int64, limit int) ([]OutboxMessage, error) {
	return nextDueOutbox(ctx, tx.q, nowNS, limit)
}

func nextDueOutbox(ctx context.Context, q queryer, nowNS int64, limit int) ([]OutboxMessage, error) {
	if limit <= 0 {
		limit = -1 // SQLite: no limit
	}
	rows, err := q.QueryContext(ctx, `SELECT `+outboxColumns+` FROM outbox
		WHERE next_attempt_ns IS NOT NULL AND next_attempt_ns <= ?
		ORDER BY next_attempt_ns, id LIMIT ?`, nowNS, limit)
	if err != nil {
		return nil, wrap("list due notifications", err)
	}
	return collect(rows, "list due notifications", scanOutbox)
}

// GetOutbox returns one message.
func (db *DB) GetOutbox(ctx context.Context, id int64) (OutboxMessage, error) {
	return getOutbox(ctx, db.reads(), id)
}

// GetOutbox returns one message as this transaction sees it.
func (tx *Tx) GetOutbox(ctx context.Context, id int64) (OutboxMessage, error) {
	return getOutbox(ctx, tx.q, id)
}

func getOutbox(ctx context.Context, q queryer, id int64) (OutboxMessage, error) {
	m, err := scanOutbox(q.QueryRowContext(ctx, `SELECT `+outboxColumns+` FROM outbox WHERE id = ?`, id))
	return m, wrap(fmt.Sprintf("get notification %d", id), err)
}
