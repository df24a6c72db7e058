package model

import (
	"errors"
	"fmt"
	"strings"
	"unicode"
	"unicode/utf8"

	"golang.org/x/text/cases"
	"golang.org/x/text/unicode/norm"
)

// Principal is a canonical account name (SPEC §1).
type Principal string

// MaxPrincipalBytes bounds a canonical name: longer input is an error, not
// a truncation, so two long names never collide.
const MaxPrincipalBytes = 64

// ErrBadPrincipal is wrapped by every CanonicalPrincipal error.
var ErrBadPrincipal = errors.New("invalid user name")

var folder = cases.Fold()

// CanonicalPrincipal returns the canonical form of an account name: Unicode
// NFKC, trimmed, case-folded (and normalised again, because folding can
// denormalise). "Admin", " admin" and "ＡＤＭＩＮ" are one principal. It is
// idempotent. It rejects invalid UTF-8, control and format characters,
// empty names and names over MaxPrincipalBytes, naming the problem.
func CanonicalPrincipal(name string) (Principal, error) {
	if !utf8.ValidString(name) {
		return "", fmt.Errorf("%w: not valid UTF-8", ErrBadPrincipal)
	}
	if len(name) > 4*MaxPrincipalBytes {
		return "", fmt.Errorf("%w: longer than %d bytes", ErrBadPrincipal, MaxPrincipalBytes)
	}
	step := func(s string) string {
		s = strings.TrimSpace(norm.NFKC.String(s))
		return strings.TrimSpace(norm.NFKC.String(folder.String(s)))
	}
	// Folding is not idempotent for every script (Cherokee letters fold
	// back and forth between their two cases), so take the smaller of one
	// and two steps: the same for every member of such a cycle, and a fixed
	// point everywhere else (found by FuzzCanonicalPrincipal).
	s := step(name)
	if t := step(s); t != s && t < s {
		s = t
	}
	if s == "" {
		return "", fmt.Errorf("%w: empty", ErrBadPrincipal)
	}
	if len(s) > MaxPrincipalBytes {
		return "", fmt.Errorf("%w: longer than %d bytes", ErrBadPrincipal, MaxPrincipalBytes)
	}
	for _, r := range s {
		if unicode.IsControl(r) || unicode.Is(unicode.Cf, r) {
			return "", fmt.Errorf("%w: contains control or format character %U", ErrBadPrincipal, r)
		}
	}
	return Principal(s), nil
}
