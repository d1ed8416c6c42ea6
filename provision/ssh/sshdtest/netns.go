package sshdtest

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

const (
	ipPath = "/usr/sbin/ip"

	// Each topology takes one /28 of 198.18.0.0/15 (benchmarking space):
	// the root-bastion link at +0/30 and the bastion-target link at +4/30.
	slotBits  = 4
	slotCount = 1 << (32 - 15 - slotBits)
)

// testNet is 198.18.0.0/15, the benchmarking range.
func testNet() netip.Prefix { return netip.PrefixFrom(netip.AddrFrom4([4]byte{198, 18, 0, 0}), 15) }

// inNetNS runs fn on an OS thread that has joined the named network
// namespace; sockets fn creates belong to that namespace.
func inNetNS(netns string, fn func() error) error {
	if netns == "" {
		return fn()
	}
	errc := make(chan error, 1)
	go func() {
		// Never unlocked: the thread is in another namespace, so the
		// runtime must discard it when this goroutine ends.
		runtime.LockOSThread()
		f, err := os.Open(filepath.Join("/run/netns", netns))
		if err != nil {
			errc <- fmt.Errorf("open netns: %w", err)
			return
		}
		defer f.Close()
		if err := unix.Setns(int(f.Fd()), unix.CLONE_NEWNET); err != nil {
			errc <- fmt.Errorf("enter netns %s: %w", netns, err)
			return
		}
		errc <- fn()
	}()
	return <-errc
}

func ip(args ...string) error {
	out, err := exec.Command(ipPath, args...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("ip %s: %w: %s", strings.Join(args, " "), err, strings.TrimSpace(string(out)))
	}
	return nil
}

func alreadyExists(err error) bool { return err != nil && strings.Contains(err.Error(), "File exists") }

// slot is one topology's share of the address space and names.
type slot struct {
	bastionNS           string
	targetNS            string
	rootLink            string // root-namespace end of the root-bastion veth
	net                 netip.Addr
	rootIP, bastionIP   netip.Addr // root-bastion /30
	bastionDown, target netip.Addr // bastion-target /30
	targetNet           netip.Prefix
}

func newSlot(n int) slot {
	base := testNet().Addr().As4()
	off := uint32(n) << slotBits
	v := uint32(base[0])<<24 | uint32(base[1])<<16 | uint32(base[2])<<8 | uint32(base[3])
	at := func(i uint32) netip.Addr {
		x := v + off + i
		return netip.AddrFrom4([4]byte{byte(x >> 24), byte(x >> 16), byte(x >> 8), byte(x)})
	}
	return slot{
		bastionNS:   "sshdtest-" + strconv.Itoa(n) + "-bastion",
		targetNS:    "sshdtest-" + strconv.Itoa(n) + "-target",
		rootLink:    "sshdt" + strconv.Itoa(n), // at most 9 characters
		net:         at(0),
		rootIP:      at(1),
		bastionIP:   at(2),
		bastionDown: at(5),
		target:      at(6),
		targetNet:   netip.PrefixFrom(at(4), 30),
	}
}

func (s slot) prefix() netip.Prefix { return netip.PrefixFrom(s.net, 32-slotBits) }

// BastionTopology builds a "bastion" network namespace reachable from the
// test over a veth pair and a "target" namespace reachable only from the
// bastion, starts sshd on port 22 in each with users, and returns both
// servers. Everything is torn down by t.Cleanup.
func BastionTopology(t testing.TB, users ...*User) (bastion, target *Server) {
	t.Helper()
	sl, err := claimSlot()
	if err != nil {
		t.Fatalf("sshdtest: bastion topology: %v", err)
	}
	// Registered first so that it runs after the servers are gone: a
	// namespace with processes in it outlives `ip netns del`.
	t.Cleanup(func() {
		if err := sl.teardown(); err != nil {
			t.Errorf("sshdtest: bastion topology teardown: %v", err)
		}
	})
	if err := sl.build(); err != nil {
		t.Fatalf("sshdtest: bastion topology: %v", err)
	}
	bastion = Start(t, Options{Listen: net.JoinHostPort(sl.bastionIP.String(), "22"), NetNS: sl.bastionNS, Users: users})
	target = Start(t, Options{Listen: net.JoinHostPort(sl.target.String(), "22"), NetNS: sl.targetNS, Users: users})
	return bastion, target
}

