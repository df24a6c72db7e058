package store

import (
	"context"
	"fmt"
)

// KeyKind is the kind of a lock machine (SPEC §1: pair, source, principal,
// plus one console key per principal).
type KeyKind string

// The key kinds the schema accepts.
const (
	KindPair      KeyKind = "pair"
	KindSource    KeyKind = "source"
	KindPrincipal KeyKind = "principal"
	KindConsole   KeyKind = "console"
)

// KeyMode is a key's persisted mode (SPEC §2). The lock model decides
// modes; the store only records them and can filter on "not open".
type KeyMode string

// The persisted spellings of the lock model's modes.
const (
	ModeOpen   KeyMode = "open"
	ModeLocked KeyMode = "locked"
	ModeHeld   KeyMode = "held"
)

// KeyID names one lock machine. Principal is "" for a source key and Source
// is "" for principal and console keys.
type KeyID struct {
	Kind      KeyKind
	Principal string
	Source    string
}

func (k KeyID) String() string {
	return fmt.Sprintf("%s(%q,%q)", k.Kind, k.Principal, k.Source)
}

// KeyState is one persisted lock machine.
type KeyState struct {
	KeyID
	Mode KeyMode
	// State is the lock model's own encoding; the store never looks inside.
	State []byte
	// RemainingNS and WallAnchorNS implement SPEC R-RESTART: the remaining
	// lock duration, measured at wall time WallAnchorNS. 0 for an open key.
	RemainingNS  int64
	WallAnchorNS int64
	// Version is the stored version as read. PutKeyState writes only if
	// the stored version still equals it (0: the key must not exist yet)
	// and returns the new one.
	Version int64
}

// PutKeyState writes ks if the stored version is still ks.Version (0 means
// "must not exist yet") and returns the new version. A mismatch is
// ErrVersionConflict: another writer (another process, or a stale cached
// state) changed the key since it was read.
func (tx *Tx) PutKeyState(ctx context.Context, ks KeyState) (int64, error) {
	if ks.State == nil {
		ks.State = []byte{} // NOT NULL: an empty state is still a state
	}
	var (
		n   int64
		err error
	)
	if ks.Version == 0 {
		res, e := tx.q.ExecContext(ctx, sqlInsertKeyState,
			string(ks.Kind), ks.Principal, ks.Source, string(ks.Mode), ks.State, ks.RemainingNS, ks.WallAnchorNS)
		if err = e; err == nil {
			n, err = res.RowsAffected()
		}
	} else {
		res, e := tx.q.ExecContext(ctx, sqlUpdateKeyState,
			string(ks.Mode), ks.State, ks.RemainingNS, ks.WallAnchorNS,
			string(ks.Kind), ks.Principal, ks.Source, ks.Version)
		if err = e; err == nil {
			n, err = res.RowsAffected()
		}
	}
	if err != nil {
		return 0, wrap("put key state "+ks.KeyID.String(), err)
	}
	if n == 0 {
		return 0, fmt.Errorf("store: put key state %s: %w: expected version %d", ks.KeyID, ErrVersionConflict, ks.Version)
	}
	return ks.Version + 1, nil
}

// DeleteKeyState forgets a key (the lock model decided it carries nothing
// worth keeping). Deleting a missing key is not an error.
func (tx *Tx) DeleteKeyState(ctx context.Context, id KeyID) error {
	_, err := tx.q.ExecContext(ctx, sqlDeleteKeyState,
		string(id.Kind), id.Principal, id.Source)
	return wrap("delete key state "+id.String(), err)
}

const keyStateColumns = `kind, principal, source, mode, state, remaining_ns, wall_anchor_ns, version`

