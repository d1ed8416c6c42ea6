package hosts

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"

	"github.com/kforge/kforge/providers/lab"
)

// claimSubnet picks the set's /24 and makes its bridge, under the lock labs take for the same: labs and bench
// sets share 198.18.100.0–198.18.199.255 and never pick the same /24. The name it asks with is one no lab can
// have, so no lab's recorded range is mistaken for this set's own.
func (s *Set) claimSubnet() error {
	labs := &lab.Manager{Paths: lab.DefaultPaths()}
	unlock, err := labs.LockMachine()
	if err != nil {
		return err
	}
	defer unlock()
	subnet, err := labs.ChooseSubnet("bench-"+s.Name, netip.Prefix{})
	if err != nil {
		return err
	}
	s.Subnet = subnet
	for i := range s.Hosts {
		s.Hosts[i].Address = hostAddress(subnet, i+1)
	}
	// Recorded before the bridge exists, so that Down finds it whatever happens next.
	if err := s.save(); err != nil {
		return err
	}
	return lab.CreateBridge(s.Bridge, subnet)
}

func hostAddress(subnet netip.Prefix, n int) netip.Addr {
	a := subnet.Addr().As4()
	a[3] = byte(10 + n)
	return netip.AddrFrom4(a)
}

func gateway(subnet netip.Prefix) netip.Addr {
	a := subnet.Addr().As4()
	a[3] = 1
	return netip.AddrFrom4(a)
}

// plugHost gives host n its network namespace, with eth0 on the set's bridge and a default route through the
// machine (which forwards nothing from the bridge, so the route leads nowhere beyond it, as on the lab hosts).
func (s *Set) plugHost(ctx context.Context, n int, addr netip.Addr) error {
	ns := netnsName(s.Name, n)
	if err := ip(ctx, "", "netns", "add", ns); err != nil {
		return err
	}
	if err := ip(ctx, "", "link", "add", ns, "up", "master", s.Bridge, "type", "veth", "peer", "name", "eth0", "netns", ns); err != nil {
		return err
	}
	inside := fmt.Sprintf("addr add %s dev eth0\nlink set lo up\nlink set eth0 up\nroute add default via %s\n",
		netip.PrefixFrom(addr, s.Subnet.Bits()), gateway(s.Subnet))
	return ip(ctx, inside, "-n", ns, "-batch", "-")
}

func ip(ctx context.Context, stdin string, args ...string) error {
	cmd := exec.CommandContext(ctx, "ip", args...)
	if stdin != "" {
		cmd.Stdin = strings.NewReader(stdin)
	}
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("ip %s: %w: %s", strings.Join(args, " "), err, strings.TrimSpace(string(out)))
	}
	return nil
}

// setLinks finds the set's interfaces and namespaces by name, whatever the state file says: after a crash
// they are all that is left to go on.
func setLinks(name string) (links, netns []string) {
	re := regexp.MustCompile(`^kfb-` + regexp.QuoteMeta(name) + `-[0-9]+$`)
	entries, _ := os.ReadDir("/sys/class/net")
	for _, e := range entries {
		if re.MatchString(e.Name()) {
			links = append(links, e.Name())
		}
	}
	if _, err := os.Stat(filepath.Join("/sys/class/net", bridgeName(name))); err == nil {
		links = append(links, bridgeName(name))
	}
	entries, _ = os.ReadDir("/run/netns")
	for _, e := range entries {
		if re.MatchString(e.Name()) {
			netns = append(netns, e.Name())
		}
	}
	return links, netns
}

// unplug deletes the veths (each with its peer inside a namespace) and the bridge, then the namespaces: one
// `ip` each for all of them. Deleting a veth is immediate; a namespace's own devices go only when the kernel
// gets round to destroying it.
func unplug(name string) error {
	links, netns := setLinks(name)
	var batch strings.Builder
	for _, l := range links {
		fmt.Fprintf(&batch, "link del %s\n", l)
	}
	for _, ns := range netns {
		fmt.Fprintf(&batch, "netns del %s\n", ns)
	}
	if batch.Len() == 0 {
		return nil
	}
	err := ip(context.Background(), batch.String(), "-force", "-batch", "-")
	// A veth whose namespace went meanwhile is gone with it: only what is still there is an error.
	if links, netns = setLinks(name); len(links)+len(netns) == 0 {
		return nil
	}
	return errors.Join(fmt.Errorf("bench host set %s: interfaces %v and namespaces %v remain", name, links, netns), err)
}
