// Package netcalc does the IP prefix arithmetic behind kforge's network settings,
// such as carving node, pod and service ranges out of a larger CIDR.
package netcalc

import (
	"errors"
	"fmt"
	"math"
	"math/big"
	"net/netip"
)

// Host returns the n-th address of p, counting from the network address.
// A negative n counts back from the end, so -1 is the last address. Host
// bits set in p are ignored.
func Host(p netip.Prefix, n int64) (netip.Addr, error) {
	if !p.IsValid() {
		return netip.Addr{}, errInvalidPrefix()
	}
	p = p.Masked()
	size := Size(p)
	off := big.NewInt(n)
	if n < 0 {
		off.Add(off, size)
	}
	if off.Sign() < 0 || off.Cmp(size) >= 0 {
		last := new(big.Int).Sub(size, big.NewInt(1))
		first := new(big.Int).Neg(size)
		return netip.Addr{}, fmt.Errorf("host number %d is outside %s: valid host numbers are %s through %s", n, p, first, last)
	}
	return offsetAddr(p.Addr(), off), nil
}

// Subnet returns subnet number num of length p.Bits()+newBits within p.
// Unlike Host, num may not be negative: cidrsubnet has no from-the-end
// convention for subnet numbers, and inventing one would make the same
// expression mean different things in kforge and Terraform.
func Subnet(p netip.Prefix, newBits int, num int64) (netip.Prefix, error) {
	if !p.IsValid() {
		return netip.Prefix{}, errInvalidPrefix()
	}
	p = p.Masked()
	newLen, err := extend(p, newBits)
	if err != nil {
		return netip.Prefix{}, err
	}
	if num < 0 {
		return netip.Prefix{}, fmt.Errorf("subnet number must not be negative (got %d)", num)
	}
	if count, ok := SubnetCount(p, newLen); ok && num >= count {
		return netip.Prefix{}, fmt.Errorf("subnet number %d is outside %s: adding %d bits gives %d subnets, numbered 0 through %d", num, p, newBits, count, count-1)
	}
	off := new(big.Int).Lsh(big.NewInt(num), uint(p.Addr().BitLen()-newLen))
	return netip.PrefixFrom(offsetAddr(p.Addr(), off), newLen), nil
}

// Subnets allocates one subnet per entry of newBits, in order, each starting
// at the first address after the previous one that is aligned to its own
// size. Mixing sizes therefore may leave gaps, but never overlaps.
func Subnets(p netip.Prefix, newBits ...int) ([]netip.Prefix, error) {
	if !p.IsValid() {
		return nil, errInvalidPrefix()
	}
	p = p.Masked()
	maxBits := p.Addr().BitLen()
	total := Size(p)
	// Offsets are relative to p's network address; since p is aligned to a
	// size at least as large as every subnet, rounding an offset up to a
	// subnet's size aligns the absolute address too.
	next := new(big.Int)
	out := make([]netip.Prefix, 0, len(newBits))
	for i, nb := range newBits {
		newLen, err := extend(p, nb)
		if err != nil {
			return nil, fmt.Errorf("subnet %d of %d: %w", i+1, len(newBits), err)
		}
		hostBits := uint(maxBits - newLen)
		size := new(big.Int).Lsh(big.NewInt(1), hostBits)
		start := new(big.Int).Add(next, size)
		start.Sub(start, big.NewInt(1)).Rsh(start, hostBits).Lsh(start, hostBits)
		end := new(big.Int).Add(start, size)
		if end.Cmp(total) > 0 {
			return nil, fmt.Errorf("subnet %d of %d (a /%d) does not fit in %s after the subnets before it", i+1, len(newBits), newLen, p)
		}
		out = append(out, netip.PrefixFrom(offsetAddr(p.Addr(), start), newLen))
		next = end
	}
	return out, nil
}

