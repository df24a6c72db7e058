package store

import (
	"context"
	"fmt"
)

// RecoveryToken is a principal's e-mailed recovery code (only its hash) and
// its request window (SPEC R-RESET). The auth service decides everything:
// whether a code may be issued, when it expires, whether one matches; the
// store keeps the row.
type RecoveryToken struct {
	Principal string // canonical; unknown names have rows too (R-ENUM)
	UserID    int64  // 0: the code was sent to nobody and can never be used
	CodeHash  []byte // nil: no usable code
	CreatedNS int64
	ExpiresNS int64
	WindowNS  int64 // start of the principal's current request window
	Issued    int   // codes issued in that window
}

const recoveryColumns = `principal, coalesce(user_id, 0), code_hash, created_ns, expires_ns, window_ns, issued`

// GetRecoveryToken returns the principal's row, or ErrNotFound.
func (db *DB) GetRecoveryToken(ctx context.Context, principal string) (RecoveryToken, error) {
	return getRecoveryToken(ctx, db.reads(), principal)
}

// GetRecoveryToken returns the principal's row as this transaction sees it.
func (tx *Tx) GetRecoveryToken(ctx context.Context, principal string) (RecoveryToken, error) {
	return getRecoveryToken(ctx, tx.q, principal)
}

func getRecoveryToken(ctx context.Context, q queryer, principal string) (RecoveryToken, error) {
	var t RecoveryToken
	err := q.QueryRowContext(ctx, `SELECT `+recoveryColumns+` FROM recovery_tokens WHERE principal = ?`, principal).
		Scan(&t.Principal, &t.UserID, &t.CodeHash, &t.CreatedNS, &t.ExpiresNS, &t.WindowNS, &t.Issued)
	return t, wrap(fmt.Sprintf("get recovery token of %q", principal), err)
}

// PutRecoveryToken writes the principal's row, replacing the previous one
// (and with it the previous code).
func (tx *Tx) PutRecoveryToken(ctx context.Context, t RecoveryToken) error {
	var uid any
	if t.UserID != 0 {
		uid = t.UserID
	}
	_, err := tx.q.ExecContext(ctx, `
		INSERT INTO recovery_tokens (principal, user_id, code_hash, created_ns, expires_ns, window_ns, issued)
		VALUES (?, ?, ?, ?, ?, ?, ?)
		ON CONFLICT (principal) DO UPDATE SET user_id = excluded.user_id, code_hash = excluded.code_hash,
			created_ns = excluded.created_ns, expires_ns = excluded.expires_ns,
			window_ns = excluded.window_ns, issued = excluded.issued`,
		t.Principal, uid, nullBlob(t.CodeHash), t.CreatedNS, t.ExpiresNS, t.WindowNS, t.Issued)
	return wrap(fmt.Sprintf("put recovery token of %q", t.Principal), err)
}

// UseRecoveryToken clears the principal's code if it still has the hash
// codeHash, so a code works once even under concurrent attempts:
// ErrNotFound when it was already used or replaced. The window stays.
func (tx *Tx) UseRecoveryToken(ctx context.Context, principal string, codeHash []byte) error {
	res, err := tx.q.ExecContext(ctx,
		`UPDATE recovery_tokens SET code_hash = NULL WHERE principal = ? AND code_hash = ?`, principal, codeHash)
	return wrapAffected("use recovery token", res, err, "no such unused code")
}

// InvalidateRecoveryToken clears the principal's code, if any (a password
// change or reset makes an outstanding code useless). The window stays.
func (tx *Tx) InvalidateRecoveryToken(ctx context.Context, principal string) error {
	_, err := tx.q.ExecContext(ctx,
		`UPDATE recovery_tokens SET code_hash = NULL WHERE principal = ? AND code_hash IS NOT NULL`, principal)
	return wrap("invalidate recovery token", err)
}

// PruneRecoveryTokens deletes the rows whose code expired and whose
// window started before beforeNS; it returns how many. A row whose window
// is still open stays, or deleting it would reset the principal's limit.
func (tx *Tx) PruneRecoveryTokens(ctx context.Context, nowNS, beforeNS int64) (int64, error) {
	res, err := tx.q.ExecContext(ctx,
		`DELETE FROM recovery_tokens WHERE expires_ns <= ? AND window_ns < ?`, nowNS, beforeNS)
	if err != nil {
		return 0, wrap("prune recovery tokens", err)
	}
	n, err := res.RowsAffected()
	return n, wrap("prune recovery tokens", err)
}
