package sim

import (
	"math/rand/v2"
	"testing"

	"github.com/latchnvr/latch/model"
)

// The compact pair store gives back exactly the pair it was given, for
// every shape of pair: inline, too many failures or fingerprints for a
// record (kept whole), and back again; across the table's growth.
func TestPairStoreRoundTrip(t *testing.T) {
	for _, preset := range []string{"latch", "annke", "fail2ban", "auth0"} {
		p := mustPreset(t, preset)
		ps := newPairStore(&p)
		r := rand.New(rand.NewPCG(testSeed, 7))
		want := map[uint64]model.Pair{}
		for step := range 20000 {
			u, s := UserID(r.IntN(300)), SourceID(r.IntN(200))
			pr := randomPair(r)
			i := ps.get(u, s)
			if i < 0 {
				i = ps.add(u, s)
			}
			ps.store(i, &pr)
			want[pairID(u, s)] = pr
			if step%5000 == 4999 {
				for id, w := range want {
					var got model.Pair
					ps.load(ps.get(UserID(id>>32), SourceID(uint32(id))), &got)
					if got != w {
						t.Fatalf("%s, step %d: pair %x came back as %+v, stored %+v", preset, step, id, got, w)
					}
				}
			}
		}
		if ps.len() != len(want) {
			t.Fatalf("%s: %d pairs stored, want %d", preset, ps.len(), len(want))
		}
	}
}

func randomPair(r *rand.Rand) model.Pair {
	var p model.Pair
	p.Mode = model.Mode(r.IntN(3))
	p.Level = uint8(r.IntN(65))
	p.Until, p.LockedAt, p.QuietFrom = model.Instant(r.Int64()), model.Instant(r.Int64()), model.Instant(r.Int64())
	if r.IntN(4) == 0 {
		p.Until = model.Forever
	}
	n := r.IntN(12)
	if r.IntN(10) == 0 {
		n = model.MaxThreshold
	}
	p.NFail = uint8(n)
	for k := range n {
		p.Failures[k] = model.Instant(r.Int64())
	}
	p.Familiar = r.IntN(2) == 0
	if p.Familiar {
		p.LastSuccess = model.Instant(r.Int64())
	}
	np := r.IntN(9)
	if r.IntN(10) == 0 {
		np = model.MaxPrints
	}
	p.NPrints = uint8(np)
	for k := range np {
		p.Prints[k] = model.Print{Tag: r.Uint64() | 1, Seen: model.Instant(r.Int64())}
	}
	return p
}
