// Package sim is Latch's discrete-event simulator: it runs a site's
// legitimate users and the attacks they fear through a lock policy for
// months of virtual time, so that operators and vendors can compare
// policies and pick one to deploy (DESIGN "The simulator", issue 6).
//
// # What it owns
//
// The virtual clock, the event queue, the actors (users and their devices,
// the helpdesk, attacks, clock chaos, cameras), scenarios and their YAML
// format, metrics, comparisons, sweeps and the Engine interface. It owns
// no lock logic: every decision comes from an Engine, and the engines here
// call model.Decide. Presentation lives in sim/report; flag parsing in
// cmd/latchsim.
//
// # Determinism
//
// One run is one goroutine. Events sit in a binary heap ordered by
// (virtual instant, scheduling sequence). All randomness comes from
// math/rand/v2 PCG streams derived from the run's seed and a stable label
// per actor ("user:alice", "attack:0:botnet" plus the source number), so
// the same seed gives every user and attacker the same random choices
// under every policy (common random numbers: differences between policies
// are the policies'). No map is iterated where order could matter, and the
// real clock is read only to report speed. Every attempt with its decision
// and every operation is folded into a 64-bit trace hash: one seed, one
// hash. CheckDeterminism (latchsim run --check-determinism) runs twice and
// compares hashes; parallel comparisons and sweeps run each cell on its
// own, so cells do not depend on the number of jobs.
//
// # Engines
//
// Engine is what a simulated device must do: Attempt, Unlock, Reset,
// Restart, WallJump, Close. The "model" engine keeps keys in slices and
// pairs in a compact open-addressing table (pairstore.go) and calls
// model.Decide; the "world" engine uses model/world.World, which `latchsim
// replay` uses, and is the reference the model engine is tested against.
// The service engine (sim/service: nvr's auth service on SQLite with a
// simulated clock, tested to decide exactly as the model engine does) and
// the http engine (sim/soak) register with RegisterEngine from packages
// that may import nvr; sim itself never does. An engine verifies secrets
// itself: Attempt carries a SecretID, and the universe (EngineConfig)
// names every principal, source and account and the text of every secret.
//
// # Traces
//
// With Config.Trace a run writes its SPEC §9 trace: a user line per
// declared account with its password, then every attempt, unlock, reset,
// restart and wall_jump at its virtual instant. Replaying it (latchsim
// replay, world.Run) under the same policy gives the same decisions line
// by line. Secrets appear as text ("pw.3.1", "guess.1042"); the model
// engine fingerprints a secret by its ID, which is equal exactly when the
// texts are, so R-REPLAY decides as replay's keyed MAC does. A reboot is
// instantaneous on the virtual clock; an RTC that comes up in 1970 is
// written as the restart followed by a wall_jump at the same instant.
// Replay's restart uses one wall time for persist and restore, so the
// trace format cannot express a wall clock that moved forward across a
// reboot (which R-RESTART counts as time served); the simulator's clock
// chaos therefore only moves the RTC backwards across reboots, and steps
// the wall clock in either direction only while running.
//
// # Scenarios
//
// A scenario is YAML: the fields are those of Scenario and its sections
// (the built-ins in scenarios/ use nearly all; `latchsim scenarios show
// NAME` prints one as a template). Errors name the
// file, line, column and field (YAML syntax errors: the line only, as the
// YAML library reports). `extends: NAME` starts from a built-in: sections
// given replace the base's, attacks are added.
//
// Actors:
//   - users: logins per day (Poisson) at uniform times within hours on
//     active days; each typed password is mistyped with probability typo; a
//     user forgets the password forget_per_year times a year, types
//     forget_tries wrong ones and recovers by self-service reset or asks
//     the helpdesk; logs in from one of `sources` addresses, sometimes a new
//     one. Refused, a user waits out Retry-After up to `patience` (at most
//     3 times per login) and otherwise asks the helpdesk; told that the
//     account is locked for unrecognised devices (a principal lock), the
//     user switches to the device that last worked (R-DISCLOSE).
//   - devices: log in every `every` with a stored password; `stale` ones
//     hold an old password forever; others follow a password change after
//     update_after.
//   - helpdesk: an admin who unlocks (R-UNLOCK) or resets (R-RESET) after
//     a delay uniform in ½–1½ of `delay`.
//   - attacks: brute_force (one source), distributed and dos (many
//     sources), stuffing (a leaked list of principals, the site's users
//     among them, `reuse` of them with their real password). Each source
//     attempts every `every` (±20%); on refusal it waits out Retry-After
//     (`wait`) or keeps its pace (`hammer`). Guessing attackers share one
//     dictionary per account and never repeat a verified guess, so every
//     verified guess is distinct.
//   - clock chaos: wall-clock steps while running, log-uniform in size,
//     either sign, undone by NTP after fix_after; reboots (Engine.Restart)
//     with the RTC at 1970 with probability rtc_reset, fixed by NTP after
//     ntp_sync.
//   - cameras: each closes a segment every `segment` on the virtual
//     monotonic clock; an engine implementing SegmentRecorder is asked to
//     record it.
//
// # Metrics
//
// Legitimate attempts are users' typed attempts and their devices'
// attempts with the current password (stale devices are counted apart).
// A lockout is an episode from a user's first refused attempt to the next
// admitted one; rates per user-year divide by users × virtual years (365
// days). Victim availability is the fraction of the victim's legitimate
// attempts admitted. A verified guess is an attacker's attempt that was
// admitted and wrong. The probability of compromise assumes
// guesses-to-crack G is log-normal, as zxcvbn-style strength estimates of
// real passwords are: log10 G ~ Normal(log10 median_guesses, sigma_log10),
// by default median 10^6 (zxcvbn score 2/3 boundary) and σ 2 decades (so
// 2.3% of passwords fall within 100 guesses and 16% within 10^4); an
// account with n verified guesses is compromised with P(G ≤ n), and
// accounts independently. Recording continuity is the fraction of
// (camera, full virtual hour) with every segment recorded.
package sim
