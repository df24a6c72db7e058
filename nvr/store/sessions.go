package store

import (
	"context"
	"crypto/sha256"
	"fmt"
)

// Session is a login session. The token the client holds is never stored:
// IDHash is SessionIDHash(token).
type Session struct {
	IDHash            []byte
	UserID            int64
	CreatedNS         int64
	LastUsedNS        int64
	IdleExpiresNS     int64
	AbsoluteExpiresNS int64
	RevokedNS         int64  // 0: not revoked
	RevokeReason      string // "" unless revoked, e.g. "logout", "password changed"
	Peer              string // the socket peer (ip:port)
	UserAgent         string
	// Source is the client's lock source (SPEC §1), behind trusted proxies
	// included; with UserAgent it names the session's endpoint. "" for
	// sessions from before schema version 3.
	Source string
}

// SessionIDHash is how a session token is stored and looked up: SHA-256.
// A fast unsalted hash is right here because the token is 128+ random bits,
// not a password.
func SessionIDHash(token string) []byte {
	h := sha256.Sum256([]byte(token))
	return h[:]
}

// InsertSession stores a new session. A repeated IDHash is ErrExists.
func (tx *Tx) InsertSession(ctx context.Context, s Session) error {
	_, err := tx.q.ExecContext(ctx, `
		INSERT INTO sessions (id_hash, user_id, created_ns, last_used_ns, idle_expires_ns,
		                      absolute_expires_ns, peer, user_agent, source)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		s.IDHash, s.UserID, s.CreatedNS, s.LastUsedNS, s.IdleExpiresNS, s.AbsoluteExpiresNS, s.Peer, s.UserAgent, s.Source)
	return wrap(fmt.Sprintf("insert session for user %d", s.UserID), err)
}

// TouchSession records a use of a live session and slides its idle expiry.
// A revoked or missing session is ErrNotFound.
func (tx *Tx) TouchSession(ctx context.Context, idHash []byte, lastUsedNS, idleExpiresNS int64) error {
	res, err := tx.q.ExecContext(ctx, sqlTouchSession, lastUsedNS, idleExpiresNS, idHash)
	return wrapAffected("touch session", res, err, "no live session with that id")
}

// RevokeSession revokes one session. Revoking an already revoked session
// keeps the first reason and is not an error; a missing one is ErrNotFound.
func (tx *Tx) RevokeSession(ctx context.Context, idHash []byte, nowNS int64, reason string) error {
	res, err := tx.q.ExecContext(ctx, `
		UPDATE sessions SET revoked_ns = coalesce(revoked_ns, ?), revoke_reason = coalesce(revoke_reason, ?)
		WHERE id_hash = ?`, nowNS, reason, idHash)
	return wrapAffected("revoke session", res, err, "no session with that id")
}

// RevokeUserSessions revokes every live session of a user (password change,
// disable, reset: SPEC R-RESET) and returns how many it revoked.
func (tx *Tx) RevokeUserSessions(ctx context.Context, userID, nowNS int64, reason string) (int64, error) {
	res, err := tx.q.ExecContext(ctx, `
		UPDATE sessions SET revoked_ns = ?, revoke_reason = ?
		WHERE user_id = ? AND revoked_ns IS NULL`, nowNS, reason, userID)
	if err != nil {
		return 0, wrap(fmt.Sprintf("revoke sessions of user %d", userID), err)
	}
	n, err := res.RowsAffected()
	return n, wrap(fmt.Sprintf("revoke sessions of user %d", userID), err)
}

// PruneSessions deletes sessions that expired (idle or absolute) or were
// revoked before beforeNS, and returns how many.
func (tx *Tx) PruneSessions(ctx context.Context, beforeNS int64) (int64, error) {
	res, err := tx.q.ExecContext(ctx, `
		DELETE FROM sessions
		WHERE absolute_expires_ns < ?1 OR idle_expires_ns < ?1 OR revoked_ns < ?1`, beforeNS)
	if err != nil {
		return 0, wrap("prune sessions", err)
	}
	n, err := res.RowsAffected()
	return n, wrap("prune sessions", err)
}

const sessionColumns = `id_hash, user_id, created_ns, last_used_ns, idle_expires_ns, absolute_expires_ns,
	coalesce(revoked_ns, 0), coalesce(revoke_reason, ''), peer, user_agent, source`

var (
	sqlGetSession   = hot(`SELECT ` + sessionColumns + ` FROM sessions WHERE id_hash = ?`)
	sqlTouchSession = hot(`UPDATE sessions SET last_used_ns = ?, idle_expires_ns = ?
		WHERE id_hash = ? AND revoked_ns IS NULL`)
)

func scanSession(row interface{ Scan(...any) error }) (Session, error) {
	var s Session
	err := row.Scan(&s.IDHash, &s.UserID, &s.CreatedNS, &s.LastUsedNS, &s.IdleExpiresNS,
		&s.AbsoluteExpiresNS, &s.RevokedNS, &s.RevokeReason, &s.Peer, &s.UserAgent, &s.Source)
	return s, err
}

// GetSession returns a session, revoked or not; whether it is still valid
// at some instant is the caller's decision.
func (db *DB) GetSession(ctx context.Context, idHash []byte) (Session, error) {
	return getSession(ctx, db.reads(), idHash)
}

// GetSession returns a session as this transaction sees it.
func (tx *Tx) GetSession(ctx context.Context, idHash []byte) (Session, error) {
	return getSession(ctx, tx.q, idHash)
}

func getSession(ctx context.Context, q queryer, idHash []byte) (Session, error) {
	s, err := scanSession(q.QueryRowContext(ctx, sqlGetSession, idHash))
	return s, wrap("get session", err)
}

// ListUserSessions returns a user's sessions, newest first.
func (db *DB) ListUserSessions(ctx context.Context, userID int64) ([]Session, error) {
	return listUserSessions(ctx, db.reads(), userID)
}

// ListUserSessions returns a user's sessions as this transaction sees them.
func (tx *Tx) ListUserSessions(ctx context.Context, userID int64) ([]Session, error) {
	return listUserSessions(ctx, tx.q, userID)
}

func listUserSessions(ctx context.Context, q queryer, userID int64) ([]Session, error) {
	rows, err := q.QueryContext(ctx, `SELECT `+sessionColumns+` FROM sessions
		WHERE user_id = ? ORDER BY created_ns DESC`, userID)
	if err != nil {
		return nil, wrap("list sessions", err)
	}
	return collect(rows, "list sessions", scanSession)
}

// sqlLiveUserSessions runs at every sign-in (a VMS polling every minute
// signs in every minute): prepared once.
var sqlLiveUserSessions = hot(`SELECT ` + sessionColumns + ` FROM sessions
	WHERE user_id = ?1 AND revoked_ns IS NULL AND idle_expires_ns > ?2 AND absolute_expires_ns > ?2
	ORDER BY created_ns, id_hash`)

// ListLiveUserSessions returns the user's sessions that are valid at nowNS
// (not revoked, within idle and absolute expiry), oldest first: what the
// concurrent-session policy looks at when the user signs in again.
func (tx *Tx) ListLiveUserSessions(ctx context.Context, userID, nowNS int64) ([]Session, error) {
	rows, err := tx.q.QueryContext(ctx, sqlLiveUserSessions, userID, nowNS)
	if err != nil {
		return nil, wrap("list live sessions", err)
	}
	return collect(rows, "list live sessions", scanSession)
}

var sqlLiveUserSessionsElsewhere = hot(`SELECT ` + sessionColumns + ` FROM sessions
	WHERE user_id = ?1 AND revoked_ns IS NULL AND idle_expires_ns > ?2 AND absolute_expires_ns > ?2
	  AND NOT (source = ?3 AND user_agent = ?4)
	ORDER BY created_ns, id_hash`)

// ListLiveUserSessionsElsewhere is ListLiveUserSessions without the
// sessions of one endpoint (source and user agent, compared exactly).
func (tx *Tx) ListLiveUserSessionsElsewhere(ctx context.Context, userID, nowNS int64, source, userAgent string) ([]Session, error) {
	rows, err := tx.q.QueryContext(ctx, sqlLiveUserSessionsElsewhere, userID, nowNS, source, userAgent)
	if err != nil {
		return nil, wrap("list live sessions", err)
	}
	return collect(rows, "list live sessions", scanSession)
}
