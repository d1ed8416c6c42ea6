// Package preflight judges the hosts' facts (provision/facts) against what the cluster will ask of them: a
// table of checks whose severities depend on each host's roles and the Kubernetes version, with fixes.
package preflight

import (
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/agext/levenshtein"

	"github.com/kforge/kforge/config"
	"github.com/kforge/kforge/provision/facts"
)

// Severity is how much a finding matters. The zero value is not a severity, so that a check that forgets to
// set one is noticed rather than taken for a pass.
type Severity int

const (
	// SeverityOK: the host meets the check.
	SeverityOK Severity = iota + 1
	// SeveritySkipped: the check does not apply to this host (its roles need nothing of it), or the host
	// could not be probed at all.
	SeveritySkipped
	// SeverityWarning: kforge can go on, but something will be missing or should be looked at, including
	// facts the probe could not find out.
	SeverityWarning
	// SeverityError: the cluster would not work; apply refuses to start.
	SeverityError
)

func (s Severity) String() string {
	switch s {
	case SeverityOK:
		return "ok"
	case SeveritySkipped:
		return "skipped"
	case SeverityWarning:
		return "warning"
	case SeverityError:
		return "error"
	}
	return fmt.Sprintf("Severity(%d)", int(s))
}

// MarshalText writes the severity's name, for JSON.
func (s Severity) MarshalText() ([]byte, error) {
	if s < SeverityOK || s > SeverityError {
		return nil, fmt.Errorf("invalid severity %d", int(s))
	}
	return []byte(s.String()), nil
}

// UnmarshalText reads a severity's name.
func (s *Severity) UnmarshalText(b []byte) error {
	for v := SeverityOK; v <= SeverityError; v++ {
		if v.String() == string(b) {
			*s = v
			return nil
		}
	}
	return fmt.Errorf("unknown severity %q", b)
}

// Finding is one check's verdict on one host (Host empty: on the cluster as a whole).
type Finding struct {
	ID       string   `json:"id"`
	Host     string   `json:"host,omitempty"`
	Title    string   `json:"title"`
	Severity Severity `json:"severity"`
	Detail   string   `json:"detail,omitempty"`
	// Fix says what to do about a warning or an error.
	Fix string `json:"fix,omitempty"`
	// Ignored says the finding was an error that Input.Ignore turned into a warning.
	Ignored bool `json:"ignored,omitempty"`
}

// Input is what Run judges.
type Input struct {
	Cluster *config.Cluster
	// Facts are the hosts' facts by host name; a host without facts (its probe failed) gets an error from the
	// "probe" check and has its other checks skipped.
	Facts map[string]*facts.Facts
	// OperatorTime is the operator's clock when the probes ran. Facts gathered by facts.Gather carry their own,
	// more precise reference (ProbeStarted), which wins.
	OperatorTime time.Time
	// Ignore lists check IDs (as in --ignore-preflight) whose errors become warnings; "all" names every check.
	// An ID that names no check is reported by a cluster-wide warning (ID "ignore-preflight"), so that a typo
	// does not go unnoticed while the run goes on.
	Ignore []string
}

// Check is one row of the check table.
type Check struct {
	ID    string
	Title string
	// Fix is the usual remedy, given with warnings and errors when the result has no more precise one.
	Fix string
	Run func(Target) Result
}

// Target is what a check looks at: one host of the cluster, its facts, and the others'.
type Target struct {
	Cluster *config.Cluster
	Host    config.Host
	Facts   *facts.Facts
	// Others are the other hosts that have facts, in the cluster's order.
	Others []Peer
	// Reference is the operator's clock at the moment the host's clock was read.
	Reference time.Time
}

// Peer is another host of the cluster.
type Peer struct {
	Name  string
	Host  config.Host
	Facts *facts.Facts
}

// Result is a check's verdict.
type Result struct {
	Severity Severity
	Detail   string
	// Fix, if set, replaces the check's usual fix.
	Fix string
}

// IgnoreAll in Input.Ignore turns every error into a warning.
const IgnoreAll = "all"

// RelaxedID is the ID of the findings that name a security setting below the CIS benchmark: warnings for the
// cluster, not checks of a host.
const RelaxedID = "cis-relaxed"

// unknownIgnoreID is the ID of the finding that reports an Ignore entry naming no check.
const unknownIgnoreID = "ignore-preflight"

