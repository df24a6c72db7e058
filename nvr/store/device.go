package store

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
)

// deviceSecretLen is the size of the device secret (a 256-bit MAC key).
const deviceSecretLen = 32

// Device is the appliance's single row.
type Device struct {
	Activated       bool
	ActivatedNS     int64 // unix ns; 0 while inactive
	FirmwareVersion string
	SchemaVersion   int
	MasterPINHash   string // PHC string; "" while inactive
	// Settings is a JSON object owned by the web and console packages.
	Settings json.RawMessage
	// Secret keys the MACs that must not be recomputable from the database
	// alone by someone who lacks it (SPEC R-REPLAY fingerprints). 32 bytes.
	Secret []byte
}

// ensureDevice creates the device row on first open and records the
// firmware version. It runs after migrations, so the row always exists once
// Open returns.
func (db *DB) ensureDevice(ctx context.Context, firmware string) error {
	return db.WithTx(ctx, func(tx *Tx) error {
		var exists bool
		if err := tx.q.QueryRowContext(ctx, `SELECT count(*) FROM device`).Scan(&exists); err != nil {
			return wrap("read device row", err)
		}
		if !exists {
			// Only a new database draws a secret, so a seeded Options.Rand
			// gives the same secret however often the file is reopened.
			secret, err := tx.db.newSecret()
			if err != nil {
				return err
			}
			if _, err := tx.q.ExecContext(ctx, `INSERT INTO device (id, device_secret) VALUES (1, ?)`, secret); err != nil {
				return wrap("create device row", err)
			}
		}
		if firmware == "" {
			return nil
		}
		_, err := tx.q.ExecContext(ctx,
			`UPDATE device SET firmware_version = ? WHERE id = 1 AND firmware_version <> ?`, firmware, firmware)
		return wrap("record firmware version", err)
	})
}

func (db *DB) newSecret() ([]byte, error) {
	b := make([]byte, deviceSecretLen)
	if _, err := io.ReadFull(db.rand, b); err != nil {
		return nil, fmt.Errorf("store: generate device secret: %w", err)
	}
	return b, nil
}

// GetDevice returns the device row.
func (db *DB) GetDevice(ctx context.Context) (Device, error) { return getDevice(ctx, db.reads()) }

// GetDevice returns the device row as this transaction sees it.
func (tx *Tx) GetDevice(ctx context.Context) (Device, error) { return getDevice(ctx, tx.q) }

func getDevice(ctx context.Context, q queryer) (Device, error) {
	var d Device
	var settings string
	err := q.QueryRowContext(ctx, `
		SELECT activated, coalesce(activated_ns, 0), firmware_version, coalesce(master_pin_hash, ''),
		       settings_json, device_secret
		FROM device WHERE id = 1`).
		Scan(&d.Activated, &d.ActivatedNS, &d.FirmwareVersion, &d.MasterPINHash, &settings, &d.Secret)
	if err != nil {
		return Device{}, wrap("get device", err)
	}
	d.Settings = json.RawMessage(settings)
	if err := q.QueryRowContext(ctx, "PRAGMA user_version").Scan(&d.SchemaVersion); err != nil {
		return Device{}, wrap("get device: schema version", err)
	}
	return d, nil
}

// ActivateDevice marks an inactive device active with the owner's master PIN
// hash. The caller creates the first admin in the same transaction. An
// active device is left alone and ErrAlreadyActivated returned: activation
// after a factory reset must go through FactoryReset first.
func (tx *Tx) ActivateDevice(ctx context.Context, masterPINHash string, nowNS int64) error {
	if masterPINHash == "" {
		return fmt.Errorf("store: activate device: %w: empty master PIN hash", ErrConstraint)
	}
	res, err := tx.q.ExecContext(ctx, `
		UPDATE device SET activated = 1, activated_ns = ?, master_pin_hash = ?
		WHERE id = 1 AND activated = 0`, nowNS, masterPINHash)
	if err != nil {
		return wrap("activate device", err)
	}
	if n, err := res.RowsAffected(); err != nil {
		return wrap("activate device", err)
	} else if n == 0 {
		return fmt.Errorf("store: activate device: %w", ErrAlreadyActivated)
	}
	return nil
}

// SetMasterPIN replaces the console master PIN hash of an active device.
func (tx *Tx) SetMasterPIN(ctx context.Context, masterPINHash string) error {
	if masterPINHash == "" {
		return fmt.Errorf("store: set master PIN: %w: empty hash", ErrConstraint)
	}
	res, err := tx.q.ExecContext(ctx,
		`UPDATE device SET master_pin_hash = ? WHERE id = 1 AND activated = 1`, masterPINHash)
	return wrapAffected("set master PIN", res, err, "device is not activated")
}

// SetSettings replaces the settings JSON object.
func (tx *Tx) SetSettings(ctx context.Context, settings json.RawMessage) error {
	if !json.Valid(settings) {
		return fmt.Errorf("store: set settings: %w: not valid JSON", ErrConstraint)
	}
	_, err := tx.q.ExecContext(ctx, `UPDATE device SET settings_json = ? WHERE id = 1`, string(settings))
	return wrap("set settings", err)
}

// FactoryReset erases users (and with them recovery codes and sessions), all
// key states, e-mailed recovery codes and their windows, the policy,
// pending notifications and the settings, rotates
// the device secret and returns the device to inactive (SPEC R-FACTORY).
// Cameras, segments, garbage and the audit log are kept: recordings and
// their index are untouched, and the reset itself is audited by the caller
// in the same transaction.
func (tx *Tx) FactoryReset(ctx context.Context) error {
	secret, err := tx.db.newSecret()
	if err != nil {
		return err
	}
	// Pending notifications go too: they are addressed to the old owner's
	// accounts and may carry recovery or reset codes.
	for _, stmt := range []string{
		`DELETE FROM sessions`,
		`DELETE FROM recovery_codes`,
		`DELETE FROM recovery_tokens`,
		`DELETE FROM users`,
		`DELETE FROM key_states`,
		`DELETE FROM policy`,
		`DELETE FROM outbox`,
	} {
		if _, err := tx.q.ExecContext(ctx, stmt); err != nil {
			return wrap("factory reset: "+stmt, err)
		}
	}
	_, err = tx.q.ExecContext(ctx, `
		UPDATE device SET activated = 0, activated_ns = NULL, master_pin_hash = NULL,
		       settings_json = '{}', device_secret = ?
		WHERE id = 1`, secret)
	return wrap("factory reset: device", err)
}
