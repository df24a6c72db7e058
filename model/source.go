package model

import (
	"errors"
	"fmt"
	"net/netip"
	"strings"
)

// Source is where an attempt comes from (SPEC §1): an IPv4 address, or an
// IPv6 /64. The zero Source is the console's.
type Source struct{ prefix netip.Prefix }

// ErrBadSource is wrapped by every source parsing error.
var ErrBadSource = errors.New("invalid source address")

// SourceOf canonicalises an address: IPv4-mapped IPv6 becomes IPv4, IPv6
// becomes its /64 (one subscriber holds a /64, so counting addresses inside
// it would give an attacker 2^64 fresh sources). Zones are dropped.
func SourceOf(a netip.Addr) Source {
	a = a.Unmap().WithZone("")
	if a.Is4() {
		return Source{netip.PrefixFrom(a, 32)}
	}
	p, _ := a.Prefix(64)
	return Source{p}
}

// ParseSource reads an address ("10.0.0.2", "2001:db8::1", "::ffff:1.2.3.4",
// "[2001:db8::1]:443", "10.0.0.2:5000") or the canonical form of a Source
// ("2001:db8::/64").
func ParseSource(s string) (Source, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return Source{}, fmt.Errorf("%w: empty", ErrBadSource)
	}
	if p, err := netip.ParsePrefix(s); err == nil {
		if p.Addr().Is6() && !p.Addr().Is4In6() && p.Bits() == 64 {
			return SourceOf(p.Addr()), nil
		}
		if p.Addr().Unmap().Is4() && (p.Bits() == 32 || p.Bits() == 128) {
			return SourceOf(p.Addr()), nil
		}
		return Source{}, fmt.Errorf("%w: %q: a source is one IPv4 address or one IPv6 /64", ErrBadSource, s)
	}
	if ap, err := netip.ParseAddrPort(s); err == nil {
		return SourceOf(ap.Addr()), nil
	}
	a, err := netip.ParseAddr(s)
	if err != nil {
		return Source{}, fmt.Errorf("%w: %q", ErrBadSource, s)
	}
	return SourceOf(a), nil
}

// String is the canonical text: "10.0.0.2" or "2001:db8::/64"; "console"
// for the zero Source.
func (s Source) String() string {
	if !s.prefix.IsValid() {
		return "console"
	}
	if s.prefix.Addr().Is4() {
		return s.prefix.Addr().String()
	}
	return s.prefix.String()
}

// IsZero reports whether s is the zero (console) Source.
func (s Source) IsZero() bool { return !s.prefix.IsValid() }

// ClientSource finds the client of an HTTP request (SPEC §1): behind a
// trusted proxy, the right-most X-Forwarded-For hop that is not itself a
// trusted proxy; otherwise the socket peer. Forwarding headers from
// untrusted peers are ignored, never trusted.
func ClientSource(peer netip.Addr, forwardedFor []string, trusted []netip.Prefix) (Source, error) {
	isTrusted := func(a netip.Addr) bool {
		a = a.Unmap()
		for _, p := range trusted {
			if p.Contains(a) {
				return true
			}
		}
		return false
	}
	if !peer.IsValid() {
		return Source{}, fmt.Errorf("%w: no peer address", ErrBadSource)
	}
	client := peer.Unmap()
	if !isTrusted(client) {
		return SourceOf(client), nil
	}
	var hops []string
	for _, h := range forwardedFor {
		hops = append(hops, strings.Split(h, ",")...)
	}
	for i := len(hops) - 1; i >= 0; i-- {
		h := strings.TrimSpace(hops[i])
		if h == "" {
			continue
		}
		a, err := parseHop(h)
		if err != nil {
			return Source{}, fmt.Errorf("%w: X-Forwarded-For hop %q", ErrBadSource, h)
		}
		client = a
		if !isTrusted(a) {
			break
		}
	}
	return SourceOf(client), nil
}

func parseHop(h string) (netip.Addr, error) {
	if ap, err := netip.ParseAddrPort(h); err == nil {
		return ap.Addr().Unmap(), nil
	}
	a, err := netip.ParseAddr(strings.Trim(h, "[]"))
	return a.Unmap(), err
}
