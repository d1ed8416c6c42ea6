package netcalc

import (
	"math"
	"math/big"
	"net/netip"
	"slices"
	"strings"
	"testing"
)

func TestHost(t *testing.T) {
	tests := []struct {
		prefix  string
		n       int64
		want    string
		wantErr string
	}{
		{prefix: "198.18.0.0/24", n: 10, want: "198.18.0.10"},
		{prefix: "198.18.0.0/24", n: 0, want: "198.18.0.0"},
		{prefix: "198.18.0.0/24", n: 255, want: "198.18.0.255"},
		{prefix: "198.18.0.0/24", n: 256, wantErr: "host number 256 is outside 198.18.0.0/24: valid host numbers are -256 through 255"},
		{prefix: "198.18.0.0/24", n: -1, want: "198.18.0.255"},
		{prefix: "198.18.0.0/24", n: -256, want: "198.18.0.0"},
		{prefix: "198.18.0.0/24", n: -257, wantErr: "host number -257 is outside"},
		// 65793 = 0x010101.
		{prefix: "10.0.0.0/8", n: 65793, want: "10.1.1.1"},
		{prefix: "172.16.0.0/12", n: 16, want: "172.16.0.16"},
		// Host bits are ignored, like the network address would be.
		{prefix: "198.18.0.77/24", n: 1, want: "198.18.0.1"},
		{prefix: "10.0.0.5/32", n: 0, want: "10.0.0.5"},
		{prefix: "10.0.0.5/32", n: -1, want: "10.0.0.5"},
		{prefix: "10.0.0.5/32", n: 1, wantErr: "valid host numbers are -1 through 0"},
		{prefix: "0.0.0.0/0", n: -1, want: "255.255.255.255"},
		{prefix: "0.0.0.0/0", n: 4294967295, want: "255.255.255.255"},
		{prefix: "0.0.0.0/0", n: 4294967296, wantErr: "outside 0.0.0.0/0"},
		{prefix: "0.0.0.0/0", n: math.MinInt64, wantErr: "outside 0.0.0.0/0"},

		{prefix: "2001:db8::/32", n: 1, want: "2001:db8::1"},
		{prefix: "2001:db8::/64", n: -1, want: "2001:db8::ffff:ffff:ffff:ffff"},
		{prefix: "2001:db8::/120", n: 255, want: "2001:db8::ff"},
		{prefix: "2001:db8::/120", n: 256, wantErr: "valid host numbers are -256 through 255"},
		// 167772161 = 0x0a000001.
		{prefix: "2001:db8::/96", n: 167772161, want: "2001:db8::a00:1"},
		{prefix: "fd00::/8", n: 65536, want: "fd00::1:0"},
		{prefix: "2001:db8::1/128", n: 0, want: "2001:db8::1"},
		{prefix: "2001:db8::1/128", n: 1, wantErr: "outside 2001:db8::1/128"},
		{prefix: "::/0", n: -1, want: "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff"},
		{prefix: "::/0", n: math.MaxInt64, want: "::7fff:ffff:ffff:ffff"},
		// 2^128 - 2^63: all ones in the top half, only the top bit below it.
		{prefix: "::/0", n: math.MinInt64, want: "ffff:ffff:ffff:ffff:8000::"},
	}
	for _, tt := range tests {
		got, err := Host(netip.MustParsePrefix(tt.prefix), tt.n)
		if tt.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("Host(%s, %d) = %v, %v; want error containing %q", tt.prefix, tt.n, got, err, tt.wantErr)
			}
			continue
		}
		if err != nil || got.String() != tt.want {
			t.Errorf("Host(%s, %d) = %v, %v; want %s", tt.prefix, tt.n, got, err, tt.want)
		}
	}
}

