package store

import (
	"context"
	"crypto/rand"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"modernc.org/sqlite" // also registers the "sqlite" driver
)

// countingConnector counts the connections it opens: OthersCommitted must
// know when the writer connection it compares PRAGMA data_version on was
// replaced, because the values of two connections are unrelated.
type countingConnector struct {
	driver.Connector
	n *atomic.Uint64
}

func (c countingConnector) Connect(ctx context.Context) (driver.Conn, error) {
	conn, err := c.Connector.Connect(ctx)
	if err == nil {
		c.n.Add(1)
	}
	return conn, err
}

// applicationID marks a file as a Latch database (PRAGMA application_id,
// set by migration 0001): "LatN".
const applicationID = 0x4C61744E

// Options tune Open. The zero value is what the appliance uses.
type Options struct {
	// BusyTimeout is how long a write waits for another process (the
	// console CLI) to release the write lock before failing with ErrBusy.
	// Zero means 5s.
	BusyTimeout time.Duration
	// ReadConns bounds the read pool. Zero means 4.
	ReadConns int
	// QuickCheck runs PRAGMA quick_check instead of the full
	// integrity_check at open: linear rather than O(N log N), for console
	// commands on a large database. It skips index/table consistency.
	QuickCheck bool
	// FirmwareVersion, if set, is recorded in the device row.
	FirmwareVersion string
	// CommitEvery, above 1, defers durability for speed: the DB runs on
	// one pinned connection, every WithTx runs inside one long IMMEDIATE
	// transaction, and that transaction commits after CommitEvery of
	// them, on Flush and on Close. Reads see every transaction ended so
	// far. A crash loses what was not committed, so does a WithTx that
	// fails after writing (the DB then refuses further use), and the file
	// stays write-locked while the DB is open: the appliance never sets
	// it. The simulator's service engine does (sim/service): its reboots
	// are clean closes, any error of the service ends a correct run
	// anyway, and its caller runs one operation at a time. See pinned.go.
	CommitEvery int
	// Rand is the source of the device secret. Nil means crypto/rand; tests
	// and the simulator pass a seeded reader for reproducible databases. It
	// is read only inside (serialised) write transactions, so it need not be
	// safe for concurrent use.
	Rand io.Reader
}

// DB is an open Latch database: one writer connection and a read pool.
// It is safe for concurrent use.
type DB struct {
	path  string
	write *sql.DB // exactly one connection: SQLite has one writer
	read  *sql.DB // query_only connections; WAL lets them run beside the writer
	// pin is the one connection everything runs on when Options.CommitEvery
	// is above 1 (read is nil then); nil otherwise.
	pin  *pinned
	rand io.Reader
	// hot holds the hot-path statements, prepared once on the writer
	// connection at Open (see hot); read-only afterwards.
	hot map[string]*sql.Stmt
	// writerConns counts the writer connections opened so far (one, unless
	// database/sql replaced a broken one), and others is what
	// OthersCommitted last saw (see there).
	writerConns atomic.Uint64
	others      othersSeen
	// open is what this DB knows of the open audit aggregates (see
	// openAggregates); only write transactions touch it.
	open openAggregates
	// merge is MergeRefusals' buffer, reused by every write transaction
	// (they are serialised).
	merge refusalMerge
}

// othersSeen is the writer connection's PRAGMA data_version when
// OthersCommitted last read it, and which writer connection that was.
// Only write transactions touch it, and they are serialised; the mutex is
// for the race detector's benefit and costs nothing uncontended.
type othersSeen struct {
	mu          sync.Mutex
	valid       bool
	conn        uint64
	dataVersion int64
}

// Tx is one IMMEDIATE write transaction, valid only inside the WithTx
// callback that received it. It is not safe for concurrent use.
type Tx struct {
	q  queryer
	db *DB
	// dv is the writer connection's PRAGMA data_version, read at most once
	// per transaction (see dataVersion): nobody else can commit while an
	// IMMEDIATE transaction holds the write lock, and this connection's
	// own writes never change it.
	dv dataVersion
	// merge holds the refusals merged so far inside MergeRefusals; nil
	// outside it.
	merge *refusalMerge
	// usedOpen: this transaction read or changed db.open, which a rollback
	// must then forget (it may describe writes that never committed).
	usedOpen bool
}

