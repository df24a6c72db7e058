package store_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/latchnvr/latch/nvr/store"
)

func TestOpenMigrateReopen(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "latch.db")

	db, err := store.Open(path, testOptions(1))
	if err != nil {
		t.Fatalf("Open new: %v", err)
	}
	dev, err := db.GetDevice(ctx)
	if err != nil {
		t.Fatalf("GetDevice: %v", err)
	}
	if got, want := dev.SchemaVersion, store.SchemaVersion; got != want {
		t.Fatalf("schema version = %d, want %d", got, want)
	}
	if dev.Activated || len(dev.Secret) != 32 || string(dev.Settings) != "{}" || dev.FirmwareVersion != "test" {
		t.Fatalf("new device = %+v, want inactive, 32-byte secret, empty settings, firmware test", dev)
	}
	inTx(t, db, func(tx *store.Tx) error {
		_, err := tx.InsertUser(ctx, store.User{Name: "admin", Role: store.RoleAdmin, PasswordHash: "$argon2id$x", CreatedNS: t0, UpdatedNS: t0})
		return err
	})
	if err := db.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}

	// Reopen with another firmware version and another random source: the
	// data, the schema version and the device secret survive.
	opts := testOptions(2)
	opts.FirmwareVersion = "test2"
	db, err = store.Open(path, opts)
	if err != nil {
		t.Fatalf("reopen: %v", err)
	}
	defer db.Close()
	dev2, err := db.GetDevice(ctx)
	if err != nil {
		t.Fatalf("GetDevice: %v", err)
	}
	if !bytes.Equal(dev2.Secret, dev.Secret) {
		t.Fatalf("device secret changed on reopen")
	}
	if got, want := dev2.FirmwareVersion, "test2"; got != want {
		t.Fatalf("firmware = %q, want %q", got, want)
	}
	if u, err := db.GetUserByName(ctx, "admin"); err != nil || u.Role != store.RoleAdmin {
		t.Fatalf("GetUserByName after reopen = %+v, %v", u, err)
	}
}

// TestOpenPathNeedsEscaping checks that characters meaningful in a SQLite
// URI ('?', '#', '%') do not change which file is opened.
func TestOpenPathNeedsEscaping(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "a dir#1 %41?x")
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "latch?mode=ro#.db")
	db, err := store.Open(path, testOptions(1))
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	inTx(t, db, func(tx *store.Tx) error { return tx.SetSettings(context.Background(), []byte(`{"x":1}`)) })
	db.Close()
	if _, err := os.Stat(path); err != nil {
		t.Fatalf("database not at the path given: %v", err)
	}
}

func TestOpenRefusesNewerSchema(t *testing.T) {
	_, path := openTempClosed(t)
	raw := rawOpen(t, path)
	rawExec(t, raw, fmt.Sprintf("PRAGMA user_version = %d", store.SchemaVersion+1))
	raw.Close()

	_, err := store.Open(path, testOptions(1))
	if !errors.Is(err, store.ErrSchemaTooNew) {
		t.Fatalf("Open = %v, want ErrSchemaTooNew", err)
	}
	want := fmt.Sprintf("database schema version %d is newer than this binary supports (%d)",
		store.SchemaVersion+1, store.SchemaVersion)
	if !strings.Contains(err.Error(), want) || !strings.Contains(err.Error(), path) {
		t.Fatalf("error %q does not say %q and name the path", err, want)
	}
	t.Logf("refused: %v", err)
	var tooNew *store.SchemaTooNewError
	if !errors.As(err, &tooNew) || tooNew.Found != store.SchemaVersion+1 {
		t.Fatalf("error %v is not a *SchemaTooNewError with Found %d", err, store.SchemaVersion+1)
	}
	// Refusing must not have touched the file.
	raw = rawOpen(t, path)
	var v int
	if err := raw.QueryRow("PRAGMA user_version").Scan(&v); err != nil || v != store.SchemaVersion+1 {
		t.Fatalf("user_version after refusal = %d, %v", v, err)
	}
}

