package preflight

import (
	"fmt"
	"slices"
	"strings"

	"github.com/kforge/kforge/config"
	"github.com/kforge/kforge/provision/facts"
)

// minControlPlaneMemory is the smallest MemTotal a control-plane host may report without a warning. It stands
// for "2 GiB" with room for what the kernel and firmware keep: a 2 GiB machine reports about 1.9 GiB.
const minControlPlaneMemory = 1800 << 20

// checkResources: control-plane hosts warn below 2 CPUs or 2 GiB (the API server, etcd and the controllers
// need that much to be usable); other roles have no minimum, and the figures are shown.
func checkResources(t Target) Result {
	f := t.Facts
	if f.CPUs == 0 || f.MemoryBytes == 0 {
		return unknown(t, "the number of CPUs or the memory size", "meminfo")
	}
	detail := fmt.Sprintf("%d CPUs, %s", f.CPUs, size(f.MemoryBytes))
	if !t.Host.Has(config.RoleControlPlane) {
		return ok("%s", detail)
	}
	var short []string
	if f.CPUs < 2 {
		short = append(short, "fewer than 2 CPUs")
	}
	if f.MemoryBytes < minControlPlaneMemory {
		short = append(short, "less than 2 GiB of memory")
	}
	if len(short) > 0 {
		return warning("%s: %s for a control-plane host", detail, strings.Join(short, " and "))
	}
	return ok("%s", detail)
}

// Disk thresholds for the filesystem of /var/lib.
const (
	minDiskError   = 2 << 30 // binaries, images and etcd's first snapshots need more than this
	minDiskWarning = 5 << 30
	// kubelet's default hard eviction threshold for its image filesystem: below it, the node reports
	// DiskPressure at once.
	minDiskFreePercent = 15
)

// checkDisk: every role. Error below 2 GiB available under /var/lib, warning below 5 GiB; on kubelet hosts
// also a warning below 15% free, where the kubelet would start evicting pods.
func checkDisk(t Target) Result {
	d := t.Facts.Disk
	if d == nil {
		return unknown(t, "the free space under /var/lib", "disk")
	}
	detail := fmt.Sprintf("%s available of %s on the filesystem of %s", size(d.AvailableBytes), size(d.TotalBytes), d.Path)
	switch {
	case d.AvailableBytes < minDiskError:
		return failure("%s: kforge needs at least 2 GiB", detail)
	case d.AvailableBytes < minDiskWarning:
		return warning("%s: less than 5 GiB leaves little room for container images and logs", detail)
	case t.Host.RunsKubelet() && d.TotalBytes > 0 && d.AvailableBytes*100 < d.TotalBytes*minDiskFreePercent:
		return warning("%s: less than %d%% free, so the kubelet would report DiskPressure and evict pods", detail, minDiskFreePercent)
	}
	return ok("%s", detail)
}

// neededBinaries are the programs a kubelet host needs (error) and should have (warning): mount for volumes,
// ip for the routes between nodes, and the firewall tools of kube-proxy's mode; nsenter, conntrack, socat and
// ethtool serve port forwarding, conntrack cleanup and diagnostics. flanneld runs iptables whatever kube-proxy's
// mode (it clears its rules at start), kube-router iptables and ipset.
func neededBinaries(mode, plugin string) (required, recommended []string) {
	required = []string{"mount", "umount", "ip"}
	switch mode {
	case "nftables":
		required = append(required, "nft")
	case "ipvs":
		required = append(required, "iptables", "iptables-save", "iptables-restore", "ipset")
	default:
		required = append(required, "iptables", "iptables-save", "iptables-restore")
	}
	switch plugin {
	case config.PluginFlannel:
		required = append(required, "iptables", "iptables-save", "iptables-restore")
	case config.PluginKubeRouter:
		required = append(required, "iptables", "iptables-save", "iptables-restore", "ipset")
	}
	slices.Sort(required)
	return slices.Compact(required), []string{"nsenter", "conntrack", "socat", "ethtool"}
}

// checkBinaries: kubelet hosts (etcd-only hosts need none of these).
func checkBinaries(t Target) Result {
	if r, skip := noKubelet(t); skip {
		return r
	}
	b := t.Facts.Binaries
	if b == nil {
		return unknown(t, "which programs are installed", "binaries")
	}
	required, recommended := neededBinaries(proxyMode(t.Cluster), t.Cluster.Network.Plugin)
	var missing, absent []string
	for _, n := range required {
		if b[n] == "" {
			missing = append(missing, n)
		}
	}
	for _, n := range recommended {
		if b[n] == "" {
			absent = append(absent, n)
		}
	}
	switch {
	case len(missing) > 0:
		r := failure("missing: %s (kube-proxy mode %s, network plugin %s)", strings.Join(missing, ", "), proxyMode(t.Cluster), t.Cluster.Network.Plugin)
		if len(absent) > 0 {
			r.Detail += "; also missing, recommended: " + strings.Join(absent, ", ")
		}
		r.Fix = installHint(t.Facts.OS, append(missing, absent...))
		return r
	case len(absent) > 0:
		return Result{Severity: SeverityWarning, Detail: "missing, recommended: " + strings.Join(absent, ", ") + " (port forwarding, conntrack cleanup and diagnostics need them)",
			Fix: installHint(t.Facts.OS, absent)}
	}
	return ok("all found: %s", strings.Join(append(required, recommended...), ", "))
}

// installHint says how to install programs on the host's distribution, by package name.
func installHint(os *facts.OSRelease, programs []string) string {
	family, el7 := "", false
	if os != nil {
		ids := append([]string{os.ID}, os.IDLike...)
		switch {
		case slices.ContainsFunc(ids, func(id string) bool { return id == "debian" || id == "ubuntu" }):
			family = "deb"
		case slices.ContainsFunc(ids, func(id string) bool { return id == "rhel" || id == "fedora" || id == "centos" }):
			family, el7 = "rpm", os.VersionID == "7" || strings.HasPrefix(os.VersionID, "7.")
		}
	}
	var pkgs []string
	for _, p := range programs {
		name := packageOf(p, family, el7)
		if !slices.Contains(pkgs, name) {
			pkgs = append(pkgs, name)
		}
	}
	switch {
	case family == "deb":
		return "apt-get install -y " + strings.Join(pkgs, " ")
	case family == "rpm" && el7:
		return "yum install -y " + strings.Join(pkgs, " ")
	case family == "rpm":
		return "dnf install -y " + strings.Join(pkgs, " ")
	}
	return "Install " + strings.Join(programs, ", ") + " with the host's package manager."
}

func packageOf(program, family string, el7 bool) string {
	switch program {
	case "iptables", "iptables-save", "iptables-restore":
		if family == "rpm" && !el7 {
			return "iptables-nft"
		}
		return "iptables"
	case "nft":
		return "nftables"
	case "ip":
		if family == "rpm" {
			return "iproute"
		}
		return "iproute2"
	case "mount", "umount":
		if family == "deb" {
			return "mount"
		}
		return "util-linux"
	case "nsenter":
		return "util-linux"
	case "conntrack":
		if family == "rpm" {
			return "conntrack-tools"
		}
		return "conntrack"
	}
	return program
}