// dataVersion is a PRAGMA data_version and the writer connection it was
// read on (writerConns when it was read).
type dataVersion struct {
	read  bool
	conn  uint64
	value int64
}

// queryer is what both the read pool and a transaction offer; every query is
// written once against it.
type queryer interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

// Open opens (creating if needed) the database at path, checks its integrity,
// refuses a schema newer than SchemaVersion, applies pending migrations and
// makes sure the device row exists.
func Open(path string, opts Options) (*DB, error) {
	return open(path, opts, SchemaVersion)
}

// open is Open migrating only up to target; tests use it to build a database
// as an older binary would have left it.
func open(path string, opts Options, target int) (_ *DB, err error) {
	ctx := context.Background()
	if path == "" {
		return nil, errors.New("store: open: empty path")
	}
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, fmt.Errorf("store: open %s: %w", path, err)
	}
	busy := opts.BusyTimeout
	if busy <= 0 {
		busy = 5 * time.Second
	}
	readConns := opts.ReadConns
	if readConns <= 0 {
		readConns = 4
	}
	db := &DB{path: path, rand: opts.Rand}
	if db.rand == nil {
		db.rand = rand.Reader
	}
	defer func() {
		if err != nil {
			db.Close()
		}
	}()

	// Look before touching: journal_mode(WAL) rewrites the file header, so
	// a file we are going to refuse is examined by a query-only connection
	// with no pragmas that change it.
	if err := inspect(ctx, path, abs, busy, opts.QuickCheck); err != nil {
		return nil, err
	}

	wc, err := sqlite.NewConnector(writeDSN(abs, busy))
	if err != nil {
		return nil, fmt.Errorf("store: open %s: %w", path, err)
	}
	db.write = sql.OpenDB(countingConnector{Connector: wc, n: &db.writerConns})
	db.write.SetMaxOpenConns(1)
	db.write.SetMaxIdleConns(1)
	db.write.SetConnMaxLifetime(0)
	db.write.SetConnMaxIdleTime(0)
	if err := db.write.PingContext(ctx); err != nil {
		return nil, openErr(path, err)
	}
	if err := db.migrate(ctx, target); err != nil {
		return nil, err
	}
	if err := db.ensureDevice(ctx, opts.FirmwareVersion); err != nil {
		return nil, err
	}
	// The hot statements are written against the current schema; a
	// database left at an older version (tests building an old binary's
	// file) runs them unprepared, and fails only if it uses them.
	if opts.CommitEvery > 1 {
		// Pinned: no read pool (it could not see the transaction in
		// progress) and no statements prepared on the pool (they would
		// wait for the connection the pin holds).
		if db.pin, err = pin(ctx, db.write, db.writerConns.Load(), opts.CommitEvery); err != nil {
			return nil, fmt.Errorf("store: open %s: %w", path, err)
		}
		return db, nil
	}
	if target == SchemaVersion {
		if err := db.prepareHot(ctx); err != nil {
			return nil, err
		}
	}

	db.read, err = sql.Open("sqlite", readDSN(abs, busy))
	if err != nil {
		return nil, fmt.Errorf("store: open %s: read pool: %w", path, err)
	}
	db.read.SetMaxOpenConns(readConns)
	db.read.SetMaxIdleConns(readConns)
	if err := db.read.PingContext(ctx); err != nil {
		return nil, openErr(path, err)
	}
	return db, nil
}

// openErr names the path and classifies err.
func openErr(path string, err error) error {
	switch s := classify(err); s {
	case ErrNotDatabase:
		// SQLite's own words ("file is not a database") follow the sentinel.
		return fmt.Errorf("store: open %s: %w: %w", path, ErrNotDatabase, err)
	case nil:
		return fmt.Errorf("store: open %s: %w", path, err)
	default:
		return fmt.Errorf("store: open %s: %w: %w", path, s, err)
	}
}