// Run runs every check on every host of the cluster and returns one finding per check and host, passes
// included, in the cluster's host order and then the table's check order; cluster-wide findings come first.
func Run(in Input) []Finding {
	if in.Cluster == nil {
		return nil
	}
	checks := Checks()
	ignore, unknown := ignoreSet(in.Ignore, checks)
	var out []Finding
	for _, id := range unknown {
		detail := fmt.Sprintf("%q in --ignore-preflight is not the ID of a check, so it ignores nothing.", id)
		if near := closest(id, checks); near != "" {
			detail += fmt.Sprintf(" Did you mean %q?", near)
		}
		out = append(out, Finding{ID: unknownIgnoreID, Title: "Unknown check in --ignore-preflight", Severity: SeverityWarning,
			Detail: detail, Fix: "Name checks by the IDs this table shows, or \"all\"."})
	}
	for _, r := range in.Cluster.Security.Relaxations() {
		out = append(out, Finding{ID: RelaxedID, Title: "Security setting below the CIS benchmark", Severity: SeverityWarning,
			Detail: r.String() + ".", Fix: "Leave the setting at its default unless the cluster needs it (README: Security)."})
	}
	for _, h := range in.Cluster.Hosts {
		f := in.Facts[h.Name]
		tg := Target{Cluster: in.Cluster, Host: h, Facts: f, Reference: in.OperatorTime}
		if f != nil && !f.ProbeStarted.IsZero() {
			tg.Reference = f.ProbeStarted
		}
		for _, o := range in.Cluster.Hosts {
			if o.Name != h.Name && in.Facts[o.Name] != nil {
				tg.Others = append(tg.Others, Peer{Name: o.Name, Host: o, Facts: in.Facts[o.Name]})
			}
		}
		for _, c := range checks {
			var r Result
			if f == nil && c.ID != probeID {
				r = Result{Severity: SeveritySkipped, Detail: "not checked: the host has no facts (see the probe check)"}
			} else {
				r = c.Run(tg)
			}
			fd := Finding{ID: c.ID, Host: h.Name, Title: c.Title, Severity: r.Severity, Detail: r.Detail}
			if r.Severity == SeverityWarning || r.Severity == SeverityError {
				fd.Fix = r.Fix
				if fd.Fix == "" {
					fd.Fix = c.Fix
				}
			}
			if fd.Severity == SeverityError && (ignore[c.ID] || ignore[IgnoreAll]) {
				fd.Severity, fd.Ignored = SeverityWarning, true
				fd.Detail += " (an error, ignored with --ignore-preflight)"
			}
			out = append(out, fd)
		}
	}
	return out
}

// HasErrors reports whether any finding is an error.
func HasErrors(fs []Finding) bool {
	return slices.ContainsFunc(fs, func(f Finding) bool { return f.Severity == SeverityError })
}

// ignoreSet reads Input.Ignore: IDs are matched without regard to case and surrounding space.
func ignoreSet(ids []string, checks []Check) (set map[string]bool, unknown []string) {
	set = map[string]bool{}
	for _, raw := range ids {
		id := strings.ToLower(strings.TrimSpace(raw))
		if id == "" {
			continue
		}
		if id != IgnoreAll && !slices.ContainsFunc(checks, func(c Check) bool { return c.ID == id }) {
			if !slices.Contains(unknown, id) {
				unknown = append(unknown, id)
			}
			continue
		}
		set[id] = true
	}
	return set, unknown
}

// closest is the check ID nearest to id, if one is near enough to be what was meant.
func closest(id string, checks []Check) string {
	best, bestDist := "", 4
	for _, c := range checks {
		if d := levenshtein.Distance(id, c.ID, nil); d < bestDist {
			best, bestDist = c.ID, d
		}
	}
	return best
}

