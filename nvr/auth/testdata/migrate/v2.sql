-- A Latch database as a schema-version-2 binary left it (see migrate_test.go).
-- Generated once; never edit: it stands for files in the field.

-- 0001: the initial Latch schema.
--
-- Conventions (see package doc):
--   * STRICT tables, so a time can never be stored as text by accident.
--   * *_ns columns are unix nanoseconds (wall time, for people);
--     *instant_ns columns are monotonic nanoseconds (SPEC R-MONO).
--   * A nullable time is NULL when unset; the Go side maps 0 <-> NULL.
--   * Text columns that take part in equality matching are NOT NULL DEFAULT ''
--     because NULL never equals NULL.

-- Marks the file as a Latch database, so Open can refuse some other
-- application's SQLite file instead of migrating it.
PRAGMA application_id = 1281455182; -- 0x4C61744E, "LatN"

-- device is the appliance itself: one row, created by Open.
CREATE TABLE device (
    id               INTEGER PRIMARY KEY CHECK (id = 1),
    activated        INTEGER NOT NULL DEFAULT 0 CHECK (activated IN (0, 1)),
    activated_ns     INTEGER,
    -- The last binary version that opened this database (firmware history is
    -- in the audit log).
    firmware_version TEXT    NOT NULL DEFAULT '',
    master_pin_hash  TEXT,
    settings_json    TEXT    NOT NULL DEFAULT '{}'
        CHECK (json_valid(settings_json) AND json_type(settings_json) = 'object'),
    -- Key for keyed MACs (SPEC R-REPLAY fingerprints, CSRF tokens). Rotated by
    -- factory reset so nothing derived from it survives a change of owner.
    device_secret    BLOB    NOT NULL CHECK (length(device_secret) = 32),
    -- An inactive device has no owner credentials; an active one has both.
    CHECK ((activated = 0 AND activated_ns IS NULL AND master_pin_hash IS NULL)
        OR (activated = 1 AND activated_ns IS NOT NULL AND master_pin_hash IS NOT NULL AND master_pin_hash <> ''))
) STRICT;

CREATE TABLE users (
    id                   INTEGER PRIMARY KEY,
    -- The canonical principal (SPEC §1: NFKC, trimmed, case-folded). The
    -- store compares bytes; canonicalisation happens before it is called.
    name                 TEXT    NOT NULL UNIQUE CHECK (length(name) BETWEEN 1 AND 256),
    display_name         TEXT    NOT NULL DEFAULT '',
    email                TEXT    NOT NULL DEFAULT '',
    role                 TEXT    NOT NULL CHECK (role IN ('admin', 'operator', 'viewer')),
    -- PHC string (argon2id). Kept in its own column, never in a JSON blob
    -- that could be sent on the wire (Moonfire does the same).
    password_hash        TEXT    NOT NULL CHECK (password_hash <> ''),
    must_change_password INTEGER NOT NULL DEFAULT 0 CHECK (must_change_password IN (0, 1)),
    disabled             INTEGER NOT NULL DEFAULT 0 CHECK (disabled IN (0, 1)),
    expires_ns           INTEGER,                 -- NULL: never (guests may expire)
    totp_secret          BLOB,                    -- NULL: no second factor
    -- Last accepted TOTP time step, so a code cannot be replayed.
    totp_last_step       INTEGER NOT NULL DEFAULT 0 CHECK (totp_last_step >= 0),
    created_ns           INTEGER NOT NULL,
    updated_ns           INTEGER NOT NULL
) STRICT;

CREATE TABLE recovery_codes (
    id         INTEGER PRIMARY KEY,
    user_id    INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    code_hash  TEXT    NOT NULL CHECK (code_hash <> ''),
    created_ns INTEGER NOT NULL,
    used_ns    INTEGER,                           -- NULL: still usable
    UNIQUE (user_id, code_hash)                   -- also the index by user
) STRICT;