// claimSlot takes the first free slot from a PID-derived start. Creating
// the bastion namespace is the lock: `ip netns add` fails if it exists,
// whether another test or another process holds it.
func claimSlot() (slot, error) {
	used, err := usedPrefixes()
	if err != nil {
		return slot{}, err
	}
	// Spread so that processes with neighbouring PIDs do not probe the
	// same run of slots.
	start := os.Getpid() * 7 % slotCount
	for i := 0; i < slotCount; i++ {
		sl := newSlot((start + i) % slotCount)
		if overlaps(used, sl.prefix()) {
			continue
		}
		err := ip("netns", "add", sl.bastionNS)
		if alreadyExists(err) {
			continue
		}
		if err != nil {
			return slot{}, err
		}
		if err := ip("netns", "add", sl.targetNS); err != nil {
			// A leftover from a crashed run; leave it alone.
			_ = ip("netns", "del", sl.bastionNS)
			if alreadyExists(err) {
				continue
			}
			return slot{}, err
		}
		return sl, nil
	}
	return slot{}, errors.New("no free address slot in " + testNet().String())
}

// usedPrefixes lists routes of the root namespace inside 198.18.0.0/15 so
// that slots colliding with the host's own use of the range are skipped.
func usedPrefixes() ([]netip.Prefix, error) {
	out, err := exec.Command(ipPath, "-4", "route", "show", "table", "all").CombinedOutput()
	if err != nil {
		return nil, fmt.Errorf("ip route show: %w: %s", err, strings.TrimSpace(string(out)))
	}
	var used []netip.Prefix
	for _, line := range strings.Split(string(out), "\n") {
		for _, f := range strings.Fields(line) {
			p, err := netip.ParsePrefix(f)
			if err != nil {
				a, aerr := netip.ParseAddr(f)
				if aerr != nil || !a.Is4() {
					continue
				}
				p = netip.PrefixFrom(a, 32)
			}
			if p.Bits() >= testNet().Bits() && testNet().Overlaps(p) {
				used = append(used, p.Masked())
			}
			break
		}
	}
	return used, nil
}

func overlaps(used []netip.Prefix, p netip.Prefix) bool {
	for _, u := range used {
		if u.Overlaps(p) {
			return true
		}
	}
	return false
}

func (s slot) build() error {
	b, tg := s.bastionNS, s.targetNS
	steps := [][]string{
		{"link", "add", s.rootLink, "type", "veth", "peer", "name", "up0", "netns", b},
		{"addr", "add", s.rootIP.String() + "/30", "dev", s.rootLink},
		{"link", "set", s.rootLink, "up"},
		// Without this the root namespace would send packets for the
		// target out of its default route instead of failing at once.
		{"route", "add", "unreachable", s.targetNet.String()},
		{"-n", b, "link", "set", "lo", "up"},
		{"-n", b, "addr", "add", s.bastionIP.String() + "/30", "dev", "up0"},
		{"-n", b, "link", "set", "up0", "up"},
		{"-n", b, "link", "add", "down0", "type", "veth", "peer", "name", "up0", "netns", tg},
		{"-n", b, "addr", "add", s.bastionDown.String() + "/30", "dev", "down0"},
		{"-n", b, "link", "set", "down0", "up"},
		{"-n", tg, "link", "set", "lo", "up"},
		{"-n", tg, "addr", "add", s.target.String() + "/30", "dev", "up0"},
		{"-n", tg, "link", "set", "up0", "up"},
	}
	for _, st := range steps {
		if err := ip(st...); err != nil {
			return err
		}
	}
	return nil
}

// teardown deletes the root-side link explicitly because a namespace is
// destroyed asynchronously and its veths linger until then.
func (s slot) teardown() error {
	var errs []error
	if err := ip("route", "del", "unreachable", s.targetNet.String()); err != nil && !strings.Contains(err.Error(), "No such process") {
		errs = append(errs, err)
	}
	if err := ip("link", "del", s.rootLink); err != nil && !strings.Contains(err.Error(), "Cannot find device") {
		errs = append(errs, err)
	}
	for _, ns := range []string{s.targetNS, s.bastionNS} {
		if err := ip("netns", "del", ns); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}
