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
