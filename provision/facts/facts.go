// Package facts finds out what each host is, in one SSH round trip per host: a POSIX sh probe (Script), its
// parser (Parse) and the per-run Cache; provision/preflight judges the result, plan and apply build on it.
package facts

import (
	"path"
	"slices"
	"time"
)

// Facts is what one probe found on a host. Sizes are bytes. A nil group, an empty string or a zero number
// means "unknown": the probe could not find out (Unavailable says why), which is never the same as "absent".
type Facts struct {
	// Host is the host's name in the configuration (set by Gather; empty for parsed output).
	Host string `json:"host,omitempty"`
	// ProbeStarted is the operator's clock when the probe was sent, the reference for the host's clock;
	// ProbeDuration is the whole round trip, which bounds the error of that comparison.
	ProbeStarted  time.Time     `json:"probe_started,omitzero"`
	ProbeDuration time.Duration `json:"probe_duration,omitempty"`

	// Root says the probe ran as uid 0, as it must for the overlay test mount and root-only files.
	Root bool `json:"root"`
	// Time is the host's clock as the probe started.
	Time time.Time `json:"time,omitzero"`

	OS            *OSRelease `json:"os,omitempty"`
	KernelRelease string     `json:"kernel_release,omitempty"` // uname -r
	Architecture  string     `json:"architecture,omitempty"`   // uname -m: x86_64, aarch64, …
	Hostname      string     `json:"hostname,omitempty"`       // the kernel's host name, which the kubelet would use
	MachineID     string     `json:"machine_id,omitempty"`     // /etc/machine-id
	ProductUUID   string     `json:"product_uuid,omitempty"`   // DMI product_uuid; empty on hosts without DMI (containers, many ARM boards)
	CPUs          int        `json:"cpus,omitempty"`           // online CPUs
	MemoryBytes   int64      `json:"memory_bytes,omitempty"`   // MemTotal

	Swap       *Swap       `json:"swap,omitempty"`
	Init       *Init       `json:"init,omitempty"`
	Cgroups    *Cgroups    `json:"cgroups,omitempty"`
	Namespaces *Namespaces `json:"namespaces,omitempty"`
	Overlay    *Overlay    `json:"overlay,omitempty"`
	// KernelConfig is nil when no kernel config is readable (no /proc/config.gz, no /boot/config-RELEASE).
	KernelConfig *KernelConfig `json:"kernel_config,omitempty"`
	Modules      *Modules      `json:"modules,omitempty"`
	// Sysctls holds the probed kernel settings by dotted name (net.ipv4.ip_forward); a name that is missing
	// from a non-nil map does not exist on the host (for net.bridge.*: br_netfilter is not loaded).
	Sysctls   map[string]Sysctl `json:"sysctls,omitempty"`
	Listeners *Listeners        `json:"listeners,omitempty"`
	// Binaries maps each looked-up program to its path on the PATH systemd gives services, "" when not found.
	Binaries   map[string]string `json:"binaries,omitempty"`
	Disk       *Disk             `json:"disk,omitempty"`
	Kubernetes *Kubernetes       `json:"kubernetes,omitempty"`

	// Unavailable lists the probe's sections it could not read, with the reason, for the record.
	Unavailable map[string]string `json:"unavailable,omitempty"`
}

// OSRelease is the part of os-release(5) that identifies the distribution.
type OSRelease struct {
	ID              string   `json:"id,omitempty"`
	IDLike          []string `json:"id_like,omitempty"`
	VersionID       string   `json:"version_id,omitempty"`
	VersionCodename string   `json:"version_codename,omitempty"`
	PrettyName      string   `json:"pretty_name,omitempty"`
}

// Swap is the active swap space, from /proc/swaps (what the kubelet itself looks at).
type Swap struct {
	Devices    []SwapDevice `json:"devices"`
	TotalBytes int64        `json:"total_bytes"`
}

// On reports whether any swap is active.
func (s *Swap) On() bool { return s != nil && len(s.Devices) > 0 }

// SwapDevice is one line of /proc/swaps.
type SwapDevice struct {
	Path      string `json:"path"`
	Type      string `json:"type"` // partition or file
	SizeBytes int64  `json:"size_bytes"`
	UsedBytes int64  `json:"used_bytes"`
}

