// Package store owns the NVR's SQLite database: its file, its schema and
// migrations, and the small typed reads and writes the rest of the NVR uses.
//
// # What it owns
//
//   - Opening the database (modernc.org/sqlite, pure Go): WAL, busy_timeout,
//     foreign keys, synchronous=NORMAL, one writer connection whose
//     transactions begin IMMEDIATE, and a separate query-only read pool.
//   - Refusing a database it cannot trust: a file that is not SQLite
//     ([ErrNotDatabase]), a file that fails PRAGMA integrity_check
//     ([ErrCorrupt]), a database written by a newer binary
//     ([ErrSchemaTooNew]), or a SQLite file belonging to something else.
//   - Embedded, numbered, forward-only migrations (migrations/NNNN_name.sql),
//     each applied in its own transaction together with PRAGMA user_version,
//     so a "firmware update" keeps users, locks and recordings.
//   - The audit log's hash chain (see below).
//   - Deferred commits for the simulator only ([Options.CommitEvery],
//     pinned.go): one pinned connection, every WithTx part of one long
//     transaction that commits every N. Never on the appliance: a crash,
//     or a transaction that fails after writing, loses the uncommitted
//     ones.
//
// # What it must never do
//
//   - Decide lock logic. Key modes, remaining durations and the opaque state
//     blob are written exactly as the auth service hands them over; the store
//     never advances, extends, clears or interprets a lock (SPEC §2–§5 live in
//     package model). ListNotOpen filters on the persisted mode string only.
//   - Read a clock. Every time is an argument: wall times are unix
//     nanoseconds, instants are int64 monotonic nanoseconds (SPEC R-MONO), and
//     both are stored as INTEGER in STRICT tables, never as the driver's
//     default time text (which embeds the monotonic reading).
//   - Panic on I/O. Disk full, I/O errors and corruption come back as wrapped
//     errors that name the operation ([ErrDiskFull], [ErrCorrupt], ...).
//   - Touch recording files itself. Segment files belong to the recorder;
//     [Tx.MarkSegmentsGarbage] and [DB.CollectGarbage] only sequence their
//     deletion (the remover is a callback).
//
// # Reads and writes
//
// Every write happens inside [DB.WithTx], which runs one IMMEDIATE
// transaction on the single writer connection; write methods live on [*Tx]
// so the auth service can commit key state and audit record together
// (SPEC R-ATOMIC). Reads are available on both [*DB] (the read pool, which
// sees the last committed state) and [*Tx] (the transaction's own view);
// both satisfy [Reader]. Inside a WithTx callback use only the Tx: calling
// db.WithTx again from inside would wait forever for the one writer
// connection the outer transaction holds.
//
// Times stored as 0 mean "unset" and are written as NULL (for example a
// session that is not revoked, or a user that never expires).
//
// # Audit hash chain and aggregated refusals
//
// Every sealed audit row carries seq (its position in the chain, 1, 2, …),
// prev_hash and hash = SHA-256(prev_hash || canonical encoding of the row's
// fields). The encoding is a version tag, then every field but id in a fixed
// order (seq included, so rows cannot be reordered), integers as 8 bytes
// big-endian and strings length-prefixed. The genesis prev_hash is 32 zero
// bytes, and a one-row audit_head table holds the last seq and hash, so
// deleting the tail of the log is detected as well as editing or deleting a
// row in the middle. [DB.VerifyAuditChain] recomputes the chain and names the
// first row whose hash or link is wrong. Sealed rows are also guarded by
// triggers that refuse UPDATE and DELETE, so a bug cannot rewrite history by
// accident; the chain is what catches someone who drops the triggers. The
// chain is unkeyed: it makes tampering evident, it does not stop someone who
// can rewrite the whole file.
//
// Refusals on an already-locked key are aggregated per key per minute (SPEC
// R-AUDIT) by [Tx.AppendOrAggregateRefusal]. We chose "finalise when the
// minute closes" over "hash the immutable fields only", so that count and
// last_wall_ns are covered by the chain too:
//
//   - The first refusal of a (key, channel, outcome, reason) in a minute
//     bucket inserts an open aggregate row: seq, prev_hash and hash are NULL
//     and the row is not yet part of the chain.
//   - Later refusals of the same key in the same bucket bump its count and
//     last_wall_ns. The DB remembers every open aggregate's id (checked
//     against PRAGMA data_version, forgotten on rollback), so a bump is an
//     UPDATE by primary key and an insert looks for rows to seal only when
//     another minute's are open.
//   - An open aggregate is sealed (given the next seq and hashed, in id order)
//     as soon as a refusal for a different bucket arrives, or when
//     [Tx.SealAuditAggregates] / [Tx.SealAllAuditAggregates] is called (the
//     auth service does so once a minute and on clean shutdown).
//
// So chain order is seal order, which for an aggregate can be later than rows
// with higher ids; listings order by id, verification orders by seq. While a
// row is open (at most one per key for the current minute) it is not
// tamper-evident; VerifyAuditChain reports how many rows it checked and does
// not count open ones.
package store
