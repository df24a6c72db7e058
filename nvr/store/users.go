package store

import (
	"context"
	"database/sql"
	"fmt"
)

// Role is a user's role (DESIGN: admin, operator, viewer; a guest is a
// viewer with an expiry).
type Role string

// The roles the schema accepts.
const (
	RoleAdmin    Role = "admin"
	RoleOperator Role = "operator"
	RoleViewer   Role = "viewer"
)

// User is one account. Name is the canonical principal (SPEC §1); the store
// compares it byte for byte and never canonicalises.
type User struct {
	ID                 int64
	Name               string
	DisplayName        string
	Email              string
	Role               Role
	PasswordHash       string // PHC string
	MustChangePassword bool
	Disabled           bool
	ExpiresNS          int64  // unix ns; 0: never
	TOTPSecret         []byte // nil: no second factor
	// TOTPLastStep is the last accepted TOTP time step; only
	// AdvanceTOTPStep changes it.
	TOTPLastStep int64
	CreatedNS    int64
	UpdatedNS    int64
}

const userColumns = `id, name, display_name, email, role, password_hash, must_change_password, disabled,
	coalesce(expires_ns, 0), totp_secret, totp_last_step, created_ns, updated_ns`

var sqlGetUserByName = hot(`SELECT ` + userColumns + ` FROM users WHERE name = ?`)

func scanUser(row interface{ Scan(...any) error }) (User, error) {
	var u User
	err := row.Scan(&u.ID, &u.Name, &u.DisplayName, &u.Email, &u.Role, &u.PasswordHash,
		&u.MustChangePassword, &u.Disabled, &u.ExpiresNS, &u.TOTPSecret, &u.TOTPLastStep,
		&u.CreatedNS, &u.UpdatedNS)
	return u, err
}

