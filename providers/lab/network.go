package lab

import (
	"encoding/json"
	"fmt"
	"hash/fnv"
	"net/netip"
	"os"
	"os/exec"
	"strings"
)

// Lab subnets are /24s in 198.18.100.0–198.18.199.255 (the benchmarking range, never a real network); the
// bridge is .1 and host n is .(10+n).
const (
	firstLabOctet = 100
	labSubnets    = 100
	maxHosts      = 99
)

func bridgeName(lab string) string { return "kf-" + lab }

func hostAddress(subnet netip.Prefix, n int) netip.Addr {
	a := subnet.Addr().As4()
	a[3] = byte(10 + n)
	return netip.AddrFrom4(a)
}

func bridgeAddress(subnet netip.Prefix) netip.Addr {
	a := subnet.Addr().As4()
	a[3] = 1
	return netip.AddrFrom4(a)
}

// usedPrefixes lists what this machine already routes or has addresses in, with where it came from.
func usedPrefixes() (map[netip.Prefix]string, error) {
	used := map[netip.Prefix]string{}
	out, err := exec.Command("ip", "-j", "-4", "route", "show", "table", "all").Output()
	if err != nil {
		return nil, fmt.Errorf("ip route: %w", err)
	}
	var routes []struct{ Dst, Dev string }
	if err := json.Unmarshal(out, &routes); err != nil {
		return nil, fmt.Errorf("ip route: %w", err)
	}
	for _, r := range routes {
		if r.Dst == "default" {
			continue
		}
		dst := r.Dst
		if !strings.Contains(dst, "/") {
			dst += "/32"
		}
		if p, err := netip.ParsePrefix(dst); err == nil {
			used[p.Masked()] = "route via " + r.Dev
		}
	}
	return used, nil
}

// ChooseSubnet picks the lab's /24: the one asked for if it is free, else the first free one from a place that
// depends on the name, so that the same lab tends to get the same addresses.
func (m *Manager) ChooseSubnet(name string, want netip.Prefix) (netip.Prefix, error) {
	used, err := usedPrefixes()
	if err != nil {
		return netip.Prefix{}, err
	}
	others, _ := m.List()
	for _, o := range others {
		if l, err := m.Load(o); err == nil && o != name {
			used[l.Subnet] = "lab " + o
		}
	}
	conflict := func(p netip.Prefix) string {
		for u, why := range used {
			if u.Overlaps(p) {
				return fmt.Sprintf("%s (%s)", u, why)
			}
		}
		return ""
	}
	if want.IsValid() {
		if c := conflict(want); c != "" {
			return netip.Prefix{}, fmt.Errorf("address range %s is already in use on this machine: %s", want, c)
		}
		return want, nil
	}
	h := fnv.New32a()
	h.Write([]byte(name))
	start := int(h.Sum32() % labSubnets)
	for i := 0; i < labSubnets; i++ {
		p := netip.PrefixFrom(netip.AddrFrom4([4]byte{198, 18, byte(firstLabOctet + (start+i)%labSubnets), 0}), 24)
		if conflict(p) == "" {
			return p, nil
		}
	}
	return netip.Prefix{}, fmt.Errorf("no free /24 left in 198.18.%d.0-198.18.%d.255", firstLabOctet, firstLabOctet+labSubnets-1)
}

// CreateBridge makes the lab's bridge. Packets that arrive on it are never forwarded, so lab hosts can reach
// this machine and each other but nothing beyond, whatever the machine's own forwarding setting.
func CreateBridge(name string, subnet netip.Prefix) error {
	if _, err := os.Stat("/sys/class/net/" + name); err == nil {
		return fmt.Errorf("network interface %s already exists: another lab, or a leftover (kforge lab down removes it)", name)
	}
	steps := [][]string{
		{"link", "add", name, "type", "bridge"},
		{"addr", "add", netip.PrefixFrom(bridgeAddress(subnet), subnet.Bits()).String(), "dev", name},
	}
	for _, s := range steps {
		if err := ipCmd(s...); err != nil {
			return err
		}
	}
	for _, f := range []struct{ path, value string }{
		{"/proc/sys/net/ipv4/conf/" + name + "/forwarding", "0"},
		{"/proc/sys/net/ipv6/conf/" + name + "/disable_ipv6", "1"},
	} {
		if err := os.WriteFile(f.path, []byte(f.value), 0o644); err != nil {
			return fmt.Errorf("bridge %s: %w", name, err)
		}
	}
	return ipCmd("link", "set", name, "up")
}

func linkExists(name string) bool {
	_, err := os.Stat("/sys/class/net/" + name)
	return err == nil
}

// deleteLink removes an interface; one that vanishes meanwhile (a veth goes when its namespace dies) is gone,
// which is what was wanted.
func deleteLink(name string) error {
	if !linkExists(name) {
		return nil
	}
	if err := ipCmd("link", "del", name); err != nil && linkExists(name) {
		return err
	}
	return nil
}

func ipCmd(args ...string) error {
	out, err := exec.Command("ip", args...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("ip %s: %w: %s", strings.Join(args, " "), err, strings.TrimSpace(string(out)))
	}
	return nil
}