func TestSubnet(t *testing.T) {
	tests := []struct {
		prefix  string
		newBits int
		num     int64
		want    string
		wantErr string
	}{
		{prefix: "198.19.0.0/16", newBits: 8, num: 3, want: "198.19.3.0/24"},
		{prefix: "10.0.0.0/8", newBits: 8, num: 2, want: "10.2.0.0/16"},
		{prefix: "10.0.0.0/8", newBits: 4, num: 15, want: "10.240.0.0/12"},
		{prefix: "10.0.0.0/8", newBits: 4, num: 16, wantErr: "subnet number 16 is outside 10.0.0.0/8: adding 4 bits gives 16 subnets, numbered 0 through 15"},
		{prefix: "172.16.0.0/12", newBits: 4, num: 1, want: "172.17.0.0/16"},
		{prefix: "10.0.0.0/8", newBits: 0, num: 0, want: "10.0.0.0/8"},
		{prefix: "10.0.0.0/8", newBits: 0, num: 1, wantErr: "outside 10.0.0.0/8"},
		{prefix: "10.0.0.0/8", newBits: 24, num: 16777215, want: "10.255.255.255/32"},
		{prefix: "10.0.0.0/8", newBits: 25, num: 0, wantErr: "adding 25 bits to 10.0.0.0/8 would give a /33, but IPv4 prefixes are at most /32"},
		{prefix: "10.0.0.0/8", newBits: -1, num: 0, wantErr: "newbits must not be negative (got -1)"},
		{prefix: "10.0.0.0/8", newBits: 8, num: -1, wantErr: "subnet number must not be negative (got -1)"},
		{prefix: "0.0.0.0/0", newBits: 1, num: 1, want: "128.0.0.0/1"},
		{prefix: "10.9.8.7/8", newBits: 8, num: 1, want: "10.1.0.0/16"},

		{prefix: "2001:db8::/32", newBits: 16, num: 1, want: "2001:db8:1::/48"},
		// 0xabcd1234 = 2882343476.
		{prefix: "2001:db8::/32", newBits: 32, num: 2882343476, want: "2001:db8:abcd:1234::/64"},
		{prefix: "fd00::/8", newBits: 56, num: 1, want: "fd00:0:0:1::/64"},
		{prefix: "::/0", newBits: 64, num: math.MaxInt64, want: "7fff:ffff:ffff:ffff::/64"},
		{prefix: "::/0", newBits: 128, num: 5, want: "::5/128"},
		// 1 << 28 = 0x10000000, the low 32 bits being 1000:0000.
		{prefix: "::/0", newBits: 100, num: 1, want: "::1000:0/100"},
		{prefix: "2001:db8::/32", newBits: 97, num: 0, wantErr: "would give a /129, but IPv6 prefixes are at most /128"},
		{prefix: "2001:db8::/120", newBits: 8, num: 256, wantErr: "numbered 0 through 255"},
	}
	for _, tt := range tests {
		got, err := Subnet(netip.MustParsePrefix(tt.prefix), tt.newBits, tt.num)
		if tt.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("Subnet(%s, %d, %d) = %v, %v; want error containing %q", tt.prefix, tt.newBits, tt.num, got, err, tt.wantErr)
			}
			continue
		}
		if err != nil || got.String() != tt.want {
			t.Errorf("Subnet(%s, %d, %d) = %v, %v; want %s", tt.prefix, tt.newBits, tt.num, got, err, tt.want)
		}
	}
}

