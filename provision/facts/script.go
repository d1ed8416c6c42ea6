package facts

import (
	"strings"
)

// FormatVersion is the version of the probe's output format; Parse refuses any other.
const FormatVersion = "1"

// MarkerFile is the file kforge leaves on every host it installs: Kubernetes found on a host without it is
// someone else's. Its first line names the cluster.
const MarkerFile = "/etc/kforge/managed"

// UnitMarker is the text every systemd unit kforge writes contains, so that such a unit is known as kforge's
// even where MarkerFile is missing.
const UnitMarker = "Managed by kforge"

// KernelOptions are the kernel build options (without CONFIG_) the probe reports: what containers, the
// kubelet, kube-proxy (in each mode) and the bridge CNI need, and a few recommended ones.
func KernelOptions() []string {
	return []string{
		"NAMESPACES", "NET_NS", "PID_NS", "IPC_NS", "UTS_NS", "USER_NS",
		"CGROUPS", "CPUSETS", "MEMCG", "CGROUP_PIDS", "CGROUP_SCHED", "CGROUP_CPUACCT", "CGROUP_DEVICE",
		"CGROUP_FREEZER", "CGROUP_HUGETLB", "CGROUP_BPF", "BPF_SYSCALL", "BLK_CGROUP", "FAIR_GROUP_SCHED",
		"CFS_BANDWIDTH", "POSIX_MQUEUE", "KEYS", "SECCOMP", "OVERLAY_FS",
		"BRIDGE", "BRIDGE_NETFILTER", "VETH", "NF_CONNTRACK", "NF_NAT",
		"NETFILTER_XT_MATCH_COMMENT", "NETFILTER_XT_MATCH_CONNTRACK", "NETFILTER_XT_MATCH_ADDRTYPE",
		"NETFILTER_XT_MATCH_MULTIPORT", "NETFILTER_XT_MATCH_STATISTIC", "NETFILTER_XT_MARK", "NETFILTER_XT_NAT",
		"IP_NF_IPTABLES", "IP_NF_FILTER", "IP_NF_NAT", "IP_NF_TARGET_MASQUERADE",
		"NF_TABLES", "NFT_CT", "NFT_NAT", "NFT_MASQ", "NFT_NUMGEN", "NFT_FIB_IPV4", "NFT_REJECT", "NFT_COMPAT",
		"IP_VS", "IP_VS_RR", "IP_VS_NFCT", "IP_SET", "NETFILTER_XT_SET", "VXLAN",
	}
}

// ModuleNames are the kernel modules the probe looks for as built in or loadable.
func ModuleNames() []string {
	return []string{
		"overlay", "br_netfilter", "bridge", "veth", "nf_conntrack", "nf_nat",
		"ip_tables", "iptable_filter", "iptable_nat", "nf_tables", "nft_compat",
		"xt_comment", "xt_conntrack", "xt_mark", "xt_addrtype", "xt_multiport", "xt_statistic", "xt_MASQUERADE",
		"ip_vs", "ip_vs_rr", "ip_set",
	}
}

// BinaryNames are the programs the probe looks up: what the kubelet, kube-proxy and kforge run, and
// those that betray another Kubernetes or container runtime.
func BinaryNames() []string {
	return []string{
		"iptables", "iptables-save", "iptables-restore", "ip6tables", "nft", "ipset",
		"ip", "mount", "umount", "nsenter", "conntrack", "socat", "ethtool", "modprobe", "sysctl", "systemctl",
		"kubelet", "kubeadm", "kubectl", "containerd", "runc", "crictl", "docker", "k3s", "rke2",
	}
}

// ProcessNames are the process names (as /proc/PID/comm shows them, cut to 15 characters) of Kubernetes
// components and container runtimes that the probe reports when running.
func ProcessNames() []string {
	return []string{
		"kubelet", "kube-apiserver", "kube-controller", "kube-scheduler", "kube-proxy", "etcd",
		"k3s", "k3s-server", "k3s-agent", "rke2", "kubelite", "containerd", "dockerd", "crio",
	}
}

