package preflight

import (
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/kforge/kforge/config"
	"github.com/kforge/kforge/provision/facts"
)

// checkIPForward: kubelet hosts. Pods' traffic is routed through the host, so kforge sets net.ipv4.ip_forward
// to 1; an error only when it is 0 and cannot be changed (a read-only /proc/sys).
func checkIPForward(t Target) Result {
	if r, skip := noKubelet(t); skip {
		return r
	}
	if t.Facts.Sysctls == nil {
		return unknown(t, "net.ipv4.ip_forward", "sysctls")
	}
	s, exists := t.Facts.Sysctls["net.ipv4.ip_forward"]
	switch {
	case !exists:
		return failure("net.ipv4.ip_forward does not exist here")
	case s.Value == "1":
		return ok("net.ipv4.ip_forward = 1")
	case s.Writable:
		return ok("net.ipv4.ip_forward = %s; kforge sets it to 1", s.Value)
	}
	return failure("net.ipv4.ip_forward = %s and read-only: kforge cannot turn it on", s.Value)
}

// checkBridgeNetfilter: kubelet hosts. The bridge CNI needs bridged pod traffic to pass iptables
// (net.bridge.bridge-nf-call-iptables = 1), which needs br_netfilter: built in, loaded, or loadable. Loaded
// or built in shows as /proc/sys/net/bridge; modules may be built in, so lsmod alone proves nothing.
func checkBridgeNetfilter(t Target) Result {
	if r, skip := noKubelet(t); skip {
		return r
	}
	if t.Facts.Sysctls == nil {
		return unknown(t, "whether bridge netfilter is available", "sysctls")
	}
	const key = "net.bridge.bridge-nf-call-iptables"
	if s, exists := t.Facts.Sysctls[key]; exists {
		switch {
		case s.Value == "1":
			return ok("%s = 1", key)
		case s.Writable:
			return ok("%s = %s; kforge sets it to 1", key, s.Value)
		}
		return failure("%s = %s and read-only: kforge cannot turn it on", key, s.Value)
	}
	m := t.Facts.Modules
	switch {
	case m.Available("br_netfilter"):
		return ok("br_netfilter is not loaded yet; kforge loads it")
	case t.Facts.KernelConfig != nil && t.Facts.KernelConfig.Options["BRIDGE_NETFILTER"] == "y":
		return failure("br_netfilter is built into the kernel, but /proc/sys/net/bridge is missing: this host's /proc/sys/net is not its own")
	case m == nil:
		return unknown(t, "whether br_netfilter can be loaded", "modules-support")
	}
	return failure("no br_netfilter: it is neither loaded, built in, nor among the kernel's modules")
}

// port is one a component of the cluster listens on.
type port struct {
	number    int
	component string
	// process is the component's name as /proc/PID/comm (and so ss) shows it, cut to 15 characters.
	process string
}

// neededPorts are the TCP ports the host's roles listen on: the API server's port (6443 unless configured),
// 10257 and 10259 on control-plane hosts; 2379 and 2380 on etcd hosts; on every kubelet host (control plane
// and workers) 10250 and 10248 for the kubelet, 10256 and 10249 for kube-proxy.
func neededPorts(c *config.Cluster, h config.Host) []port {
	var ps []port
	if h.Has(config.RoleControlPlane) {
		api := c.APIServer.Port
		if api == 0 {
			api = 6443
		}
		ps = append(ps, port{api, "kube-apiserver", "kube-apiserver"}, port{10257, "kube-controller-manager", "kube-controller"},
			port{10259, "kube-scheduler", "kube-scheduler"})
	}
	if h.Has(config.RoleEtcd) {
		ps = append(ps, port{2379, "etcd (clients)", "etcd"}, port{2380, "etcd (peers)", "etcd"})
	}
	if h.RunsKubelet() {
		ps = append(ps, port{10250, "kubelet", "kubelet"}, port{10248, "kubelet (health)", "kubelet"},
			port{10256, "kube-proxy (health)", "kube-proxy"}, port{10249, "kube-proxy (metrics)", "kube-proxy"})
	}
	return ps
}

// checkPorts: every role, for the ports its roles need. Error when something that is not kforge's listens
// there; kforge's own components on a host carrying kforge's marker are fine (a second run).
func checkPorts(t Target) Result {
	ls := t.Facts.Listeners
	if ls == nil {
		return unknown(t, "which ports are in use", "listen-ss")
	}
	managed := t.Facts.Kubernetes != nil && t.Facts.Kubernetes.KforgeManaged
	var taken, unsure, ours, free []string
	for _, p := range neededPorts(t.Cluster, t.Host) {
		var owners []string
		mine, unknownOwner := true, false
		for _, l := range ls.Sockets {
			if l.Proto != "tcp" || l.Port != p.number {
				continue
			}
			owner := owner(l)
			if !slices.Contains(owners, owner) {
				owners = append(owners, owner)
			}
			if l.Process == "" {
				unknownOwner = true
			} else if l.Process != p.process {
				mine = false
			}
		}
		label := fmt.Sprintf("%d/tcp (%s)", p.number, p.component)
		switch {
		case len(owners) == 0:
			free = append(free, strconv.Itoa(p.number))
		case managed && mine && !unknownOwner:
			ours = append(ours, label)
		case managed && mine:
			unsure = append(unsure, label+": "+strings.Join(owners, ", "))
		default:
			taken = append(taken, label+": "+strings.Join(owners, ", "))
		}
	}
	if len(taken) > 0 {
		detail := "taken by something that is not kforge's: " + strings.Join(taken, "; ")
		if ls.Source == "proc" {
			detail += " (ss is missing, so the owners are unknown)"
		}
		return failure("%s", detail)
	}
	if len(unsure) > 0 {
		return warning("in use by processes the probe could not name, on a host kforge manages: %s", strings.Join(unsure, "; "))
	}
	var parts []string
	if len(free) > 0 {
		parts = append(parts, "free: "+strings.Join(free, ", "))
	}
	if len(ours) > 0 {
		parts = append(parts, "kforge's own: "+strings.Join(ours, "; "))
	}
	return ok("%s", strings.Join(parts, "; "))
}

func owner(l facts.Listener) string {
	switch {
	case l.Process != "" && l.PID > 0:
		return fmt.Sprintf("%s (pid %d)", l.Process, l.PID)
	case l.Process != "":
		return l.Process
	}
	return "an unknown process"
}

// NodePort range: kube-proxy's default for Services of type NodePort.
const nodePortLow, nodePortHigh = 30000, 32767

// checkNodePortRange: kubelet hosts (kube-proxy runs on each). A warning, not an error: nothing fails at
// install time, but a Service that gets such a port takes that port's traffic away from the listener.
func checkNodePortRange(t Target) Result {
	if r, skip := noKubelet(t); skip {
		return r
	}
	ls := t.Facts.Listeners
	if ls == nil {
		return unknown(t, "which ports are in use", "listen-ss")
	}
	var in []string
	for _, l := range ls.Sockets {
		if l.Port >= nodePortLow && l.Port <= nodePortHigh {
			s := fmt.Sprintf("%d/%s: %s", l.Port, l.Proto, owner(l))
			if !slices.Contains(in, s) {
				in = append(in, s)
			}
		}
	}
	if len(in) > 0 {
		return warning("listening in the NodePort range %d-%d: %s", nodePortLow, nodePortHigh, strings.Join(in, "; "))
	}
	return ok("nothing listens in %d-%d", nodePortLow, nodePortHigh)
}
