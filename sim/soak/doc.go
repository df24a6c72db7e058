// Package soak drives a running `latch serve` with the simulator over
// loopback HTTP, injects faults, and checks that the NVR decides every
// login exactly as the lock model does (issue 8).
//
// # The http engine
//
// Importing the package registers the simulator engine "http"
// (sim.RegisterEngine); Configure gives it a latch binary and a working
// folder. At start the engine launches `latch serve` as a child process
// (--time-warp W, --debug-clock, --trusted-proxy 127.0.0.1, cheap argon2id,
// the run's policy as a --policy file), activates it with its own admin
// account ("soakadmin", from 192.0.2.1) and creates the simulation's
// accounts through the admin API. Then:
//
//   - Attempt is POST /api/v1/login with the source in X-Forwarded-For.
//     Simulator secrets ("pw.3.1", "guess.17") are too weak for the
//     server's zxcvbn check, so each maps to a strong deterministic password
//     (Password); equal texts stay equal, so R-REPLAY decides alike.
//   - Unlock is POST /api/v1/locks/unlock, Reset POST
//     /api/v1/users/{name}/password, both with the session cookie and the
//     X-CSRF-Token header, signing in again whenever the session ended.
//   - WallJump is POST /debug/clock/step?by=D.
//   - Restart, and the Kill and Term faults, are kill -9 (or SIGTERM) of the
//     child and a relaunch on the same data folder.
//
// Pace: the server's virtual clock runs W times faster than real time. The
// engine ties the simulator's instant to real time at each boot and sleeps
// until the server's clock reaches the instant of the next event; when the
// server is too slow to keep up, the server's clock runs ahead of the
// simulator's (Report.Lag says by how much).
//
// # The shadow model
//
// The engine keeps its own model/world.World. Every answer carries the
// instant the server decided at (X-Latch-Instant, --debug-clock); the shadow
// decides the same attempt at that instant with model.Decide and the
// engine compares: 200 is ok, 401 invalid_credentials must carry the
// model's remaining_attempts, 429 locked the model's scope and its
// Retry-After rounded up (none for a principal lock, R-DISCLOSE). Every
// disagreement is kept with the trace line (SPEC §9) that caused it. The
// engine's own admin logins go through the shadow too. Fingerprints are
// the server's (HMAC with the device secret, read from the database), so
// even persisted fingerprints compare equal.
//
// # Restarts
//
// The obvious way to carry the shadow across a restart (persist every key
// at the last instant and wall time seen, restore at the first ones after
// the restart) is exact only if the server's wall clock runs on across the
// restart like a real RTC. A warped clock does not: each new process
// starts its virtual wall clock at the real time, so across a restart the
// wall clock goes back by about (W−1) times the previous uptime; R-RESTART
// then serves no time, and each key resumes with what it had when the
// server last wrote it, not when it was killed. What a key resumes with
// therefore depends on when the server last wrote it and on the exact
// instant and wall time the new process restores at, neither of which an
// HTTP answer tells. X-Latch-Wall is not enough either: it is read when
// the answer is written, (W−1) times the request's latency after the
// decision.
//
// So the engine reads the database while the server is down, which makes
// the shadow exact instead of approximately right:
//
//  1. Each persisted key (auth.StoredKey: the snapshot relative to the
//     instant it was saved at, its wall anchor, its boot id) written by the
//     boot that ended, shifted back to that boot's instants, must equal the
//     shadow's key: every acknowledged failure, lock, extension, level,
//     fingerprint and familiar source was committed (R-ATOMIC) and nothing
//     else was. A key that boot never wrote must be byte for byte what the
//     database held at the previous restart, and unchanged in the shadow.
//     Shadow keys missing from the database are lost keys.
//  2. Before the relaunch the engine plants two probe keys, each with one
//     failure a second before its save: one anchored far in the future
//     (the restore serves it no time), one anchored a second before the
//     relaunch (the new boot's wall clock is later, so it is served the
//     difference). A wrong login on each makes the server restore and
//     write it back; the restored failure's instant, read from the
//     database, gives exactly the instant and the wall time the new boot
//     restores every earlier key at.
//  3. The shadow restores every key with model.Restore at that instant and
//     wall time from the snapshot the server holds, which step 1 showed
//     equal to the shadow's own state persisted at the server's anchor.
//     From then on every decision must agree again: a lock shortened, lost
//     or lengthened by the restart, or a failure lost, shows up as a
//     disagreement.
//
// Wall-clock steps need nothing special: R-MONO says they change no lock
// while running, and the shadow never reads a wall clock; the re-anchoring
// the server does on a step (R-RESTART) shows in the anchors step 1 reads.
//
// # Other checks at every stop
//
// store.Open runs PRAGMA integrity_check; the audit hash chain verifies;
// the audit log holds exactly the successes, wrong secrets and refusals the
// engine was answered (and, for the concurrent "noise" logins sent while a
// kill or a wall step lands, at least every answered one and no more than
// were sent, and every failure they were answered is in its key at the
// instant the server answered); every indexed segment has its file with
// its size, and files the index does not name (orphans) appear only after
// a kill, at most two per camera. At the end, recording continuity is
// checked (checkGaps): from the index, and where the index cannot tell a
// stall from a lost segment, from the frame numbers the camera draws into
// its frames (frames.go); stalls are attributed to the host or the server
// from the server's threads' run-queue wait and the VM's steal time.
//
// # Tests
//
// The tests that run the server (soak_test.go, perf_test.go) carry the
// build tag soak: they build ./cmd/latch, run it for minutes and are run
// by `make soak-short` (CI) and `make soak`; docs/RELIABILITY.md and
// docs/PERFORMANCE.md say what they run and what they found. The tests of
// the soak's own reasoning (frames_test.go) need no server and no tag.
package soak