-- One row per lock machine (SPEC §2). No foreign key to users: unknown
-- principals are counted and locked exactly like real ones (SPEC R-ENUM).
-- The unused half of the identity is '' (not NULL, which would let the
-- primary key hold duplicates).
CREATE TABLE key_states (
    kind           TEXT    NOT NULL CHECK (kind IN ('pair', 'source', 'principal', 'console')),
    principal      TEXT    NOT NULL,
    source         TEXT    NOT NULL,
    mode           TEXT    NOT NULL CHECK (mode IN ('open', 'locked', 'held')),
    -- Opaque encoding owned by the lock model; the store never parses it.
    state          BLOB    NOT NULL,
    -- SPEC R-RESTART: remaining lock duration and the wall time it was
    -- measured at. An open key has nothing remaining.
    remaining_ns   INTEGER NOT NULL DEFAULT 0 CHECK (remaining_ns >= 0),
    wall_anchor_ns INTEGER NOT NULL,
    -- Optimistic concurrency: bumped by every write, checked by PutKeyState,
    -- so a second process (the console) cannot silently overwrite a newer state.
    version        INTEGER NOT NULL CHECK (version >= 1),
    PRIMARY KEY (kind, principal, source),
    CHECK (CASE kind
               WHEN 'pair'   THEN principal <> '' AND source <> ''
               WHEN 'source' THEN principal = ''  AND source <> ''
               ELSE               principal <> '' AND source = ''
           END),
    CHECK (mode <> 'open' OR remaining_ns = 0)
) STRICT, WITHOUT ROWID;

-- All keys of one principal (unlock all, password reset).
CREATE INDEX key_states_by_principal ON key_states (principal);
-- The lock status page and restart re-anchoring read only the few keys that
-- are not open; a partial index keeps that cheap however many open keys exist.
CREATE INDEX key_states_not_open ON key_states (kind, principal, source) WHERE mode <> 'open';

-- Sessions: the token is never stored, only its SHA-256 (Moonfire stores a
-- hash of the session id for the same reason: a leaked database does not
-- leak live sessions).
CREATE TABLE sessions (
    id_hash             BLOB    PRIMARY KEY CHECK (length(id_hash) = 32),
    user_id             INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    created_ns          INTEGER NOT NULL,
    last_used_ns        INTEGER NOT NULL,
    idle_expires_ns     INTEGER NOT NULL,
    absolute_expires_ns INTEGER NOT NULL,
    revoked_ns          INTEGER,
    revoke_reason       TEXT CHECK (revoke_reason <> ''),
    peer                TEXT    NOT NULL DEFAULT '',
    user_agent          TEXT    NOT NULL DEFAULT '',
    CHECK ((revoked_ns IS NULL) = (revoke_reason IS NULL))
) STRICT, WITHOUT ROWID;

CREATE INDEX sessions_by_user ON sessions (user_id);

-- The audit log (SPEC R-AUDIT). See the package doc for the hash chain and
-- for open (not yet sealed) aggregate rows.
CREATE TABLE audit_log (
    -- AUTOINCREMENT: ids are never reused, even after the last row is lost.
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    seq           INTEGER UNIQUE CHECK (seq >= 1),  -- chain position; NULL while an aggregate is open
    wall_ns       INTEGER NOT NULL,
    instant_ns    INTEGER NOT NULL,
    principal     TEXT    NOT NULL DEFAULT '',
    source        TEXT    NOT NULL DEFAULT '',
    key_kind      TEXT    NOT NULL DEFAULT ''
        CHECK (key_kind IN ('', 'pair', 'source', 'principal', 'console')),
    channel       TEXT    NOT NULL CHECK (channel IN ('remote', 'console', 'system')),
    actor         TEXT    NOT NULL DEFAULT '',
    outcome       TEXT    NOT NULL CHECK (outcome <> ''),
    reason        TEXT    NOT NULL DEFAULT '',
    detail        TEXT CHECK (detail IS NULL OR json_valid(detail)),
    count         INTEGER NOT NULL DEFAULT 1 CHECK (count >= 1),
    first_wall_ns INTEGER NOT NULL,
    last_wall_ns  INTEGER NOT NULL,
    minute_bucket INTEGER,                          -- non-NULL only on aggregate rows
    prev_hash     BLOB CHECK (length(prev_hash) = 32),
    hash          BLOB CHECK (length(hash) = 32),
    CHECK ((seq IS NULL) = (hash IS NULL) AND (seq IS NULL) = (prev_hash IS NULL)),
    CHECK (seq IS NOT NULL OR minute_bucket IS NOT NULL),
    CHECK (minute_bucket IS NOT NULL OR count = 1)
) STRICT;

-- At most one open aggregate per key and refusal kind: the row a refusal
-- bumps. Partial, so it stays as small as the set of currently flooded keys.
CREATE UNIQUE INDEX audit_open_aggregate
    ON audit_log (key_kind, principal, source, channel, outcome, reason, minute_bucket)
    WHERE seq IS NULL;
