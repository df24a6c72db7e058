package model

import (
	"errors"
	"net/netip"
	"strings"
	"testing"
)

func TestCanonicalPrincipalIsOneNamePerAccount(t *testing.T) {
	same := []string{"admin", "Admin", " admin", "ADMIN ", "ＡＤＭＩＮ", "\u00a0admin", "admın"}
	want, err := CanonicalPrincipal("admin")
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range same[:6] {
		got, err := CanonicalPrincipal(s)
		if err != nil || got != want {
			t.Errorf("CanonicalPrincipal(%q) = %q, %v; want %q", s, got, err, want)
		}
	}
	// Dotless ı is a different letter, not a spelling of i.
	if got, _ := CanonicalPrincipal(same[6]); got == want {
		t.Errorf("%q canonicalised to %q", same[6], got)
	}
	// Ꭾ and ꭾ (Cherokee) fold into each other: canonicalisation must
	// still be idempotent (found by FuzzCanonicalPrincipal).
	for _, s := range []string{"Straße", "ﬁle", "Ǆemal", "ΣΑΣ", "Ꭾ", "ꭾ", "ᏣᎳᎩ"} {
		once, err := CanonicalPrincipal(s)
		if err != nil {
			t.Fatal(err)
		}
		twice, err := CanonicalPrincipal(string(once))
		if err != nil || twice != once {
			t.Errorf("not idempotent: %q → %q → %q", s, once, twice)
		}
	}
}

func TestCanonicalPrincipalRejectsBadNames(t *testing.T) {
	for _, s := range []string{"", "   ", "a\x00b", "bad\xffutf8", "a\u200bb", strings.Repeat("a", 65), "line\nbreak"} {
		if _, err := CanonicalPrincipal(s); !errors.Is(err, ErrBadPrincipal) {
			t.Errorf("CanonicalPrincipal(%q): err %v, want ErrBadPrincipal", s, err)
		}
	}
}

func TestSourceCanonicalForms(t *testing.T) {
	cases := map[string]string{
		"10.0.0.2":                 "10.0.0.2",
		"::ffff:10.0.0.2":          "10.0.0.2",
		"10.0.0.2:5000":            "10.0.0.2",
		"2001:db8:1:2:3:4:5:6":     "2001:db8:1:2::/64",
		"[2001:db8:1:2::9]:443":    "2001:db8:1:2::/64",
		"2001:db8:1:2::/64":        "2001:db8:1:2::/64",
		"fe80::1%eth0":             "fe80::/64",
		"2001:db8:1:2:ffff::1":     "2001:db8:1:2::/64",
		"::ffff:192.168.1.1":       "192.168.1.1",
		"10.0.0.2/32":              "10.0.0.2",
		" 2001:db8:1:2:aaaa::1 ":   "2001:db8:1:2::/64",
		"2001:0db8:0001:0002::0:1": "2001:db8:1:2::/64",
	}
	for in, want := range cases {
		s, err := ParseSource(in)
		if err != nil || s.String() != want {
			t.Errorf("ParseSource(%q) = %v, %v; want %s", in, s, err, want)
		}
	}
	for _, bad := range []string{"", "nope", "10.0.0.0/8", "2001:db8::/48", "10.0.0.256"} {
		if _, err := ParseSource(bad); !errors.Is(err, ErrBadSource) {
			t.Errorf("ParseSource(%q): %v, want ErrBadSource", bad, err)
		}
	}
}

func TestClientSourceTrustsOnlyConfiguredProxies(t *testing.T) {
	proxy := []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32"), netip.MustParsePrefix("10.9.0.0/16")}
	addr := netip.MustParseAddr
	cases := []struct {
		name string
		peer string
		xff  []string
		want string
	}{
		{"untrusted peer: header ignored", "203.0.113.5", []string{"1.2.3.4"}, "203.0.113.5"},
		{"trusted proxy: right-most hop", "127.0.0.1", []string{"1.2.3.4, 198.51.100.7"}, "198.51.100.7"},
		{"skip trusted hops from the right", "127.0.0.1", []string{"198.51.100.7, 10.9.1.1"}, "198.51.100.7"},
		{"spoofed left-most hop is not believed", "127.0.0.1", []string{"6.6.6.6, 198.51.100.7"}, "198.51.100.7"},
		{"several headers", "127.0.0.1", []string{"6.6.6.6", "198.51.100.7"}, "198.51.100.7"},
		{"no header: the proxy itself", "127.0.0.1", nil, "127.0.0.1"},
		{"mapped peer", "::ffff:127.0.0.1", []string{"2001:db8:5:6::1"}, "2001:db8:5:6::/64"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			s, err := ClientSource(addr(c.peer), c.xff, proxy)
			if err != nil || s.String() != c.want {
				t.Fatalf("got %v, %v; want %s", s, err, c.want)
			}
		})
	}
	if _, err := ClientSource(addr("127.0.0.1"), []string{"not-an-ip"}, proxy); !errors.Is(err, ErrBadSource) {
		t.Fatalf("garbage hop: %v", err)
	}
}

