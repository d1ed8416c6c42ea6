package preflight

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/kforge/kforge/config"
)

const probeID = "probe"

// checkProbe: every role. Error when the host could not be probed: nothing else about it is known.
func checkProbe(t Target) Result {
	f := t.Facts
	if f == nil {
		return failure("no facts: the probe did not run or failed on this host, so nothing else was checked")
	}
	if !f.Root {
		return failure("the probe did not run as root, so root-only facts (the overlay test mount, product_uuid) are missing")
	}
	detail := "probed as root"
	if f.ProbeDuration > 0 {
		detail += fmt.Sprintf(" in %s", f.ProbeDuration.Round(time.Millisecond))
	}
	if len(f.Unavailable) > 0 {
		var names []string
		for name := range f.Unavailable {
			names = append(names, name)
		}
		detail += "; could not read: " + strings.Join(sortedCopy(names), ", ")
	}
	return ok("%s", detail)
}

// checkArch: every role. kforge installs amd64 and arm64 binaries only.
func checkArch(t Target) Result {
	switch a := t.Facts.Architecture; a {
	case "x86_64", "amd64":
		return ok("x86_64 (amd64)")
	case "aarch64", "arm64":
		return ok("aarch64 (arm64)")
	case "":
		return unknown(t, "the CPU architecture", "arch")
	default:
		return failure("%s: kforge installs binaries for amd64 and arm64 only", a)
	}
}

// kernelVersion reads the leading major.minor of a release such as 6.1.0-18-amd64.
func kernelVersion(release string) (major, minor int, ok bool) {
	parts := strings.SplitN(release, ".", 3)
	if len(parts) < 2 {
		return 0, 0, false
	}
	major, err1 := strconv.Atoi(parts[0])
	digits := parts[1]
	if i := strings.IndexFunc(digits, func(r rune) bool { return r < '0' || r > '9' }); i >= 0 {
		digits = digits[:i]
	}
	minor, err2 := strconv.Atoi(digits)
	return major, minor, err1 == nil && err2 == nil
}

func kernelAtLeast(major, minor, wantMajor, wantMinor int) bool {
	return major > wantMajor || (major == wantMajor && minor >= wantMinor)
}

// checkKernelVersion: every role needs 4.18 (the oldest kernel of a maintained enterprise distribution, EL 8);
// kubelet hosts on cgroup v2 want 5.8 (warning, Kubernetes' recommendation), and kube-proxy's nftables mode
// needs 5.13 (error: kube-proxy refuses older kernels).
func checkKernelVersion(t Target) Result {
	rel := t.Facts.KernelRelease
	if rel == "" {
		return unknown(t, "the kernel release", "kernel-release")
	}
	major, minor, parsed := kernelVersion(rel)
	if !parsed {
		return warning("cannot read the kernel release %q", rel)
	}
	if !kernelAtLeast(major, minor, 4, 18) {
		return failure("kernel %s is older than 4.18, the oldest kforge supports", rel)
	}
	if !t.Host.RunsKubelet() {
		return ok("kernel %s", rel)
	}
	if proxyMode(t.Cluster) == "nftables" && !kernelAtLeast(major, minor, 5, 13) {
		return failure("kernel %s: kube-proxy's nftables mode needs 5.13 or later", rel)
	}
	if cg := t.Facts.Cgroups; cg != nil && !cg.V1() && !kernelAtLeast(major, minor, 5, 8) {
		return Result{Severity: SeverityWarning, Detail: fmt.Sprintf("kernel %s with cgroup v2: Kubernetes recommends 5.8 or later for cgroup v2", rel),
			Fix: "Upgrade the kernel to 5.8 or later."}
	}
	return ok("kernel %s", rel)
}

// Kernel options, without CONFIG_. "A|B" is met by either option.