// Checks returns the check table, in the order findings are reported. "kubelet hosts" are control-plane and
// worker hosts; etcd-only hosts run no kubelet, so the checks marked so are skipped there. A fact the probe
// could not find out is a warning wherever the check applies.
//
//	ID                   applies to      error when                                     warning when
//	probe                every host      no facts, or not probed as root                -
//	arch                 every host      not x86_64/aarch64                             -
//	kernel-version       every host      < 4.18; kubelet hosts: < 5.13 with nftables    kubelet hosts on cgroup v2: < 5.8
//	kernel-config        kubelet hosts   a required option not set (by cgroup mode      a recommended option not set;
//	                                     and kube-proxy mode)                           no readable config
//	systemd              every host      PID 1 is not systemd                           -
//	cgroup-controllers   kubelet hosts   no cpu, cpuset, memory, pids (v1: cpuacct,     -
//	                                     devices, freezer)
//	cgroup-v1            kubelet hosts   v1/hybrid on Kubernetes >= 1.35 with           v1/hybrid: >= 1.35 with fail_cgroup_v1 =
//	                                     fail_cgroup_v1 = true (the default)            false (kforge writes failCgroupV1: false);
//	                                                                                    1.31-1.34 (maintenance mode)
//	namespaces           kubelet hosts   no mnt, uts, ipc, pid, net (v2: cgroup)        no user namespaces; v1: no cgroup ns
//	overlayfs            kubelet hosts   the test mount under /var/lib failed, or no    -
//	                                     overlay at all
//	swap                 kubelet hosts   swap on                                        swap on, kubelet fail-swap-on=false
//	ip-forward           kubelet hosts   0 and read-only, or missing                    -
//	bridge-netfilter     kubelet hosts   bridge-nf-call-iptables 0 and read-only; no    -
//	                                     br_netfilter built in, loaded or loadable
//	ports                by role         a needed TCP port held by something not        kforge's host, owner unknown (no ss)
//	                                     kforge's: control plane API port (6443),
//	                                     10257, 10259; etcd 2379, 2380; kubelet hosts
//	                                     10250, 10248, 10256, 10249
//	nodeport-range       kubelet hosts   -                                              anything listening in 30000-32767
//	resources            every host      -                                              control plane: < 2 CPUs or < 2 GiB
//	disk                 every host      < 2 GiB available under /var/lib               < 5 GiB; kubelet hosts: < 15% free
//	binaries             kubelet hosts   no mount, umount, ip, or kube-proxy's tools    no nsenter, conntrack, socat, ethtool
//	                                     (iptables mode: iptables, -save, -restore;
//	                                     nftables: nft; ipvs: iptables tools, ipset)
//	unique-hostname      every host      the same as another host's (kubelet hosts)     the same (etcd-only hosts)
//	unique-machine-id    every host      the same as another host's                     -
//	unique-product-uuid  hosts with DMI  -                                              the same as another host's
//	clock-skew           every host      more than 30 s from the operator's clock       -
//	existing-kubernetes  every host      signs of a Kubernetes and no kforge marker,    -
//	                                     or kforge's marker for another cluster
func Checks() []Check {
	return []Check{
		{ID: probeID, Title: "Host facts", Run: checkProbe,
			Fix: "Check that the host is reachable over SSH and that its user may run sudo -n without a password."},
		{ID: "arch", Title: "CPU architecture", Run: checkArch,
			Fix: "Use amd64 (x86_64) or arm64 (aarch64) hosts: kforge installs Kubernetes' binaries for those."},
		{ID: "kernel-version", Title: "Kernel version", Run: checkKernelVersion,
			Fix: "Upgrade the kernel (or the distribution) to a supported release."},
		{ID: "kernel-config", Title: "Kernel options", Run: checkKernelConfig,
			Fix: "Use a kernel built with these options (a distribution's stock kernel has them)."},
		{ID: "systemd", Title: "systemd as init", Run: checkSystemd,
			Fix: "Use a host booted with systemd as PID 1: kforge installs and runs every component as a systemd unit."},
		{ID: "cgroup-controllers", Title: "cgroup controllers", Run: checkCgroupControllers,
			Fix: "Enable the missing controllers (kernel command line, e.g. cgroup_enable=memory; or mount the v1 hierarchies)."},
		{ID: "cgroup-v1", Title: "cgroup version", Run: checkCgroupV1,
			Fix: "Boot the host with cgroup v2 (systemd.unified_cgroup_hierarchy=1 on the kernel command line), or set fail_cgroup_v1 = false in the cluster's kubelet block to run on cgroup v1 anyway."},
		{ID: "namespaces", Title: "Namespaces", Run: checkNamespaces,
			Fix: "Use a kernel with these namespaces enabled."},
		{ID: "overlayfs", Title: "overlayfs", Run: checkOverlay,
			Fix: "Use a kernel with overlayfs (the overlay module), and a filesystem for /var/lib that can hold overlay upper directories (ext4, or xfs with ftype=1; not overlayfs itself)."},
		{ID: "swap", Title: "Swap", Run: checkSwap,
			Fix: "Turn swap off (swapoff -a) and keep it off after a reboot: remove its /etc/fstab line, or mask its unit (systemctl mask dev-XXX.swap; on Raspberry Pi OS, dphys-swapfile)."},
		{ID: "ip-forward", Title: "IPv4 forwarding", Run: checkIPForward,
			Fix: "Let root change net.ipv4.ip_forward (a container host must not mount /proc/sys read-only), or set it to 1 beforehand."},
		{ID: "bridge-netfilter", Title: "Bridge netfilter", Run: checkBridgeNetfilter,
			Fix: "Use a kernel with br_netfilter (built in, or the module installed) and a writable net.bridge.bridge-nf-call-iptables."},
		{ID: "ports", Title: "Ports", Run: checkPorts,
			Fix: "Stop what listens on these ports (ss -tlnp shows it), or use another host."},
		{ID: "nodeport-range", Title: "NodePort range", Run: checkNodePortRange,
			Fix: "Move these services out of 30000-32767: Services of type NodePort get ports from that range, and take their traffic."},
		{ID: "resources", Title: "CPUs and memory", Run: checkResources,
			Fix: "Give control-plane hosts at least 2 CPUs and 2 GiB of memory."},
		{ID: "disk", Title: "Disk space in /var/lib", Run: checkDisk,
			Fix: "Free space on, or grow, the filesystem that holds /var/lib (containerd, the kubelet and etcd keep their data there)."},
		{ID: "binaries", Title: "Programs on PATH", Run: checkBinaries,
			Fix: "Install the missing programs with the host's package manager."},
		{ID: "unique-hostname", Title: "Unique host name", Run: checkUniqueHostname,
			Fix: "Give every host its own name (hostnamectl set-hostname NAME)."},
		{ID: "unique-machine-id", Title: "Unique machine-id", Run: checkUniqueMachineID,
			Fix: "Give cloned hosts new machine-ids: rm /etc/machine-id && systemd-machine-id-setup, then reboot."},
		{ID: "unique-product-uuid", Title: "Unique product_uuid", Run: checkUniqueProductUUID,
			Fix: "Give the virtual machines distinct UUIDs in the hypervisor (cloned VMs sometimes keep the template's)."},
		{ID: "clock-skew", Title: "Clock", Run: checkClockSkew,
			Fix: "Synchronise the host's clock (systemd-timesyncd or chrony) with the same time source as this machine."},
		{ID: "existing-kubernetes", Title: "Existing Kubernetes", Run: checkExistingKubernetes,
			Fix: "Remove the other installation first (kubeadm reset; k3s-uninstall.sh; rke2-uninstall.sh; snap remove microk8s), or use a clean host."},
	}
}