func TestFingerprintIsKeyedAndNonZero(t *testing.T) {
	a := Fingerprint([]byte("k1"), "hunter2")
	if a == 0 || a != Fingerprint([]byte("k1"), "hunter2") {
		t.Fatal("fingerprint not deterministic or zero")
	}
	if a == Fingerprint([]byte("k2"), "hunter2") {
		t.Fatal("fingerprint ignores the device key")
	}
	if a == Fingerprint([]byte("k1"), "hunter3") {
		t.Fatal("different secrets, same fingerprint")
	}
}

func TestSetNativeAndCompatibilityNames(t *testing.T) {
	p, _ := Preset("latch")
	for _, s := range []string{"pair.threshold=3", "pair.window=10m", "principal.holdAfter=0", "pair.replayDedup=false", "resetOnSuccess=all", "trustTTL=30d", "console.roleThreshold.admin=7"} {
		if err := p.Set(s); err != nil {
			t.Fatalf("Set(%s): %v", s, err)
		}
	}
	if p.Pair.Threshold != 3 || p.Pair.ReplayDedup || p.ResetOnSuccess != ResetAll || p.TrustTTL != 30*day || p.Console.RoleThreshold[RoleAdmin] != 7 {
		t.Fatalf("sets not applied: %+v", p)
	}
	for _, bad := range []string{"pair.threshold", "pair.threshold=x", "pair.nope=1", "deny=3", "=3"} {
		if err := p.Set(bad); !errors.Is(err, ErrInvalidPolicy) || !strings.Contains(err.Error(), strings.Split(strings.Split(bad, "=")[0], ".")[0]) {
			t.Errorf("Set(%q): %v", bad, err)
		}
	}
	pam, _ := Preset("pam_faillock")
	for _, s := range []string{"deny=5", "unlock_time=120", "fail_interval=60"} {
		if err := pam.Set(s); err != nil {
			t.Fatal(err)
		}
	}
	if pam.Principal.Threshold != 5 || pam.Principal.Base != 121*1e9 || pam.Principal.Window != 60*1e9 {
		t.Fatalf("pam compat: %+v", pam.Principal)
	}
	if err := pam.Set("unlock_time=0"); err != nil || pam.Principal.Base != 0 || pam.Validate() != nil {
		t.Fatalf("unlock_time=0 (never): %v %+v %v", err, pam.Principal, pam.Validate())
	}
	f2b, _ := Preset("fail2ban")
	for _, s := range []string{"maxretry=3", "findtime=600", "bantime=1h", "bantime.increment=true", "bantime.maxtime=1w"} {
		err := f2b.Set(s)
		if s == "bantime.maxtime=1w" {
			if err == nil {
				t.Fatal("1w accepted as a duration")
			}
			continue
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	if f2b.Source.Threshold != 3 || f2b.Source.Base != 3600e9 || f2b.Source.Growth != 2 || f2b.Validate() != nil {
		t.Fatalf("fail2ban compat: %+v %v", f2b.Source, f2b.Validate())
	}
	kc, _ := Preset("keycloak")
	for _, s := range []string{"failureFactor=10", "waitIncrementSeconds=30", "maxFailureWaitSeconds=600", "maxDeltaTimeSeconds=3600"} {
		if err := kc.Set(s); err != nil {
			t.Fatal(err)
		}
	}
	if kc.Principal.Threshold != 10 || kc.Principal.Base != 30e9 || kc.Principal.Cap != 600e9 || kc.Principal.Window != 3600e9 || kc.Validate() != nil {
		t.Fatalf("keycloak compat: %+v", kc.Principal)
	}
}
