package auth

import (
	"context"
	"database/sql"
	"encoding/binary"
	"errors"
	"fmt"
	"path/filepath"
	"strings"

	"github.com/latchnvr/latch/model"
	"github.com/latchnvr/latch/nvr/store"
)

// reader is the service's own query-only connection pool to the store's
// file, for the two reads the store has no method for: everything one
// attempt needs in a single prepared statement (the hot path of a flood
// of refusals), and the identity of every key (Reanchor, unlock-all).
//
// It reads the key_states and users tables as migration 0001 defines them
// and never writes. Reads see the last committed state (WAL), exactly as
// the store's own read pool does; read inside a WithTx callback before the
// callback writes anything, they see the transaction's snapshot too,
// because the IMMEDIATE transaction holds the write lock.
//
// On a pinned store (store.Options.CommitEvery: the simulator's deferred
// commits) it reads through the store's one connection instead, the only
// one that sees the transactions not yet committed; its statements are
// prepared there and it owns no pool.
type reader struct {
	db *sql.DB // nil on a pinned store
	q  interface {
		QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
	}
	attempt *sql.Stmt
	keyIDs  *sql.Stmt
}

// sqlAttempt returns the four keys of an attempt and the user in one row
// of one statement, so a refusal costs one read: for each key its version
// (8 bytes, big-endian) followed by its state, NULL when there is no row;
// then the user's role, disabled flag and expiry (NULL role: no such
// user). One primary-key probe per key: the version rides in front of the
// state rather than costing a second probe. For the console ?2 is the
// empty string, which matches no pair or source key.
const sqlAttempt = `SELECT
	(SELECT unhex(printf('%016x', version)) || state FROM key_states WHERE kind = 'pair' AND principal = ?1 AND source = ?2),
	(SELECT unhex(printf('%016x', version)) || state FROM key_states WHERE kind = 'source' AND principal = '' AND source = ?2),
	(SELECT unhex(printf('%016x', version)) || state FROM key_states WHERE kind = 'principal' AND principal = ?1 AND source = ''),
	(SELECT unhex(printf('%016x', version)) || state FROM key_states WHERE kind = 'console' AND principal = ?1 AND source = ''),
	u.role, u.disabled, coalesce(u.expires_ns, 0)
	FROM (SELECT 1) LEFT JOIN users u ON u.name = ?1`

const sqlKeyIDs = `SELECT kind, principal, source FROM key_states ORDER BY kind, principal, source`

const sqlPreBoot = `SELECT kind, principal, source, version, wall_anchor_ns FROM key_states`

var uriPath = strings.NewReplacer("%", "%25", "?", "%3f", "#", "%23")

func openReader(st *store.DB) (*reader, error) {
	r := &reader{}
	// on is where the statements are prepared and run: the store's pinned
	// connection, or a pool of the reader's own.
	var on interface {
		PrepareContext(ctx context.Context, query string) (*sql.Stmt, error)
		QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
	}
	if conn := st.PinnedConn(); conn != nil {
		on = conn
	} else {
		abs, err := filepath.Abs(st.Path())
		if err != nil {
			return nil, fmt.Errorf("auth: reader: %w", err)
		}
		if r.db, err = sql.Open("sqlite", "file:"+uriPath.Replace(abs)+"?_pragma=busy_timeout(5000)&_query_only=1"); err != nil {
			return nil, fmt.Errorf("auth: reader: %w", err)
		}
		r.db.SetMaxOpenConns(4)
		r.db.SetMaxIdleConns(4)
		on = r.db
	}
	r.q = on
	ctx := context.Background()
	var err error
	if r.attempt, err = on.PrepareContext(ctx, sqlAttempt); err == nil {
		if r.keyIDs, err = on.PrepareContext(ctx, sqlKeyIDs); err != nil {
			r.attempt.Close()
		}
	}
	if err != nil {
		if r.db != nil {
			r.db.Close()
		}
		return nil, fmt.Errorf("auth: reader: prepare: %w", err)
	}
	return r, nil
}

