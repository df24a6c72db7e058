package model

import (
	"net/netip"
	"testing"
	"time"
)

// FuzzDecideSequence decodes bytes into a policy choice and a sequence of
// attempts, time steps and unlocks over one View, and checks after every
// step the universal invariants a single run can see (SPEC §8).
func FuzzDecideSequence(f *testing.F) {
	f.Add([]byte{0, 1, 1, 1, 1, 1, 1, 2, 200, 1, 0})
	f.Add([]byte{3, 1, 1, 1, 4, 4, 0, 9, 9, 9, 9, 9, 9, 255, 255})
	f.Add([]byte{1, 5, 5, 5, 5, 5, 5, 5, 5, 5, 5, 5, 5, 6, 6, 6, 6, 6, 7})
	names := PresetNames()
	f.Fuzz(func(t *testing.T, data []byte) {
		if len(data) == 0 {
			return
		}
		p, _ := Preset(names[int(data[0])%len(names)])
		v := View{}
		now := t0
		for i := 1; i+1 < len(data); i += 2 {
			op, arg := data[i], data[i+1]
			before := v
			switch op % 8 {
			case 0, 1, 2, 3: // an attempt
				ev := Event{Attempt: Attempt{Channel: Channel(arg >> 7), Role: Role(arg % 3), Print: uint64(arg>>3) % 5}, Outcome: Outcome(op % 3)}
				var d Decision
				v, d = Decide(v, ev, now, &p)
				checkStep(t, &p, before, v, d, ev, now)
				// INV-DETERMINISM
				if v2, d2 := Decide(before, ev, now, &p); v2 != v || d2 != d {
					t.Fatal("INV-DETERMINISM: same input, different output")
				}
			case 4, 5, 6: // time passes: around an edge or a random amount
				steps := []time.Duration{0, 1, time.Second, p.Pair.Window, p.Pair.Base, p.Pair.Cap, p.Principal.Cap, time.Hour, p.Pair.Decay, 24 * time.Hour}
				d := steps[int(arg)%len(steps)]
				if arg&0x80 != 0 && d > 0 {
					d--
				}
				now = now.Add(d)
			case 7: // unlock the pair (R-UNLOCK), checking INV-RESET
				v.Pair = UnlockPair(v.Pair)
				if v.Pair.Mode != Open || v.Pair.NFail != 0 || v.Pair.Level != 0 {
					t.Fatalf("INV-RESET: pair after unlock %+v", v.Pair.Key)
				}
			}
		}
	})
}

// checkStep is an independent reading of SPEC §8 over one decision.
func checkStep(t *testing.T, p *Policy, before, after View, d Decision, ev Event, now Instant) {
	t.Helper()
	open := func(k Key) bool { return k.Mode == Open || k.Until <= now }
	if d.Verdict == Refused && d.Verified {
		t.Fatal("INV-NOORACLE: a refused attempt was verified")
	}
	if ev.Channel == Remote && !p.Disabled {
		fam := before.Pair.Familiar && p.TrustTTL > 0 && now.Sub(before.Pair.LastSuccess) < p.TrustTTL
		mustRefuse := !open(before.Pair.Key) || !open(before.Source) || before.Principal.Disabled ||
			(!open(before.Principal) && (before.Principal.Mode == Held || !fam))
		if mustRefuse && d.Verdict != Refused {
			t.Fatalf("INV-NOAUTH-LOCKED: admitted while R-ADMIT refuses: %+v", d)
		}
	}
	for k, pair := range []struct{ b, a Key }{{before.Pair.Key, after.Pair.Key}, {before.Source, after.Source}, {before.Principal, after.Principal}, {before.Console, after.Console}} {
		kp := p.Key(Kind(k))
		// INV-NOSHORTEN: a key still refusing never has its until moved earlier.
		if pair.b.Mode != Open && pair.a.Mode == pair.b.Mode && pair.b.Until > now && pair.a.Until < pair.b.Until {
			t.Fatalf("INV-NOSHORTEN: %v until %d → %d", Kind(k), pair.b.Until, pair.a.Until)
		}
		// INV-BOUNDED
		if pair.a.Level > MaxLevel {
			t.Fatalf("INV-BOUNDED: level %d", pair.a.Level)
		}
		if pair.a.Mode == Locked && pair.a.Until.Sub(now) > kp.Cap {
			t.Fatalf("INV-BOUNDED: %v locked for %v > cap %v", Kind(k), pair.a.Until.Sub(now), kp.Cap)
		}
		if pair.a.Mode == Held && pair.a.Until != Forever && pair.a.Until.Sub(now) > kp.HoldFor {
			t.Fatalf("INV-BOUNDED: %v held for %v > holdFor", Kind(k), pair.a.Until.Sub(now))
		}
		// INV-CAUSE: a key locks only on a counted failure.
		if pair.b.Mode == Open && pair.a.Mode != Open && (d.Verdict != Failed || d.Effects&EffCounted == 0) {
			t.Fatalf("INV-CAUSE: %v locked by a %v decision", Kind(k), d.Verdict)
		}
	}
	// R-LASTADMIN
	if after.Console.Mode == Held || (after.Console.Mode == Locked && after.Console.Until.Sub(now) > p.Console.Cap) {
		t.Fatal("INV-LASTADMIN: the console is held or locked beyond its cap")
	}
}

