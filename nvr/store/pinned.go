package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"sync"

	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"
)

// pinned is a DB's mode of deferred durability (Options.CommitEvery): one
// connection, held for the DB's life, inside one IMMEDIATE transaction
// that every WithTx extends and that commits every CommitEvery calls.
//
// # Why
//
// A write transaction through database/sql and modernc costs about 25 µs
// more than its statements: BEGIN, COMMIT, the WAL frames written at every
// commit and the locks around them. The same statements inside an open
// transaction cost only themselves. The simulator's service engine runs one
// attempt at a time and waits for each answer (its next event depends on
// it), so attempts can never share a commit the way a flood's do in
// `latch serve` (nvr/auth's group commit); without this mode the commit is
// most of what it measures. Nothing of the lock's logic changes: every
// WithTx still sees exactly the writes of the WithTx calls before it.
//
// A WithTx is not a savepoint of its own: a savepoint copies every page
// it changes into a sub-journal, which cost a sixth of a simulated
// flood's time. So a WithTx that fails after it wrote cannot be undone
// alone (see withPinned): the whole batch since the last commit is rolled
// back and the DB fails from then on. One that fails before writing (a
// read that found nothing, a refused INSERT, which SQLite undoes itself)
// leaves the batch as it was. The simulator treats any error of the
// service as the end of a correct run anyway.
//
// # What it gives up
//
//   - Durability: a crash loses every transaction since the last commit,
//     and so does a transaction that fails after writing.
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
	// txq is what a WithTx's Tx runs its statements on: p.q, noting in
	// wrote whether a statement that may write succeeded.
	txq   *trackingQueryer
	wrote bool
	// every is Options.CommitEvery; released counts the transactions
	// ended since the last commit.
	every, released int
	// dv is the connection's PRAGMA data_version, read once after each
	// BEGIN IMMEDIATE: no other connection can commit while the long
	// transaction holds the write lock, so it holds until the next commit
	// (Tx.dataVersion).
	dv dataVersion
	// failed is sticky: once a commit or a transaction that wrote failed, the
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
	hot, err := prepareHot(ctx, conn)
	if err != nil {
		conn.Close()
		return nil, err
	}
	p := &pinned{conn: conn, connID: connID, every: every, q: connQueryer{conn: conn, hot: hot}}
	p.txq = &trackingQueryer{q: p.q, wrote: &p.wrote}
	// Statement journals (the undo of one statement that fails half-way)
	// in memory rather than in temporary files: they are small, and a
	// temporary file costs system calls.
	if _, err := conn.ExecContext(ctx, "PRAGMA temp_store = MEMORY"); err != nil {
		p.closeConn()
		return nil, wrap("temp_store", err)
	}
	if err := p.begin(ctx); err != nil {
		p.closeConn()
		return nil, err
	}
	return p, nil
}

// withPinned is WithTx on a pinned DB: fn runs in the long transaction;
// every p.every calls that returned nil, the long transaction commits.
//
// If fn fails (returns an error or panics) after a statement of it that
// may write succeeded, there is no undoing it alone: the long transaction
// is rolled back, losing every transaction since the last commit, and
// the DB fails every later call (reopen it). If it fails before writing,
// or with an error that may have ended the long transaction behind its
// back (SQLite rolls back on some I/O, full-disk and memory errors), the
// same; otherwise nothing was written and the batch stands.
func (db *DB) withPinned(ctx context.Context, fn func(tx *Tx) error) (err error) {
	p := db.pin
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.failed != nil {
		return p.failed
	}
	// The transaction's own statements ignore ctx: a caller giving up
	// half-way must not leave the long transaction in a state nobody
	// knows.
	bg := context.WithoutCancel(ctx)
	p.wrote = false
	ended := false
	defer func() {
		if ended {
			return
		}
		if !p.wrote && (err == nil || !mayEndTransaction(err)) {
			return // a panic before any write, or an error that wrote nothing
		}
		db.open.valid = false // it describes writes that are now undone
		lost := p.released
		p.released = 0
		_, rerr := p.conn.ExecContext(bg, "ROLLBACK")
		p.fail(fmt.Errorf("store: a transaction failed after writing, which with deferred commits (Options.CommitEvery) rolls back the %d transactions since the last commit too: %w", lost, errors.Join(err, rerr)))
	}()
	if err = fn(&Tx{q: p.txq, db: db}); err != nil {
		return err
	}
	ended = true
	if p.released++; p.released >= p.every {
		return p.commit(bg)
	}
	return nil
}

// mayEndTransaction reports whether err is one of SQLite's errors after
// which it may have rolled the whole transaction back by itself.
func mayEndTransaction(err error) bool {
	var se *sqlite.Error
	if !errors.As(err, &se) {
		return false
	}
	switch se.Code() & 0xff {
	case sqlite3.SQLITE_FULL, sqlite3.SQLITE_IOERR, sqlite3.SQLITE_BUSY, sqlite3.SQLITE_NOMEM,
		sqlite3.SQLITE_INTERRUPT, sqlite3.SQLITE_CORRUPT:
		return true
	}
	return false
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

// trackingQueryer is a pinned transaction's queryer: the pinned
// connection's, setting *wrote when a statement that may write succeeds
// (every Exec, and every query that is not a SELECT, such as an UPDATE
// with RETURNING). A statement that fails has written nothing: SQLite
// undoes a failed statement itself.
type trackingQueryer struct {
	q     connQueryer
	wrote *bool
}

func (t *trackingQueryer) ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error) {
	res, err := t.q.ExecContext(ctx, query, args...)
	if err == nil && !*t.wrote {
		// An INSERT, UPDATE or DELETE that changed no row wrote nothing
		// (a compare-and-swap that lost, a bump that missed); anything
		// else that succeeded may have.
		if n, e := res.RowsAffected(); e != nil || n != 0 || !isDML(query) {
			*t.wrote = true
		}
	}
	return res, err
}

func (t *trackingQueryer) QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error) {
	rows, err := t.q.QueryContext(ctx, query, args...)
	if err == nil && mayWrite(query) {
		*t.wrote = true
	}
	return rows, err
}

func (t *trackingQueryer) QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row {
	if mayWrite(query) {
		// A Row's error is known only at Scan: count it as written.
		*t.wrote = true
	}
	return t.q.QueryRowContext(ctx, query, args...)
}

// isDML reports whether query is a plain INSERT, UPDATE, DELETE or
// REPLACE, whose changed rows RowsAffected counts.
func isDML(query string) bool {
	q := strings.TrimLeft(query, " \t\n")
	for _, kw := range []string{"INSERT", "UPDATE", "DELETE", "REPLACE"} {
		if len(q) >= len(kw) && strings.EqualFold(q[:len(kw)], kw) {
			return true
		}
	}
	return false
}

// mayWrite reports whether a query may change the database: anything but
// a SELECT (a WITH … SELECT counts as a write; being wrong that way only
// costs a batch after an error).
func mayWrite(query string) bool {
	q := strings.TrimLeft(query, " \t\n")
	return len(q) < 6 || !strings.EqualFold(q[:6], "SELECT")
}