func TestSubnets(t *testing.T) {
	tests := []struct {
		prefix  string
		newBits []int
		want    []string
		wantErr string
	}{
		// /20s step 16 through the third octet; the /24 takes 32, so the
		// last /20 has to skip ahead to 48.
		{prefix: "10.1.0.0/16", newBits: []int{4, 4, 8, 4}, want: []string{"10.1.0.0/20", "10.1.16.0/20", "10.1.32.0/24", "10.1.48.0/20"}},
		{prefix: "10.0.0.0/24", newBits: []int{1, 1}, want: []string{"10.0.0.0/25", "10.0.0.128/25"}},
		{prefix: "10.0.0.0/24", newBits: []int{1, 1, 1}, wantErr: "subnet 3 of 3 (a /25) does not fit in 10.0.0.0/24"},
		{prefix: "10.0.0.0/24", newBits: []int{2, 1}, want: []string{"10.0.0.0/26", "10.0.0.128/25"}},
		{prefix: "10.0.0.0/24", newBits: []int{2, 1, 2}, wantErr: "subnet 3 of 3 (a /26) does not fit"},
		{prefix: "10.0.0.0/24", newBits: []int{8, 2, 8}, want: []string{"10.0.0.0/32", "10.0.0.64/26", "10.0.0.128/32"}},
		{prefix: "10.0.0.0/24", newBits: nil, want: []string{}},
		{prefix: "10.0.0.0/24", newBits: []int{0}, want: []string{"10.0.0.0/24"}},
		{prefix: "10.0.0.0/24", newBits: []int{0, 0}, wantErr: "subnet 2 of 2 (a /24) does not fit"},
		{prefix: "10.0.0.0/24", newBits: []int{4, 9}, wantErr: "subnet 2 of 2: adding 9 bits to 10.0.0.0/24 would give a /33"},
		{prefix: "10.0.0.0/24", newBits: []int{-1}, wantErr: "subnet 1 of 1: newbits must not be negative"},
		// The last subnet ends exactly at the top of the address space.
		{prefix: "0.0.0.0/0", newBits: []int{1, 1}, want: []string{"0.0.0.0/1", "128.0.0.0/1"}},
		{prefix: "255.255.255.0/24", newBits: []int{8, 8}, want: []string{"255.255.255.0/32", "255.255.255.1/32"}},
		{prefix: "10.0.0.99/24", newBits: []int{1}, want: []string{"10.0.0.0/25"}},

		// The /40 must start at a multiple of 2^88, which is where the third
		// group becomes 0x0100.
		{prefix: "2001:db8::/32", newBits: []int{16, 16, 8}, want: []string{"2001:db8::/48", "2001:db8:1::/48", "2001:db8:100::/40"}},
		{prefix: "2001:db8::/126", newBits: []int{1, 2, 2}, want: []string{"2001:db8::/127", "2001:db8::2/128", "2001:db8::3/128"}},
		{prefix: "2001:db8::/126", newBits: []int{2, 1, 2}, wantErr: "subnet 3 of 3 (a /128) does not fit"},
		{prefix: "::/0", newBits: []int{1, 1}, want: []string{"::/1", "8000::/1"}},
	}
	for _, tt := range tests {
		got, err := Subnets(netip.MustParsePrefix(tt.prefix), tt.newBits...)
		if tt.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("Subnets(%s, %v) = %v, %v; want error containing %q", tt.prefix, tt.newBits, got, err, tt.wantErr)
			}
			continue
		}
		gotStr := make([]string, 0, len(got))
		for _, p := range got {
			gotStr = append(gotStr, p.String())
		}
		if err != nil || !slices.Equal(gotStr, tt.want) {
			t.Errorf("Subnets(%s, %v) = %v, %v; want %v", tt.prefix, tt.newBits, gotStr, err, tt.want)
		}
	}
}

func TestNetmask(t *testing.T) {
	tests := []struct {
		prefix  string
		want    string
		wantErr string
	}{
		{prefix: "10.0.0.0/8", want: "255.0.0.0"},
		{prefix: "198.18.0.0/24", want: "255.255.255.0"},
		{prefix: "172.16.0.0/20", want: "255.255.240.0"},
		{prefix: "10.0.0.0/27", want: "255.255.255.224"},
		{prefix: "128.0.0.0/1", want: "128.0.0.0"},
		{prefix: "0.0.0.0/0", want: "0.0.0.0"},
		{prefix: "10.0.0.1/32", want: "255.255.255.255"},
		{prefix: "2001:db8::/32", wantErr: "netmasks only exist for IPv4 prefixes, and 2001:db8::/32 is IPv6"},
		{prefix: "::ffff:10.0.0.0/104", wantErr: "is IPv6"},
	}
	for _, tt := range tests {
		got, err := Netmask(netip.MustParsePrefix(tt.prefix))
		if tt.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("Netmask(%s) = %v, %v; want error containing %q", tt.prefix, got, err, tt.wantErr)
			}
			continue
		}
		if err != nil || got.String() != tt.want {
			t.Errorf("Netmask(%s) = %v, %v; want %s", tt.prefix, got, err, tt.want)
		}
	}
}