// KubernetesPaths are the files and directories an installed Kubernetes leaves (kubeadm's, k3s', rke2's,
// microk8s', and the usual data directories); the probe reports those that exist.
func KubernetesPaths() []string {
	return []string{
		"/etc/kubernetes/manifests", "/etc/kubernetes/admin.conf", "/etc/kubernetes/kubelet.conf",
		"/etc/kubernetes/pki", "/var/lib/etcd", "/var/lib/kubelet", "/etc/rancher", "/var/lib/rancher",
		"/var/snap/microk8s",
	}
}

// UnitNames are the services whose unit files the probe reports, with whether kforge wrote them.
func UnitNames() []string {
	return []string{
		"kubelet", "kube-apiserver", "kube-controller-manager", "kube-scheduler", "kube-proxy", "etcd",
		"k3s", "k3s-agent", "rke2-server", "rke2-agent", "snap.microk8s.daemon-kubelite",
	}
}

// sysctlPaths are the kernel settings the probe reads, as paths under /proc/sys.
func sysctlPaths() []string {
	return []string{
		"net/ipv4/ip_forward", "net/ipv6/conf/all/forwarding",
		"net/bridge/bridge-nf-call-iptables", "net/bridge/bridge-nf-call-ip6tables",
		"user/max_user_namespaces",
	}
}

// Script returns the probe: a POSIX sh script, run as root, that prints everything Facts holds in one go.
//
// Output format (FormatVersion 1), line by line: "@NAME" starts a section; "|TEXT" is a line of the current
// section, verbatim after the "|" (so no value can be mistaken for structure); "!WHY" says the section
// could not be read, or not completely. Lines starting with "#" are comments. Output starts with the section
// "@kforge-facts" (holding the format version) and ends with "@end"; anything before the first is ignored
// (a login shell's noise), and output without the last is a probe that was cut short.
func Script() string {
	r := strings.NewReplacer(
		"@KCONFIG@", casePattern(KernelOptions(), "CONFIG_", "=*"),
		"@MODULES@", casePattern(ModuleNames(), "", ""),
		"@KCONFIG_RE@", casePattern(KernelOptions(), "CONFIG_", ""),
		"@MODULES_RE@", casePattern(ModuleNames(), "", ""),
		"@BINARIES@", strings.Join(BinaryNames(), " "),
		"@PROCESSES@", casePattern(ProcessNames(), "", ""),
		"@K8SPATHS@", strings.Join(KubernetesPaths(), " "),
		"@UNITS@", strings.Join(UnitNames(), " "),
		"@SYSCTLS@", strings.Join(sysctlPaths(), " "),
		"@MARKERFILE@", MarkerFile,
		"@UNITMARKER@", UnitMarker,
		"@FORMAT@", FormatVersion,
	)
	return r.Replace(scriptTemplate)
}

func casePattern(names []string, prefix, suffix string) string {
	parts := make([]string, len(names))
	for i, n := range names {
		parts[i] = prefix + n + suffix
	}
	return strings.Join(parts, "|")
}

