package store

import (
	"database/sql"
	"errors"
	"fmt"

	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"
)

// Sentinel errors. Every error the package returns is wrapped with the
// operation and, where one applies, one of these, so callers can test with
// errors.Is and people can read the message.
var (
	// ErrNotFound: the row asked for does not exist.
	ErrNotFound = errors.New("not found")
	// ErrExists: a unique name, id or token is already taken.
	ErrExists = errors.New("already exists")
	// ErrConstraint: a write broke a CHECK or foreign-key rule of the schema
	// (a caller bug, or deleting a camera that still has segments).
	ErrConstraint = errors.New("constraint violated")
	// ErrVersionConflict: PutKeyState's expected version was not the stored
	// one; another writer got there first.
	ErrVersionConflict = errors.New("version conflict")
	// ErrAlreadyActivated: ActivateDevice on an active device.
	ErrAlreadyActivated = errors.New("device already activated")
	// ErrSchemaTooNew: the database was written by a newer binary.
	ErrSchemaTooNew = errors.New("database schema is newer than this binary")
	// ErrNotDatabase: the file is not a SQLite database, or is a SQLite
	// database that belongs to some other application.
	ErrNotDatabase = errors.New("not a Latch database")
	// ErrCorrupt: the database failed PRAGMA integrity_check, or SQLite
	// found a malformed page while reading it.
	ErrCorrupt = errors.New("database is corrupt")
	// ErrDiskFull: SQLite could not grow the database or its WAL.
	ErrDiskFull = errors.New("disk full")
	// ErrBusy: another process held the write lock for longer than the busy
	// timeout.
	ErrBusy = errors.New("database busy")
	// ErrAuditChain: VerifyAuditChain found a row whose hash or link is
	// wrong; the error is an *AuditChainError naming the row.
	ErrAuditChain = errors.New("audit chain broken")
)

// SchemaTooNewError is returned (wrapped) by Open for a database whose schema
// version is newer than SchemaVersion. It matches ErrSchemaTooNew.
type SchemaTooNewError struct {
	Path     string
	Found    int
	Supports int
}

func (e *SchemaTooNewError) Error() string {
	return fmt.Sprintf("store: open %s: database schema version %d is newer than this binary supports (%d)",
		e.Path, e.Found, e.Supports)
}

// Is makes errors.Is(err, ErrSchemaTooNew) true.
func (e *SchemaTooNewError) Is(target error) bool { return target == ErrSchemaTooNew }

// wrap adds the operation to err and, for SQLite result codes a caller can
// act on, the matching sentinel. It returns nil for nil.
func wrap(op string, err error) error {
	if err == nil {
		return nil
	}
	if errors.Is(err, sql.ErrNoRows) {
		return fmt.Errorf("store: %s: %w", op, ErrNotFound)
	}
	if s := classify(err); s != nil {
		return fmt.Errorf("store: %s: %w: %w", op, s, err)
	}
	return fmt.Errorf("store: %s: %w", op, err)
}

// classify maps a SQLite result code to a sentinel, or returns nil.
func classify(err error) error {
	var se *sqlite.Error
	if !errors.As(err, &se) {
		return nil
	}
	code := se.Code()
	switch code {
	case sqlite3.SQLITE_CONSTRAINT_UNIQUE, sqlite3.SQLITE_CONSTRAINT_PRIMARYKEY:
		return ErrExists
	}
	// Extended codes (e.g. SQLITE_BUSY_SNAPSHOT) share their low byte with
	// the primary code.
	switch code & 0xff {
	case sqlite3.SQLITE_CONSTRAINT:
		return ErrConstraint
	case sqlite3.SQLITE_FULL:
		return ErrDiskFull
	case sqlite3.SQLITE_CORRUPT:
		return ErrCorrupt
	case sqlite3.SQLITE_NOTADB:
		return ErrNotDatabase
	case sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED:
		return ErrBusy
	}
	return nil
}

// wrapAffected wraps err, or returns ErrNotFound (with why) when the
// statement matched no row.
func wrapAffected(op string, res interface{ RowsAffected() (int64, error) }, err error, why string) error {
	if err != nil {
		return wrap(op, err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return wrap(op, err)
	}
	if n == 0 {
		return fmt.Errorf("store: %s: %w: %s", op, ErrNotFound, why)
	}
	return nil
}
