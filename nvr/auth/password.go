package auth

import (
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"unicode/utf8"

	"github.com/trustelem/zxcvbn"

	"github.com/latchnvr/latch/nvr/store"
)

// MinPasswordChars is the shortest password Latch accepts (NIST 800-63B's
// minimum for user-chosen secrets).
const MinPasswordChars = 8

// MinStrength is zxcvbn's score a password must reach (0–4): 3 is "safely
// unguessable: moderate protection from offline slow-hash scenario".
const MinStrength = 3

// CheckPassword says why a new password is not acceptable, or nil.
func CheckPassword(password, username string) error {
	n := utf8.RuneCountInString(password)
	switch {
	case !utf8.ValidString(password):
		return fmt.Errorf("%w: password is not valid UTF-8", ErrInvalidInput)
	case n < MinPasswordChars:
		return fmt.Errorf("%w: password must have at least %d characters (has %d)", ErrInvalidInput, MinPasswordChars, n)
	case len(password) > MaxSecretBytes:
		return fmt.Errorf("%w: password longer than %d bytes", ErrInvalidInput, MaxSecretBytes)
	}
	r := zxcvbn.PasswordStrength(password, []string{username, "latch", "nvr", "admin", "camera"})
	if r.Score < MinStrength {
		return fmt.Errorf("%w: password is too easy to guess (strength %d of 4, need %d): avoid names, dates, keyboard patterns and common words", ErrInvalidInput, r.Score, MinStrength)
	}
	if strings.EqualFold(password, username) {
		return fmt.Errorf("%w: password must differ from the user name", ErrInvalidInput)
	}
	return nil
}

// Weak reports whether a password that just verified would be refused
// today: the user must change it after logging in.
func Weak(password, username string) bool { return CheckPassword(password, username) != nil }

// strongHashes remembers the password hashes whose password passed Weak at
// a login, so that a login with the same password does not run zxcvbn
// again: for one binary the answer depends only on the password and the
// user name, and a PHC hash (salted when it was set) stands for one
// password of one user. The check costs about a millisecond for a long
// password, which on the appliance hides behind argon2id but was half of
// the simulator's CPU on a site with regular users. Only strong answers
// are kept: a weak one makes the login record MustChangePassword, which
// skips the check until the password changes.
type strongHashes struct {
	mu sync.Mutex
	m  map[string]struct{}
	// checks counts the checks run (tests).
	checks atomic.Int64
}

// maxStrongHashes bounds the memory: more accounts than this logging in
// in turn only check more often.
const maxStrongHashes = 4096

// weak is Weak(password, u.Name), remembered for strong passwords by u's
// password hash. password must have verified against u.PasswordHash.
func (c *strongHashes) weak(password string, u *store.User) bool {
	key := u.Name + "\x00" + u.PasswordHash
	c.mu.Lock()
	_, strong := c.m[key]
	c.mu.Unlock()
	if strong {
		return false
	}
	c.checks.Add(1)
	if Weak(password, u.Name) {
		return true
	}
	c.mu.Lock()
	if c.m == nil || len(c.m) >= maxStrongHashes {
		c.m = make(map[string]struct{})
	}
	c.m[key] = struct{}{}
	c.mu.Unlock()
	return false
}