// Helpers every check uses.

func ok(format string, args ...any) Result {
	return Result{Severity: SeverityOK, Detail: fmt.Sprintf(format, args...)}
}

func skipped(format string, args ...any) Result {
	return Result{Severity: SeveritySkipped, Detail: fmt.Sprintf(format, args...)}
}

func warning(format string, args ...any) Result {
	return Result{Severity: SeverityWarning, Detail: fmt.Sprintf(format, args...)}
}

func failure(format string, args ...any) Result {
	return Result{Severity: SeverityError, Detail: fmt.Sprintf(format, args...)}
}

// unknown is the verdict when the probe could not find out: the run may go on, but someone should look.
func unknown(t Target, what, section string) Result {
	r := warning("could not find out %s", what)
	if why := t.Facts.Unavailable[section]; why != "" {
		r.Detail += " (" + why + ")"
	}
	r.Fix = "Check it by hand on the host."
	return r
}

// noKubelet skips checks that only matter where a kubelet runs.
func noKubelet(t Target) (Result, bool) {
	if t.Host.RunsKubelet() {
		return Result{}, false
	}
	return skipped("etcd-only host: no kubelet or containers run here"), true
}

// proxyMode is kube-proxy's mode, iptables unless the cluster says otherwise.
func proxyMode(c *config.Cluster) string {
	if c.KubeProxy.Mode == "" {
		return "iptables"
	}
	return c.KubeProxy.Mode
}

// size writes a byte count for people: MiB below a GiB, GiB with one decimal from there.
func size(n int64) string {
	if n < 1<<30 {
		return fmt.Sprintf("%d MiB", n>>20)
	}
	return fmt.Sprintf("%.1f GiB", float64(n)/(1<<30))
}
