package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"sync"
)

// pinned is a DB's mode of deferred durability (Options.CommitEvery): one
// connection, held for the DB's life, inside one IMMEDIATE transaction
// that WithTx extends by a savepoint per call and that commits every
// CommitEvery calls.
//
// # Why
//
// A write transaction through database/sql and modernc costs about 25 µs
// more than its statements: BEGIN, COMMIT, the WAL frames written at every
// commit and the locks around them. A savepoint released inside an open
// transaction costs about 2 µs. The simulator's service engine runs one
// attempt at a time and waits for each answer (its next event depends on
// it), so attempts can never share a commit the way a flood's do in
// `latch serve` (nvr/auth's group commit); without this mode the commit is
// most of what it measures. Nothing of the lock's logic changes: every
// WithTx still sees exactly the writes of the WithTx calls before it, and
// a failed one still leaves nothing behind (ROLLBACK TO its savepoint).
//
// # What it gives up
//
//   - Durability: a crash loses every transaction since the last commit.
//     The appliance answers a login only after its commit (R-ATOMIC); the
//     simulator's reboots are clean closes, which commit.
//   - Other connections: the file stays write-locked while the DB is
//     open (the console CLI would wait and fail busy), and they see
//     nothing until a commit.
//   - Isolation of reads: reads run on the same connection, so a read that
//     ran beside another goroutine's WithTx would see that transaction's
//     writes before it ends. The caller must not do that; the simulator
//     drives one operation at a time, and nvr/auth's group commit runs
//     its transactions on the caller's goroutine.
type pinned struct {
	// mu serialises WithTx, as the one writer connection does otherwise.
	mu   sync.Mutex
	conn *sql.Conn
	// connID is the DB's writerConns for conn: it never changes, since
	// the pin keeps the one connection for the DB's life.
	connID uint64
	q      connQueryer
	// every is Options.CommitEvery; released counts the savepoints
	// released since the last commit.
	every, released int
	// savepoint and release are SAVEPOINT and RELEASE, prepared once:
	// modernc prepares an unprepared statement at every call.
	savepoint, release *sql.Stmt
	// dv is the connection's PRAGMA data_version, read once after each
	// BEGIN IMMEDIATE: no other connection can commit while the long
	// transaction holds the write lock, so it holds until the next commit
	// (Tx.dataVersion).
	dv dataVersion
	// failed is sticky: once a commit or a savepoint's undo failed, the
	// transaction may hold partial or lost work, and the DB refuses to go
	// on rather than build on it.
	failed error
}

// pin takes db's writer connection for good, prepares the hot statements
// on it and begins the long transaction.
func pin(ctx context.Context, db *sql.DB, connID uint64, every int) (*pinned, error) {
	conn, err := db.Conn(ctx)
	if err != nil {
		return nil, fmt.Errorf("pin the writer connection: %w", err)
	}
	p := &pinned{conn: conn, connID: connID, every: every, q: connQueryer{conn: conn, hot: make(map[string]*sql.Stmt, len(hotQueries))}}
	for _, q := range hotQueries {
		st, err := conn.PrepareContext(ctx, q)
		if err != nil {
			p.closeConn()
			return nil, wrap("prepare "+strings.Join(strings.Fields(q), " "), err)
		}
		p.q.hot[q] = st
	}
	// A savepoint keeps the original of every page it changes in a
	// sub-journal, a temporary file by default: one pwrite per page, the
	// largest system-call cost left once commits are rare. In memory it is
	// a copy, and it is only ever needed to roll back to the savepoint.
	if _, err := conn.ExecContext(ctx, "PRAGMA temp_store = MEMORY"); err != nil {
		p.closeConn()
		return nil, wrap("temp_store", err)
	}
	if p.savepoint, err = conn.PrepareContext(ctx, "SAVEPOINT "+savepoint); err == nil {
		p.release, err = conn.PrepareContext(ctx, "RELEASE "+savepoint)
	}
	if err != nil {
		p.closeConn()
		return nil, wrap("prepare savepoint", err)
	}
	if err := p.begin(ctx); err != nil {
		p.closeConn()
		return nil, err
	}
	return p, nil
}

// savepoint names the one savepoint WithTx holds at a time.
const savepoint = "latch_tx"

