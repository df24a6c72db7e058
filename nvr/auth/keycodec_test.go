package auth

import (
	"errors"
	"testing"
	"time"

	"github.com/latchnvr/latch/model"
)

func sampleKeys() []StoredKey {
	p, _ := model.Preset("latch")
	v := model.View{}
	now := model.Instant(5e12)
	var out []StoredKey
	for i := 0; i < 12; i++ {
		v, _ = model.Decide(v, model.Event{Attempt: model.Attempt{Print: uint64(i%3 + 1)}, Outcome: model.WrongSecret}, now, &p)
		out = append(out, StoredKey{Snapshot: model.Persist(v.Pair, now, 1_700_000_000e9), BootID: 42, SavedAt: now})
		now = now.Add(time.Second)
	}
	v, _ = model.Decide(model.View{}, model.Event{Outcome: model.RightSecret}, now, &p)
	out = append(out, StoredKey{Snapshot: model.Persist(v.Pair, now, -5), BootID: 1 << 63, SavedAt: -now})
	out = append(out, StoredKey{Snapshot: model.PersistKey(model.Key{Mode: model.Held, Until: model.Forever, Level: 64, Disabled: true}, 0, 0)})
	return out
}

func TestKeyCodecRoundTrips(t *testing.T) {
	for i, k := range sampleKeys() {
		got, err := DecodeKey(EncodeKey(k))
		if err != nil || got != k {
			t.Fatalf("key %d: %v\n%+v\n%+v", i, err, got, k)
		}
	}
}

func TestKeyCodecRefusesMalformed(t *testing.T) {
	good := EncodeKey(sampleKeys()[3])
	cases := map[string][]byte{
		"empty":          nil,
		"newer version":  append([]byte{9}, good[1:]...),
		"truncated":      good[:len(good)-3],
		"trailing":       append(append([]byte{}, good...), 0),
		"mode":           append([]byte{1, 7}, good[2:]...),
		"too many fails": append([]byte{1, 0, 0, 200}, good[4:]...),
	}
	for name, b := range cases {
		if _, err := DecodeKey(b); !errors.Is(err, ErrKeyCodec) {
			t.Errorf("%s: %v", name, err)
		}
	}
}

// FuzzKeyCodec: decode never panics, and whatever decodes re-encodes to the
// same bytes (so encode → store → load gives the same state).
func FuzzKeyCodec(f *testing.F) {
	for _, k := range sampleKeys() {
		f.Add(EncodeKey(k))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		k, err := DecodeKey(b)
		if err != nil {
			return
		}
		again, err := DecodeKey(EncodeKey(k))
		if err != nil || again != k {
			t.Fatalf("re-encode changed the key: %v", err)
		}
	})
}