func TestOverlaps(t *testing.T) {
	tests := []struct {
		a, b string
		want bool
	}{
		{a: "10.0.0.0/8", b: "10.1.0.0/16", want: true},
		{a: "10.1.0.0/16", b: "10.0.0.0/8", want: true},
		{a: "10.0.0.0/16", b: "10.1.0.0/16", want: false},
		{a: "10.0.0.0/24", b: "10.0.0.255/32", want: true},
		{a: "10.0.0.5/24", b: "10.0.0.200/25", want: true},
		{a: "10.0.1.5/24", b: "10.0.0.0/24", want: false},
		{a: "0.0.0.0/0", b: "203.0.113.0/24", want: true},
		{a: "10.0.0.0/8", b: "2001:db8::/32", want: false},
		{a: "2001:db8::/32", b: "2001:db8:ffff::/48", want: true},
		{a: "2001:db8::/32", b: "2001:db9::/32", want: false},
	}
	for _, tt := range tests {
		if got := Overlaps(netip.MustParsePrefix(tt.a), netip.MustParsePrefix(tt.b)); got != tt.want {
			t.Errorf("Overlaps(%s, %s) = %v, want %v", tt.a, tt.b, got, tt.want)
		}
	}
	if Overlaps(netip.Prefix{}, netip.MustParsePrefix("0.0.0.0/0")) {
		t.Error("Overlaps(zero prefix, 0.0.0.0/0) = true, want false")
	}
}

func TestContains(t *testing.T) {
	tests := []struct {
		prefix, addr string
		want         bool
	}{
		{prefix: "10.0.0.0/8", addr: "10.255.255.255", want: true},
		{prefix: "10.0.0.0/8", addr: "11.0.0.0", want: false},
		{prefix: "198.18.0.5/24", addr: "198.18.0.200", want: true},
		{prefix: "10.0.0.0/8", addr: "::ffff:10.0.0.1", want: false},
		{prefix: "2001:db8::/32", addr: "2001:db8:ffff::1", want: true},
		{prefix: "2001:db8::/32", addr: "10.0.0.1", want: false},
	}
	for _, tt := range tests {
		if got := Contains(netip.MustParsePrefix(tt.prefix), netip.MustParseAddr(tt.addr)); got != tt.want {
			t.Errorf("Contains(%s, %s) = %v, want %v", tt.prefix, tt.addr, got, tt.want)
		}
	}
}

func TestSize(t *testing.T) {
	tests := []struct {
		prefix string
		want   string
	}{
		{prefix: "10.0.0.0/8", want: "16777216"},
		{prefix: "198.18.0.0/24", want: "256"},
		{prefix: "10.0.0.1/32", want: "1"},
		{prefix: "0.0.0.0/0", want: "4294967296"},
		{prefix: "2001:db8::/64", want: "18446744073709551616"},
		{prefix: "2001:db8::1/128", want: "1"},
		{prefix: "::/0", want: "340282366920938463463374607431768211456"},
	}
	for _, tt := range tests {
		if got := Size(netip.MustParsePrefix(tt.prefix)); got.String() != tt.want {
			t.Errorf("Size(%s) = %s, want %s", tt.prefix, got, tt.want)
		}
	}
	if got := Size(netip.Prefix{}); got.Sign() != 0 {
		t.Errorf("Size(zero prefix) = %s, want 0", got)
	}
	// 2^128 written independently of the decimal string above.
	if got, want := Size(netip.MustParsePrefix("::/0")), new(big.Int).Lsh(big.NewInt(1), 128); got.Cmp(want) != 0 {
		t.Errorf("Size(::/0) = %s, want %s", got, want)
	}
}

func TestSubnetCount(t *testing.T) {
	tests := []struct {
		prefix string
		bits   int
		want   int64
		wantOK bool
	}{
		{prefix: "10.0.0.0/8", bits: 16, want: 256, wantOK: true},
		{prefix: "10.0.0.0/8", bits: 8, want: 1, wantOK: true},
		{prefix: "10.0.0.0/8", bits: 32, want: 16777216, wantOK: true},
		{prefix: "10.0.0.0/16", bits: 8, want: 0, wantOK: false},
		{prefix: "10.0.0.0/8", bits: 33, want: 0, wantOK: false},
		{prefix: "0.0.0.0/0", bits: 32, want: 4294967296, wantOK: true},
		{prefix: "2001:db8::/32", bits: 64, want: 4294967296, wantOK: true},
		{prefix: "::/0", bits: 62, want: 4611686018427387904, wantOK: true},
		{prefix: "::/0", bits: 63, want: math.MaxInt64, wantOK: false},
		{prefix: "::/0", bits: 128, want: math.MaxInt64, wantOK: false},
		{prefix: "2001:db8::/32", bits: 129, want: 0, wantOK: false},
	}
	for _, tt := range tests {
		got, ok := SubnetCount(netip.MustParsePrefix(tt.prefix), tt.bits)
		if got != tt.want || ok != tt.wantOK {
			t.Errorf("SubnetCount(%s, %d) = %d, %v; want %d, %v", tt.prefix, tt.bits, got, ok, tt.want, tt.wantOK)
		}
	}
	if got, ok := SubnetCount(netip.Prefix{}, 8); got != 0 || ok {
		t.Errorf("SubnetCount(zero prefix, 8) = %d, %v; want 0, false", got, ok)
	}
}