// FuzzCanonicalPrincipal: canonicalisation is idempotent, and two names
// that canonicalise equal are one principal (they lock together).
func FuzzCanonicalPrincipal(f *testing.F) {
	for _, s := range []string{"admin", "ＡＤＭＩＮ", " Admin ", "Straße", "ﬁ", "\u0130", "a\u0301", "\xff"} {
		f.Add(s, s+" ")
	}
	f.Fuzz(func(t *testing.T, a, b string) {
		ca, errA := CanonicalPrincipal(a)
		if errA != nil {
			return
		}
		again, err := CanonicalPrincipal(string(ca))
		if err != nil || again != ca {
			t.Fatalf("not idempotent: %q → %q → %q (%v)", a, ca, again, err)
		}
		cb, errB := CanonicalPrincipal(b)
		if errB == nil && ca == cb {
			// Same principal ⇒ same keys: nothing distinguishes them downstream.
			if string(ca) != string(cb) {
				t.Fatal("equal principals differ")
			}
		}
	})
}

// FuzzParseSource: a parsed source re-parses to itself, and mapped and
// native IPv4 forms are one source.
func FuzzParseSource(f *testing.F) {
	for _, s := range []string{"10.0.0.2", "::ffff:10.0.0.2", "2001:db8::1", "[2001:db8::1]:80", "fe80::1%eth0", "1.2.3.4:5", "::", "2001:db8::/64"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		src, err := ParseSource(s)
		if err != nil {
			return
		}
		again, err := ParseSource(src.String())
		if err != nil || again != src {
			t.Fatalf("%q → %s → %v (%v)", s, src, again, err)
		}
		if a, err := netip.ParseAddr(s); err == nil && a.Is4() {
			mapped, _ := ParseSource("::ffff:" + s)
			if mapped != src {
				t.Fatalf("mapped %s differs from %s", mapped, src)
			}
		}
	})
}

// FuzzClientSource: forwarding headers from an untrusted peer never change
// the client; from a trusted proxy the answer is a hop of the chain or the
// proxy, never anything else.
func FuzzClientSource(f *testing.F) {
	f.Add("127.0.0.1", "1.2.3.4, 10.9.0.1")
	f.Add("203.0.113.1", "1.2.3.4")
	f.Add("::ffff:127.0.0.1", "2001:db8::1,,")
	trusted := []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8"), netip.MustParsePrefix("10.9.0.0/16")}
	f.Fuzz(func(t *testing.T, peer, xff string) {
		a, err := netip.ParseAddr(peer)
		if err != nil {
			return
		}
		src, err := ClientSource(a, []string{xff}, trusted)
		if err != nil {
			return
		}
		trustedPeer := false
		for _, p := range trusted {
			if p.Contains(a.Unmap()) {
				trustedPeer = true
			}
		}
		if !trustedPeer && src != SourceOf(a) {
			t.Fatalf("untrusted peer %s with XFF %q became %s", a, xff, src)
		}
	})
}
