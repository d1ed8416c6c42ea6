package preflight

import (
	"fmt"
	"slices"
	"strings"

	"github.com/kforge/kforge/provision/facts"
)

// checkCgroupControllers: kubelet hosts. The kubelet needs cpu, cpuset, memory and pids (it refuses to start
// without a pids hierarchy); on v1 also cpuacct, and runc needs devices and freezer. blkio/io and hugetlb are
// optional: their absence is noted, not flagged.
func checkCgroupControllers(t Target) Result {
	if r, skip := noKubelet(t); skip {
		return r
	}
	cg := t.Facts.Cgroups
	if cg == nil {
		return unknown(t, "the cgroup controllers", "cgroup-mounts")
	}
	required := []string{"cpu", "cpuset", "memory", "pids"}
	optional := []string{"io", "hugetlb"}
	if cg.V1() {
		required = append(required, "cpuacct", "devices", "freezer")
		optional = []string{"blkio", "hugetlb"}
	}
	var missing, absent []string
	for _, c := range required {
		if !cg.Has(c) {
			missing = append(missing, c)
		}
	}
	for _, c := range optional {
		if !cg.Has(c) {
			absent = append(absent, c)
		}
	}
	if len(missing) > 0 {
		r := failure("cgroup %s without %s (controllers: %s)", cg.Mode, strings.Join(missing, ", "), strings.Join(cg.Controllers, " "))
		if slices.Contains(missing, "memory") && !slices.Contains(cg.KernelControllers, "memory") {
			r.Detail += "; the kernel has the memory controller turned off"
			r.Fix = "Add cgroup_enable=memory cgroup_memory=1 to the kernel command line (on a Raspberry Pi: /boot/cmdline.txt), then reboot."
		}
		return r
	}
	detail := fmt.Sprintf("cgroup %s: %s", cg.Mode, strings.Join(cg.Controllers, " "))
	if len(absent) > 0 {
		detail += fmt.Sprintf(" (no %s: optional)", strings.Join(absent, ", "))
	}
	return ok("%s", detail)
}

// checkCgroupV1: kubelet hosts, by Kubernetes version. From 1.35 the kubelet refuses cgroup v1 (hybrid
// included: it only looks at /sys/fs/cgroup) unless failCgroupV1 is false: an error, or a warning when the
// cluster sets fail_cgroup_v1 = false and kforge writes that into the kubelet configuration. From 1.31 (cgroup
// v1 in maintenance mode) a warning; before that, fine.
func checkCgroupV1(t Target) Result {
	if r, skip := noKubelet(t); skip {
		return r
	}
	cg := t.Facts.Cgroups
	if cg == nil {
		return unknown(t, "the cgroup version", "cgroup-fstype")
	}
	if !cg.V1() {
		return ok("cgroup v2")
	}
	what := "cgroup v1"
	if cg.Mode == facts.CgroupHybrid {
		what = "cgroup v1 (hybrid: the kubelet does not use the v2 hierarchy at /sys/fs/cgroup/unified)"
	}
	v := t.Cluster.KubernetesVersion
	switch {
	case v.AtLeast(1, 35) && t.Cluster.Kubelet.FailCgroupV1:
		return failure("%s: the kubelet of Kubernetes %s refuses to start on cgroup v1 hosts (failCgroupV1 is true)", what, v)
	case v.AtLeast(1, 35):
		return Result{Severity: SeverityWarning,
			Detail: fmt.Sprintf("%s: kforge writes failCgroupV1: false into the kubelet configuration (fail_cgroup_v1 = false), so Kubernetes %s runs here, on a cgroup version it no longer maintains", what, v),
			Fix:    "Move the host to cgroup v2 (systemd.unified_cgroup_hierarchy=1 on the kernel command line) before cgroup v1 support is removed."}
	case v.AtLeast(1, 31):
		return Result{Severity: SeverityWarning, Detail: fmt.Sprintf("%s: in maintenance mode since Kubernetes 1.31", what),
			Fix: "Move the host to cgroup v2 (systemd.unified_cgroup_hierarchy=1 on the kernel command line)."}
	}
	return ok("%s", what)
}