// openTempClosed creates a migrated database and closes it, for tests that
// then change the file.
func openTempClosed(t *testing.T) (string, string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "latch.db")
	db, err := store.Open(path, testOptions(1))
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	if err := db.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	return filepath.Dir(path), path
}

func TestOpenRefusesForeignFiles(t *testing.T) {
	garbage := bytes.Repeat([]byte("this is not a database, it is recorded video \x00\xff"), 200)
	tests := []struct {
		name  string
		build func(t *testing.T, path string)
		want  error
		text  string
	}{
		{
			name:  "garbage bytes",
			build: func(t *testing.T, path string) { writeFile(t, path, garbage) },
			want:  store.ErrNotDatabase,
			text:  "file is not a database",
		},
		{
			name:  "short text file",
			build: func(t *testing.T, path string) { writeFile(t, path, []byte("hello\n")) },
			want:  store.ErrNotDatabase,
			text:  "file is not a database",
		},
		{
			name: "Latch database with its header overwritten",
			build: func(t *testing.T, path string) {
				db, err := store.Open(path, testOptions(1))
				if err != nil {
					t.Fatal(err)
				}
				db.Close()
				b, err := os.ReadFile(path)
				if err != nil {
					t.Fatal(err)
				}
				copy(b, garbage[:100])
				writeFile(t, path, b)
			},
			want: store.ErrNotDatabase,
			text: "file is not a database",
		},
		{
			name: "another application's SQLite database",
			build: func(t *testing.T, path string) {
				raw := rawOpen(t, path)
				rawExec(t, raw, "CREATE TABLE photos (id INTEGER PRIMARY KEY, name TEXT)")
				raw.Close()
			},
			want: store.ErrNotDatabase,
			text: "without the Latch application_id",
		},
		{
			name: "SQLite database with another application_id",
			build: func(t *testing.T, path string) {
				raw := rawOpen(t, path)
				rawExec(t, raw, "PRAGMA application_id = 42")
				raw.Close()
			},
			want: store.ErrNotDatabase,
			text: "application_id is 0x2a",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "latch.db")
			tt.build(t, path)
			before, _ := os.ReadFile(path)
			db, err := store.Open(path, testOptions(1))
			if err == nil {
				db.Close()
				t.Fatal("Open succeeded")
			}
			if !errors.Is(err, tt.want) || !strings.Contains(err.Error(), path) || !strings.Contains(err.Error(), tt.text) {
				t.Fatalf("Open = %q; want %v, naming %s and saying %q", err, tt.want, path, tt.text)
			}
			t.Logf("refused: %v", err)
			if after, _ := os.ReadFile(path); !bytes.Equal(before, after) {
				t.Fatalf("refused file was modified")
			}
		})
	}
}

func writeFile(t *testing.T, path string, b []byte) {
	t.Helper()
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
}