// withSavepoint is WithTx on a pinned DB: fn runs inside a savepoint of
// the long transaction, which is released if fn returns nil and rolled
// back to otherwise (or if fn panics), exactly as a transaction of its own
// would commit or roll back; every p.every releases, the long transaction
// commits.
func (db *DB) withSavepoint(ctx context.Context, fn func(tx *Tx) error) (err error) {
	p := db.pin
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.failed != nil {
		return p.failed
	}
	// The savepoint's own statements ignore ctx: a caller giving up
	// half-way must not leave the long transaction in a state nobody
	// knows (a savepoint neither released nor rolled back).
	bg := context.WithoutCancel(ctx)
	if _, err := p.savepoint.ExecContext(bg); err != nil {
		return p.fail(wrap("begin", err))
	}
	released := false
	tx := &Tx{q: p.q, db: db}
	defer func() {
		if released {
			return
		}
		if tx.usedOpen {
			db.open.valid = false // as WithTx: what it learnt may be undone
		}
		// ROLLBACK TO keeps the savepoint open; RELEASE then ends it, with
		// nothing left in it.
		_, e1 := p.conn.ExecContext(bg, "ROLLBACK TO "+savepoint)
		_, e2 := p.release.ExecContext(bg)
		if e := errors.Join(e1, e2); e != nil {
			p.fail(wrap("roll back", e))
		}
	}()
	if err := fn(tx); err != nil {
		return err
	}
	if _, err := p.release.ExecContext(bg); err != nil {
		return wrap("commit", err)
	}
	released = true
	if p.released++; p.released >= p.every {
		return p.commit(bg)
	}
	return nil
}

// Flush commits the transactions a pinned DB (Options.CommitEvery) has
// released since its last commit, so other connections see them and a
// crash cannot lose them. On any other DB it does nothing: every WithTx
// has committed.
func (db *DB) Flush(ctx context.Context) error {
	if db.pin == nil {
		return nil
	}
	p := db.pin
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.failed != nil {
		return p.failed
	}
	return p.commit(context.WithoutCancel(ctx))
}

// commit ends the long transaction and begins the next. p.mu is held.
func (p *pinned) commit(ctx context.Context) error {
	if _, err := p.conn.ExecContext(ctx, "COMMIT"); err != nil {
		// SQLite rolls back a failed COMMIT: every transaction since the
		// last commit is gone, though their callers were told they
		// committed.
		return p.fail(wrap(fmt.Sprintf("commit of %d deferred transactions failed, and they are lost", p.released), err))
	}
	p.released = 0
	if err := p.begin(ctx); err != nil {
		return p.fail(err)
	}
	return nil
}

// begin begins the long transaction and reads the data version it holds.
func (p *pinned) begin(ctx context.Context) error {
	if _, err := p.conn.ExecContext(ctx, "BEGIN IMMEDIATE"); err != nil {
		return wrap("begin", err)
	}
	var v int64
	if err := p.conn.QueryRowContext(ctx, sqlDataVersion).Scan(&v); err != nil {
		return wrap("read data version", err)
	}
	p.dv = dataVersion{read: true, conn: p.connID, value: v}
	return nil
}

// fail makes err sticky and returns it.
func (p *pinned) fail(err error) error {
	if p.failed == nil {
		p.failed = fmt.Errorf("store: the deferred-commit transaction failed earlier; reopen the database: %w", err)
	}
	return err
}

// close commits what is pending (unless the DB failed) and gives the
// connection back to the pool, which DB.Close then closes.
func (p *pinned) close() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	var err error
	if p.failed == nil {
		if _, e := p.conn.ExecContext(context.Background(), "COMMIT"); e != nil {
			err = wrap(fmt.Sprintf("close: commit of %d deferred transactions failed, and they are lost", p.released), e)
		}
	} else {
		err = p.failed
	}
	return errors.Join(err, p.closeConn())
}

func (p *pinned) closeConn() error {
	var errs []error
	for _, st := range p.q.hot {
		errs = append(errs, st.Close())
	}
	for _, st := range []*sql.Stmt{p.savepoint, p.release} {
		if st != nil {
			errs = append(errs, st.Close())
		}
	}
	p.q.hot = nil
	errs = append(errs, p.conn.Close())
	return errors.Join(errs...)
}

// PinnedConn is the connection every statement of a pinned DB
// (Options.CommitEvery) runs on, and nil for any other DB. A reader that
// keeps its own pool on the file (nvr/auth's) must read through it
// instead: its pool would see nothing the long transaction holds.
func (db *DB) PinnedConn() *sql.Conn {
	if db.pin == nil {
		return nil
	}
	return db.pin.conn
}

// connQueryer runs statements on the pinned connection, using the
// statement prepared on it for hot queries.
type connQueryer struct {
	conn *sql.Conn
	hot  map[string]*sql.Stmt
}

func (q connQueryer) ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error) {
	if st, ok := q.hot[query]; ok {
		return st.ExecContext(ctx, args...)
	}
	return q.conn.ExecContext(ctx, query, args...)
}

func (q connQueryer) QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error) {
	if st, ok := q.hot[query]; ok {
		return st.QueryContext(ctx, args...)
	}
	return q.conn.QueryContext(ctx, query, args...)
}

func (q connQueryer) QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row {
	if st, ok := q.hot[query]; ok {
		return st.QueryRowContext(ctx, args...)
	}
	return q.conn.QueryRowContext(ctx, query, args...)
}
