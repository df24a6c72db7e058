package sim

import (
	"math/bits"

	"github.com/latchnvr/latch/model"
)

// pairStore keeps the model engine's pair keys compactly. A model.Pair is
// ~600 bytes, mostly two fixed arrays (32 failure instants, 16
// fingerprints) of which a policy fills a few; with tens of thousands of
// pairs (a botnet spraying a site) the engine's speed is the cache's. A
// record here holds the pair's identity, the header, as many failure slots
// as the pair threshold allows and 6 fingerprints (none when the policy
// does not deduplicate replays, R-REPLAY), in one slot of an
// open-addressing table: one lookup, one cache miss, about 200 bytes. A
// pair that does not fit its record is kept whole beside it, so the store
// is exact for every state; a pair that is all zero is not stored at all.
type pairStore struct {
	nf     int // failure slots per record
	np     int // fingerprint slots per record
	stride int // words per slot
	shift  uint
	n      int      // slots in use
	words  []uint64 // slots: [id+1 (0: empty), header, until, lockedAt, quietFrom, lastSuccess, failures…, prints…]
	big    []model.Pair
	free   []uint64 // unused entries of big
}

const (
	bigFlag      = 1 << 40 // the record lives in big[header>>bigShift]
	bigShift     = 41
	inlinePrints = 6
	pairHeader   = 6 // words before the failure slots
)

func newPairStore(p *model.Policy) pairStore {
	nf := p.Pair.Threshold
	for _, n := range p.Pair.RoleThreshold {
		nf = max(nf, n)
	}
	nf = min(nf, model.MaxThreshold)
	np := 0
	if p.Pair.ReplayDedup {
		np = inlinePrints
	}
	ps := pairStore{nf: nf, np: np, stride: pairHeader + nf + 2*np}
	ps.alloc(64)
	return ps
}

func (ps *pairStore) alloc(slots int) {
	ps.words = make([]uint64, slots*ps.stride)
	ps.shift = uint(64 - bits.TrailingZeros(uint(slots)))
}

func (ps *pairStore) slots() int { return len(ps.words) / ps.stride }

func pairID(u UserID, s SourceID) uint64 { return uint64(uint32(u))<<32 | uint64(uint32(s)) }

// find returns the slot holding id, or the empty slot where it belongs.
func (ps *pairStore) find(id uint64) (int32, bool) {
	key := id + 1
	mask := ps.slots() - 1
	i := int((key * 0x9E3779B97F4A7C15) >> ps.shift)
	for {
		switch ps.words[i*ps.stride] {
		case key:
			return int32(i), true
		case 0:
			return int32(i), false
		}
		i = (i + 1) & mask
	}
}

// get returns the slot of a stored pair, or -1 (the pair is zero).
func (ps *pairStore) get(u UserID, s SourceID) int32 {
	if i, ok := ps.find(pairID(u, s)); ok {
		return i
	}
	return -1
}

// add makes a record for a pair about to hold state and returns its slot.
func (ps *pairStore) add(u UserID, s SourceID) int32 {
	if 2*(ps.n+1) > ps.slots() {
		ps.grow()
	}
	id := pairID(u, s)
	i, _ := ps.find(id)
	w := ps.words[int(i)*ps.stride:][:ps.stride]
	clear(w)
	w[0] = id + 1
	ps.n++
	return i
}

func (ps *pairStore) grow() {
	old := ps.words
	ps.alloc(2 * ps.slots())
	for o := 0; o < len(old); o += ps.stride {
		if key := old[o]; key != 0 {
			i, _ := ps.find(key - 1)
			copy(ps.words[int(i)*ps.stride:], old[o:o+ps.stride])
		}
	}
}

// load decodes slot i into p, which must be zero.
func (ps *pairStore) load(i int32, p *model.Pair) {
	w := ps.words[int(i)*ps.stride:][:ps.stride]
	h := w[1]
	if h&bigFlag != 0 {
		*p = ps.big[h>>bigShift]
		return
	}
	p.Mode = model.Mode(h)
	p.Level = uint8(h >> 8)
	p.NFail = uint8(h >> 16)
	p.Disabled = h&(1<<24) != 0
	p.Familiar = h&(1<<25) != 0
	p.NPrints = uint8(h >> 32)
	p.Until, p.LockedAt, p.QuietFrom, p.LastSuccess = model.Instant(w[2]), model.Instant(w[3]), model.Instant(w[4]), model.Instant(w[5])
	f := w[pairHeader : pairHeader+int(p.NFail)]
	for k, v := range f {
		p.Failures[k] = model.Instant(v)
	}
	pr := w[pairHeader+ps.nf:]
	for k := range int(p.NPrints) {
		p.Prints[k] = model.Print{Tag: pr[2*k], Seen: model.Instant(pr[2*k+1])}
	}
}

// store encodes p into slot i.
func (ps *pairStore) store(i int32, p *model.Pair) {
	w := ps.words[int(i)*ps.stride:][:ps.stride]
	if int(p.NFail) > ps.nf || int(p.NPrints) > ps.np {
		if w[1]&bigFlag == 0 {
			var slot uint64
			if n := len(ps.free); n > 0 {
				slot, ps.free = ps.free[n-1], ps.free[:n-1]
			} else {
				slot = uint64(len(ps.big))
				ps.big = append(ps.big, model.Pair{})
			}
			w[1] = bigFlag | slot<<bigShift
		}
		ps.big[w[1]>>bigShift] = *p
		return
	}
	if w[1]&bigFlag != 0 {
		ps.free = append(ps.free, w[1]>>bigShift)
	}
	h := uint64(p.Mode) | uint64(p.Level)<<8 | uint64(p.NFail)<<16 | uint64(p.NPrints)<<32
	if p.Disabled {
		h |= 1 << 24
	}
	if p.Familiar {
		h |= 1 << 25
	}
	w[1], w[2], w[3], w[4], w[5] = h, uint64(p.Until), uint64(p.LockedAt), uint64(p.QuietFrom), uint64(p.LastSuccess)
	f := w[pairHeader : pairHeader+int(p.NFail)]
	for k := range f {
		f[k] = uint64(p.Failures[k])
	}
	pr := w[pairHeader+ps.nf:]
	for k := range int(p.NPrints) {
		pr[2*k], pr[2*k+1] = p.Prints[k].Tag, uint64(p.Prints[k].Seen)
	}
}

// update applies f to the pair in slot i.
func (ps *pairStore) update(i int32, f func(model.Pair) model.Pair) {
	var p model.Pair
	ps.load(i, &p)
	p = f(p)
	ps.store(i, &p)
}

// each calls f on every stored slot. Slot order depends only on the pairs
// stored, and the operations applied through it act on each pair alone.
func (ps *pairStore) each(f func(i int32)) {
	for i := range ps.slots() {
		if ps.words[i*ps.stride] != 0 {
			f(int32(i))
		}
	}
}

// len is how many pairs are stored.
func (ps *pairStore) len() int { return ps.n }
