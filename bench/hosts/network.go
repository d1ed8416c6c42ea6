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
	"time"

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

// plugHosts gives every host its network namespace with eth0 on the set's bridge, in one `ip` for all of them
// (for 100 hosts 0.1 s, where an `ip` each takes 0.7 s). Each host sets its own address as it starts.
func (s *Set) plugHosts(ctx context.Context) error {
	var batch strings.Builder
	for n := 1; n <= len(s.Hosts); n++ {
		fmt.Fprintf(&batch, "netns add %s\n", netnsName(s.Name, n))
	}
	for n := 1; n <= len(s.Hosts); n++ {
		ns := netnsName(s.Name, n)
		fmt.Fprintf(&batch, "link add %s up master %s type veth peer name eth0 netns %s\n", ns, s.Bridge, ns)
	}
	return ip(ctx, batch.String(), "-batch", "-")
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

// hostNameRe matches what the set names after its hosts: veths and namespaces kfb-NAME-N. No other set's
// names match, for set names have no '-'.
func hostNameRe(name string) *regexp.Regexp {
	return regexp.MustCompile(`^kfb-` + regexp.QuoteMeta(name) + `-[0-9]+$`)
}

// setVeths and setNetns find the set's interfaces and namespaces by name, whatever the state file says: after
// a crash they are all there is to go on.
func setVeths(name string) []string { return matching("/sys/class/net", hostNameRe(name)) }

func setNetns(name string) []string { return matching("/run/netns", hostNameRe(name)) }

func matching(dir string, re *regexp.Regexp) []string {
	entries, _ := os.ReadDir(dir)
	var out []string
	for _, e := range entries {
		if re.MatchString(e.Name()) {
			out = append(out, e.Name())
		}
	}
	return out
}

func linkExists(name string) bool {
	_, err := os.Stat(filepath.Join("/sys/class/net", name))
	return err == nil
}

// unplug deletes the namespaces, then the bridge. A namespace's half of each veth goes with the namespace,
// taking the machine's half along, once the kernel destroys it: for all namespaces in one go, where deleting
// the veths one by one takes 20 ms each. A veth still there after a while (its namespace is held by some
// process elsewhere) is deleted on its own.
func unplug(name string) error {
	var errs []error
	if netns := setNetns(name); len(netns) > 0 {
		var batch strings.Builder
		for _, ns := range netns {
			fmt.Fprintf(&batch, "netns del %s\n", ns)
		}
		if err := ip(context.Background(), batch.String(), "-force", "-batch", "-"); err != nil {
			errs = append(errs, err)
		}
	}
	for deadline := time.Now().Add(3 * time.Second); len(setVeths(name)) > 0 && time.Now().Before(deadline); {
		time.Sleep(10 * time.Millisecond)
	}
	links := setVeths(name)
	if linkExists(bridgeName(name)) {
		links = append(links, bridgeName(name))
	}
	if len(links) > 0 {
		var batch strings.Builder
		for _, l := range links {
			fmt.Fprintf(&batch, "link del %s\n", l)
		}
		if err := ip(context.Background(), batch.String(), "-force", "-batch", "-"); err != nil {
			errs = append(errs, err)
		}
	}
	// A veth that went on its own meanwhile is gone as wanted: only what is still there is an error.
	links, netns := setVeths(name), setNetns(name)
	if linkExists(bridgeName(name)) {
		links = append(links, bridgeName(name))
	}
	if len(links)+len(netns) > 0 {
		return errors.Join(append([]error{fmt.Errorf("bench host set %s: interfaces %v and namespaces %v remain", name, links, netns)}, errs...)...)
	}
	return nil
}