// TestOpenRefusesCorruptDatabase damages a valid, populated database in the
// middle and checks that Open refuses it with ErrCorrupt.
func TestOpenRefusesCorruptDatabase(t *testing.T) {
	const pageSize = 4096
	build := func(t *testing.T) string {
		path := filepath.Join(t.TempDir(), "latch.db")
		db, err := store.Open(path, testOptions(1))
		if err != nil {
			t.Fatal(err)
		}
		ctx := context.Background()
		inTx(t, db, func(tx *store.Tx) error {
			cam, err := tx.InsertCamera(ctx, store.Camera{Name: "cam1", FPS: 10, Width: 640, Height: 480, Enabled: true})
			if err != nil {
				return err
			}
			for i := range int64(2000) {
				if _, err := tx.InsertSegment(ctx, segmentAt(cam, i)); err != nil {
					return err
				}
			}
			return nil
		})
		if err := db.Close(); err != nil {
			t.Fatal(err)
		}
		return path
	}
	tests := []struct {
		name   string
		damage func(b []byte) // b is the whole file
	}{
		{"page of garbage in the middle", func(b []byte) {
			mid := len(b) / pageSize / 2 * pageSize
			for i := range pageSize {
				b[mid+i] = byte(i*7 + 3)
			}
		}},
		{"zeroed pages in the middle", func(b []byte) {
			mid := len(b) / pageSize / 2 * pageSize
			clear(b[mid : mid+3*pageSize])
		}},
		{"b-tree page headers overwritten", func(b []byte) {
			for p := 2; p*pageSize < len(b); p += 5 {
				copy(b[(p-1)*pageSize:], "\x0dGARBAGE\xff\xff")
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := build(t)
			b, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			if len(b) < 20*pageSize {
				t.Fatalf("database is only %d bytes; the test needs a populated file", len(b))
			}
			tt.damage(b)
			writeFile(t, path, b)

			db, err := store.Open(path, testOptions(1))
			if err == nil {
				db.Close()
				t.Fatal("Open succeeded on a damaged database")
			}
			if !errors.Is(err, store.ErrCorrupt) || !strings.Contains(err.Error(), path) {
				t.Fatalf("Open = %q; want ErrCorrupt naming %s", err, path)
			}
			t.Logf("refused: %v", err)
		})
	}
}

func segmentAt(camera, i int64) store.Segment {
	return store.Segment{
		CameraID:       camera,
		StartWallNS:    t0 + i*minute,
		EndWallNS:      t0 + (i+1)*minute,
		StartInstantNS: i * minute,
		DurationNS:     minute,
		Bytes:          1 << 20,
		Frames:         600,
		Path:           fmt.Sprintf("cam%d/%08d.mjpeg", camera, i),
	}
}

// TestUpgradeFromV1 builds a database as the first release left it, fills
// it, and opens it with this binary: every row survives and the tables added
// since work.
func TestUpgradeFromV1(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "latch.db")
	v1, err := store.OpenAtVersion(path, testOptions(1), 1)
	if err != nil {
		t.Fatalf("open at v1: %v", err)
	}
	var userID int64
	inTx(t, v1, func(tx *store.Tx) error {
		if err := tx.ActivateDevice(ctx, "$argon2id$pin", t0); err != nil {
			return err
		}
		if userID, err = tx.InsertUser(ctx, store.User{Name: "admin", Role: store.RoleAdmin, PasswordHash: "$argon2id$x", CreatedNS: t0, UpdatedNS: t0}); err != nil {
			return err
		}
		if _, err := tx.PutKeyState(ctx, store.KeyState{KeyID: store.KeyID{Kind: store.KindPair, Principal: "admin", Source: "192.0.2.1"},
			Mode: store.ModeLocked, State: []byte{1, 2}, RemainingNS: 5 * minute, WallAnchorNS: t0}); err != nil {
			return err
		}
		_, err := tx.AppendAudit(ctx, auditRec(0, "admin", "lock"))
		return err
	})
	mustAppend(t, v1, auditRec(1, "admin", "refused"))
	if dev, err := v1.GetDevice(ctx); err != nil || dev.SchemaVersion != 1 {
		t.Fatalf("v1 device = %+v, %v", dev, err)
	}
	// v1 has no outbox: the upgrade is what adds it.
	err = v1.WithTx(ctx, func(tx *store.Tx) error {
		_, err := tx.EnqueueOutbox(ctx, store.OutboxMessage{Kind: "lock", Recipient: "a@example.com", CreatedNS: t0})
		return err
	})
	if err == nil || !strings.Contains(err.Error(), "no such table: outbox") {
		t.Fatalf("enqueue on v1 = %v, want no such table", err)
	}
	secret := mustDevice(t, v1).Secret
	v1.Close()

	db, err := store.Open(path, testOptions(2))
	if err != nil {
		t.Fatalf("upgrade: %v", err)
	}
	defer db.Close()
	dev := mustDevice(t, db)
	if dev.SchemaVersion != store.SchemaVersion || !dev.Activated || !bytes.Equal(dev.Secret, secret) {
		t.Fatalf("upgraded device = %+v", dev)
	}
	if u, err := db.GetUser(ctx, userID); err != nil || u.Name != "admin" {
		t.Fatalf("user after upgrade = %+v, %v", u, err)
	}
	ks, err := db.GetKeyState(ctx, store.KeyID{Kind: store.KindPair, Principal: "admin", Source: "192.0.2.1"})
	if err != nil || ks.Mode != store.ModeLocked || ks.RemainingNS != 5*minute || ks.Version != 1 {
		t.Fatalf("key state after upgrade = %+v, %v", ks, err)
	}
	if n, err := db.VerifyAuditChain(ctx); err != nil || n != 2 {
		t.Fatalf("VerifyAuditChain after upgrade = %d, %v; want 2 rows", n, err)
	}
	var id int64
	inTx(t, db, func(tx *store.Tx) error {
		id, err = tx.EnqueueOutbox(ctx, store.OutboxMessage{Kind: "lock", Recipient: "a@example.com", CreatedNS: t0})
		return err
	})
	if due, err := db.NextDueOutbox(ctx, t0, 10); err != nil || len(due) != 1 || due[0].ID != id {
		t.Fatalf("NextDueOutbox after upgrade = %+v, %v", due, err)
	}
}

