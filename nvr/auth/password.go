package auth

import (
	"fmt"
	"strings"
	"unicode/utf8"

	"github.com/trustelem/zxcvbn"
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