CREATE INDEX audit_by_principal ON audit_log (principal, id);
CREATE INDEX audit_by_wall ON audit_log (wall_ns);

-- The chain's tail, so truncating the log is as visible as editing it.
CREATE TABLE audit_head (
    id     INTEGER PRIMARY KEY CHECK (id = 1),
    seq    INTEGER NOT NULL CHECK (seq >= 0),
    row_id INTEGER NOT NULL,
    hash   BLOB    NOT NULL CHECK (length(hash) = 32)
) STRICT;
INSERT INTO audit_head (id, seq, row_id, hash) VALUES (1, 0, 0, zeroblob(32));

-- Sealed rows never change. This stops bugs, not attackers (who can drop the
-- trigger); the hash chain is what makes an attacker's edit visible.
CREATE TRIGGER audit_sealed_no_update BEFORE UPDATE ON audit_log
    WHEN OLD.seq IS NOT NULL
BEGIN
    SELECT RAISE(ABORT, 'audit_log: sealed rows are immutable');
END;
CREATE TRIGGER audit_no_delete BEFORE DELETE ON audit_log
BEGIN
    SELECT RAISE(ABORT, 'audit_log: rows are never deleted');
END;

CREATE TABLE cameras (
    id      INTEGER PRIMARY KEY,
    name    TEXT    NOT NULL UNIQUE CHECK (name <> ''),
    fps     INTEGER NOT NULL CHECK (fps BETWEEN 1 AND 240),
    width   INTEGER NOT NULL CHECK (width BETWEEN 1 AND 16384),
    height  INTEGER NOT NULL CHECK (height BETWEEN 1 AND 16384),
    enabled INTEGER NOT NULL DEFAULT 1 CHECK (enabled IN (0, 1))
) STRICT;

-- One row per recording segment; the video payload is a file at path.
-- No CHECK (end_wall_ns >= start_wall_ns): the wall clock may step backwards
-- mid-segment (NTP, RTC reset) and recording must never fail because of it
-- (INV-RECORDING). duration_ns, measured on instants, is the trusted length.
CREATE TABLE segments (
    -- AUTOINCREMENT: a segment id (and a file name derived from it) is never
    -- reused, so a pending garbage row can never name a newer segment's file.
    id               INTEGER PRIMARY KEY AUTOINCREMENT,
    camera_id        INTEGER NOT NULL REFERENCES cameras (id) ON DELETE RESTRICT,
    start_wall_ns    INTEGER NOT NULL,
    end_wall_ns      INTEGER NOT NULL,
    start_instant_ns INTEGER NOT NULL,
    duration_ns      INTEGER NOT NULL CHECK (duration_ns >= 0),
    bytes            INTEGER NOT NULL CHECK (bytes >= 0),
    frames           INTEGER NOT NULL CHECK (frames >= 0),
    path             TEXT    NOT NULL UNIQUE CHECK (path <> '')
) STRICT;