func mustDevice(t *testing.T, db *store.DB) store.Device {
	t.Helper()
	d, err := db.GetDevice(context.Background())
	if err != nil {
		t.Fatalf("GetDevice: %v", err)
	}
	return d
}

func TestMigrationsAreNumberedWithoutGaps(t *testing.T) {
	vs, names, err := store.Migrations()
	if err != nil {
		t.Fatal(err)
	}
	if len(vs) != store.SchemaVersion {
		t.Fatalf("%d migrations, SchemaVersion %d", len(vs), store.SchemaVersion)
	}
	for i, v := range vs {
		if v != i+1 {
			t.Fatalf("migration %s has version %d, want %d", names[i], v, i+1)
		}
	}
}

// TestTimesAreIntegers: no time column anywhere holds the driver's
// default time text (with its monotonic suffix), whatever was written.
func TestTimesAreIntegers(t *testing.T) {
	ctx := context.Background()
	db, _ := openTemp(t)
	populate(t, db)
	raw := db.ReadPool()
	rows, err := raw.QueryContext(ctx, `
		SELECT m.name, p.name FROM sqlite_schema m, pragma_table_info(m.name) p
		WHERE m.type = 'table' AND (p.name LIKE '%\_ns' ESCAPE '\' OR p.name = 'instant_ns')`)
	if err != nil {
		t.Fatal(err)
	}
	var cols [][2]string
	for rows.Next() {
		var c [2]string
		if err := rows.Scan(&c[0], &c[1]); err != nil {
			t.Fatal(err)
		}
		cols = append(cols, c)
	}
	rows.Close()
	if len(cols) < 20 {
		t.Fatalf("found only %d time columns: %v", len(cols), cols)
	}
	for _, c := range cols {
		var bad int
		q := fmt.Sprintf(`SELECT count(*) FROM %s WHERE %s IS NOT NULL AND typeof(%s) <> 'integer'`, c[0], c[1], c[1])
		if err := raw.QueryRowContext(ctx, q).Scan(&bad); err != nil {
			t.Fatal(err)
		}
		if bad != 0 {
			t.Errorf("%s.%s: %d non-integer values", c[0], c[1], bad)
		}
	}
	// STRICT tables refuse text in a time column outright.
	_, err = db.Writer().ExecContext(ctx, `UPDATE sessions SET last_used_ns = '2024-01-01 00:00:00 +0000 UTC m=+0.1'`)
	if err == nil {
		t.Fatal("a STRICT INTEGER column accepted time text")
	}
}

func TestReadPoolIsQueryOnly(t *testing.T) {
	db, _ := openTemp(t)
	_, err := db.ReadPool().Exec(`UPDATE device SET firmware_version = 'x'`)
	if err == nil {
		t.Fatal("write through the read pool succeeded")
	}
}