// sqliteURIPath escapes the characters that end or change the meaning of the
// path part of a SQLite file: URI.
var sqliteURIPath = strings.NewReplacer("%", "%25", "?", "%3f", "#", "%23")

func writeDSN(abs string, busy time.Duration) string {
	// NORMAL in WAL mode: a power cut can lose the last commits but never
	// corrupts the file; FULL would fsync on every login attempt.
	// _txlock=immediate: take the write lock at BEGIN, where busy_timeout
	// applies, instead of failing with SQLITE_BUSY when a read upgrades.
	return fmt.Sprintf("file:%s?_pragma=busy_timeout(%d)&_pragma=journal_mode(WAL)"+
		"&_pragma=foreign_keys(1)&_pragma=synchronous(NORMAL)&_txlock=immediate",
		sqliteURIPath.Replace(abs), busy.Milliseconds())
}

func readDSN(abs string, busy time.Duration) string {
	// _query_only: a write through the read pool is a bug; make it an error
	// rather than a second writer.
	return fmt.Sprintf("file:%s?_pragma=busy_timeout(%d)&_pragma=foreign_keys(1)&_query_only=1",
		sqliteURIPath.Replace(abs), busy.Milliseconds())
}

// reads is what reads outside a transaction run on: the read pool, or the
// pinned connection.
func (db *DB) reads() queryer {
	if db.pin != nil {
		return db.pin.q
	}
	return db.read
}

// Path is the path the database was opened with.
func (db *DB) Path() string { return db.path }

// Close closes both pools. The last connection to close checkpoints the WAL.
// A pinned DB commits first; if that fails, the transactions since the last
// commit are lost, and the error says so.
func (db *DB) Close() error {
	var errs []error
	if db.pin != nil {
		errs = append(errs, db.pin.close())
	}
	for _, st := range db.hot {
		if err := st.Close(); err != nil {
			errs = append(errs, err)
		}
	}
	if db.read != nil {
		if err := db.read.Close(); err != nil {
			errs = append(errs, err)
		}
	}
	if db.write != nil {
		if err := db.write.Close(); err != nil {
			errs = append(errs, err)
		}
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("store: close %s: %w", db.path, err)
	}
	return nil
}

// inspect checks, through its own query-only connection, that the file at
// abs is a SQLite database, passes the integrity check, and is either new
// or a Latch database no newer than this binary.
func inspect(ctx context.Context, path, abs string, busy time.Duration, quick bool) error {
	probe, err := sql.Open("sqlite", readDSN(abs, busy))
	if err != nil {
		return fmt.Errorf("store: open %s: %w", path, err)
	}
	defer probe.Close()
	probe.SetMaxOpenConns(1)
	if err := probe.PingContext(ctx); err != nil {
		return openErr(path, err)
	}
	if err := checkIntegrity(ctx, probe, path, quick); err != nil {
		return err
	}
	return checkOwnership(ctx, probe, path)
}

// checkIntegrity runs PRAGMA integrity_check (or quick_check) and turns any
// answer other than a single "ok" into ErrCorrupt with SQLite's first
// findings, so the operator sees what is broken.
func checkIntegrity(ctx context.Context, q queryer, path string, quick bool) error {
	pragma := "PRAGMA integrity_check(8)"
	if quick {
		pragma = "PRAGMA quick_check(8)"
	}
	rows, err := q.QueryContext(ctx, pragma)
	if err != nil {
		return integrityErr(path, err)
	}
	defer rows.Close()
	var findings []string
	for rows.Next() {
		var line string
		if err := rows.Scan(&line); err != nil {
			return integrityErr(path, err)
		}
		findings = append(findings, line)
	}
	if err := rows.Err(); err != nil {
		return integrityErr(path, err)
	}
	if len(findings) == 1 && findings[0] == "ok" {
		return nil
	}
	// One line, for logs: SQLite puts newlines inside its findings.
	report := strings.ReplaceAll(strings.Join(findings, "\n"), "\n", "; ")
	return fmt.Errorf("store: integrity check failed: %s: %w: %s", path, ErrCorrupt, report)
}

