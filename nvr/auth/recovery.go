package auth

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base32"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/latchnvr/latch/model"
	"github.com/latchnvr/latch/nvr/store"
)

// Self-service recovery (SPEC R-RESET): a user who lost their password
// proves control of a verified channel and sets a new one. The channels:
//
//   - an e-mailed code: 128 random bits, sent to the user's address through
//     the outbox, stored only as a SHA-256, single use, valid for
//     RecoveryCodeTTL; a new one replaces the previous one;
//   - a recovery code from two-factor enrolment (10 per enrolment, 50 bits
//     each, single use);
//   - the current code of the user's authenticator app (TOTP).
//
// Finishing opens the principal and all its pairs at level 0 and revokes
// the user's sessions, as an admin reset does, without forcing a change at
// the next sign-in (the user chose the password). Recovery never looks at
// a lock key: it works while the account is locked (OWASP) and a wrong code
// counts against the recovery limits below, never against the login keys
// (R-FAIL counts login secrets; counting recovery codes there would let a
// stranger's wrong codes lock the owner's login, and 128-bit codes need no
// lock to be unguessable).
//
// The limits (all per process, on the monotonic clock):
//
//   - requests: RecoveryPerWindow codes per principal per RecoveryWindow
//     (persisted in the principal's row, so a restart does not reset it),
//     and 10 requests per source per hour;
//   - wrong codes: 10 per source per 15 minutes, then refused for 15
//     minutes, doubling up to 4 hours;
//   - wrong authenticator or recovery codes (the guessable channels: a
//     TOTP is 6 digits): 5 per principal per 15 minutes, then that channel
//     is refused for the principal for 15 minutes, doubling up to 24 hours.
//     The e-mailed code stays open.
//
// A stranger cannot keep the owner out of recovery: every code goes to the
// owner's mailbox, a request refused by the principal's limit changes
// nothing, and the code that uses up a window stays valid until the window
// ends, so at every moment either a new code can be requested or the
// newest one in the owner's inbox works. Wrong e-mailed codes are counted
// per source only: a 128-bit code cannot be guessed, so nothing a stranger
// sends can void the owner's code or close the channel for them.
//
// Unknown principals are handled exactly like real ones (R-ENUM): every
// request gets the same answer and writes the same row and audit record;
// only the e-mail differs, and it is queued, not sent, in the request.

// Recovery limits and lifetimes.
const (
	RecoveryCodeTTL   = 15 * time.Minute
	RecoveryWindow    = time.Hour
	RecoveryPerWindow = 3
	// BackupCodeCount is how many recovery codes a 2FA enrolment makes.
	BackupCodeCount = 10
)

// ErrInvalidCode is a recovery code that is wrong, expired, used, or not
// for this user (one answer for all, R-ENUM).
var ErrInvalidCode = errors.New("the code is wrong, expired or already used")

// ThrottledError is a recovery request refused by a rate limit. Scope is
// "source" (this client sent too many) or "principal" (too many wrong
// authenticator or recovery codes for this name: use the e-mailed code).
type ThrottledError struct {
	Scope      string
	RetryAfter time.Duration
}

func (e *ThrottledError) Error() string {
	return fmt.Sprintf("too many recovery attempts (%s): try again in %s", e.Scope, e.RetryAfter.Round(time.Second))
}

// recoveryLimits are the in-memory limits (see above).
type recoveryLimits struct {
	startBySource  *throttle
	finishBySource *throttle
	weakByName     *throttle
}

func newRecoveryLimits() recoveryLimits {
	return recoveryLimits{
		startBySource: &throttle{threshold: 10, window: time.Hour, base: time.Hour, ceiling: time.Hour, maxKeys: 4096},
		finishBySource: &throttle{threshold: 10, window: 15 * time.Minute, base: 15 * time.Minute, ceiling: 4 * time.Hour,
			maxKeys: 4096},
		weakByName: &throttle{threshold: 5, window: 15 * time.Minute, base: 15 * time.Minute, ceiling: 24 * time.Hour,
			maxKeys: 4096, failClosed: true},
	}
}

// codeKind is the channel a typed code belongs to, told apart by length.
type codeKind int