// checkNamespaces: kubelet hosts. mnt, uts, ipc, pid and net are required; cgroup namespaces too on cgroup v2
// (containerd and runc give every container its own there); user namespaces are optional (warning: pods with
// hostUsers: false cannot run).
func checkNamespaces(t Target) Result {
	if r, skip := noKubelet(t); skip {
		return r
	}
	ns := t.Facts.Namespaces
	if ns == nil {
		return unknown(t, "the namespaces", "namespaces")
	}
	required := []string{"mnt", "uts", "ipc", "pid", "net"}
	v2 := t.Facts.Cgroups != nil && !t.Facts.Cgroups.V1()
	if v2 {
		required = append(required, "cgroup")
	}
	var missing []string
	for _, n := range required {
		if !ns.Has(n) {
			missing = append(missing, n)
		}
	}
	if len(missing) > 0 {
		return failure("no %s namespaces (has: %s)", strings.Join(missing, ", "), strings.Join(ns.Available, " "))
	}
	var notes []string
	if !v2 && !ns.Has("cgroup") {
		notes = append(notes, "no cgroup namespaces (containers see the host's cgroup paths)")
	}
	switch {
	case !ns.Has("user"):
		notes = append(notes, "no user namespaces")
	case ns.MaxUserNamespaces == 0:
		notes = append(notes, "user namespaces turned off (user.max_user_namespaces = 0)")
	}
	if len(notes) > 0 {
		return Result{Severity: SeverityWarning, Detail: strings.Join(notes, "; ") + ": pods with hostUsers: false cannot run",
			Fix: "Nothing is needed to start; for user-namespaced pods, set user.max_user_namespaces above 0 on a kernel that has them."}
	}
	return ok("%s", strings.Join(ns.Available, " "))
}

// checkOverlay: kubelet hosts; containerd's default snapshotter needs overlayfs with upper directories under
// /var/lib. The probe's real test mount decides; without it, /proc/filesystems or a loadable module.
func checkOverlay(t Target) Result {
	if r, skip := noKubelet(t); skip {
		return r
	}
	o := t.Facts.Overlay
	if o == nil {
		return unknown(t, "whether overlayfs works", "overlay-mount")
	}
	where := "/var/lib"
	if d := t.Facts.Disk; d != nil {
		where = d.Path
		if d.FSType != "" {
			where += " (" + d.FSType + ")"
		}
	}
	switch o.MountTest {
	case facts.MountOK:
		if o.Listed {
			return ok("a test mount under %s worked", where)
		}
		return ok("a test mount under %s worked (overlay was loaded as a module for it)", where)
	case facts.MountFailed:
		first, _, _ := strings.Cut(o.MountError, "\n")
		r := failure("a test mount of overlayfs under %s failed: %s", where, first)
		if !o.Listed {
			r.Detail += "; overlay is not in /proc/filesystems"
		}
		return r
	}
	switch {
	case o.Listed:
		return ok("overlay is in /proc/filesystems (no test mount: %s)", o.NotRun)
	case t.Facts.Modules.Available("overlay"):
		return ok("the overlay module can be loaded (no test mount: %s)", o.NotRun)
	}
	return failure("overlay is neither in /proc/filesystems nor a loadable module, and no test mount was possible (%s)", o.NotRun)
}

// checkSwap: kubelet hosts. The kubelet refuses to start with swap on (failSwapOn); a warning instead when
// the cluster passes fail-swap-on=false to it.
func checkSwap(t Target) Result {
	if r, skip := noKubelet(t); skip {
		return r
	}
	s := t.Facts.Swap
	if s == nil {
		return unknown(t, "whether swap is on", "swaps")
	}
	if !s.On() {
		return ok("off")
	}
	var devs []string
	for _, d := range s.Devices {
		devs = append(devs, fmt.Sprintf("%s (%s, %s)", d.Path, d.Type, size(d.SizeBytes)))
	}
	detail := "on: " + strings.Join(devs, ", ")
	if strings.EqualFold(t.Cluster.Kubelet.ExtraArgs["fail-swap-on"], "false") {
		return Result{Severity: SeverityWarning, Detail: detail + "; the kubelet runs with fail-swap-on=false, as configured",
			Fix: "Nothing is needed; turn swap off if pods should not be swapped out."}
	}
	return failure("%s: the kubelet refuses to start with swap on", detail)
}
