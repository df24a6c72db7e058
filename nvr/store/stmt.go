package store

import (
	"context"
	"database/sql"
	"strings"
)

// hotQueries lists the statements worth preparing once: the ones every login
// attempt or refused attempt runs. Preparing (parsing, and compiling the
// CHECK constraints into every INSERT) costs more than running them, and
// under a flood the one writer connection is the bottleneck.
var hotQueries []string

// hot registers query as a hot statement and returns it unchanged, so a
// query is declared hot where it is written: var q = hot(`...`).
func hot(query string) string {
	hotQueries = append(hotQueries, query)
	return query
}

// prepareHot prepares every hot statement on the writer connection. It runs
// in Open while no transaction holds that connection; preparing from inside
// a transaction would wait for the connection the transaction holds.
func (db *DB) prepareHot(ctx context.Context) (err error) {
	db.hot, err = prepareHot(ctx, db.write)
	return err
}

// preparer is a pool or one connection of it.
type preparer interface {
	PrepareContext(ctx context.Context, query string) (*sql.Stmt, error)
}

// prepareHot prepares every hot statement on on; on an error it closes
// those it prepared.
func prepareHot(ctx context.Context, on preparer) (map[string]*sql.Stmt, error) {
	hot := make(map[string]*sql.Stmt, len(hotQueries))
	for _, q := range hotQueries {
		st, err := on.PrepareContext(ctx, q)
		if err != nil {
			for _, st := range hot {
				st.Close()
			}
			return nil, wrap("prepare "+strings.Join(strings.Fields(q), " "), err)
		}
		hot[q] = st
	}
	return hot, nil
}

// txQueryer runs a transaction's statements, using the prepared statement
// for hot queries. Tx.StmtContext reuses the statement already prepared on
// the writer connection, which is the transaction's connection.
type txQueryer struct {
	tx  *sql.Tx
	hot map[string]*sql.Stmt
}

func (q txQueryer) ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error) {
	if st, ok := q.hot[query]; ok {
		return q.tx.StmtContext(ctx, st).ExecContext(ctx, args...)
	}
	return q.tx.ExecContext(ctx, query, args...)
}

func (q txQueryer) QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error) {
	if st, ok := q.hot[query]; ok {
		return q.tx.StmtContext(ctx, st).QueryContext(ctx, args...)
	}
	return q.tx.QueryContext(ctx, query, args...)
}

func (q txQueryer) QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row {
	if st, ok := q.hot[query]; ok {
		return q.tx.StmtContext(ctx, st).QueryRowContext(ctx, args...)
	}
	return q.tx.QueryRowContext(ctx, query, args...)
}