const (
	codeEmail  codeKind = iota + 1 // 26 base32 characters
	codeBackup                     // 10 base32 characters
	codeTOTP                       // 6 digits
)

func (k codeKind) String() string {
	switch k {
	case codeEmail:
		return "e-mailed code"
	case codeBackup:
		return "recovery code"
	}
	return "authenticator code"
}

const (
	emailCodeBytes = 16 // 128 bits
	emailCodeChars = 26
	backupCodeLen  = 10 // 50 bits
	maxCodeInput   = 64
)

var codeEncoding = base32.StdEncoding.WithPadding(base32.NoPadding)

// parseCode normalises a typed code (case, spaces and dashes do not
// matter) and says which channel it is.
func parseCode(s string) (codeKind, string, error) {
	if len(s) > maxCodeInput {
		return 0, "", fmt.Errorf("%w: code longer than %d characters", ErrInvalidInput, maxCodeInput)
	}
	var b strings.Builder
	for _, r := range strings.ToUpper(s) {
		switch {
		case r == ' ' || r == '-':
		case r >= 'A' && r <= 'Z' || r >= '0' && r <= '9':
			b.WriteRune(r)
		default:
			return 0, "", fmt.Errorf("%w: code: only letters, digits, spaces and dashes", ErrInvalidInput)
		}
	}
	c := b.String()
	digits := strings.Trim(c, "0123456789") == ""
	base32ish := strings.Trim(c, "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567") == ""
	switch {
	case len(c) == 6 && digits:
		return codeTOTP, c, nil
	case len(c) == backupCodeLen && base32ish:
		return codeBackup, c, nil
	case len(c) == emailCodeChars && base32ish:
		return codeEmail, c, nil
	}
	return 0, "", fmt.Errorf("%w: code: enter the code from the e-mail (26 letters and digits), a recovery code (10) or the 6-digit code of your authenticator app", ErrInvalidInput)
}

func codeHash(domain, code string) []byte {
	h := sha256.Sum256([]byte("latch/" + domain + "/v1\x00" + code))
	return h[:]
}

// group writes a code in groups of n for reading aloud and typing.
func group(code string, n int) string {
	var parts []string
	for len(code) > n {
		parts = append(parts, code[:n])
		code = code[n:]
	}
	return strings.Join(append(parts, code), "-")
}

func randomCode(bytes, chars int) string {
	b := make([]byte, bytes)
	if _, err := rand.Read(b); err != nil {
		panic(fmt.Sprintf("auth: no randomness: %v", err))
	}
	return codeEncoding.EncodeToString(b)[:chars]
}

// NewBackupCodes makes a set of single-use recovery codes: the codes to
// show the user once, and the hashes to store.
func NewBackupCodes() (codes, hashes []string) {
	for range BackupCodeCount {
		c := randomCode(8, backupCodeLen)
		codes = append(codes, group(c, 5))
		hashes = append(hashes, hex.EncodeToString(codeHash("recovery-code", c)))
	}
	return codes, hashes
}

// matchBackupCode finds the unused stored code that code (normalised) is,
// comparing every hash in constant time; 0 when none.
func matchBackupCode(stored []store.RecoveryCode, code string) int64 {
	want := hex.EncodeToString(codeHash("recovery-code", code))
	var id int64
	for _, c := range stored {
		if subtle.ConstantTimeCompare([]byte(c.CodeHash), []byte(want)) == 1 && c.UsedNS == 0 {
			id = c.ID
		}
	}
	return id
}

// recoverable reports whether a user may recover their account by
// themselves at wall: an admin's disable or a guest's expiry is not a
// lockout, and recovery must not undo it.
func recoverable(u store.User, wall int64) bool {
	return !u.Disabled && (u.ExpiresNS == 0 || u.ExpiresNS > wall)
}

