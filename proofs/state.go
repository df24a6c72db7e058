package proofs

import (
	"encoding/binary"
	"math"
	"math/bits"

	"github.com/latchnvr/latch/model"
)

// maxSources is the most remote sources the abstraction has (SPEC §8
// proofs: one principal, up to three sources, the console).
const maxSources = 3

// Key indices of a wstate: the pairs, the sources, the principal, the console.
const (
	kPair0     = 0
	kSource0   = maxSources
	kPrincipal = 2 * maxSources
	kConsole   = 2*maxSources + 1
	numKeys    = 2*maxSources + 2
)

// noDeadline marks an observer key with no running lock.
const noDeadline = model.Instant(math.MinInt64)

// obsKey is the explorer's own record of one key, kept from the SPEC's words
// and the decisions it saw, never from the model's internals: the counted
// failures within the window (R-FAIL, R-REPLAY), and, while the key is
// Locked or Held, the latest instant INV-TERMINATE allows it to be.
type obsKey struct {
	nfail    uint8
	fails    [model.MaxThreshold]model.Instant
	deadline model.Instant
}

// clearFails forgets every counted failure.
func (o *obsKey) clearFails() {
	for i := 0; i < int(o.nfail); i++ {
		o.fails[i] = 0
	}
	o.nfail = 0
}

// obsPrints is the explorer's record of the wrong secrets presented on one
// pair (R-REPLAY): labels in order of first presentation and when each was
// last presented.
type obsPrints struct {
	n     uint8
	label [model.MaxPrints]uint64
	seen  [model.MaxPrints]model.Instant
}

// wstate is one explored state: every key of one principal under the
// abstraction (the model's values), plus the observer. All instants are
// relative to now, which is always 0: advancing time shifts every instant
// back (model.Persist's shift), so equal situations are equal states.
type wstate struct {
	pairs     [maxSources]model.Pair
	sources   [maxSources]model.Key
	principal model.Key
	console   model.Key

	obs        [numKeys]obsKey
	success    [maxSources]model.Instant // last verified right secret
	hasSuccess [maxSources]bool
	prints     [maxSources]obsPrints
	disabled   bool
}

func newState() wstate {
	var w wstate
	for i := range w.obs {
		w.obs[i].deadline = noDeadline
	}
	return w
}

func (w *wstate) key(i int) *model.Key {
	switch {
	case i < kSource0:
		return &w.pairs[i].Key
	case i < kPrincipal:
		return &w.sources[i-kSource0]
	case i == kPrincipal:
		return &w.principal
	default:
		return &w.console
	}
}

func kindOf(i int) model.Kind {
	switch {
	case i < kSource0:
		return model.KindPair
	case i < kPrincipal:
		return model.KindSource
	case i == kPrincipal:
		return model.KindPrincipal
	default:
		return model.KindConsole
	}
}

var keyNames = [numKeys]string{"pair1", "pair2", "pair3", "source1", "source2", "source3", "principal", "console"}

// view gathers the keys of an attempt from source s (s < 0: the console),
// as wstate.View does.
func (w *wstate) view(s int) model.View {
	v := model.View{Principal: w.principal, Console: w.console}
	if s >= 0 {
		v.Pair = w.pairs[s]
		v.Source = w.sources[s]
	}
	return v
}

func (w *wstate) store(s int, v model.View) {
	if s >= 0 {
		w.pairs[s] = v.Pair
		w.sources[s] = v.Source
	}
	w.principal = v.Principal
	w.console = v.Console
}

// ---- relative time ----

// shiftModel moves every model instant by −delta with model.Persist, the
// model's own shift (Forever stays Forever, unused fields stay zero).
func (w *wstate) shiftModel(delta int64) {
	if delta == 0 {
		return
	}
	now := model.Instant(delta)
	for s := range w.pairs {
		w.pairs[s] = model.Persist(w.pairs[s], now, 0).Pair
		w.sources[s] = model.PersistKey(w.sources[s], now, 0).Pair.Key
	}
	w.principal = model.PersistKey(w.principal, now, 0).Pair.Key
	w.console = model.PersistKey(w.console, now, 0).Pair.Key
}

// shiftObs moves every observer instant by −delta, saturating.
func (w *wstate) shiftObs(delta int64) {
	if delta == 0 {
		return
	}
	for i := range w.obs {
		o := &w.obs[i]
		for j := 0; j < int(o.nfail); j++ {
			o.fails[j] = sub(o.fails[j], delta)
		}
		if o.deadline != noDeadline {
			o.deadline = sub(o.deadline, delta)
		}
	}
	for s := range w.success {
		if w.hasSuccess[s] {
			w.success[s] = sub(w.success[s], delta)
		}
		pr := &w.prints[s]
		for j := 0; j < int(pr.n); j++ {
			pr.seen[j] = sub(pr.seen[j], delta)
		}
	}
}