func (r *reader) close() error {
	if r.db != nil {
		return r.db.Close()
	}
	return errors.Join(r.attempt.Close(), r.keyIDs.Close())
}

// userRow is what deciding an attempt needs of its user.
type userRow struct {
	known     bool
	role      store.Role
	disabled  bool
	expiresNS int64
}

// storedKey is one key as read: nil state when there is no row.
type storedKey struct {
	sk      StoredKey
	version int64
}

// readAttempt reads an attempt's keys and user in one statement.
func (r *reader) readAttempt(ctx context.Context, pr model.Principal, src string) ([model.NumKinds]storedKey, userRow, error) {
	var keys [model.NumKinds]storedKey
	var u userRow
	rows, err := r.attempt.QueryContext(ctx, string(pr), src)
	if err != nil {
		return keys, u, fmt.Errorf("auth: read attempt: %w", err)
	}
	defer rows.Close()
	if !rows.Next() {
		if err := rows.Err(); err != nil {
			return keys, u, fmt.Errorf("auth: read attempt: %w", err)
		}
		return keys, u, fmt.Errorf("auth: read attempt: no row")
	}
	var (
		states   [model.NumKinds]sql.RawBytes
		role     sql.NullString
		disabled sql.NullBool
		expires  int64
	)
	order := [model.NumKinds]model.Kind{model.KindPair, model.KindSource, model.KindPrincipal, model.KindConsole}
	dest := make([]any, 0, model.NumKinds+3)
	for _, k := range order {
		dest = append(dest, &states[k])
	}
	dest = append(dest, &role, &disabled, &expires)
	if err := rows.Scan(dest...); err != nil {
		return keys, u, fmt.Errorf("auth: read attempt: %w", err)
	}
	for _, k := range order {
		if states[k] == nil {
			continue
		}
		if len(states[k]) < 8 {
			return keys, u, fmt.Errorf("auth: read %s key: short row", k)
		}
		sk, err := DecodeKey(states[k][8:])
		if err != nil {
			return keys, u, fmt.Errorf("auth: read %s key: %w", k, err)
		}
		keys[k] = storedKey{sk: sk, version: int64(binary.BigEndian.Uint64(states[k]))}
	}
	if role.Valid {
		u = userRow{known: true, role: store.Role(role.String), disabled: disabled.Bool, expiresNS: expires}
	}
	return keys, u, rows.Err()
}

// preBootKeys reads the version and wall anchor of every stored key.
func (r *reader) preBootKeys(ctx context.Context) (map[uint64]preBootKey, error) {
	rows, err := r.q.QueryContext(ctx, sqlPreBoot)
	if err != nil {
		return nil, fmt.Errorf("auth: read keys at start: %w", err)
	}
	defer rows.Close()
	m := map[uint64]preBootKey{}
	for rows.Next() {
		var id store.KeyID
		var k preBootKey
		if err := rows.Scan(&id.Kind, &id.Principal, &id.Source, &k.version, &k.anchor); err != nil {
			return nil, fmt.Errorf("auth: read keys at start: %w", err)
		}
		m[keyHash(id)] = k
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("auth: read keys at start: %w", err)
	}
	return m, nil
}

// allKeyIDs lists every stored key. Call it inside a write transaction,
// before writing, to see that transaction's snapshot.
func (r *reader) allKeyIDs(ctx context.Context) ([]store.KeyID, error) {
	rows, err := r.keyIDs.QueryContext(ctx)
	if err != nil {
		return nil, fmt.Errorf("auth: list keys: %w", err)
	}
	defer rows.Close()
	var ids []store.KeyID
	for rows.Next() {
		var id store.KeyID
		if err := rows.Scan(&id.Kind, &id.Principal, &id.Source); err != nil {
			return nil, fmt.Errorf("auth: list keys: %w", err)
		}
		ids = append(ids, id)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("auth: list keys: %w", err)
	}
	return ids, nil
}