// StartRecovery handles a request for an e-mailed code. It answers the
// same (nil) whether or not the user exists, has an address, or has used
// up its window; only a malformed name or this client's own limit
// (*ThrottledError, scope source) is an error.
func (s *Service) StartRecovery(ctx context.Context, username string, src model.Source) error {
	pr, err := model.CanonicalPrincipal(username)
	if err != nil {
		return fmt.Errorf("%w: username: %v", ErrInvalidInput, err)
	}
	if src.IsZero() {
		return fmt.Errorf("%w: a recovery request needs a source", ErrInvalidInput)
	}
	now := s.clk.Instant()
	if wait := s.recovery.startBySource.refusedFor(src.String(), now); wait > 0 {
		return &ThrottledError{Scope: "source", RetryAfter: wait}
	}
	s.recovery.startBySource.add(src.String(), now)
	// Drawn for every request, used or not, so every request costs the same.
	code := randomCode(emailCodeBytes, emailCodeChars)
	hash := codeHash("recovery", code)
	wall := s.clk.Now().UnixNano()
	err = s.writeTx(ctx, func(tx *store.Tx) error {
		row, err := tx.GetRecoveryToken(ctx, string(pr))
		if errors.Is(err, store.ErrNotFound) {
			row, err = store.RecoveryToken{Principal: string(pr)}, nil
		}
		if err != nil {
			return err
		}
		u, err := tx.GetUserByName(ctx, string(pr))
		known := err == nil
		if err != nil && !errors.Is(err, store.ErrNotFound) {
			return err
		}
		// A wall clock that stepped back before the window opens a new
		// one rather than stretching the old.
		if row.Issued == 0 || wall < row.WindowNS || wall-row.WindowNS >= int64(RecoveryWindow) {
			row.WindowNS, row.Issued = wall, 0
		}
		if row.Issued >= RecoveryPerWindow {
			// The newest code stays as it is: it is valid until the
			// window ends (below), so the owner always holds one.
			return nil
		}
		row.Issued++
		row.CodeHash, row.CreatedNS, row.ExpiresNS = hash, wall, wall+int64(RecoveryCodeTTL)
		if row.Issued == RecoveryPerWindow {
			row.ExpiresNS = max(row.ExpiresNS, row.WindowNS+int64(RecoveryWindow))
		}
		send := known && recoverable(u, wall) && u.Email != ""
		row.UserID = 0
		reason := "recovery code e-mailed"
		switch {
		case send:
			row.UserID = u.ID
		case !known:
			reason = "recovery requested for an unknown user: nothing sent"
		case u.Email == "":
			reason = "recovery requested, but the user has no e-mail address: nothing sent"
		default:
			reason = "recovery requested, but the user is disabled or expired: nothing sent"
		}
		if err := tx.PutRecoveryToken(ctx, row); err != nil {
			return err
		}
		if err := s.audit(ctx, tx, "", string(pr), src.String(), "", "recovery_start", reason+" (R-RESET)",
			map[string]any{"expires": time.Unix(0, row.ExpiresNS).UTC(), "issued_in_window": row.Issued}, wall); err != nil {
			return err
		}
		if !send {
			return nil
		}
		_, err = tx.EnqueueOutbox(ctx, store.OutboxMessage{Kind: "recovery_code", Recipient: u.Email,
			Subject: "Your NVR account recovery code",
			Body: fmt.Sprintf("Someone asked to reset the password of user %s on your NVR, from %s at %s.\n\n"+
				"Recovery code: %s\n\n"+
				"It works once, until %s. To use it, choose \"Forgot password?\" on the sign-in page and enter it with a new password.\n\n"+
				"If you did not ask for it, ignore this message: your password has not changed, and the code is no use without this mailbox.",
				u.Name, src, time.Unix(0, wall).UTC().Format(time.RFC3339), group(code, 4), time.Unix(0, row.ExpiresNS).UTC().Format(time.RFC3339)),
			CreatedNS: wall, NextAttemptNS: wall})
		return err
	})
	if err != nil {
		return fmt.Errorf("auth: start recovery: %w", err)
	}
	return nil
}

// Recovery is a request to finish recovery.
type Recovery struct {
	Username    string
	Code        string // e-mailed code, recovery code, or current TOTP
	NewPassword string
	Source      model.Source
}

