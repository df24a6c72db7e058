// Package auth is the NVR's authentication service: it decides login
// attempts with the lock model (SPEC §3) atomically per principal, verifies
// secrets with argon2id under a bounded worker pool, and commits key
// states, the audit record and notifications in one SQLite transaction
// (shared with concurrent attempts: group commit; each caller answers only
// after the commit); it also owns sessions, users, roles, recovery and
// TOTP. Besides the store it reads the key_states and users tables through
// its own query-only connection (reader.go): one statement per attempt,
// and the list of every key for re-anchoring and unlock-all.
//
// It never decides lock semantics itself (model does), never hashes for a
// refused attempt (R-NOORACLE), never reads the wall clock for lock
// arithmetic (R-MONO), and performs side effects only after commit.
package auth