// Netmask returns p's prefix length as a dotted-quad mask, which some
// tools still want instead of a prefix length. IPv6 has no such notation.
func Netmask(p netip.Prefix) (netip.Addr, error) {
	if !p.IsValid() {
		return netip.Addr{}, errInvalidPrefix()
	}
	if !p.Addr().Is4() {
		return netip.Addr{}, fmt.Errorf("netmasks only exist for IPv4 prefixes, and %s is IPv6", p)
	}
	// A shift by 32 yields 0 in Go, which is exactly the /0 mask.
	m := ^uint32(0) << (32 - p.Bits())
	return netip.AddrFrom4([4]byte{byte(m >> 24), byte(m >> 16), byte(m >> 8), byte(m)}), nil
}

// Overlaps reports whether a and b share any address. Host bits are
// ignored, and prefixes of different families never overlap.
func Overlaps(a, b netip.Prefix) bool {
	return a.Masked().Overlaps(b.Masked())
}

// Contains reports whether a lies within p. As with net/netip, an
// IPv4-mapped IPv6 address is not inside an IPv4 prefix: kforge keeps the
// families apart rather than guessing which one the author meant.
func Contains(p netip.Prefix, a netip.Addr) bool {
	return p.Masked().Contains(a)
}

// Size returns the number of addresses in p, or zero for an invalid prefix.
// It is a big.Int because an IPv6 /0 holds 2^128 addresses.
func Size(p netip.Prefix) *big.Int {
	if !p.IsValid() {
		return new(big.Int)
	}
	return new(big.Int).Lsh(big.NewInt(1), uint(p.Addr().BitLen()-p.Bits()))
}

// SubnetCount returns how many /bits subnets fit in p. It reports false when
// bits is not a valid length for a subnet of p, returning 0, or when the
// count does not fit in an int64, returning math.MaxInt64 so callers that
// only compare against it still get a usable bound.
func SubnetCount(p netip.Prefix, bits int) (int64, bool) {
	if !p.IsValid() || bits < p.Bits() || bits > p.Addr().BitLen() {
		return 0, false
	}
	diff := bits - p.Bits()
	if diff >= 63 {
		return math.MaxInt64, false
	}
	return int64(1) << diff, true
}

// ParsePrefix parses a CIDR written by a config author. Unlike
// netip.ParsePrefix it rejects host bits, because "10.0.0.5/24" in an
// address plan is almost always a typo for a network, and its errors explain
// the problem without Go function names.
func ParsePrefix(s string) (netip.Prefix, error) {
	p, err := netip.ParsePrefix(s)
	if err != nil {
		return netip.Prefix{}, fmt.Errorf("%q is not a valid CIDR: %w", s, explainParseError(s, err))
	}
	if m := p.Masked(); m != p {
		return netip.Prefix{}, fmt.Errorf("%s has host bits set: the network is %s", s, m)
	}
	return p, nil
}

// extend checks that p can be lengthened by newBits and returns the result.
func extend(p netip.Prefix, newBits int) (int, error) {
	if newBits < 0 {
		return 0, fmt.Errorf("newbits must not be negative (got %d)", newBits)
	}
	maxBits := p.Addr().BitLen()
	if newBits > maxBits-p.Bits() {
		return 0, fmt.Errorf("adding %d bits to %s would give a /%d, but %s prefixes are at most /%d", newBits, p, p.Bits()+newBits, family(p.Addr()), maxBits)
	}
	return p.Bits() + newBits, nil
}

// offsetAddr returns base+off; callers have already checked that the result
// stays inside the address space, so FillBytes cannot panic.
func offsetAddr(base netip.Addr, off *big.Int) netip.Addr {
	v := new(big.Int).SetBytes(base.AsSlice())
	v.Add(v, off)
	if base.Is4() {
		var b [4]byte
		v.FillBytes(b[:])
		return netip.AddrFrom4(b)
	}
	var b [16]byte
	v.FillBytes(b[:])
	return netip.AddrFrom16(b)
}

// errInvalidPrefix only arises from a zero netip.Prefix, which means a caller
// skipped parsing; config authors go through ParsePrefix and never see it.
func errInvalidPrefix() error {
	return errors.New("invalid prefix")
}

func family(a netip.Addr) string {
	if a.Is4() {
		return "IPv4"
	}
	return "IPv6"
}