// FinishRecovery checks a code and, when it is right, sets the new
// password with R-RESET: the principal and all its pairs open at level 0,
// sessions revoked, no forced change. Errors: ErrInvalidInput (malformed
// request, weak password), *ThrottledError, ErrInvalidCode.
func (s *Service) FinishRecovery(ctx context.Context, rq Recovery) error {
	pr, err := model.CanonicalPrincipal(rq.Username)
	if err != nil {
		return fmt.Errorf("%w: username: %v", ErrInvalidInput, err)
	}
	if rq.Source.IsZero() {
		return fmt.Errorf("%w: a recovery request needs a source", ErrInvalidInput)
	}
	kind, code, err := parseCode(rq.Code)
	if err != nil {
		return err
	}
	// The strength check does not depend on the account: checked first, so
	// a weak choice costs no code (R-ENUM: unknown names get it too).
	if err := CheckPassword(rq.NewPassword, string(pr)); err != nil {
		return err
	}
	weak := kind != codeEmail
	// The principal's stripe makes check, verification and count one step:
	// parallel guesses at a TOTP consume the limit, never slip past it.
	unlock := s.lockKeys(pr, model.Source{})
	defer unlock()
	now := s.clk.Instant()
	if wait := s.recovery.finishBySource.refusedFor(rq.Source.String(), now); wait > 0 {
		return &ThrottledError{Scope: "source", RetryAfter: wait}
	}
	if weak {
		if wait := s.recovery.weakByName.refusedFor(string(pr), now); wait > 0 {
			return &ThrottledError{Scope: "principal", RetryAfter: wait}
		}
	}
	wall := s.clk.Now().UnixNano()
	u, proof, err := s.checkRecoveryCode(ctx, pr, kind, code, wall)
	if err != nil {
		return fmt.Errorf("auth: finish recovery: %w", err)
	}
	if proof == nil {
		return s.recoveryFailed(ctx, pr, rq.Source, kind, now, wall)
	}
	hash, err := s.hasher.Hash(ctx, rq.NewPassword)
	if err != nil {
		return err
	}
	actor := Actor("self:" + u.Name)
	how := fmt.Sprintf("self-service recovery with the %s from %s", kind, rq.Source)
	err = s.withRetries(ctx, func(tx *store.Tx) error {
		cur, err := tx.GetUser(ctx, u.ID)
		if err != nil || !recoverable(cur, wall) {
			return ErrInvalidCode
		}
		if err := proof(tx); err != nil {
			return err
		}
		return s.setPasswordTx(ctx, tx, actor, cur, hash, resetBySelf, how, rq.Source.String(), wall)
	})
	if errors.Is(err, ErrInvalidCode) {
		// Used or replaced since it was checked (a parallel request).
		return s.recoveryFailed(ctx, pr, rq.Source, kind, now, wall)
	}
	if err != nil {
		return fmt.Errorf("auth: finish recovery: %w", err)
	}
	return nil
}

// recoveryFailed counts a wrong code against the recovery limits, audits
// it and returns ErrInvalidCode.
func (s *Service) recoveryFailed(ctx context.Context, pr model.Principal, src model.Source, kind codeKind, now, wall int64) error {
	s.recovery.finishBySource.add(src.String(), now)
	if kind != codeEmail {
		s.recovery.weakByName.add(string(pr), now)
	}
	err := s.writeTx(ctx, func(tx *store.Tx) error {
		return s.audit(ctx, tx, "", string(pr), src.String(), "", "recovery_fail",
			fmt.Sprintf("wrong, expired or used %s: counted by the recovery limits, not the lock keys (R-RESET)", kind), nil, wall)
	})
	if err != nil {
		return fmt.Errorf("auth: finish recovery: %w", err)
	}
	return ErrInvalidCode
}

// dummyTOTPSecret is what an account without a second factor (or no
// account) is checked against, so every TOTP answer costs the same; its
// result is discarded.
const dummyTOTPSecret = "LATCHLATCHLATCHLATCHLATCHLATCH22"

