package store

import (
	"context"
)

// Policy is the active lockout policy as the operator saved it. The store
// keeps the text; parsing, validation and proofs happen before SetPolicy.
type Policy struct {
	YAML      string
	UpdatedNS int64
	UpdatedBy string
}

// SetPolicy replaces the active policy. The caller audits the change in the
// same transaction (SPEC R-AUDIT).
func (tx *Tx) SetPolicy(ctx context.Context, p Policy) error {
	_, err := tx.q.ExecContext(ctx, `
		INSERT INTO policy (id, yaml, updated_ns, updated_by) VALUES (1, ?, ?, ?)
		ON CONFLICT (id) DO UPDATE SET yaml = excluded.yaml, updated_ns = excluded.updated_ns,
		                               updated_by = excluded.updated_by`,
		p.YAML, p.UpdatedNS, p.UpdatedBy)
	return wrap("set policy", err)
}

// GetPolicy returns the active policy, or ErrNotFound when none was saved
// (the caller then uses the built-in default).
func (db *DB) GetPolicy(ctx context.Context) (Policy, error) { return getPolicy(ctx, db.reads()) }

// GetPolicy returns the active policy as this transaction sees it.
func (tx *Tx) GetPolicy(ctx context.Context) (Policy, error) { return getPolicy(ctx, tx.q) }

func getPolicy(ctx context.Context, q queryer) (Policy, error) {
	var p Policy
	err := q.QueryRowContext(ctx, `SELECT yaml, updated_ns, updated_by FROM policy WHERE id = 1`).
		Scan(&p.YAML, &p.UpdatedNS, &p.UpdatedBy)
	return p, wrap("get policy", err)
}
