package store

import (
	"context"
	"database/sql"
)

// OpenAtVersion opens path migrating only up to version: a database as an
// older binary would have left it.
func OpenAtVersion(path string, opts Options, version int) (*DB, error) {
	return open(path, opts, version)
}

// Writer exposes the writer pool so tests can tamper with rows or set
// per-connection pragmas (max_page_count) on the one writer connection.
func (db *DB) Writer() *sql.DB { return db.write }

// ReadPool exposes the read pool.
func (db *DB) ReadPool() *sql.DB { return db.read }

// QueryPlan returns EXPLAIN QUERY PLAN details for query on the read pool.
func (db *DB) QueryPlan(ctx context.Context, query string, args ...any) ([]string, error) {
	rows, err := db.read.QueryContext(ctx, "EXPLAIN QUERY PLAN "+query, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var plan []string
	for rows.Next() {
		var id, parent, notused int
		var detail string
		if err := rows.Scan(&id, &parent, &notused, &detail); err != nil {
			return nil, err
		}
		plan = append(plan, detail)
	}
	return plan, rows.Err()
}

// SegmentListQuery is the query ListSegments runs, for plan checks.
const SegmentListQuery = segmentListQuery

// Migrations reports the embedded migrations' versions and names.
func Migrations() ([]int, []string, error) {
	ms, err := loadMigrations()
	var vs []int
	var names []string
	for _, m := range ms {
		vs = append(vs, m.version)
		names = append(names, m.name)
	}
	return vs, names, err
}

// ForgetOthers makes the DB's memory of open aggregates trust the file as
// it is now, as if no other connection had committed since it was learnt:
// for testing that a stale row id costs a search, never a wrong count.
func (db *DB) ForgetOthers(ctx context.Context) error {
	return db.WithTx(ctx, func(tx *Tx) error {
		if _, err := tx.openAggs(ctx); err != nil {
			return err
		}
		dv, err := tx.dataVersion(ctx)
		db.open.dv = dv
		return err
	})
}

// SetOpenAggregateID makes the DB's memory of open aggregates name id as
// the open aggregate of rec's key in bucket, right or wrong.
func (db *DB) SetOpenAggregateID(ctx context.Context, rec AuditRecord, bucket, id int64) error {
	if err := db.ForgetOthers(ctx); err != nil {
		return err
	}
	k := refusalKey{rec.KeyKind, rec.Principal, rec.Source, rec.Channel, rec.Outcome, rec.Reason, bucket}
	if _, ok := db.open.rows[k]; ok {
		db.open.buckets[bucket]--
	}
	r := rec
	r.ID, r.Aggregate, r.MinuteBucket = id, true, bucket
	db.open.add(k, &r)
	return nil
}

// MiscountOpenAggregate makes the DB's copy of open aggregate id count one
// refusal more than the row does.
func (db *DB) MiscountOpenAggregate(id int64) {
	for _, r := range db.open.rows {
		if r.ID == id {
			r.Count++
		}
	}
}