// checkRecoveryCode verifies code for the principal without using it up.
// A nil proof means it is wrong; otherwise proof, run in the transaction
// that sets the password, uses it up (ErrInvalidCode if that fails: it
// was used or replaced meanwhile).
func (s *Service) checkRecoveryCode(ctx context.Context, pr model.Principal, kind codeKind, code string, wall int64) (store.User, func(*store.Tx) error, error) {
	u, err := s.db.GetUserByName(ctx, string(pr))
	known := err == nil
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		return u, nil, err
	}
	ok := known && recoverable(u, wall)
	switch kind {
	case codeEmail:
		row, err := s.db.GetRecoveryToken(ctx, string(pr))
		if err != nil && !errors.Is(err, store.ErrNotFound) {
			return u, nil, err
		}
		stored := row.CodeHash
		if len(stored) != sha256.Size {
			stored = make([]byte, sha256.Size) // no code: compare anyway
		}
		got := codeHash("recovery", code)
		match := subtle.ConstantTimeCompare(got, stored) == 1
		ok = ok && match && row.UserID == u.ID && row.CreatedNS <= wall && wall < row.ExpiresNS
		if !ok {
			return u, nil, nil
		}
		return u, func(tx *store.Tx) error {
			if err := tx.UseRecoveryToken(ctx, string(pr), got); errors.Is(err, store.ErrNotFound) {
				return ErrInvalidCode
			} else if err != nil {
				return err
			}
			return nil
		}, nil
	case codeTOTP:
		secret := dummyTOTPSecret
		if ok && len(u.TOTPSecret) > 0 {
			secret = string(u.TOTPSecret)
		}
		step, match := checkTOTP(secret, code, time.Unix(0, wall))
		if !ok || len(u.TOTPSecret) == 0 || !match {
			return u, nil, nil
		}
		return u, func(tx *store.Tx) error {
			// A code is good once, for sign-in and recovery alike.
			fresh, err := tx.AdvanceTOTPStep(ctx, u.ID, step)
			if err != nil {
				return err
			}
			if !fresh {
				return ErrInvalidCode
			}
			return nil
		}, nil
	default:
		var codes []store.RecoveryCode
		if known {
			if codes, err = s.db.ListRecoveryCodes(ctx, u.ID); err != nil {
				return u, nil, err
			}
		}
		id := matchBackupCode(codes, code)
		if !ok || id == 0 {
			return u, nil, nil
		}
		return u, func(tx *store.Tx) error {
			if err := tx.UseRecoveryCode(ctx, id, wall); errors.Is(err, store.ErrNotFound) {
				return ErrInvalidCode
			} else if err != nil {
				return err
			}
			return nil
		}, nil
	}
}

// useBackupCode spends one of the user's recovery codes as the second
// factor of a sign-in (a lost phone); false when none matches.
func (s *Service) useBackupCode(ctx context.Context, u store.User, typed string, wall int64) (bool, error) {
	kind, code, err := parseCode(typed)
	if err != nil || kind != codeBackup {
		return false, nil
	}
	ok := false
	err = s.db.WithTx(ctx, func(tx *store.Tx) error {
		codes, err := tx.ListRecoveryCodes(ctx, u.ID)
		if err != nil {
			return err
		}
		id := matchBackupCode(codes, code)
		if id == 0 {
			return nil
		}
		ok = true
		return tx.UseRecoveryCode(ctx, id, wall)
	})
	return ok, err
}

// EnableTOTP turns on two-factor authentication for a user with a secret
// the user has proved their app computes, and returns a fresh set of
// single-use recovery codes (shown once; a previous set is discarded).
func (s *Service) EnableTOTP(ctx context.Context, actor Actor, name, secret string) ([]string, error) {
	if secret == "" {
		return nil, fmt.Errorf("%w: empty TOTP secret", ErrInvalidInput)
	}
	codes, hashes := NewBackupCodes()
	wall := s.clk.Now().UnixNano()
	err := s.writeTx(ctx, func(tx *store.Tx) error {
		u, err := userByName(ctx, tx, name)
		if err != nil {
			return err
		}
		u.TOTPSecret, u.UpdatedNS = []byte(secret), wall
		if err := tx.UpdateUser(ctx, u); err != nil {
			return err
		}
		if err := tx.ReplaceRecoveryCodes(ctx, u.ID, hashes, wall); err != nil {
			return err
		}
		return s.audit(ctx, tx, actor, u.Name, "", "", "totp_enable",
			fmt.Sprintf("two-factor authentication on; %d new recovery codes", len(codes)), nil, wall)
	})
	if err != nil {
		return nil, fmt.Errorf("auth: enable TOTP: %w", err)
	}
	return codes, nil
}
