package netcalc

import (
	"errors"
	"fmt"
	"net/netip"
	"strconv"
	"strings"
)

// explainParseError turns a netip.ParsePrefix failure into a reason a config
// author can act on. netip stays the judge of what is valid; this only
// re-derives why, and falls back to netip's own error if it cannot tell.
func explainParseError(s string, err error) error {
	slash := strings.LastIndexByte(s, '/')
	if slash < 0 {
		return errors.New(`the prefix length is missing (write it after a "/", as in 10.0.0.0/16)`)
	}
	addrPart, bitsPart := s[:slash], s[slash+1:]
	addr, aerr := netip.ParseAddr(addrPart)
	if aerr != nil {
		// netip starts its reason with the Go call that failed, which means
		// nothing to a config author.
		reason, _ := strings.CutPrefix(aerr.Error(), "ParseAddr("+strconv.Quote(addrPart)+"): ")
		return fmt.Errorf("%q is not an IP address: %s", addrPart, reason)
	}
	if addr.Zone() != "" {
		return fmt.Errorf("an IPv6 zone (the %%%s part) cannot appear in a CIDR", addr.Zone())
	}
	maxBits := addr.BitLen()
	bits, berr := strconv.Atoi(bitsPart)
	// netip refuses signs and leading zeros that Atoi would accept.
	if berr != nil || bitsPart[0] < '0' || bitsPart[0] > '9' || (len(bitsPart) > 1 && bitsPart[0] == '0') {
		return fmt.Errorf("the prefix length %q must be a plain number from 0 to %d", bitsPart, maxBits)
	}
	if bits < 0 || bits > maxBits {
		return fmt.Errorf("the prefix length %d is out of range; %s allows 0 to %d", bits, family(addr), maxBits)
	}
	return err
}
