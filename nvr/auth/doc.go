// Package auth is the NVR's authentication service: it decides login
// attempts with the lock model (SPEC §3) atomically per principal, verifies
// secrets with argon2id under a bounded worker pool, and commits key
// states, the audit record and notifications in one SQLite transaction;
// it also owns sessions, users, roles, recovery and TOTP.
//
// It never decides lock semantics itself (model does), never hashes for a
// refused attempt (R-NOORACLE), never reads the wall clock for lock
// arithmetic (R-MONO), and performs side effects only after commit.
package auth