// scriptTemplate is the probe. Rules that keep it working everywhere: only POSIX sh and its builtins are
// assumed; every other tool is looked up first and its absence becomes a "!" line; nothing may end the
// script early (no set -e, no exit); files are read with the shell's read, not cat. PATH is the one
// systemd gives services, because that is where the kubelet and kube-proxy will look for their tools.
const scriptTemplate = `# kforge facts probe
PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
LC_ALL=C
export PATH LC_ALL
umask 077
kf_s() { printf '@%s\n' "$1"; }
kf_l() { printf '|%s\n' "$1"; }
kf_lines() { while IFS= read -r kf_x || [ -n "$kf_x" ]; do printf '|%s\n' "$kf_x"; done; }
kf_have() { command -v "$1" >/dev/null 2>&1; }
# kf_cat FILE: the file's content. Not the shell's read alone: dash reads one byte per read(2), and an
# integer in /proc/sys answers a read at a non-zero offset with end-of-file (96365 would come back as 9).
kf_cat() { if kf_have cat; then cat -- "$1" 2>/dev/null; else kf_lines_raw < "$1"; fi; }
kf_lines_raw() { while IFS= read -r kf_x || [ -n "$kf_x" ]; do printf '%s\n' "$kf_x"; done; }
# kf_grep keeps the lines matching an extended regular expression, or all of them without grep (the reader
# that follows selects exactly anyway).
kf_grep() { if kf_have grep; then grep -E "$1"; else kf_lines_raw; fi; }
# kf_f NAME FILE: a section with the file's lines.
kf_f() {
	kf_s "$1"
	if [ -r "$2" ]; then kf_cat "$2" | kf_lines; else printf '!cannot read %s\n' "$2"; fi
}
# kf_opt NAME FILE: the same, but only for a file that exists (its absence is a fact, not a failure).
kf_opt() { if [ -e "$2" ]; then kf_f "$1" "$2"; fi; }
# kf_c NAME COMMAND ARGS...: a section with the command's output.
kf_c() {
	kf_s "$1"; shift
	if ! kf_have "$1"; then printf '!no %s\n' "$1"; return; fi
	kf_out=$("$@" 2>/dev/null); kf_rc=$?
	if [ -n "$kf_out" ]; then printf '%s\n' "$kf_out" | kf_lines; fi
	if [ "$kf_rc" != 0 ]; then printf '!%s exited with status %s\n' "$1" "$kf_rc"; fi
}

kf_s kforge-facts; kf_l @FORMAT@
# The clock first, so that it is read as close as possible to when the operator sent the probe.
kf_c time date -u +%s.%N
kf_c uid id -u

if [ -r /etc/os-release ]; then kf_f os-release /etc/os-release; else kf_f os-release /usr/lib/os-release; fi
kf_f kernel-release /proc/sys/kernel/osrelease
kf_c arch uname -m
kf_f hostname /proc/sys/kernel/hostname
if [ -r /etc/machine-id ]; then kf_f machine-id /etc/machine-id; else kf_f machine-id /var/lib/dbus/machine-id; fi
kf_opt product-uuid /sys/class/dmi/id/product_uuid
kf_f cpu-online /sys/devices/system/cpu/online
kf_c nproc getconf _NPROCESSORS_ONLN
kf_f meminfo /proc/meminfo
kf_f swaps /proc/swaps

kf_f pid1-comm /proc/1/comm
kf_s pid1-exe
if kf_have readlink && kf_x=$(readlink /proc/1/exe 2>/dev/null); then kf_l "$kf_x"; else printf '!cannot read /proc/1/exe\n'; fi
kf_s systemd-booted
if [ -d /run/systemd/system ]; then kf_l yes; else kf_l no; fi
kf_c systemd-version systemctl --version

kf_c cgroup-fstype stat -fc %T /sys/fs/cgroup
kf_s cgroup-mounts
if [ -r /proc/self/mountinfo ]; then
	while IFS= read -r kf_x; do
		case $kf_x in *" - cgroup "*|*" - cgroup2 "*) kf_l "$kf_x" ;; esac
	done < /proc/self/mountinfo
else
	printf '!cannot read /proc/self/mountinfo\n'
fi
kf_f proc-cgroups /proc/cgroups
kf_opt cgroup-controllers /sys/fs/cgroup/cgroup.controllers
kf_opt cgroup-unified-controllers /sys/fs/cgroup/unified/cgroup.controllers

kf_s namespaces
if [ -d /proc/self/ns ]; then
	for kf_x in cgroup ipc mnt net pid time user uts; do
		if [ -e /proc/self/ns/$kf_x ]; then kf_l "$kf_x"; fi
	done
else
	printf '!no /proc/self/ns\n'
fi

# Each line: "rw KEY VALUE" or "ro KEY VALUE", or "- KEY" when the setting does not exist.
kf_s sysctls
for kf_x in @SYSCTLS@; do
	kf_p=/proc/sys/$kf_x
	if [ -r "$kf_p" ]; then
		kf_v=$(kf_cat "$kf_p")
		if [ -w "$kf_p" ]; then kf_l "rw $kf_x $kf_v"; else kf_l "ro $kf_x $kf_v"; fi
	else
		kf_l "- $kf_x"
	fi
done

kf_f filesystems /proc/filesystems
kf_dir=/var/lib
[ -d $kf_dir ] || kf_dir=/var
[ -d $kf_dir ] || kf_dir=/
# A real overlay mount where containerd will keep its snapshots: it also fails where the filesystem cannot
# hold an upper directory (overlay on overlay). In a mount namespace of its own when unshare works, so that
# the mount cannot outlive the probe; the directory is removed either way.
# Lines: "ok" or "failed", the directory, then mount's messages.
kf_s overlay-mount
if [ "$(id -u 2>/dev/null)" != 0 ]; then
	printf '!not root\n'
elif ! kf_have mount; then
	printf '!no mount\n'
else
	kf_t=
	if kf_have mktemp; then kf_t=$(mktemp -d "$kf_dir/.kforge-overlay.XXXXXX" 2>/dev/null); fi
	if [ -z "$kf_t" ]; then kf_t=$kf_dir/.kforge-overlay.$$; mkdir "$kf_t" 2>/dev/null || kf_t=; fi
	if [ -z "$kf_t" ]; then
		printf '!cannot make a directory in %s\n' "$kf_dir"
	else
		mkdir "$kf_t/lower" "$kf_t/upper" "$kf_t/work" "$kf_t/merged"
		kf_o="lowerdir=$kf_t/lower,upperdir=$kf_t/upper,workdir=$kf_t/work"
		if kf_have unshare && unshare -m true 2>/dev/null; then
			kf_out=$(unshare -m sh -c 'mount -t overlay kforge-probe -o "$1" "$2" && umount "$2"' sh "$kf_o" "$kf_t/merged" 2>&1)
			kf_rc=$?
		else
			kf_out=$(mount -t overlay kforge-probe -o "$kf_o" "$kf_t/merged" 2>&1)
			kf_rc=$?
			if [ "$kf_rc" = 0 ]; then umount "$kf_t/merged" 2>/dev/null; fi
		fi
		rm -rf "$kf_t" 2>/dev/null
		if [ "$kf_rc" = 0 ]; then kf_l ok; else kf_l failed; fi
		kf_l "$kf_t"
		if [ -n "$kf_out" ]; then printf '%s\n' "$kf_out" | kf_lines; fi
	fi
fi

kf_rel=$(kf_cat /proc/sys/kernel/osrelease)
# A kernel config has some 10000 lines: grep picks the few that matter before the shell reads them (reading all
# of them with read and case cost most of the probe's time, which is CPU the host spends on every plan).
kf_kconfig() {
	kf_grep '^(@KCONFIG_RE@)=' | while IFS= read -r kf_x; do
		case $kf_x in @KCONFIG@) kf_l "$kf_x" ;; esac
	done
}
kf_s kernel-config
if [ -r /proc/config.gz ] && kf_have zcat; then
	kf_l "source /proc/config.gz"; zcat /proc/config.gz 2>/dev/null | kf_kconfig
elif [ -r /proc/config.gz ] && kf_have gzip; then
	kf_l "source /proc/config.gz"; gzip -dc /proc/config.gz 2>/dev/null | kf_kconfig
elif [ -r "/boot/config-$kf_rel" ]; then
	kf_l "source /boot/config-$kf_rel"; kf_kconfig < "/boot/config-$kf_rel"
elif [ -r "/lib/modules/$kf_rel/config" ]; then
	kf_l "source /lib/modules/$kf_rel/config"; kf_kconfig < "/lib/modules/$kf_rel/config"
else
	printf '!no readable kernel config (/proc/config.gz, /boot/config-%s)\n' "$kf_rel"
fi

# Modules may be built in: lsmod alone would miss those, so modules.builtin and modules.dep are read too.
# A kernel built without module support has no /proc/modules at all.
kf_s modules-support
if [ -e /proc/modules ]; then kf_l yes; else kf_l no; fi
if [ -e /proc/modules ]; then
	kf_s modules-loaded
	if [ -r /proc/modules ]; then
		kf_cat /proc/modules | while read -r kf_x kf_rest; do kf_l "$kf_x"; done
	else
		printf '!cannot read /proc/modules\n'
	fi
fi
kf_s modules-dir
if [ -d "/lib/modules/$kf_rel" ]; then kf_l yes; else kf_l no; fi
kf_modules() {
	kf_grep '(^|/)(@MODULES_RE@)[.]ko' | while IFS= read -r kf_x; do
		kf_x=${kf_x%%:*}; kf_x=${kf_x##*/}; kf_x=${kf_x%%.ko*}
		case $kf_x in @MODULES@) kf_l "$kf_x" ;; esac
	done
}
if [ -r "/lib/modules/$kf_rel/modules.builtin" ]; then kf_s modules-builtin; kf_modules < "/lib/modules/$kf_rel/modules.builtin"; fi
if [ -r "/lib/modules/$kf_rel/modules.dep" ]; then kf_s modules-loadable; kf_modules < "/lib/modules/$kf_rel/modules.dep"; fi

# ss names the owning processes; without it, /proc/net lists the sockets alone ("PROTO HEXADDR:HEXPORT").
if kf_have ss; then
	if ss -H -tuln >/dev/null 2>&1; then kf_c listen-ss ss -Htulnp; else kf_c listen-ss ss -tulnp; fi
else
	kf_s listen-proc
	for kf_x in tcp tcp6 udp udp6; do
		[ -r /proc/net/$kf_x ] || continue
		while read -r kf_sl kf_local kf_remote kf_st kf_rest; do
			case $kf_x:$kf_st in tcp*:0A|udp*:07) kf_l "$kf_x $kf_local" ;; esac
		done < /proc/net/$kf_x
	done
fi

kf_s binaries
for kf_x in @BINARIES@; do
	if kf_p=$(command -v "$kf_x" 2>/dev/null); then kf_l "$kf_x $kf_p"; else kf_l "$kf_x"; fi
done

kf_s disk-path; kf_l "$kf_dir"
kf_c disk df -Pk "$kf_dir"
kf_c disk-fstype stat -fc %T "$kf_dir"

# First line "present" or "absent", then the marker's first line.
kf_s kforge-marker
if [ -e @MARKERFILE@ ]; then
	kf_l present; kf_cat @MARKERFILE@ | { kf_x=; IFS= read -r kf_x; kf_l "$kf_x"; }
else
	kf_l absent
fi
# Each line: "dir ENTRIES PATH" or "file 0 PATH".
kf_s k8s-paths
for kf_p in @K8SPATHS@; do
	if [ -d "$kf_p" ]; then
		kf_n=0
		for kf_x in "$kf_p"/* "$kf_p"/.[!.]*; do if [ -e "$kf_x" ] || [ -L "$kf_x" ]; then kf_n=$((kf_n+1)); fi; done
		kf_l "dir $kf_n $kf_p"
	elif [ -e "$kf_p" ]; then
		kf_l "file 0 $kf_p"
	fi
done
# Each line: "kforge PATH" for a unit that carries kforge's marker, "other PATH" for any other.
kf_s units
kf_seen=" "
for kf_d in /etc/systemd/system /usr/local/lib/systemd/system /usr/lib/systemd/system /lib/systemd/system; do
	[ -d "$kf_d" ] || continue
	# /lib is /usr/lib on merged-/usr systems: look at each real directory once.
	kf_real=$(cd "$kf_d" 2>/dev/null && pwd -P)
	case $kf_seen in *" $kf_real "*) continue ;; esac
	kf_seen="$kf_seen$kf_real "
	for kf_u in @UNITS@; do
		kf_p=$kf_d/$kf_u.service
		[ -f "$kf_p" ] || continue
		kf_m=other
		while IFS= read -r kf_x; do
			case $kf_x in *"@UNITMARKER@"*) kf_m=kforge; break ;; esac
		done < "$kf_p"
		kf_l "$kf_m $kf_p"
	done
done
# Each line: "PID NAME".
kf_s processes
for kf_d in /proc/[0-9]*; do
	kf_x=; IFS= read -r kf_x 2>/dev/null < "$kf_d/comm" || continue
	case $kf_x in @PROCESSES@) kf_l "${kf_d#/proc/} $kf_x" ;; esac
done
kf_s end
`