// InsertUser adds u (u.ID is ignored) and returns its id. A taken name is
// ErrExists.
func (tx *Tx) InsertUser(ctx context.Context, u User) (int64, error) {
	res, err := tx.q.ExecContext(ctx, `
		INSERT INTO users (name, display_name, email, role, password_hash, must_change_password,
		                   disabled, expires_ns, totp_secret, created_ns, updated_ns)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		u.Name, u.DisplayName, u.Email, string(u.Role), u.PasswordHash, boolInt(u.MustChangePassword),
		boolInt(u.Disabled), nullTime(u.ExpiresNS), nullBlob(u.TOTPSecret), u.CreatedNS, u.UpdatedNS)
	if err != nil {
		return 0, wrap(fmt.Sprintf("insert user %q", u.Name), err)
	}
	id, err := res.LastInsertId()
	return id, wrap("insert user", err)
}

// UpdateUser writes every field of u except ID, CreatedNS and TOTPLastStep
// to the user with id u.ID. Read, change and update in one WithTx so that
// concurrent edits cannot be lost.
func (tx *Tx) UpdateUser(ctx context.Context, u User) error {
	res, err := tx.q.ExecContext(ctx, `
		UPDATE users SET name = ?, display_name = ?, email = ?, role = ?, password_hash = ?,
		       must_change_password = ?, disabled = ?, expires_ns = ?, totp_secret = ?, updated_ns = ?
		WHERE id = ?`,
		u.Name, u.DisplayName, u.Email, string(u.Role), u.PasswordHash, boolInt(u.MustChangePassword),
		boolInt(u.Disabled), nullTime(u.ExpiresNS), nullBlob(u.TOTPSecret), u.UpdatedNS, u.ID)
	return wrapAffected(fmt.Sprintf("update user %d", u.ID), res, err, "no such user")
}

// DeleteUser removes a user with their sessions and recovery codes. Key
// states are kept: the name is still a principal (SPEC R-ENUM).
func (tx *Tx) DeleteUser(ctx context.Context, id int64) error {
	res, err := tx.q.ExecContext(ctx, `DELETE FROM users WHERE id = ?`, id)
	return wrapAffected(fmt.Sprintf("delete user %d", id), res, err, "no such user")
}

// AdvanceTOTPStep records step as the user's last accepted TOTP time step if
// it is later than the stored one, and reports whether it was. A false
// result means the code was already used (or an older one): refuse it.
func (tx *Tx) AdvanceTOTPStep(ctx context.Context, userID, step int64) (bool, error) {
	res, err := tx.q.ExecContext(ctx,
		`UPDATE users SET totp_last_step = ? WHERE id = ? AND totp_last_step < ?`, step, userID, step)
	if err != nil {
		return false, wrap("advance TOTP step", err)
	}
	n, err := res.RowsAffected()
	return n == 1, wrap("advance TOTP step", err)
}

// GetUser returns the user with id.
func (db *DB) GetUser(ctx context.Context, id int64) (User, error) {
	return getUser(ctx, db.reads(), id)
}

// GetUser returns the user with id.
func (tx *Tx) GetUser(ctx context.Context, id int64) (User, error) { return getUser(ctx, tx.q, id) }

func getUser(ctx context.Context, q queryer, id int64) (User, error) {
	u, err := scanUser(q.QueryRowContext(ctx, `SELECT `+userColumns+` FROM users WHERE id = ?`, id))
	return u, wrap(fmt.Sprintf("get user %d", id), err)
}

// GetUserByName returns the user whose canonical name is name.
func (db *DB) GetUserByName(ctx context.Context, name string) (User, error) {
	return getUserByName(ctx, db.reads(), name)
}

// GetUserByName returns the user whose canonical name is name.
func (tx *Tx) GetUserByName(ctx context.Context, name string) (User, error) {
	return getUserByName(ctx, tx.q, name)
}

func getUserByName(ctx context.Context, q queryer, name string) (User, error) {
	u, err := scanUser(q.QueryRowContext(ctx, sqlGetUserByName, name))
	return u, wrap(fmt.Sprintf("get user %q", name), err)
}

// ListUsers returns every user, by name.
func (db *DB) ListUsers(ctx context.Context) ([]User, error) { return listUsers(ctx, db.reads()) }

// ListUsers returns every user, by name.
func (tx *Tx) ListUsers(ctx context.Context) ([]User, error) { return listUsers(ctx, tx.q) }

func listUsers(ctx context.Context, q queryer) ([]User, error) {
	rows, err := q.QueryContext(ctx, `SELECT `+userColumns+` FROM users ORDER BY name`)
	if err != nil {
		return nil, wrap("list users", err)
	}
	return collect(rows, "list users", scanUser)
}

// RecoveryCode is one single-use recovery code, stored hashed.
type RecoveryCode struct {
	ID        int64
	UserID    int64
	CodeHash  string
	CreatedNS int64
	UsedNS    int64 // 0: still usable
}

// ReplaceRecoveryCodes discards the user's recovery codes, used or not, and
// stores hashes as the new set.
func (tx *Tx) ReplaceRecoveryCodes(ctx context.Context, userID int64, hashes []string, nowNS int64) error {
	if _, err := tx.q.ExecContext(ctx, `DELETE FROM recovery_codes WHERE user_id = ?`, userID); err != nil {
		return wrap("replace recovery codes", err)
	}
	for _, h := range hashes {
		if _, err := tx.q.ExecContext(ctx,
			`INSERT INTO recovery_codes (user_id, code_hash, created_ns) VALUES (?, ?, ?)`,
			userID, h, nowNS); err != nil {
			return wrap("replace recovery codes", err)
		}
	}
	return nil
}

// UseRecoveryCode marks code id used. ErrNotFound if it does not exist or
// was already used, so a code works once even under concurrent attempts.
func (tx *Tx) UseRecoveryCode(ctx context.Context, id, nowNS int64) error {
	res, err := tx.q.ExecContext(ctx,
		`UPDATE recovery_codes SET used_ns = ? WHERE id = ? AND used_ns IS NULL`, nowNS, id)
	return wrapAffected("use recovery code", res, err, "no unused code with that id")
}

// ListRecoveryCodes returns the user's codes, used ones included, by id.
func (db *DB) ListRecoveryCodes(ctx context.Context, userID int64) ([]RecoveryCode, error) {
	return listRecoveryCodes(ctx, db.reads(), userID)
}

// ListRecoveryCodes returns the user's codes, used ones included, by id.
func (tx *Tx) ListRecoveryCodes(ctx context.Context, userID int64) ([]RecoveryCode, error) {
	return listRecoveryCodes(ctx, tx.q, userID)
}

func listRecoveryCodes(ctx context.Context, q queryer, userID int64) ([]RecoveryCode, error) {
	rows, err := q.QueryContext(ctx, `
		SELECT id, user_id, code_hash, created_ns, coalesce(used_ns, 0)
		FROM recovery_codes WHERE user_id = ? ORDER BY id`, userID)
	if err != nil {
		return nil, wrap("list recovery codes", err)
	}
	return collect(rows, "list recovery codes", func(r interface{ Scan(...any) error }) (RecoveryCode, error) {
		var c RecoveryCode
		err := r.Scan(&c.ID, &c.UserID, &c.CodeHash, &c.CreatedNS, &c.UsedNS)
		return c, err
	})
}

// nullBlob maps a nil slice to NULL (an empty non-nil slice too).
func nullBlob(b []byte) any {
	if len(b) == 0 {
		return nil
	}
	return b
}

// collect scans every row with scan and closes rows.
func collect[T any](rows *sql.Rows, op string, scan func(interface{ Scan(...any) error }) (T, error)) ([]T, error) {
	defer rows.Close()
	var out []T
	for rows.Next() {
		v, err := scan(rows)
		if err != nil {
			return nil, wrap(op, err)
		}
		out = append(out, v)
	}
	if err := rows.Err(); err != nil {
		return nil, wrap(op, err)
	}
	return out, nil
}