func integrityErr(path string, err error) error {
	if s := classify(err); s == ErrNotDatabase {
		return openErr(path, err)
	}
	// Whatever stopped the check from running (a malformed page, an I/O
	// error) is itself a reason not to trust the file.
	return fmt.Errorf("store: integrity check failed: %s: %w: %w", path, ErrCorrupt, err)
}

// WithTx runs fn in one IMMEDIATE transaction on the writer connection and
// commits if fn returns nil; otherwise (or if fn panics) it rolls back.
// Transactions from all goroutines, and from other processes, are
// serialised. fn must use only tx: the writer connection is held until
// WithTx returns.
func (db *DB) WithTx(ctx context.Context, fn func(tx *Tx) error) error {
	if db.pin != nil {
		return db.withPinned(ctx, fn)
	}
	sqlTx, err := db.write.BeginTx(ctx, nil)
	if err != nil {
		return wrap("begin", err)
	}
	committed := false
	tx := &Tx{q: txQueryer{tx: sqlTx, hot: db.hot}, db: db}
	defer func() {
		if !committed {
			// The rollback error is secondary: fn's error (or the panic)
			// is what the caller must see.
			_ = sqlTx.Rollback()
			if tx.usedOpen {
				// What it learnt or changed of the open aggregates
				// may not have committed: learn again from the file.
				db.open.valid = false
			}
		}
	}()
	if err := fn(tx); err != nil {
		return err
	}
	if err := sqlTx.Commit(); err != nil {
		// The driver rolls back a failed COMMIT (SQLITE_BUSY, disk full), so
		// the connection goes back to the pool clean; the deferred Rollback
		// then only reports ErrTxDone.
		return wrap("commit", err)
	}
	committed = true
	return nil
}

// boolInt is SQLite's spelling of a bool in our STRICT INTEGER columns.
func boolInt(b bool) int64 {
	if b {
		return 1
	}
	return 0
}

// nullTime maps the API's "0 means unset" to NULL.
func nullTime(ns int64) any {
	if ns == 0 {
		return nil
	}
	return ns
}

// sqlDataVersion is SQLite's count of commits by other connections, as the
// connection running it sees them.
var sqlDataVersion = hot(`PRAGMA data_version`)

// OthersCommitted reports whether any other connection to the file (another
// process, such as the console CLI beside `latch serve`, or another DB
// opened on the same path) may have committed since the previous call, on
// any transaction of this DB; the first call, and the first after the
// writer connection was replaced, say true. Commits through this DB never
// count: its transactions all run on its one writer connection.
//
// It reads PRAGMA data_version, which changes when another connection
// commits; inside this IMMEDIATE transaction nobody else can commit, so an
// answer of false means no other connection committed between the previous
// call's transaction and the end of this one. A caller that keeps a copy of
// some tables in memory (the auth service's key cache) uses it to learn
// that its copy may be stale. On an error it answers true: the caller must
// then assume the worst.
func (tx *Tx) OthersCommitted(ctx context.Context) (bool, error) {
	dv, err := tx.dataVersion(ctx)
	o := &tx.db.others
	o.mu.Lock()
	defer o.mu.Unlock()
	if err != nil {
		o.valid = false
		return true, err
	}
	changed := !o.valid || o.conn != dv.conn || o.dataVersion != dv.value
	o.valid, o.conn, o.dataVersion = true, dv.conn, dv.value
	return changed, nil
}

// dataVersion reads PRAGMA data_version once per transaction: the value
// cannot change while this transaction holds the write lock (only other
// connections' commits move it), so OthersCommitted and the open
// aggregates' check (openAggs) share one read.
func (tx *Tx) dataVersion(ctx context.Context) (dataVersion, error) {
	if tx.dv.read {
		return tx.dv, nil
	}
	if tx.db.pin != nil {
		tx.dv = tx.db.pin.dv // read at its BEGIN, and fixed until its COMMIT
		return tx.dv, nil
	}
	var v int64
	if err := tx.q.QueryRowContext(ctx, sqlDataVersion).Scan(&v); err != nil {
		return dataVersion{}, wrap("read data version", err)
	}
	tx.dv = dataVersion{read: true, conn: tx.db.writerConns.Load(), value: v}
	return tx.dv, nil
}