// Init is what runs as PID 1.
type Init struct {
	// PID1 is PID 1's command name (/proc/1/comm); PID1Path its executable, when readable.
	PID1     string `json:"pid1"`
	PID1Path string `json:"pid1_path,omitempty"`
	// SystemdBooted is sd_booted(3): /run/systemd/system exists.
	SystemdBooted bool `json:"systemd_booted"`
	// SystemdVersion is systemctl's version number (252), 0 when unknown; SystemdVersionText the whole line.
	SystemdVersion     int    `json:"systemd_version,omitempty"`
	SystemdVersionText string `json:"systemd_version_text,omitempty"`
}

// Systemd reports whether systemd runs as PID 1, which kforge needs for every unit it installs.
func (i *Init) Systemd() bool {
	if i == nil {
		return false
	}
	// systemd names itself "systemd" even when started as /sbin/init, and sd_booted confirms it.
	return (i.PID1 == "systemd" || path.Base(i.PID1Path) == "systemd") && i.SystemdBooted
}

// CgroupMode is how the cgroup hierarchies are mounted.
type CgroupMode string

const (
	// CgroupV1 is the legacy layout: one hierarchy per controller under a tmpfs at /sys/fs/cgroup.
	CgroupV1 CgroupMode = "v1"
	// CgroupHybrid is v1 plus an (often empty) cgroup2 hierarchy at /sys/fs/cgroup/unified; the kubelet treats
	// it as v1 because it only looks at the type of /sys/fs/cgroup.
	CgroupHybrid CgroupMode = "hybrid"
	// CgroupV2 is the unified hierarchy: cgroup2 mounted at /sys/fs/cgroup.
	CgroupV2 CgroupMode = "v2"
)

// Cgroups describes the host's control groups.
type Cgroups struct {
	Mode CgroupMode `json:"mode"`
	// FSType is the type of /sys/fs/cgroup (stat -fc %T): tmpfs for v1 and hybrid, cgroup2fs for v2.
	FSType string `json:"fs_type,omitempty"`
	// Controllers are the ones usable: on v1 and hybrid the mounted v1 hierarchies, on v2 the root's
	// cgroup.controllers. v1's blkio is what v2 calls io.
	Controllers []string `json:"controllers"`
	// KernelControllers are the ones the kernel has enabled (/proc/cgroups), mounted or not.
	KernelControllers []string `json:"kernel_controllers,omitempty"`
	// UnifiedControllers are, on hybrid hosts, those in the cgroup2 hierarchy at /sys/fs/cgroup/unified:
	// out of the kubelet's reach there.
	UnifiedControllers []string `json:"unified_controllers,omitempty"`
}

// Has reports whether controller c is usable.
func (c *Cgroups) Has(name string) bool { return c != nil && slices.Contains(c.Controllers, name) }

// V1 reports whether the kubelet sees cgroup v1 (v1 or hybrid).
func (c *Cgroups) V1() bool { return c != nil && (c.Mode == CgroupV1 || c.Mode == CgroupHybrid) }

// Namespaces are the namespace types the kernel offers (/proc/self/ns).
type Namespaces struct {
	Available []string `json:"available"`
	// MaxUserNamespaces is user.max_user_namespaces; 0 turns user namespaces off, -1 means unknown.
	MaxUserNamespaces int `json:"max_user_namespaces"`
}

// Has reports whether namespace type n is available.
func (n *Namespaces) Has(name string) bool { return n != nil && slices.Contains(n.Available, name) }

// Overlay is what the probe learned about overlayfs, which containerd's default snapshotter needs.
type Overlay struct {
	// Listed says /proc/filesystems names overlay; a kernel with overlay as a module lists it only once loaded.
	Listed bool `json:"listed"`
	// MountTest is "ok" or "failed" for the test mount (as root, in a fresh directory under Disk.Path that is
	// removed again), "" when it could not run (NotRun says why).
	MountTest string `json:"mount_test,omitempty"`
	// MountDir is the test's directory, which the probe removed again.
	MountDir   string `json:"mount_dir,omitempty"`
	MountError string `json:"mount_error,omitempty"`
	NotRun     string `json:"not_run,omitempty"`
}