var (
	sqlGetKeyState = hot(`SELECT ` + keyStateColumns + ` FROM key_states
		WHERE kind = ? AND principal = ? AND source = ?`)
	sqlInsertKeyState = hot(`
		INSERT INTO key_states (kind, principal, source, mode, state, remaining_ns, wall_anchor_ns, version)
		VALUES (?, ?, ?, ?, ?, ?, ?, 1)
		ON CONFLICT (kind, principal, source) DO NOTHING`)
	sqlUpdateKeyState = hot(`
		UPDATE key_states SET mode = ?, state = ?, remaining_ns = ?, wall_anchor_ns = ?, version = version + 1
		WHERE kind = ? AND principal = ? AND source = ? AND version = ?`)
	sqlDeleteKeyState = hot(`DELETE FROM key_states WHERE kind = ? AND principal = ? AND source = ?`)
)

func scanKeyState(row interface{ Scan(...any) error }) (KeyState, error) {
	var ks KeyState
	err := row.Scan(&ks.Kind, &ks.Principal, &ks.Source, &ks.Mode, &ks.State, &ks.RemainingNS,
		&ks.WallAnchorNS, &ks.Version)
	return ks, err
}

// GetKeyState returns the key's state, or ErrNotFound for a key never
// written (which the lock model treats as a fresh open key).
func (db *DB) GetKeyState(ctx context.Context, id KeyID) (KeyState, error) {
	return getKeyState(ctx, db.reads(), id)
}

// GetKeyState returns the key's state as this transaction sees it.
func (tx *Tx) GetKeyState(ctx context.Context, id KeyID) (KeyState, error) {
	return getKeyState(ctx, tx.q, id)
}

func getKeyState(ctx context.Context, q queryer, id KeyID) (KeyState, error) {
	ks, err := scanKeyState(q.QueryRowContext(ctx, sqlGetKeyState,
		string(id.Kind), id.Principal, id.Source))
	return ks, wrap("get key state "+id.String(), err)
}

// ListNotOpen returns every key whose persisted mode is not open (locked or
// held), ordered by kind, principal, source: the lock status page, unlock
// all, and re-anchoring after a wall-clock step (SPEC R-RESTART).
func (db *DB) ListNotOpen(ctx context.Context) ([]KeyState, error) {
	return listNotOpen(ctx, db.reads())
}

// ListNotOpen returns every key not open, as this transaction sees them.
func (tx *Tx) ListNotOpen(ctx context.Context) ([]KeyState, error) { return listNotOpen(ctx, tx.q) }

func listNotOpen(ctx context.Context, q queryer) ([]KeyState, error) {
	rows, err := q.QueryContext(ctx, `SELECT `+keyStateColumns+` FROM key_states
		WHERE mode <> 'open' ORDER BY kind, principal, source`)
	if err != nil {
		return nil, wrap("list keys not open", err)
	}
	return collect(rows, "list keys not open", scanKeyState)
}

// ListPrincipalKeys returns every key of a principal (its pairs, its
// principal key and its console key), for unlock-all and password reset
// (SPEC R-UNLOCK, R-RESET). Source keys are not included.
func (db *DB) ListPrincipalKeys(ctx context.Context, principal string) ([]KeyState, error) {
	return listPrincipalKeys(ctx, db.reads(), principal)
}

// ListPrincipalKeys returns every key of a principal, as this transaction
// sees them.
func (tx *Tx) ListPrincipalKeys(ctx context.Context, principal string) ([]KeyState, error) {
	return listPrincipalKeys(ctx, tx.q, principal)
}

func listPrincipalKeys(ctx context.Context, q queryer, principal string) ([]KeyState, error) {
	if principal == "" {
		// '' is the principal column of source keys, not a principal.
		return nil, nil
	}
	rows, err := q.QueryContext(ctx, `SELECT `+keyStateColumns+` FROM key_states
		WHERE principal = ? ORDER BY kind, source`, principal)
	if err != nil {
		return nil, wrap(fmt.Sprintf("list keys of %q", principal), err)
	}
	return collect(rows, fmt.Sprintf("list keys of %q", principal), scanKeyState)
}
