package store

import (
	"context"
	"embed"
	"fmt"
	"io/fs"
	"path"
	"strconv"
	"strings"
	"sync"
)

// SchemaVersion is the schema this binary writes: the number of the last
// embedded migration. A database with a higher PRAGMA user_version was
// written by a newer binary and is refused (ErrSchemaTooNew), because
// downgrading firmware must not silently misread newer data.
const SchemaVersion = 3

//go:embed migrations/*.sql
var migrationFS embed.FS

type migration struct {
	version int
	name    string // file name, for error messages
	sql     string
}

// loadMigrations parses the embedded files once. Names are NNNN_what.sql;
// numbers must run 1..SchemaVersion without gaps, which a test also checks,
// so adding 0003 without bumping SchemaVersion fails loudly.
var loadMigrations = sync.OnceValues(func() ([]migration, error) {
	entries, err := fs.ReadDir(migrationFS, "migrations")
	if err != nil {
		return nil, fmt.Errorf("store: read migrations: %w", err)
	}
	var ms []migration
	for _, e := range entries { // ReadDir sorts by name
		name := e.Name()
		num, _, ok := strings.Cut(name, "_")
		v, err := strconv.Atoi(num)
		if !ok || err != nil || len(num) != 4 {
			return nil, fmt.Errorf("store: migration %s: name must be NNNN_description.sql", name)
		}
		if want := len(ms) + 1; v != want {
			return nil, fmt.Errorf("store: migration %s: expected version %d", name, want)
		}
		b, err := migrationFS.ReadFile(path.Join("migrations", name))
		if err != nil {
			return nil, fmt.Errorf("store: migration %s: %w", name, err)
		}
		ms = append(ms, migration{version: v, name: name, sql: string(b)})
	}
	if len(ms) != SchemaVersion {
		return nil, fmt.Errorf("store: %d embedded migrations but SchemaVersion is %d", len(ms), SchemaVersion)
	}
	return ms, nil
})

// migrate brings the schema up to target, one transaction per migration.
// The version is re-read inside each IMMEDIATE transaction, so two processes
// opening the same old database at once apply each migration exactly once.
func (db *DB) migrate(ctx context.Context, target int) error {
	ms, err := loadMigrations()
	if err != nil {
		return err
	}
	for _, m := range ms[:target] {
		err := db.WithTx(ctx, func(tx *Tx) error {
			var current int
			if err := tx.q.QueryRowContext(ctx, "PRAGMA user_version").Scan(&current); err != nil {
				return wrap("read schema version", err)
			}
			if current > SchemaVersion {
				// A newer binary migrated the file since inspect looked.
				return &SchemaTooNewError{Path: db.path, Found: current, Supports: SchemaVersion}
			}
			if current >= m.version {
				return nil
			}
			if current != m.version-1 {
				return fmt.Errorf("store: migrate %s: database is at version %d, expected %d", db.path, current, m.version-1)
			}
			if _, err := tx.q.ExecContext(ctx, m.sql); err != nil {
				return wrap("migrate "+db.path+": "+m.name, err)
			}
			// user_version lives in the file header and is transactional: it
			// commits or rolls back with the migration's DDL.
			if _, err := tx.q.ExecContext(ctx, fmt.Sprintf("PRAGMA user_version = %d", m.version)); err != nil {
				return wrap("migrate "+db.path+": "+m.name+": set user_version", err)
			}
			return nil
		})
		if err != nil {
			return err
		}
	}
	return nil
}

// checkOwnership refuses a database this binary must not touch: one from a
// newer binary, or some other application's SQLite file.
func checkOwnership(ctx context.Context, q queryer, path string) error {
	var version, appID, tables int
	if err := q.QueryRowContext(ctx, "PRAGMA user_version").Scan(&version); err != nil {
		return openErr(path, err)
	}
	if err := q.QueryRowContext(ctx, "PRAGMA application_id").Scan(&appID); err != nil {
		return openErr(path, err)
	}
	if err := q.QueryRowContext(ctx, "SELECT count(*) FROM sqlite_schema").Scan(&tables); err != nil {
		return openErr(path, err)
	}
	switch {
	case appID != 0 && appID != applicationID:
		return fmt.Errorf("store: open %s: %w: SQLite application_id is %#x", path, ErrNotDatabase, appID)
	case appID == 0 && (version != 0 || tables != 0):
		return fmt.Errorf("store: open %s: %w: SQLite database without the Latch application_id", path, ErrNotDatabase)
	case version > SchemaVersion:
		return &SchemaTooNewError{Path: path, Found: version, Supports: SchemaVersion}
	}
	return nil
}
