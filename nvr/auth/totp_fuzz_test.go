package auth

import (
	"testing"
	"time"
)

// FuzzTOTPInput: any submitted code is accepted only if it is one of the
// three codes of the current step window, and parsing never panics.
func FuzzTOTPInput(f *testing.F) {
	const secret = "JBSWY3DPEHPK3PXP"
	at := time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC)
	for _, s := range []string{"", "000000", "123456", "12345", "1234567", "abcdef", "١٢٣٤٥٦", "\x00\x00\x00\x00\x00\x00"} {
		f.Add(s)
	}
	valid := map[string]bool{}
	for _, skew := range []time.Duration{-30 * time.Second, 0, 30 * time.Second} {
		c, err := TOTPCode(secret, at.Add(skew))
		if err != nil {
			f.Fatal(err)
		}
		valid[c] = true
		f.Add(c)
	}
	f.Fuzz(func(t *testing.T, code string) {
		step, ok := checkTOTP(secret, code, at)
		if ok != valid[code] {
			t.Fatalf("code %q accepted=%v, valid=%v", code, ok, valid[code])
		}
		if ok && (step < at.Unix()/30-1 || step > at.Unix()/30+1) {
			t.Fatalf("step %d outside the window", step)
		}
	})
}
