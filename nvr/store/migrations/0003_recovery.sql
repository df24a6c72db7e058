-- 0003: self-service account recovery by e-mail (SPEC R-RESET) and the
-- endpoint of a session (the concurrent-session policy, issue #4).

-- The client's lock source (SPEC §1: IPv4 address, IPv6 /64), as the web
-- layer canonicalised it, behind trusted proxies included. peer stays the
-- socket peer. Together with user_agent it names the session's endpoint.
-- '' for sessions created before this migration: an unknown endpoint.
ALTER TABLE sessions ADD COLUMN source TEXT NOT NULL DEFAULT '';

-- One row per principal that asked for a recovery code: the code (only its
-- hash) and the principal's request window. Keyed by the canonical name,
-- not the user, because unknown names are handled exactly like real ones
-- (SPEC R-ENUM): every request writes the same row, so neither the answer
-- nor its cost says whether the account exists. A new code replaces the
-- previous one; a used or expired code leaves the row (and its window).
CREATE TABLE recovery_tokens (
    principal  TEXT    PRIMARY KEY CHECK (principal <> ''),
    -- The user the code was sent to. NULL: nobody (no such user, no e-mail
    -- address, disabled), so the code can never be used. SET NULL when the
    -- user is deleted, so a later user reusing the id cannot use it.
    user_id    INTEGER REFERENCES users (id) ON DELETE SET NULL,
    -- SHA-256 of the code (128 random bits: a fast hash is enough, as for
    -- session tokens). NULL: no usable code (used, or invalidated by a
    -- password change).
    code_hash  BLOB CHECK (code_hash IS NULL OR length(code_hash) = 32),
    created_ns INTEGER NOT NULL,
    expires_ns INTEGER NOT NULL,
    -- The principal's rate window: when it started and how many codes were
    -- issued in it.
    window_ns  INTEGER NOT NULL,
    issued     INTEGER NOT NULL DEFAULT 0 CHECK (issued >= 0)
) STRICT, WITHOUT ROWID;

-- Deleting a user sets user_id NULL here: the foreign key's lookup.
CREATE INDEX recovery_tokens_by_user ON recovery_tokens (user_id);
