package auth

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"
	"sync/atomic"

	"golang.org/x/crypto/argon2"
)

// HashParams are argon2id's cost parameters.
type HashParams struct {
	Time    uint32 // passes
	Memory  uint32 // KiB
	Threads uint8
}

// OWASPParams are the OWASP Password Storage Cheat Sheet's argon2id
// minimum (m=19 MiB, t=2, p=1): the default on an appliance.
var OWASPParams = HashParams{Time: 2, Memory: 19 * 1024, Threads: 1}

// CheapParams make hashing fast for tests and the simulator's service
// engine; never for a device.
var CheapParams = HashParams{Time: 1, Memory: 8, Threads: 1}

const saltLen, keyLen = 16, 32

// ErrBadHash is returned for a stored hash that is not argon2id PHC text.
var ErrBadHash = errors.New("malformed password hash")

// Hasher hashes and verifies secrets with argon2id, at most Workers at a
// time: argon2id's memory is the appliance's scarcest resource, so a flood
// of admitted attempts queues instead of exhausting RAM.
type Hasher struct {
	params HashParams
	sem    chan struct{}
	dummy  string
	// verifications counts Verify calls: R-NOORACLE's tests read it.
	verifications atomic.Int64
}

// Verifications is how many secrets have been verified so far.
func (h *Hasher) Verifications() int64 { return h.verifications.Load() }

// NewHasher makes a hasher with the given cost and concurrency.
func NewHasher(p HashParams, workers int) *Hasher {
	if workers < 1 {
		workers = 1
	}
	h := &Hasher{params: p, sem: make(chan struct{}, workers)}
	// The dummy hash unknown principals are verified against (R-ENUM): the
	// same parameters, so the same work.
	h.dummy = h.hash("latch-dummy-" + randomText(16))
	return h
}

// Hash returns the PHC string of secret with a fresh salt.
func (h *Hasher) Hash(ctx context.Context, secret string) (string, error) {
	if err := h.acquire(ctx); err != nil {
		return "", err
	}
	defer h.release()
	return h.hash(secret), nil
}

func (h *Hasher) hash(secret string) string {
	salt := make([]byte, saltLen)
	if _, err := rand.Read(salt); err != nil {
		panic(fmt.Sprintf("auth: no randomness: %v", err))
	}
	key := argon2.IDKey([]byte(secret), salt, h.params.Time, h.params.Memory, h.params.Threads, keyLen)
	enc := base64.RawStdEncoding
	return fmt.Sprintf("$argon2id$v=%d$m=%d,t=%d,p=%d$%s$%s", argon2.Version, h.params.Memory, h.params.Time,
		h.params.Threads, enc.EncodeToString(salt), enc.EncodeToString(key))
}

// Verify reports whether secret matches the stored PHC hash. An empty
// stored hash (an unknown principal) is checked against the dummy hash,
// spending the same work and always failing (R-ENUM).
func (h *Hasher) Verify(ctx context.Context, stored, secret string) (bool, error) {
	if err := h.acquire(ctx); err != nil {
		return false, err
	}
	defer h.release()
	h.verifications.Add(1)
	known := stored != ""
	if !known {
		stored = h.dummy
	}
	p, salt, want, err := parsePHC(stored)
	if err != nil {
		return false, err
	}
	got := argon2.IDKey([]byte(secret), salt, p.Time, p.Memory, p.Threads, uint32(len(want)))
	return subtle.ConstantTimeCompare(got, want) == 1 && known, nil
}

// NeedsRehash reports whether a stored hash used other parameters.
func (h *Hasher) NeedsRehash(stored string) bool {
	p, _, _, err := parsePHC(stored)
	return err != nil || p != h.params
}

func (h *Hasher) acquire(ctx context.Context) error {
	select {
	case h.sem <- struct{}{}:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (h *Hasher) release() { <-h.sem }

func parsePHC(s string) (HashParams, []byte, []byte, error) {
	var p HashParams
	parts := strings.Split(s, "$")
	if len(parts) != 6 || parts[1] != "argon2id" {
		return p, nil, nil, ErrBadHash
	}
	var v int
	if _, err := fmt.Sscanf(parts[2], "v=%d", &v); err != nil || v != argon2.Version {
		return p, nil, nil, ErrBadHash
	}
	var threads uint32
	if _, err := fmt.Sscanf(parts[3], "m=%d,t=%d,p=%d", &p.Memory, &p.Time, &threads); err != nil || threads == 0 || threads > 255 || p.Time == 0 {
		return p, nil, nil, ErrBadHash
	}
	p.Threads = uint8(threads)
	enc := base64.RawStdEncoding
	salt, err1 := enc.DecodeString(parts[4])
	key, err2 := enc.DecodeString(parts[5])
	if err1 != nil || err2 != nil || len(key) < 16 {
		return p, nil, nil, ErrBadHash
	}
	return p, salt, key, nil
}

func randomText(n int) string {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		panic(fmt.Sprintf("auth: no randomness: %v", err))
	}
	return base64.RawURLEncoding.EncodeToString(b)
}
