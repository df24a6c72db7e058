package model

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/binary"
)

// Fingerprint is the keyed MAC of a presented secret that R-REPLAY compares:
// HMAC-SHA-256 under a device secret, truncated to 64 bits. It is never the
// secret or a plain hash of it, so a stolen key state reveals nothing
// without the device key; a 64-bit collision merely leaves one guess
// uncounted. It never returns 0 (0 means "no fingerprint").
func Fingerprint(deviceKey []byte, secret string) uint64 {
	m := hmac.New(sha256.New, deviceKey)
	m.Write([]byte(secret))
	t := binary.BigEndian.Uint64(m.Sum(nil))
	if t == 0 {
		t = 1
	}
	return t
}