func requiredKernelOptions(cgroupV1 bool, mode, plugin string) []string {
	req := []string{"NAMESPACES", "NET_NS", "PID_NS", "IPC_NS", "UTS_NS", "CGROUPS", "CPUSETS", "MEMCG",
		"CGROUP_PIDS", "CGROUP_SCHED", "OVERLAY_FS", "BRIDGE", "BRIDGE_NETFILTER", "VETH", "NF_CONNTRACK", "NF_NAT",
		"POSIX_MQUEUE", "KEYS"}
	if cgroupV1 {
		req = append(req, "CGROUP_CPUACCT", "CGROUP_DEVICE", "CGROUP_FREEZER")
	} else {
		// cgroup v2 controls devices with eBPF programs.
		req = append(req, "CGROUP_BPF", "BPF_SYSCALL")
	}
	iptables := []string{"IP_NF_IPTABLES|NFT_COMPAT", "IP_NF_NAT|NFT_NAT", "IP_NF_FILTER|NFT_COMPAT",
		"IP_NF_TARGET_MASQUERADE|NFT_MASQ", "NETFILTER_XT_MATCH_COMMENT", "NETFILTER_XT_MATCH_CONNTRACK",
		"NETFILTER_XT_MATCH_ADDRTYPE", "NETFILTER_XT_MATCH_MULTIPORT", "NETFILTER_XT_MATCH_STATISTIC",
		"NETFILTER_XT_MARK", "NETFILTER_XT_NAT"}
	switch mode {
	case "nftables":
		req = append(req, "NF_TABLES", "NFT_CT", "NFT_NAT", "NFT_MASQ", "NFT_NUMGEN", "NFT_FIB_IPV4", "NFT_REJECT")
	case "ipvs":
		req = append(req, iptables...)
		req = append(req, "IP_VS", "IP_VS_RR", "IP_VS_NFCT", "IP_SET")
	default:
		req = append(req, iptables...)
	}
	switch plugin {
	case config.PluginFlannel: // its VXLAN overlay, and the iptables rules it masquerades and forwards with
		req = append(req, "VXLAN")
		req = append(req, iptables...)
	case config.PluginKubeRouter: // NetworkPolicy: iptables rules matching ipsets
		req = append(req, iptables...)
		req = append(req, "IP_SET", "NETFILTER_XT_SET")
	}
	slices.Sort(req)
	return slices.Compact(req)
}

func recommendedKernelOptions(cgroupV1 bool) []string {
	rec := []string{"CFS_BANDWIDTH", "FAIR_GROUP_SCHED", "BLK_CGROUP", "CGROUP_HUGETLB", "USER_NS", "SECCOMP"}
	if cgroupV1 {
		rec = append(rec, "CGROUP_BPF")
	}
	return rec
}

// checkKernelConfig: kubelet hosts (an etcd-only host needs nothing special of its kernel). Error when a
// required option is missing, warning for a recommended one; the required set depends on the cgroup mode
// and kube-proxy's mode.
func checkKernelConfig(t Target) Result {
	if r, skip := noKubelet(t); skip {
		return r
	}
	kc := t.Facts.KernelConfig
	if kc == nil {
		r := unknown(t, "the kernel's build options", "kernel-config")
		r.Detail += "; the runtime checks (cgroups, namespaces, overlayfs, bridge netfilter) still apply"
		r.Fix = "Nothing, if those pass; otherwise make the config readable (modprobe configs, or install the kernel's config file)."
		return r
	}
	v1 := t.Facts.Cgroups.V1()
	missing := missingOptions(kc.Enabled, requiredKernelOptions(v1, proxyMode(t.Cluster), t.Cluster.Network.Plugin))
	if len(missing) > 0 {
		return failure("%s lacks %s", kc.Source, strings.Join(missing, ", "))
	}
	if missing := missingOptions(kc.Enabled, recommendedKernelOptions(v1)); len(missing) > 0 {
		return Result{Severity: SeverityWarning, Detail: fmt.Sprintf("%s lacks %s (CPU limits, I/O weights, huge pages, user namespaces or seccomp may not work)", kc.Source, strings.Join(missing, ", ")),
			Fix: "Nothing is needed to start; use a kernel with these options for the features they enable."}
	}
	return ok("%s has every option kforge needs (kube-proxy mode %s)", kc.Source, proxyMode(t.Cluster))
}

func missingOptions(enabled func(string) bool, want []string) []string {
	var missing []string
	for _, w := range want {
		alternatives := strings.Split(w, "|")
		met := false
		for _, a := range alternatives {
			met = met || enabled(a)
		}
		if !met {
			missing = append(missing, "CONFIG_"+strings.Join(alternatives, " or CONFIG_"))
		}
	}
	return missing
}

// checkSystemd: every role; kforge runs etcd and every Kubernetes component as systemd units.
func checkSystemd(t Target) Result {
	in := t.Facts.Init
	if in == nil {
		return unknown(t, "what runs as PID 1", "pid1-comm")
	}
	if !in.Systemd() {
		return failure("PID 1 is %q, not systemd", in.PID1)
	}
	if in.SystemdVersion > 0 {
		return ok("systemd %d", in.SystemdVersion)
	}
	return ok("systemd")
}