// Mount test results.
const (
	MountOK     = "ok"
	MountFailed = "failed"
)

// KernelConfig is the kernel's build configuration, limited to the options KernelOptions names.
type KernelConfig struct {
	// Source is the file it was read from: /proc/config.gz, /boot/config-RELEASE or /lib/modules/RELEASE/config.
	Source string `json:"source"`
	// Options maps names without the CONFIG_ prefix to their value (y, m, or a number or string); options
	// that are not set are absent.
	Options map[string]string `json:"options"`
}

// Enabled reports whether option is built in (y) or a module (m).
func (k *KernelConfig) Enabled(option string) bool {
	if k == nil {
		return false
	}
	v := k.Options[option]
	return v == "y" || v == "m"
}

// Modules says which of the kernel modules kforge cares about (ModuleNames) the host has and how.
type Modules struct {
	// Support says the kernel can load modules at all (/proc/modules exists); Dir says
	// /lib/modules/RELEASE exists. Without either, only what is built in is there.
	Support bool `json:"support"`
	Dir     bool `json:"dir"`
	// Loaded lists every loaded module (/proc/modules); Builtin and Loadable only those of ModuleNames.
	Loaded   []string `json:"loaded"`
	Builtin  []string `json:"builtin"`
	Loadable []string `json:"loadable"`
}

// Available reports whether module name is loaded, built in, or can be loaded.
func (m *Modules) Available(name string) bool {
	if m == nil {
		return false
	}
	loadable := m.Support && m.Dir && slices.Contains(m.Loadable, name)
	return slices.Contains(m.Loaded, name) || slices.Contains(m.Builtin, name) || loadable
}

// Sysctl is one kernel setting.
type Sysctl struct {
	Value string `json:"value"`
	// Writable says root may change it here (false when /proc/sys is mounted read-only, as in many containers).
	Writable bool `json:"writable"`
}

// Listeners are the host's listening sockets.
type Listeners struct {
	// Source is "ss" (with the owning processes) or "proc" (/proc/net, without them).
	Source  string     `json:"source"`
	Sockets []Listener `json:"sockets"`
}

// Listener is one listening TCP socket or bound UDP socket.
type Listener struct {
	Proto   string `json:"proto"` // tcp or udp
	Address string `json:"address"`
	Port    int    `json:"port"`
	// Process and PID name the owner, when known.
	Process string `json:"process,omitempty"`
	PID     int    `json:"pid,omitempty"`
}

// Disk is the filesystem that holds /var/lib, where containerd, the kubelet and etcd keep their data.
type Disk struct {
	Path           string `json:"path"`
	FSType         string `json:"fs_type,omitempty"`
	TotalBytes     int64  `json:"total_bytes"`
	AvailableBytes int64  `json:"available_bytes"`
}

// Kubernetes is what of an existing Kubernetes installation the host shows, kforge's or another's.
type Kubernetes struct {
	// KforgeManaged says MarkerFile exists: kforge installed what is here. KforgeMarker is its first line.
	KforgeManaged bool   `json:"kforge_managed"`
	KforgeMarker  string `json:"kforge_marker,omitempty"`
	// Paths are the existing ones of KubernetesPaths.
	Paths []PathInfo `json:"paths,omitempty"`
	// Units are the existing unit files of the services in UnitNames.
	Units []UnitFile `json:"units,omitempty"`
	// Processes are the running processes whose names are in ProcessNames.
	Processes []Process `json:"processes,omitempty"`
}

// PathInfo is an existing file or directory.
type PathInfo struct {
	Path    string `json:"path"`
	Dir     bool   `json:"dir"`
	Entries int    `json:"entries,omitempty"` // directories: how many entries
}

// UnitFile is a systemd unit file.
type UnitFile struct {
	Path string `json:"path"`
	// KforgeMarker says the file contains UnitMarker, i.e. kforge wrote it.
	KforgeMarker bool `json:"kforge_marker"`
}

// Process is a running process.
type Process struct {
	PID  int    `json:"pid"`
	Name string `json:"name"`
}