// sub is i−d saturating, with Forever fixed (SPEC R-SATURATE).
func sub(i model.Instant, d int64) model.Instant {
	if i == model.Forever {
		return i
	}
	r := int64(i) - d
	if d > 0 && r > int64(i) {
		return model.Instant(math.MinInt64 + 1)
	}
	if d < 0 && r < int64(i) {
		return model.Forever - 1
	}
	return model.Instant(r)
}

// age is now−t for an instant relative to now = 0.
func age(t model.Instant) int64 {
	if t == model.Instant(math.MinInt64) || t == model.Instant(math.MinInt64+1) {
		return math.MaxInt64
	}
	return -int64(t)
}

// ---- encoding ----

// appendKey writes a key's meaningful fields.
func appendKey(b []byte, k *model.Key) []byte {
	h := uint64(k.Mode) | uint64(k.Level)<<8 | uint64(k.NFail)<<16
	if k.Disabled {
		h |= 1 << 24
	}
	b = binary.AppendUvarint(b, h)
	b = binary.AppendVarint(b, int64(k.Until))
	b = binary.AppendVarint(b, int64(k.LockedAt))
	b = binary.AppendVarint(b, int64(k.QuietFrom))
	n := int(k.NFail)
	if n > model.MaxThreshold {
		n = model.MaxThreshold
	}
	for i := 0; i < n; i++ {
		b = binary.AppendVarint(b, int64(k.Failures[i]))
	}
	return b
}

type reader struct {
	b   []byte
	bad bool
}

func (r *reader) uvarint() uint64 {
	v, n := binary.Uvarint(r.b)
	if n <= 0 {
		r.bad = true
		return 0
	}
	r.b = r.b[n:]
	return v
}

func (r *reader) varint() int64 {
	v, n := binary.Varint(r.b)
	if n <= 0 {
		r.bad = true
		return 0
	}
	r.b = r.b[n:]
	return v
}

func (r *reader) key(k *model.Key) {
	h := r.uvarint()
	k.Mode = model.Mode(h & 0xff)
	k.Level = uint8(h >> 8)
	k.NFail = uint8(h >> 16)
	k.Disabled = h&(1<<24) != 0
	k.Until = model.Instant(r.varint())
	k.LockedAt = model.Instant(r.varint())
	k.QuietFrom = model.Instant(r.varint())
	n := int(k.NFail)
	if n > model.MaxThreshold {
		n = model.MaxThreshold
	}
	for i := 0; i < n; i++ {
		k.Failures[i] = model.Instant(r.varint())
	}
}

func appendPairExtra(b []byte, pr *model.Pair) []byte {
	h := uint64(pr.NPrints) << 1
	if pr.Familiar {
		h |= 1
	}
	b = binary.AppendUvarint(b, h)
	b = binary.AppendVarint(b, int64(pr.LastSuccess))
	n := int(pr.NPrints)
	if n > model.MaxPrints {
		n = model.MaxPrints
	}
	for i := 0; i < n; i++ {
		b = binary.AppendUvarint(b, pr.Prints[i].Tag)
		b = binary.AppendVarint(b, int64(pr.Prints[i].Seen))
	}
	return b
}

func (r *reader) pairExtra(pr *model.Pair) {
	h := r.uvarint()
	pr.Familiar = h&1 != 0
	pr.NPrints = uint8(h >> 1)
	pr.LastSuccess = model.Instant(r.varint())
	n := int(pr.NPrints)
	if n > model.MaxPrints {
		n = model.MaxPrints
	}
	for i := 0; i < n; i++ {
		pr.Prints[i].Tag = r.uvarint()
		pr.Prints[i].Seen = model.Instant(r.varint())
	}
}

func appendObsKey(b []byte, o *obsKey) []byte {
	b = binary.AppendUvarint(b, uint64(o.nfail))
	b = binary.AppendVarint(b, int64(o.deadline))
	for i := 0; i < int(o.nfail); i++ {
		b = binary.AppendVarint(b, int64(o.fails[i]))
	}
	return b
}

func (r *reader) obsKey(o *obsKey) {
	o.nfail = uint8(r.uvarint())
	if o.nfail > model.MaxThreshold {
		r.bad = true
		o.nfail = 0
	}
	o.deadline = model.Instant(r.varint())
	for i := 0; i < int(o.nfail); i++ {
		o.fails[i] = model.Instant(r.varint())
	}
}

// appendSource writes everything of source s (its pair, its source key and
// their observer records): the unit the symmetry reduction sorts.
func (w *wstate) appendSource(b []byte, s int) []byte {
	b = appendKey(b, &w.pairs[s].Key)
	b = appendPairExtra(b, &w.pairs[s])
	b = appendKey(b, &w.sources[s])
	b = appendObsKey(b, &w.obs[kPair0+s])
	b = appendObsKey(b, &w.obs[kSource0+s])
	if w.hasSuccess[s] {
		b = append(b, 1)
		b = binary.AppendVarint(b, int64(w.success[s]))
	} else {
		b = append(b, 0)
	}
	pr := &w.prints[s]
	b = binary.AppendUvarint(b, uint64(pr.n))
	for i := 0; i < int(pr.n); i++ {
		b = binary.AppendUvarint(b, pr.label[i])
		b = binary.AppendVarint(b, int64(pr.seen[i]))
	}
	return b
}

