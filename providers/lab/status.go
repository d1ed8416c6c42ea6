package lab

import (
	"fmt"
	"strings"
)

// HostStatus is a host's state as seen from the machine.
type HostStatus struct {
	Host
	Running bool
}

// Status reports each host of a lab.
func (m *Manager) Status(name string) (*Lab, []HostStatus, error) {
	l, err := m.Load(name)
	if err != nil {
		return nil, nil, err
	}
	var out []HostStatus
	for _, h := range l.Hosts {
		out = append(out, HostStatus{Host: h, Running: running(h.PID, h.Name)})
	}
	return l, out, nil
}

// HostsHCL is a configuration fragment with the lab's hosts as host blocks (the first host runs the control
// plane and etcd, the others are workers), for configurations that list hosts instead of using the provider.
func HostsHCL(l *Lab) string {
	var b strings.Builder
	fmt.Fprintf(&b, "# Hosts of kforge lab %q (written by kforge lab up; gone with kforge lab down).\n", l.Name)
	for i, h := range l.Hosts {
		fmt.Fprintf(&b, "\nhost %q {\n", h.Name)
		fmt.Fprintf(&b, "  address = %q\n", h.Address)
		fmt.Fprintf(&b, "  roles   = [%s]\n", quoteRoles(defaultRoles(i, len(l.Hosts))))
		fmt.Fprintf(&b, "  ssh {\n")
		fmt.Fprintf(&b, "    user             = \"root\"\n")
		fmt.Fprintf(&b, "    private_key_file = %q\n", l.KeyFile)
		fmt.Fprintf(&b, "    known_hosts_file = %q\n", l.KnownHostsFile)
		fmt.Fprintf(&b, "    host_key_policy  = \"strict\"\n")
		fmt.Fprintf(&b, "  }\n}\n")
	}
	return b.String()
}

// defaultRoles: a one-host lab does everything; otherwise host 1 is the control plane and etcd, the rest work.
func defaultRoles(i, n int) []string {
	switch {
	case n == 1:
		return []string{"control-plane", "etcd", "worker"}
	case i == 0:
		return []string{"control-plane", "etcd"}
	default:
		return []string{"worker"}
	}
}

func quoteRoles(rs []string) string {
	q := make([]string, len(rs))
	for i, r := range rs {
		q[i] = fmt.Sprintf("%q", r)
	}
	return strings.Join(q, ", ")
}
