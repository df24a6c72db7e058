package auth

import (
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/latchnvr/latch/model"
)

// keyCodecVersion is the first byte of every encoded key state; a newer
// byte is refused by name rather than misread.
const keyCodecVersion = 1

// ErrKeyCodec is wrapped by every decoding error.
var ErrKeyCodec = errors.New("key state encoding")

// StoredKey is what the store's opaque state column holds for one key: the
// model's snapshot (instants relative to SavedAt, wall anchor) plus the
// boot it was written in. Within one boot, instants are comparable and the
// monotonic clock decides the time served; across a reboot only the wall
// anchor can (R-RESTART).
type StoredKey struct {
	Snapshot model.Snapshot
	BootID   uint64
	SavedAt  model.Instant
}

// EncodeKey writes a compact, versioned encoding: only the failures and
// fingerprints in use are written.
func EncodeKey(s StoredKey) []byte {
	k := &s.Snapshot.Pair
	b := make([]byte, 0, 64+8*int(k.NFail)+16*int(k.NPrints))
	b = append(b, keyCodecVersion, byte(k.Mode), k.Level, k.NFail, boolByte(k.Disabled), boolByte(k.Familiar), k.NPrints)
	b = binary.AppendUvarint(b, s.BootID)
	for _, v := range []int64{int64(s.SavedAt), s.Snapshot.WallAnchor, int64(k.Until), int64(k.LockedAt), int64(k.QuietFrom), int64(k.LastSuccess)} {
		b = binary.AppendVarint(b, v)
	}
	for i := 0; i < int(k.NFail); i++ {
		b = binary.AppendVarint(b, int64(k.Failures[i]))
	}
	for i := 0; i < int(k.NPrints); i++ {
		b = binary.BigEndian.AppendUint64(b, k.Prints[i].Tag)
		b = binary.AppendVarint(b, int64(k.Prints[i].Seen))
	}
	return b
}

func boolByte(v bool) byte {
	if v {
		return 1
	}
	return 0
}

// DecodeKey reads EncodeKey's output, refusing anything malformed by name.
func DecodeKey(b []byte) (StoredKey, error) {
	var s StoredKey
	bad := func(what string) (StoredKey, error) {
		return StoredKey{}, fmt.Errorf("%w: %s", ErrKeyCodec, what)
	}
	if len(b) < 7 {
		return bad("too short")
	}
	if b[0] != keyCodecVersion {
		return bad(fmt.Sprintf("version %d is not %d (written by a newer binary?)", b[0], keyCodecVersion))
	}
	k := &s.Snapshot.Pair
	k.Mode, k.Level, k.NFail = model.Mode(b[1]), b[2], b[3]
	if k.Mode > model.Held {
		return bad(fmt.Sprintf("mode %d", b[1]))
	}
	if k.NFail > model.MaxThreshold || b[6] > model.MaxPrints || k.Level > model.MaxLevel || b[4] > 1 || b[5] > 1 {
		return bad("field out of range")
	}
	k.Disabled, k.Familiar, k.NPrints = b[4] == 1, b[5] == 1, b[6]
	r := b[7:]
	uv, n := binary.Uvarint(r)
	if n <= 0 {
		return bad("boot id")
	}
	s.BootID, r = uv, r[n:]
	next := func() (int64, bool) {
		v, n := binary.Varint(r)
		if n <= 0 {
			return 0, false
		}
		r = r[n:]
		return v, true
	}
	var head [6]int64
	for i := range head {
		v, ok := next()
		if !ok {
			return bad("truncated header")
		}
		head[i] = v
	}
	s.SavedAt, s.Snapshot.WallAnchor = model.Instant(head[0]), head[1]
	k.Until, k.LockedAt, k.QuietFrom, k.LastSuccess = model.Instant(head[2]), model.Instant(head[3]), model.Instant(head[4]), model.Instant(head[5])
	for i := 0; i < int(k.NFail); i++ {
		v, ok := next()
		if !ok {
			return bad("truncated failures")
		}
		k.Failures[i] = model.Instant(v)
	}
	for i := 0; i < int(k.NPrints); i++ {
		if len(r) < 8 {
			return bad("truncated fingerprints")
		}
		k.Prints[i].Tag, r = binary.BigEndian.Uint64(r), r[8:]
		v, ok := next()
		if !ok {
			return bad("truncated fingerprints")
		}
		k.Prints[i].Seen = model.Instant(v)
	}
	if len(r) != 0 {
		return bad("trailing bytes")
	}
	return s, nil
}