func TestParsePrefix(t *testing.T) {
	tests := []struct {
		in      string
		want    string
		wantErr string
	}{
		{in: "10.0.0.0/8", want: "10.0.0.0/8"},
		{in: "0.0.0.0/0", want: "0.0.0.0/0"},
		{in: "198.18.0.5/32", want: "198.18.0.5/32"},
		{in: "2001:db8::/32", want: "2001:db8::/32"},
		{in: "2001:DB8::/32", want: "2001:db8::/32"},
		{in: "198.18.0.5/24", wantErr: "198.18.0.5/24 has host bits set: the network is 198.18.0.0/24"},
		{in: "2001:db8::1/64", wantErr: "2001:db8::1/64 has host bits set: the network is 2001:db8::/64"},
		{in: "10.0.0.1/33", wantErr: `"10.0.0.1/33" is not a valid CIDR: the prefix length 33 is out of range; IPv4 allows 0 to 32`},
		{in: "2001:db8::/129", wantErr: `"2001:db8::/129" is not a valid CIDR: the prefix length 129 is out of range; IPv6 allows 0 to 128`},
		{in: "10.0.0.0", wantErr: `"10.0.0.0" is not a valid CIDR: the prefix length is missing`},
		{in: "", wantErr: `"" is not a valid CIDR: the prefix length is missing`},
		{in: "10.0.0.256/24", wantErr: `"10.0.0.256/24" is not a valid CIDR: "10.0.0.256" is not an IP address: IPv4 field has value >255`},
		{in: "kube/24", wantErr: `"kube/24" is not a valid CIDR: "kube" is not an IP address`},
		{in: "fe80::/64/64", wantErr: `"fe80::/64" is not an IP address`},
		{in: "fe80::%eth0/64", wantErr: `"fe80::%eth0/64" is not a valid CIDR: an IPv6 zone (the %eth0 part) cannot appear in a CIDR`},
		{in: "10.0.0.0/08", wantErr: `the prefix length "08" must be a plain number from 0 to 32`},
		{in: "10.0.0.0/-1", wantErr: `the prefix length "-1" must be a plain number from 0 to 32`},
		{in: "10.0.0.0/+8", wantErr: `the prefix length "+8" must be a plain number from 0 to 32`},
		{in: "10.0.0.0/", wantErr: `the prefix length "" must be a plain number from 0 to 32`},
		{in: "10.0.0.0/ 8", wantErr: `the prefix length " 8" must be a plain number`},
	}
	for _, tt := range tests {
		got, err := ParsePrefix(tt.in)
		if tt.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("ParsePrefix(%q) = %v, %v; want error containing %q", tt.in, got, err, tt.wantErr)
			}
			continue
		}
		if err != nil || got.String() != tt.want {
			t.Errorf("ParsePrefix(%q) = %v, %v; want %s", tt.in, got, err, tt.want)
		}
	}
}

func TestInvalidPrefixArguments(t *testing.T) {
	var zero netip.Prefix
	if _, err := Host(zero, 0); err == nil {
		t.Error("Host(zero prefix) succeeded, want error")
	}
	if _, err := Subnet(zero, 1, 0); err == nil {
		t.Error("Subnet(zero prefix) succeeded, want error")
	}
	if _, err := Subnets(zero, 1); err == nil {
		t.Error("Subnets(zero prefix) succeeded, want error")
	}
	if _, err := Netmask(zero); err == nil {
		t.Error("Netmask(zero prefix) succeeded, want error")
	}
}
