// Package model is Latch's lock logic: the lock machine of SPEC §2 for every
// key (pair, source, principal, console), the two-phase decision of SPEC §3,
// recovery (§4), the time rules (§5), policy validation (§6) and the facts a
// client may be shown (§7).
//
// The package owns the semantics and nothing else. It never reads a clock
// (now is an argument), performs no I/O, starts no goroutines and keeps no
// mutable globals: Decide is a pure function over comparable value types,
// so porcupine's ==, the explorer's visited set and gopter's shrinking work
// on its states directly (INV-DETERMINISM).
//
// The mode transitions of one key are the table built once with
// github.com/qmuntal/stateless in machine.go (immediate firing, external
// storage through a per-call cell, named pure guards, actions that only name
// what to do). At start-up that table is compiled, by probing the stateless
// machine with every combination of guard facts, into an array the hot path
// indexes; a test proves the two agree on every input.
//
// Callers (nvr's auth service, sim, proofs) own storage, clocks, hashing and
// side effects. They hold a principal for both phases (Admit, then Record
// after verifying the secret), persist the returned View, and perform the
// Decision's effects after commit.
package model