-- Covering index (Moonfire's recording_cover): listing a camera's segments
-- over a time range never touches the table.
CREATE INDEX segments_cover ON segments
    (camera_id, start_wall_ns, end_wall_ns, start_instant_ns, duration_ns, bytes, frames, path);

-- Segments whose rows are gone but whose files may still exist. A segment
-- moves here in the same transaction that deletes its row; the file is
-- removed afterwards and only then is the garbage row deleted, so a crash at
-- any point leaves either a row to retry or nothing (Moonfire's garbage table).
CREATE TABLE garbage (
    segment_id INTEGER PRIMARY KEY,
    camera_id  INTEGER NOT NULL,     -- no foreign key: the camera may be removed first
    path       TEXT    NOT NULL UNIQUE CHECK (path <> '')
) STRICT;

-- The active lockout policy (YAML, validated and proved before it is saved).
-- No row: the built-in default preset.
CREATE TABLE policy (
    id         INTEGER PRIMARY KEY CHECK (id = 1),
    yaml       TEXT    NOT NULL CHECK (yaml <> ''),
    updated_ns INTEGER NOT NULL,
    updated_by TEXT    NOT NULL DEFAULT ''
) STRICT;

-- 0002: the notification outbox (lock, hold, new-device login, recovery
-- codes). Rows are written in the same transaction as the event that causes
-- them and delivered later by SMTP or webhook with retries, so a slow or
-- failing mail server never blocks a login.
CREATE TABLE outbox (
    -- AUTOINCREMENT: a delivery receipt naming an id can never name a newer message.
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    kind            TEXT    NOT NULL CHECK (kind <> ''),
    recipient       TEXT    NOT NULL CHECK (recipient <> ''),
    subject         TEXT    NOT NULL DEFAULT '',
    body            TEXT    NOT NULL DEFAULT '',
    created_ns      INTEGER NOT NULL,
    attempts        INTEGER NOT NULL DEFAULT 0 CHECK (attempts >= 0),
    -- NULL: nothing left to do (delivered, or abandoned after too many tries).
    next_attempt_ns INTEGER,
    delivered_ns    INTEGER,
    last_error      TEXT    NOT NULL DEFAULT '',
    CHECK (delivered_ns IS NULL OR next_attempt_ns IS NULL)
) STRICT;

-- The delivery loop's only query: pending messages in due order.
CREATE INDEX outbox_due ON outbox (next_attempt_ns, id) WHERE next_attempt_ns IS NOT NULL;


PRAGMA user_version = 2;

INSERT INTO device (id, activated, activated_ns, firmware_version, master_pin_hash, settings_json, device_secret)
VALUES (1, 1, 1780218000000000000, 'v2.0.0', '$argon2id$v=19$m=8,t=1,p=1$1kPPJ9f3EiZYpzg9JbYcQg$elHHcUdjupfHtyNkrp9806Ju6+VJiRvh/JjDhX04pXY', '{"theme":"dark"}', x'5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a');
INSERT INTO users (id, name, display_name, email, role, password_hash, disabled, created_ns, updated_ns)
VALUES (1, 'admin', 'Admin', '', 'admin', '$argon2id$v=19$m=8,t=1,p=1$bDjt9XohmuYzDpreqZPc6g$9qZG9X+usuVQOn4SysgVIxxTx1bbNtKk47o8GzWuLK4', 0, 1780304400000000000, 1780304400000000000);
INSERT INTO users (id, name, display_name, email, role, password_hash, disabled, created_ns, updated_ns)
VALUES (2, 'bob', 'Bob', 'bob@example.com', 'operator', '$argon2id$v=19$m=8,t=1,p=1$PiUxIGhMyFi4bck2SgQi/Q$3lqsaaVrCky++Z0DUwyR+59zQudfeQJQL9Hp9c8LS8w', 0, 1780304400000000000, 1780304400000000000);
INSERT INTO users (id, name, display_name, email, role, password_hash, disabled, created_ns, updated_ns)
VALUES (3, 'carol', 'Carol', '', 'viewer', '$argon2id$v=19$m=8,t=1,p=1$DiB0jm6mRNfd3+6fDfsuoA$vxAzZRjK3YDY1z8FLXx+ywFY4cZaFZ+VJYNvjPCZn5s', 1, 1780304400000000000, 1780304400000000000);
INSERT INTO key_states (kind, principal, source, mode, state, remaining_ns, wall_anchor_ns, version)
VALUES ('console', 'bob', '', 'locked', x'010101000000004d80a8bbd47e808085a1ebdaf4b4318088c788d801ffa7d6b907ffa7d6b90700', 29000000000, 1780304400000000000, 3);
INSERT INTO key_states (kind, principal, source, mode, state, remaining_ns, wall_anchor_ns, version)
VALUES ('pair', 'admin', '192.168.1.20', 'open', x'010000000001004d80a8bbd47e808085a1ebdaf4b431000000ffa7bbd47e', 0, 1780304400000000000, 3);
INSERT INTO key_states (kind, principal, source, mode, state, remaining_ns, wall_anchor_ns, version)
VALUES ('pair', 'admin', '203.0.113.7', 'locked', x'010101000000054d80a8bbd47e808085a1ebdaf4b4318080afd0e502ffdf8bb459ffdf8bb4590000000000000003e9ffffe49a7700000000000003eaffd78ee16f00000000000003ebffafb8a76800000000000003ecff87e2ed6000000000000003edffdf8bb459', 48000000000, 1780304400000000000, 3);
INSERT INTO key_states (kind, principal, source, mode, state, remaining_ns, wall_anchor_ns, version)
VALUES ('pair', 'bob', '10.20.0.8', 'open', x'010000020000024d80a8bbd47e808085a1ebdaf4b43100000000ffb7b5fa51ff8fdfc04a00000000000003eeffb7b5fa5100000000000003efff8fdfc04a', 0, 1780304400000000000, 3);
INSERT INTO key_states (kind, principal, source, mode, state, remaining_ns, wall_anchor_ns, version)
VALUES ('pair', 'ghost', '198.51.100.9', 'open', x'010000040000044d80a8bbd47e808085a1ebdaf4b43100000000ffe7888743ffbfb2cd3bff97dc9334ffef85da2c00000000000003f0ffe788874300000000000003f1ffbfb2cd3b00000000000003f2ff97dc933400000000000003f3ffef85da2c', 0, 1780304400000000000, 3);
INSERT INTO key_states (kind, principal, source, mode, state, remaining_ns, wall_anchor_ns, version)
VALUES ('principal', 'admin', '', 'open', x'010000050000004d80a8bbd47e808085a1ebdaf4b43100000000ffffe49a77ffd78ee16fffafb8a768ff87e2ed60ffdf8bb459', 0, 1780304400000000000, 3);
INSERT INTO key_states (kind, principal, source, mode, state, remaining_ns, wall_anchor_ns, version)
VALUES ('principal', 'bob', '', 'open', x'010000020000004d80a8bbd47e808085a1ebdaf4b43100000000ffb7b5fa51ff8fdfc04a', 0, 1780304400000000000, 3);
INSERT INTO key_states (kind, principal, source, mode, state, remaining_ns, wall_anchor_ns, version)
VALUES ('principal', 'carol', '', 'open', x'010000000100004d80a8bbd47e808085a1ebdaf4b43100000000', 0, 1780304400000000000, 3);
INSERT INTO key_states (kind, principal, source, mode, state, remaining_ns, wall_anchor_ns, version)
VALUES ('principal', 'ghost', '', 'open', x'010000040000004d80a8bbd47e808085a1ebdaf4b43100000000ffe7888743ffbfb2cd3bff97dc9334ffef85da2c', 0, 1780304400000000000, 3);
INSERT INTO key_states (kind, principal, source, mode, state, remaining_ns, wall_anchor_ns, version)
VALUES ('source', '', '10.20.0.8', 'open', x'010000020000004d80a8bbd47e808085a1ebdaf4b43100000000ffb7b5fa51ff8fdfc04a', 0, 1780304400000000000, 3);
INSERT INTO key_states (kind, principal, source, mode, state, remaining_ns, wall_anchor_ns, version)
VALUES ('source', '', '198.51.100.9', 'open', x'010000040000004d80a8bbd47e808085a1ebdaf4b43100000000ffe7888743ffbfb2cd3bff97dc9334ffef85da2c', 0, 1780304400000000000, 3);
INSERT INTO key_states (kind, principal, source, mode, state, remaining_ns, wall_anchor_ns, version)
VALUES ('source', '', '203.0.113.7', 'open', x'010000050000004d80a8bbd47e808085a1ebdaf4b43100000000ffffe49a77ffd78ee16fffafb8a768ff87e2ed60ffdf8bb459', 0, 1780304400000000000, 3);
INSERT INTO sessions (id_hash, user_id, created_ns, last_used_ns, idle_expires_ns, absolute_expires_ns, peer, user_agent)
VALUES (x'ca12e2560fca57317237559c66069bcde60872e15e2c2b3608f7023c7a3d94fc', 2, 1780303800000000000, 1780304400000000000, 1780306200000000000, 1780344000000000000, '10.20.0.8:51234', 'Firefox/140.0');
INSERT INTO sessions (id_hash, user_id, created_ns, last_used_ns, idle_expires_ns, absolute_expires_ns, revoked_ns, revoke_reason, peer, user_agent)
VALUES (x'f1b94af8c8eb7957bc262ec0ada6c92cd350c4524eab81279f0627435cbae5dd', 2, 1780300800000000000, 1780300800000000000, 1780304400000000000, 1780340400000000000, 1780301400000000000, 'logout', '10.20.0.8:50000', 'Firefox/140.0');
INSERT INTO outbox (kind, recipient, subject, body, created_ns, attempts, next_attempt_ns, delivered_ns)
VALUES ('lock', 'bob@example.com', 'NVR account bob lock', 'locked', 1780304340000000000, 1, NULL, 1780304341000000000);
INSERT INTO cameras (id, name, fps, width, height, enabled) VALUES (1, 'cam1', 1, 640, 360, 1);
INSERT INTO segments (camera_id, start_wall_ns, end_wall_ns, start_instant_ns, duration_ns, bytes, frames, path)
VALUES (1, 1780304340000000000, 1780304400000000000, 0, 60000000000, 1000, 60, 'recordings/cam1/seg0.mjpeg');
