package auth

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/latchnvr/latch/model"
	"github.com/latchnvr/latch/model/world"
	"github.com/latchnvr/latch/nvr/clock"
	"github.com/latchnvr/latch/nvr/store"
)

// Migration fixtures: testdata/migrate/vN.sql is a database as a binary of
// schema version N left it — the schema exactly as its migrations made it,
// a device, users, key states of every mode, a camera and its segments —
// frozen as SQL text. Each test builds the file from the fixture, opens it
// with store.Open (which migrates it to the current version), checks that
// nothing was lost, and checks that the auth service decides on the
// migrated key states exactly as the model does.
//
// Generate a fixture once, when its version is the newest before a new
// migration, with
//
//	go test ./nvr/auth/ -run TestMigrateV2 -update-fixtures
//
// (each test rewrites only its own fixture; never rewrite an old one: it
// stands for files in the field).
var updateFixtures = flag.Bool("update-fixtures", false, "rewrite the testdata/migrate fixture of each test that runs")

// fixtureWall is the wall clock when the v1 binary last wrote the keys.
var fixtureWall = time.Date(2026, 6, 1, 9, 0, 0, 0, time.UTC)

const fixtureBoot = 77

var fixtureSource = map[string]model.Source{
	"attacker": mustSource("203.0.113.7"),
	"home":     mustSource("192.168.1.20"),
	"office":   mustSource("10.20.0.8"),
	"botnet":   mustSource("198.51.100.9"),
}

// fixtureWorld is the lock state the v1 binary had: built by deciding
// attempts under latch, so every key is one the model can reach.
func fixtureWorld() (*world.World, model.Instant) {
	p := model.Default()
	w := world.New(p)
	at := model.Instant(0)
	fail := func(pr model.Principal, src model.Source, ch model.Channel, role model.Role, n int) {
		for i := 0; i < n; i++ {
			w.Decide(pr, src, model.Event{Attempt: model.Attempt{Channel: ch, Role: role, Print: uint64(1000 + int(at)/int(time.Second))}, Outcome: model.WrongSecret}, at)
			at = at.Add(time.Second)
		}
	}
	ok := func(pr model.Principal, src model.Source, role model.Role) {
		w.Decide(pr, src, model.Event{Attempt: model.Attempt{Role: role}, Outcome: model.RightSecret}, at)
		at = at.Add(time.Second)
	}
	ok("admin", fixtureSource["home"], model.RoleAdmin)                                       // familiar
	fail("admin", fixtureSource["attacker"], model.Remote, model.RoleAdmin, p.Pair.Threshold) // pair locked
	fail("bob", fixtureSource["office"], model.Remote, model.RoleOperator, 2)                 // counting
	fail("ghost", fixtureSource["botnet"], model.Remote, model.RoleViewer, p.Pair.Threshold-1)
	fail("bob", model.Source{}, model.Console, model.RoleOperator, p.Console.Threshold) // console locked
	w.SetDisabled("carol", true)
	return w, at
}

func fixtureRows(w *world.World, savedAt model.Instant) []store.KeyState {
	var rows []store.KeyState
	add := func(id store.KeyID, pr model.Pair) {
		snap := model.Persist(pr, savedAt, fixtureWall.UnixNano())
		rows = append(rows, store.KeyState{KeyID: id, Mode: storeMode(pr.Mode),
			State:       EncodeKey(StoredKey{Snapshot: snap, BootID: fixtureBoot, SavedAt: savedAt}),
			RemainingNS: int64(snap.RemainingAt()), WallAnchorNS: fixtureWall.UnixNano(), Version: 3})
	}
	for id, pr := range w.Pairs {
		add(store.KeyID{Kind: store.KindPair, Principal: string(id.Principal), Source: id.Source.String()}, pr)
	}
	for src, k := range w.Sources {
		add(store.KeyID{Kind: store.KindSource, Source: src.String()}, model.Pair{Key: k})
	}
	for pr, k := range w.Principals {
		add(store.KeyID{Kind: store.KindPrincipal, Principal: string(pr)}, model.Pair{Key: k})
	}
	for pr, k := range w.Consoles {
		add(store.KeyID{Kind: store.KindConsole, Principal: string(pr)}, model.Pair{Key: k})
	}
	slices.SortFunc(rows, func(a, b store.KeyState) int { return strings.Compare(a.KeyID.String(), b.KeyID.String()) })
	return rows
}

