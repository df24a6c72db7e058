// Package proofs checks the lock model exhaustively over a finite
// abstraction (DESIGN, Proofs; SPEC §8).
//
// Prove explores model.Decide, model.Advance, model.Unlock/UnlockPair and
// model.Persist/Restore/Reanchor — through a Machine, so that Mutants can
// stand in for them — breadth-first over one principal with one or three
// remote sources and the console, every event kind, and time advanced only
// to the instants where something can change. States are canonical (every
// instant relative to now, R-ADVANCE applied, sources and fingerprints
// renumbered) and hashed into a visited set. Every universal invariant of
// SPEC §8 is checked on every edge by a predicate written from the SPEC's
// words against an observer the explorer keeps itself (counted failures,
// familiarity, fingerprints, lock deadlines), never by the model's own
// helpers. A violation is reported with its shortest path as a SPEC §9
// trace that `latchsim replay` reproduces.
//
// Prove also reports the policy properties: P-NODOS (an attack search for a
// refusal of a familiar source caused by other sources' failures) and
// P-BUDGET (the most verified distinct wrong guesses in 24 h, for one source
// and for any number of sources, by a search over attacker strategies).
//
// LinearizabilityModel is the porcupine model of the auth service: the NVR
// service's concurrent histories are checked against model.Decide.
//
// Everything here is deterministic: the explorer's results and traces never
// depend on scheduling, worker count or map order; only the reported times
// come from a clock.
package proofs