func (r *reader) source(w *wstate, s int) {
	r.key(&w.pairs[s].Key)
	r.pairExtra(&w.pairs[s])
	r.key(&w.sources[s])
	r.obsKey(&w.obs[kPair0+s])
	r.obsKey(&w.obs[kSource0+s])
	if len(r.b) == 0 {
		r.bad = true
		return
	}
	w.hasSuccess[s] = r.b[0] == 1
	r.b = r.b[1:]
	if w.hasSuccess[s] {
		w.success[s] = model.Instant(r.varint())
	}
	pr := &w.prints[s]
	pr.n = uint8(r.uvarint())
	if pr.n > model.MaxPrints {
		r.bad = true
		pr.n = 0
	}
	for i := 0; i < int(pr.n); i++ {
		pr.label[i] = r.uvarint()
		pr.seen[i] = model.Instant(r.varint())
	}
}

// encode appends the canonical encoding of w to b.
func (w *wstate) encode(b []byte) []byte {
	for s := 0; s < maxSources; s++ {
		b = w.appendSource(b, s)
	}
	b = appendKey(b, &w.principal)
	b = appendKey(b, &w.console)
	b = appendObsKey(b, &w.obs[kPrincipal])
	b = appendObsKey(b, &w.obs[kConsole])
	if w.disabled {
		b = append(b, 1)
	} else {
		b = append(b, 0)
	}
	return b
}

// decodeState is the inverse of encode.
func decodeState(b []byte) (wstate, bool) {
	w := newState()
	r := reader{b: b}
	for s := 0; s < maxSources; s++ {
		r.source(&w, s)
	}
	r.key(&w.principal)
	r.key(&w.console)
	r.obsKey(&w.obs[kPrincipal])
	r.obsKey(&w.obs[kConsole])
	if len(r.b) != 1 {
		return w, false
	}
	w.disabled = r.b[0] == 1
	return w, !r.bad
}

// ---- hashing ----

// hash128 is a fixed-seed 128-bit hash of an encoding: two independent
// multiply-xorshift lanes. The visited set stores only hashes; with 128 bits
// a collision among a few million states has probability below 2^-80.
type hash128 [2]uint64

func mix64(x uint64) uint64 {
	x ^= x >> 30
	x *= 0xbf58476d1ce4e5b9
	x ^= x >> 27
	x *= 0x94d049bb133111eb
	x ^= x >> 31
	return x
}

func hashBytes(b []byte) hash128 {
	h1 := uint64(0x9e3779b97f4a7c15) ^ uint64(len(b))
	h2 := uint64(0xc2b2ae3d27d4eb4f) + uint64(len(b))*0x165667b19e3779f9
	for len(b) >= 8 {
		x := binary.LittleEndian.Uint64(b)
		h1 = mix64(h1^x) + 0x2545f4914f6cdd1d
		h2 = bits.RotateLeft64(h2+x*0x9fb21c651e98df25, 31) * 0xff51afd7ed558ccd
		b = b[8:]
	}
	var t uint64
	for i, c := range b {
		t |= uint64(c) << (8 * i)
	}
	h1 = mix64(h1 ^ t ^ 0x100)
	h2 = mix64(h2 + t*0x9fb21c651e98df25 + 0x1f)
	h2 = mix64(h2 ^ h1)
	if h1 == 0 && h2 == 0 {
		h2 = 1
	}
	return hash128{h1, h2}
}

// hashSet is an open-addressing set of 128-bit hashes (zero is empty).
type hashSet struct {
	slots []hash128
	n     int
}

func newHashSet(capacity int) *hashSet {
	size := 1024
	for size < capacity*2 {
		size <<= 1
	}
	return &hashSet{slots: make([]hash128, size)}
}

// has reports whether h is in the set. It only reads, so workers may call
// it concurrently while nothing adds.
func (s *hashSet) has(h hash128) bool {
	mask := uint64(len(s.slots) - 1)
	for i := h[0] & mask; ; i = (i + 1) & mask {
		switch s.slots[i] {
		case h:
			return true
		case hash128{}:
			return false
		}
	}
}

// add inserts h and reports whether it was new.
func (s *hashSet) add(h hash128) bool {
	if (s.n+1)*4 > len(s.slots)*3 {
		s.grow()
	}
	mask := uint64(len(s.slots) - 1)
	for i := h[0] & mask; ; i = (i + 1) & mask {
		switch s.slots[i] {
		case h:
			return false
		case hash128{}:
			s.slots[i] = h
			s.n++
			return true
		}
	}
}

func (s *hashSet) grow() {
	old := s.slots
	s.slots = make([]hash128, len(old)*2)
	s.n = 0
	for _, h := range old {
		if h != (hash128{}) {
			s.add(h)
		}
	}
}

// bytes is the memory the set holds.
func (s *hashSet) bytes() int { return len(s.slots) * 16 }