func sqlText(s string) string { return "'" + strings.ReplaceAll(s, "'", "''") + "'" }
func sqlBlob(b []byte) string { return "x'" + hex.EncodeToString(b) + "'" }

// writeV1Fixture writes testdata/migrate/v1.sql from migration 0001 and
// the v1 binary's rows.
func writeV1Fixture(t *testing.T, path string) {
	schema, err := os.ReadFile(filepath.Join("..", "store", "migrations", "0001_init.sql"))
	if err != nil {
		t.Fatal(err)
	}
	h := NewHasher(CheapParams, 1)
	ctx := context.Background()
	hash := func(s string) string {
		v, err := h.Hash(ctx, s)
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	wall := fixtureWall.UnixNano()
	var b strings.Builder
	fmt.Fprintf(&b, "-- A Latch database as a schema-version-1 binary left it (see migrate_test.go).\n")
	fmt.Fprintf(&b, "-- Generated once; never edit: it stands for files in the field.\n\n")
	b.Write(schema)
	fmt.Fprintf(&b, "\nPRAGMA user_version = 1;\n\n")
	fmt.Fprintf(&b, "INSERT INTO device (id, activated, activated_ns, firmware_version, master_pin_hash, settings_json, device_secret)\n"+
		"VALUES (1, 1, %d, 'v1.0.0', %s, '{\"theme\":\"dark\"}', %s);\n",
		wall-int64(24*time.Hour), sqlText(hash(pin)), sqlBlob(bytes.Repeat([]byte{0x5a}, 32)))
	for i, u := range []struct{ name, role, pw string }{{"admin", "admin", adminPW}, {"bob", "operator", userPW}, {"carol", "viewer", userPW}} {
		disabled := 0
		if u.name == "carol" {
			disabled = 1
		}
		fmt.Fprintf(&b, "INSERT INTO users (id, name, display_name, email, role, password_hash, disabled, created_ns, updated_ns)\n"+
			"VALUES (%d, %s, %s, '', %s, %s, %d, %d, %d);\n", i+1, sqlText(u.name), sqlText(strings.ToUpper(u.name[:1])+u.name[1:]),
			sqlText(u.role), sqlText(hash(u.pw)), disabled, wall, wall)
	}
	w, savedAt := fixtureWorld()
	for _, r := range fixtureRows(w, savedAt) {
		fmt.Fprintf(&b, "INSERT INTO key_states (kind, principal, source, mode, state, remaining_ns, wall_anchor_ns, version)\n"+
			"VALUES (%s, %s, %s, %s, %s, %d, %d, %d);\n", sqlText(string(r.Kind)), sqlText(r.Principal), sqlText(r.Source),
			sqlText(string(r.Mode)), sqlBlob(r.State), r.RemainingNS, r.WallAnchorNS, r.Version)
	}
	fmt.Fprintf(&b, "INSERT INTO cameras (id, name, fps, width, height, enabled) VALUES (1, 'cam1', 1, 640, 360, 1);\n")
	for i := 0; i < 3; i++ {
		start := wall - int64(3-i)*int64(time.Minute)
		fmt.Fprintf(&b, "INSERT INTO segments (camera_id, start_wall_ns, end_wall_ns, start_instant_ns, duration_ns, bytes, frames, path)\n"+
			"VALUES (1, %d, %d, %d, %d, %d, 60, 'recordings/cam1/seg%d.mjpeg');\n",
			start, start+int64(time.Minute), int64(i)*int64(time.Minute), int64(time.Minute), 1000+i, i)
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
}

// buildFromFixture makes a database file from a fixture with the bare
// driver, as the old binary's file would be found on disk.
func buildFromFixture(t *testing.T, fixture, path string) {
	text, err := os.ReadFile(fixture)
	if err != nil {
		t.Fatal(err)
	}
	raw, err := sql.Open("sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	if _, err := raw.Exec(string(text)); err != nil {
		t.Fatal(err)
	}
}

func TestMigrateV1KeepsUsersKeysAndSegments(t *testing.T) {
	fixture := filepath.Join("testdata", "migrate", "v1.sql")
	if *updateFixtures {
		writeV1Fixture(t, fixture)
	}
	path := filepath.Join(t.TempDir(), "latch.db")
	buildFromFixture(t, fixture, path)
	ctx := context.Background()
	raw, err := sql.Open("sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	var version int
	if err := raw.QueryRow("PRAGMA user_version").Scan(&version); err != nil || version != 1 {
		t.Fatalf("fixture at version %d (%v), want 1", version, err)
	}
	raw.Close()

	db, err := store.Open(path, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	dev, err := db.GetDevice(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if dev.SchemaVersion != store.SchemaVersion || !dev.Activated || string(dev.Settings) != `{"theme":"dark"}` {
		t.Fatalf("device after migration: %+v", dev)
	}
	users, err := db.ListUsers(ctx)
	if err != nil || len(users) != 3 || users[0].Name != "admin" || users[1].Role != store.RoleOperator || !users[2].Disabled {
		t.Fatalf("users after migration: %v %+v", err, users)
	}
	w, savedAt := fixtureWorld()
	for _, want := range fixtureRows(w, savedAt) {
		got, err := db.GetKeyState(ctx, want.KeyID)
		if err != nil {
			t.Fatalf("%s: %v", want.KeyID, err)
		}
		if !bytes.Equal(got.State, want.State) || got.Mode != want.Mode || got.RemainingNS != want.RemainingNS || got.Version != want.Version {
			t.Fatalf("%s after migration: %+v, want %+v", want.KeyID, got, want)
		}
	}
	segs, err := db.ListSegments(ctx, 1, 0, 1<<62, 0)
	if err != nil || len(segs) != 3 || segs[2].Path != "recordings/cam1/seg2.mjpeg" || segs[1].Bytes != 1001 {
		t.Fatalf("segments after migration: %v %+v", err, segs)
	}

	// The service decides on the migrated keys as the model does: the
	// device was off for 20 s by the wall clock (R-RESTART).
	const down = 20 * time.Second
	clk := clock.NewSim(fixtureWall.Add(down))
	p := model.Default()
	svc, err := New(db, Config{Clock: clk, Hasher: NewHasher(CheapParams, 1), Policy: p, BootID: fixtureBoot + 1})
	if err != nil {
		t.Fatal(err)
	}
	defer svc.Close()
	now := model.Instant(clk.Instant())
	w.Restart(savedAt, fixtureWall.UnixNano(), fixtureWall.Add(down).UnixNano())
	// The model's instants are the old boot's; the service's start at 0.
	shift := func(at model.Instant) model.Instant { return savedAt + at - now }
	device := bytes.Repeat([]byte{0x5a}, 32)
	passwords := map[model.Principal]string{"admin": adminPW, "bob": userPW, "carol": userPW}
	roles := map[model.Principal]model.Role{"admin": model.RoleAdmin, "bob": model.RoleOperator, "carol": model.RoleViewer}
	for _, step := range []struct {
		user, source, secret string
		wait                 time.Duration
	}{
		{"admin", "attacker", "right", 0}, // still locked: 20 s served of the minute
		{"admin", "home", "right", 0},     // familiar: allowed
		{"bob", "office", "wrong", 0},     // third failure
		{"ghost", "botnet", "wrong", 0},   // fifth: locks the unknown name's pair
		{"bob", "", "right", 0},           // console locked
		{"carol", "home", "right", 0},     // disabled
		{"bob", "", "right", 30 * time.Second},
		{"admin", "attacker", "right", 2 * time.Minute},
	} {
		clk.Advance(step.wait)
		pr := model.Principal(step.user)
		src, ch := fixtureSource[step.source], model.Remote
		if step.source == "" {
			ch = model.Console
		}
		secret := "not-the-password"
		if step.secret == "right" {
			secret = passwords[pr]
		}
		res, err := svc.Login(ctx, Attempt{Username: step.user, Secret: secret, Source: src, Channel: ch})
		if err != nil {
			t.Fatal(err)
		}
		ev := model.Event{Attempt: model.Attempt{Channel: ch, Role: roles[pr], Print: model.Fingerprint(device, secret)}, Outcome: model.WrongSecret}
		if _, known := passwords[pr]; known && step.secret == "right" {
			ev.Outcome = model.RightSecret
		}
		want := w.Decide(pr, src, ev, shift(model.Instant(clk.Instant())))
		if res.Decision != want {
			t.Fatalf("%+v after migration:\n got %+v\nwant %+v", step, res.Decision, want)
		}
		t.Logf("%s from %q: %s %s %v", step.user, step.source, res.Decision.Verdict, res.Decision.Scope, res.Decision.RetryAfter)
	}
}

// The v2 fixture adds what schema 2 had and 3 changes: sessions (3 adds
// their endpoint's source) and the outbox; 3 also adds recovery rows.
const (
	// fixtureToken is bob's live session in the v2 fixture (43 characters
	// of base64url, as the service makes them).
	fixtureToken = "v2-fixture-session-token-of-bob-0123456789A"
	bobEmail     = "bob@example.com"
)

// writeV2Fixture writes testdata/migrate/v2.sql from migrations 0001 and
// 0002 and the v2 binary's rows.
func writeV2Fixture(t *testing.T, path string) {
	var schema []byte
	for _, m := range []string{"0001_init.sql", "0002_outbox.sql"} {
		b, err := os.ReadFile(filepath.Join("..", "store", "migrations", m))
		if err != nil {
			t.Fatal(err)
		}
		schema = append(append(schema, b...), '\n')
	}
	h := NewHasher(CheapParams, 1)
	ctx := context.Background()
	hash := func(s string) string {
		v, err := h.Hash(ctx, s)
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	wall := fixtureWall.UnixNano()
	var b strings.Builder
	fmt.Fprintf(&b, "-- A Latch database as a schema-version-2 binary left it (see migrate_test.go).\n")
	fmt.Fprintf(&b, "-- Generated once; never edit: it stands for files in the field.\n\n")
	b.Write(schema)
	fmt.Fprintf(&b, "\nPRAGMA user_version = 2;\n\n")
	fmt.Fprintf(&b, "INSERT INTO device (id, activated, activated_ns, firmware_version, master_pin_hash, settings_json, device_secret)\n"+
		"VALUES (1, 1, %d, 'v2.0.0', %s, '{\"theme\":\"dark\"}', %s);\n",
		wall-int64(24*time.Hour), sqlText(hash(pin)), sqlBlob(bytes.Repeat([]byte{0x5a}, 32)))
	for i, u := range []struct{ name, role, pw, email string }{
		{"admin", "admin", adminPW, ""}, {"bob", "operator", userPW, bobEmail}, {"carol", "viewer", userPW, ""},
	} {
		disabled := 0
		if u.name == "carol" {
			disabled = 1
		}
		fmt.Fprintf(&b, "INSERT INTO users (id, name, display_name, email, role, password_hash, disabled, created_ns, updated_ns)\n"+
			"VALUES (%d, %s, %s, %s, %s, %s, %d, %d, %d);\n", i+1, sqlText(u.name), sqlText(strings.ToUpper(u.name[:1])+u.name[1:]),
			sqlText(u.email), sqlText(u.role), sqlText(hash(u.pw)), disabled, wall, wall)
	}
	w, savedAt := fixtureWorld()
	for _, r := range fixtureRows(w, savedAt) {
		fmt.Fprintf(&b, "INSERT INTO key_states (kind, principal, source, mode, state, remaining_ns, wall_anchor_ns, version)\n"+
			"VALUES (%s, %s, %s, %s, %s, %d, %d, %d);\n", sqlText(string(r.Kind)), sqlText(r.Principal), sqlText(r.Source),
			sqlText(string(r.Mode)), sqlBlob(r.State), r.RemainingNS, r.WallAnchorNS, r.Version)
	}
	// Bob's session from the office, live when the v2 binary stopped; an
	// older one he signed out of.
	fmt.Fprintf(&b, "INSERT INTO sessions (id_hash, user_id, created_ns, last_used_ns, idle_expires_ns, absolute_expires_ns, peer, user_agent)\n"+
		"VALUES (%s, 2, %d, %d, %d, %d, '10.20.0.8:51234', 'Firefox/140.0');\n",
		sqlBlob(store.SessionIDHash(fixtureToken)), wall-int64(10*time.Minute), wall, wall+int64(30*time.Minute), wall+int64(11*time.Hour))
	fmt.Fprintf(&b, "INSERT INTO sessions (id_hash, user_id, created_ns, last_used_ns, idle_expires_ns, absolute_expires_ns, revoked_ns, revoke_reason, peer, user_agent)\n"+
		"VALUES (%s, 2, %d, %d, %d, %d, %d, 'logout', '10.20.0.8:50000', 'Firefox/140.0');\n",
		sqlBlob(store.SessionIDHash("an-older-token")), wall-int64(time.Hour), wall-int64(time.Hour), wall, wall+int64(10*time.Hour), wall-int64(50*time.Minute))
	fmt.Fprintf(&b, "INSERT INTO outbox (kind, recipient, subject, body, created_ns, attempts, next_attempt_ns, delivered_ns)\n"+
		"VALUES ('lock', %s, 'NVR account bob lock', 'locked', %d, 1, NULL, %d);\n", sqlText(bobEmail), wall-int64(time.Minute), wall-int64(time.Minute)+int64(time.Second))
	fmt.Fprintf(&b, "INSERT INTO cameras (id, name, fps, width, height, enabled) VALUES (1, 'cam1', 1, 640, 360, 1);\n")
	fmt.Fprintf(&b, "INSERT INTO segments (camera_id, start_wall_ns, end_wall_ns, start_instant_ns, duration_ns, bytes, frames, path)\n"+
		"VALUES (1, %d, %d, 0, %d, 1000, 60, 'recordings/cam1/seg0.mjpeg');\n", wall-int64(time.Minute), wall, int64(time.Minute))
	if err := os.WriteFile(path, []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
}

// TestMigrateV2ToV3 opens a schema-2 database: users, keys, sessions,
// the outbox and segments survive; a v2 session is still valid and has an
// unknown endpoint (so signing in elsewhere is a concurrent login); and
// self-service recovery works on the migrated account.
func TestMigrateV2ToV3(t *testing.T) {
	fixture := filepath.Join("testdata", "migrate", "v2.sql")
	if *updateFixtures {
		writeV2Fixture(t, fixture)
	}
	path := filepath.Join(t.TempDir(), "latch.db")
	buildFromFixture(t, fixture, path)
	ctx := context.Background()
	db, err := store.Open(path, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	dev, err := db.GetDevice(ctx)
	if err != nil || dev.SchemaVersion != 3 || !dev.Activated || string(dev.Settings) != `{"theme":"dark"}` {
		t.Fatalf("device after migration: %+v %v", dev, err)
	}
	users, err := db.ListUsers(ctx)
	if err != nil || len(users) != 3 || users[1].Email != bobEmail || !users[2].Disabled {
		t.Fatalf("users after migration: %v %+v", err, users)
	}
	w, savedAt := fixtureWorld()
	for _, want := range fixtureRows(w, savedAt) {
		got, err := db.GetKeyState(ctx, want.KeyID)
		if err != nil || !bytes.Equal(got.State, want.State) || got.Version != want.Version {
			t.Fatalf("%s after migration: %+v, %v", want.KeyID, got, err)
		}
	}
	sessions, err := db.ListUserSessions(ctx, 2)
	if err != nil || len(sessions) != 2 || sessions[0].Source != "" || sessions[0].UserAgent != "Firefox/140.0" || sessions[1].RevokeReason != "logout" {
		t.Fatalf("sessions after migration: %+v %v", sessions, err)
	}
	if m, err := db.GetOutbox(ctx, 1); err != nil || m.DeliveredNS == 0 || m.Recipient != bobEmail {
		t.Fatalf("outbox after migration: %+v %v", m, err)
	}
	if segs, err := db.ListSegments(ctx, 1, 0, 1<<62, 0); err != nil || len(segs) != 1 {
		t.Fatalf("segments after migration: %+v %v", segs, err)
	}

	clk := clock.NewSim(fixtureWall.Add(20 * time.Second))
	svc, err := New(db, Config{Clock: clk, Hasher: NewHasher(CheapParams, 1), Policy: model.Default(), BootID: fixtureBoot + 1})
	if err != nil {
		t.Fatal(err)
	}
	defer svc.Close()
	if u, _, err := svc.Session(ctx, fixtureToken); err != nil || u.Name != "bob" {
		t.Fatalf("the v2 session after migration: %+v %v", u, err)
	}
	if p, src := svc.SessionPolicy(); p != SessionsNotify || src != "default" {
		t.Fatalf("sessions policy on a migrated device: %s from %s", p, src)
	}
	// Bob signs in from home while the v2 session (endpoint unknown) is
	// live: a concurrent login under the default policy.
	res, err := svc.Login(ctx, Attempt{Username: "bob", Secret: userPW, Source: fixtureSource["home"], Channel: model.Remote, UserAgent: "Firefox/140.0"})
	if err != nil || res.Decision.Verdict != model.Allowed {
		t.Fatalf("bob from home: %+v %v", res, err)
	}
	if recs, _ := db.ListAudit(ctx, store.AuditFilter{Outcome: "concurrent_session", Principal: "bob"}); len(recs) != 1 {
		t.Fatalf("concurrent_session audits: %+v", recs)
	}

	// Recovery on the migrated account: bob's console key is locked and
	// his office pair is counting; a reset opens them and ends sessions.
	if err := svc.StartRecovery(ctx, "bob", fixtureSource["office"]); err != nil {
		t.Fatal(err)
	}
	due, err := db.NextDueOutbox(ctx, clk.Now().UnixNano(), 0)
	if err != nil {
		t.Fatal(err)
	}
	var code string
	for _, m := range due {
		if m.Kind == "recovery_code" {
			code = regexp.MustCompile(`Recovery code: ([A-Z2-7-]+)`).FindStringSubmatch(m.Body)[1]
		}
	}
	if err := svc.FinishRecovery(ctx, Recovery{Username: "bob", Code: code, NewPassword: "lantern quarry meadow 58", Source: fixtureSource["office"]}); err != nil {
		t.Fatalf("recovery after migration: %v", err)
	}
	if _, _, err := svc.Session(ctx, fixtureToken); !errors.Is(err, ErrNoSession) {
		t.Fatalf("the v2 session after recovery: %v", err)
	}
	keys, err := db.ListPrincipalKeys(ctx, "bob")
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range keys {
		if k.Mode != store.ModeOpen {
			t.Fatalf("%s is %s after recovery (R-RESET)", k.KeyID, k.Mode)
		}
	}
	res, err = svc.Login(ctx, Attempt{Username: "bob", Secret: "lantern quarry meadow 58", Channel: model.Console, NoSession: true})
	if err != nil || res.Decision.Verdict != model.Allowed {
		t.Fatalf("bob at the console after recovery: %+v %v", res.Decision, err)
	}
}
