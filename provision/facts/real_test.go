package facts_test

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/kforge/kforge/config"
	"github.com/kforge/kforge/providers/lab"
	"github.com/kforge/kforge/providers/lab/labtest"
	"github.com/kforge/kforge/provision/facts"
	"github.com/kforge/kforge/provision/remote"
	"github.com/kforge/kforge/provision/ssh"
	"github.com/kforge/kforge/provision/ssh/sshdtest"
)

var (
	fixture = labtest.New("tfacts", 2)
	record  = flag.Bool("record", false, "write what the real hosts answered to testdata/ (the recorded fixtures)")
)

func TestMain(m *testing.M) { os.Exit(fixture.Main(m)) }

// recorder keeps the raw output of the probe, for the recorded fixtures.
type recorder struct {
	remote.Runner
	mu  sync.Mutex
	out []byte
}

func (r *recorder) Run(ctx context.Context, cmd remote.Command) (remote.Result, error) {
	res, err := r.Runner.Run(ctx, cmd)
	r.mu.Lock()
	r.out = res.Stdout
	r.mu.Unlock()
	return res, err
}

// saveRecording writes a recorded fixture: a header saying where it comes from, then the probe's output.
func saveRecording(t *testing.T, name, host string, altered []string, out []byte) {
	t.Helper()
	if !*record {
		return
	}
	var b bytes.Buffer
	fmt.Fprintf(&b, "# RECORDED: the output of facts.Script() on a real host, as it answered.\n")
	fmt.Fprintf(&b, "# Host: %s.\n", host)
	for _, l := range altered {
		fmt.Fprintf(&b, "# %s\n", l)
	}
	fmt.Fprintf(&b, "# Recorded %s by `go test ./provision/facts -run '%s' -record`.\n", time.Now().UTC().Format("2006-01-02"), t.Name())
	b.Write(out)
	path := filepath.Join("testdata", name+".txt")
	if err := os.WriteFile(path, b.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("recorded %s", path)
}

func needRoot(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root: starts sshd and creates a user with sudo rights")
	}
}

// loopback logs in to this machine through a fresh sshd, as a throw-away user with passwordless sudo, the
// way kforge reaches a host whose SSH user is not root.
func loopback(t *testing.T) (*ssh.Client, *sshdtest.Server) {
	t.Helper()
	needRoot(t)
	u := sshdtest.SystemUser(t, sshdtest.SudoNoPassword)
	srv := sshdtest.Start(t, sshdtest.Options{Users: []*sshdtest.User{u}})
	d := &ssh.Dialer{KnownHostsFile: filepath.Join(t.TempDir(), "known_hosts"), UserKnownHostsFile: srv.WriteKnownHosts(t), ConnectAttempts: 2}
	return dial(t, d, ssh.Target{Name: "this-machine", Address: srv.Host, Port: srv.Port, User: u.Name, PrivateKeyFile: u.KeyFile,
		HostKeyPolicy: config.HostKeyStrict, Sudo: true, ConnectTimeout: 5 * time.Second}), srv
}

func labClient(t *testing.T, l *lab.Lab, h lab.Host) *ssh.Client {
	t.Helper()
	d := &ssh.Dialer{KnownHostsFile: filepath.Join(t.TempDir(), "known_hosts"), ConnectAttempts: 3}
	return dial(t, d, ssh.TargetFor(l.ConfigHost(h)))
}

func dial(t *testing.T, d *ssh.Dialer, target ssh.Target) *ssh.Client {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c, err := d.Dial(ctx, target)
	if err != nil {
		t.Fatalf("dial %s: %v", target.Name, err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// gather probes through c and checks that it took exactly one SSH session.
func gather(t *testing.T, c *ssh.Client) (*facts.Facts, []byte) {
	t.Helper()
	before := c.Sessions()
	rec := &recorder{Runner: c}
	f, err := facts.Gather(context.Background(), rec)
	if err != nil {
		t.Fatalf("gather %s: %v", c.Host(), err)
	}
	if n := c.Sessions() - before; n != 1 {
		t.Errorf("%s: the probe took %d SSH sessions, want 1", c.Host(), n)
	}
	return f, rec.out
}

func readTrim(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(string(b))
}

// TestProbeThisMachine probes this machine over a loopback sshd and compares what the probe says with what
// the test reads here directly.
func TestProbeThisMachine(t *testing.T) {
	c, srv := loopback(t)
	f, out := gather(t, c)
	osName := "this machine"
	if f.OS != nil {
		osName += " (" + f.OS.PrettyName + ", kernel " + f.KernelRelease + ")"
	}
	saveRecording(t, "this-machine", osName+" through a loopback sshd (sshdtest), logged in as a throw-away user with passwordless sudo",
		nil, out)

	if !f.Root {
		t.Error("the probe did not run as root through sudo")
	}
	if want := readTrim(t, "/proc/sys/kernel/hostname"); f.Hostname != want {
		t.Errorf("hostname %q, want %q", f.Hostname, want)
	}
	if want := readTrim(t, "/proc/sys/kernel/osrelease"); f.KernelRelease != want {
		t.Errorf("kernel %q, want %q", f.KernelRelease, want)
	}
	if want := readTrim(t, "/etc/machine-id"); f.MachineID != want {
		t.Errorf("machine-id %q, want %q", f.MachineID, want)
	}
	var uts unix.Utsname
	if err := unix.Uname(&uts); err != nil {
		t.Fatal(err)
	}
	if want := unix.ByteSliceToString(uts.Machine[:]); f.Architecture != want {
		t.Errorf("architecture %q, want %q", f.Architecture, want)
	}
	if skew := f.Time.Sub(f.ProbeStarted); skew < -time.Second || skew > 5*time.Second {
		t.Errorf("host time %v vs probe start %v", f.Time, f.ProbeStarted)
	}
	if f.CPUs != runtime.NumCPU() {
		t.Errorf("CPUs %d, want %d", f.CPUs, runtime.NumCPU())
	}
	var si unix.Sysinfo_t
	if err := unix.Sysinfo(&si); err != nil {
		t.Fatal(err)
	}
	if want := int64(si.Totalram) * int64(si.Unit); f.MemoryBytes < want-8<<20 || f.MemoryBytes > want+8<<20 {
		t.Errorf("memory %d, want about %d", f.MemoryBytes, want)
	}
	swaps := strings.Split(readTrim(t, "/proc/swaps"), "\n")
	if f.Swap == nil || f.Swap.On() != (len(swaps) > 1) {
		t.Errorf("swap %+v, /proc/swaps %q", f.Swap, swaps)
	}
	if want := readTrim(t, "/proc/1/comm"); f.Init == nil || f.Init.PID1 != want {
		t.Errorf("init %+v, want PID 1 %q", f.Init, want)
	}
	_, err := os.Stat("/run/systemd/system")
	if f.Init.Systemd() != (err == nil) {
		t.Errorf("systemd as PID 1: %v, /run/systemd/system: %v", f.Init.Systemd(), err)
	}
	var st unix.Statfs_t
	if err := unix.Statfs("/sys/fs/cgroup", &st); err != nil {
		t.Fatal(err)
	}
	wantMode := facts.CgroupV1
	if st.Type == unix.CGROUP2_SUPER_MAGIC {
		wantMode = facts.CgroupV2
	} else if err := unix.Statfs("/sys/fs/cgroup/unified", &st); err == nil && st.Type == unix.CGROUP2_SUPER_MAGIC {
		wantMode = facts.CgroupHybrid
	}
	if f.Cgroups == nil || f.Cgroups.Mode != wantMode {
		t.Errorf("cgroups %+v, want mode %s", f.Cgroups, wantMode)
	}
	if fs, _ := os.ReadFile("/proc/filesystems"); bytes.Contains(fs, []byte("\toverlay\n")) {
		if f.Overlay == nil || !f.Overlay.Listed || f.Overlay.MountTest != facts.MountOK {
			t.Errorf("overlay %+v", f.Overlay)
		}
	}
	// The sshd the probe came through is listening, and ss names it.
	if f.Listeners == nil || !slices.ContainsFunc(f.Listeners.Sockets, func(l facts.Listener) bool {
		return l.Port == srv.Port && l.Address == srv.Host && l.Process == "sshd"
	}) {
		t.Errorf("listeners %+v, want sshd on %s", f.Listeners, srv.Addr)
	}
	if f.Binaries["mount"] == "" || f.Binaries["nsenter"] == "" {
		t.Errorf("binaries %v", f.Binaries)
	}
	if err := unix.Statfs("/var/lib", &st); err != nil {
		t.Fatal(err)
	}
	if want := int64(st.Bavail) * st.Bsize; f.Disk == nil || f.Disk.Path != "/var/lib" || f.Disk.AvailableBytes < want-256<<20 || f.Disk.AvailableBytes > want+256<<20 {
		t.Errorf("disk %+v, want about %d bytes available", f.Disk, want)
	}
	assertNoOverlayLeftovers(t, f.Overlay)
}

// assertNoOverlayLeftovers checks that the overlay test mount left nothing on this machine. Only the probe's
// own directory: other tests may be probing this machine at the same time.
func assertNoOverlayLeftovers(t *testing.T, o *facts.Overlay) {
	t.Helper()
	if o == nil || !strings.HasPrefix(o.MountDir, "/var/lib/.kforge-overlay.") {
		t.Fatalf("overlay test directory: %+v", o)
	}
	if _, err := os.Lstat(o.MountDir); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("left behind: %s (%v)", o.MountDir, err)
	}
	if mi, _ := os.ReadFile("/proc/self/mountinfo"); bytes.Contains(mi, []byte(o.MountDir)) {
		t.Error("the overlay test mount is still mounted")
	}
}

// TestProbeLabHosts probes real systemd hosts through the Cache: one session per host, none the second time.
func TestProbeLabHosts(t *testing.T) {
	l := fixture.Get(t)
	clients := make([]*ssh.Client, len(l.Hosts))
	recs := make([]remote.Runner, len(l.Hosts))
	for i, h := range l.Hosts {
		clients[i] = labClient(t, l, h)
		recs[i] = &recorder{Runner: clients[i]}
	}
	var cache facts.Cache
	all, err := cache.GatherAll(context.Background(), recs, 4)
	if err != nil {
		t.Fatal(err)
	}
	again, err := cache.GatherAll(context.Background(), recs, 4)
	if err != nil {
		t.Fatal(err)
	}
	ids := map[string]string{}
	for i, h := range l.Hosts {
		if n := clients[i].Sessions(); n != 1 {
			t.Errorf("%s: %d SSH sessions for two GatherAll calls, want 1", h.Name, n)
		}
		f := all[h.Name]
		if f == nil || again[h.Name] != f {
			t.Fatalf("%s: facts %p, cached %p", h.Name, f, again[h.Name])
		}
		if got, ok := cache.Get(h.Name); !ok || got != f {
			t.Errorf("%s: Get = %p, %v", h.Name, got, ok)
		}
		saveRecording(t, fmt.Sprintf("lab-host-%d", i+1), fmt.Sprintf("lab host %s of `kforge lab` (systemd-nspawn, the Debian 12 image of providers/lab) on this machine, logged in as root", h.Name),
			nil, recs[i].(*recorder).out)
		assertLabHost(t, h, f)
		if other, dup := ids[f.MachineID]; dup {
			t.Errorf("%s and %s share machine-id %s", h.Name, other, f.MachineID)
		}
		ids[f.MachineID] = h.Name
	}
}

// assertLabHost checks what notes/lab-hosts.md measured on lab hosts.
func assertLabHost(t *testing.T, h lab.Host, f *facts.Facts) {
	t.Helper()
	if !f.Root || f.Hostname != h.Name || f.OS == nil || f.OS.ID != "debian" || f.OS.VersionID != "12" {
		t.Errorf("%s: root %v, hostname %q, os %+v", h.Name, f.Root, f.Hostname, f.OS)
	}
	if !f.Init.Systemd() || f.Init.SystemdVersion < 252 {
		t.Errorf("%s: init %+v", h.Name, f.Init)
	}
	if f.Cgroups == nil || !f.Cgroups.V1() || f.Cgroups.FSType != "tmpfs" {
		t.Fatalf("%s: cgroups %+v", h.Name, f.Cgroups)
	}
	for _, c := range []string{"cpu", "cpuacct", "cpuset", "memory", "devices", "freezer", "blkio", "pids"} {
		if !f.Cgroups.Has(c) {
			t.Errorf("%s: no %s controller in %v", h.Name, c, f.Cgroups.Controllers)
		}
	}
	for _, c := range []string{"hugetlb", "net_cls", "perf_event"} {
		if f.Cgroups.Has(c) {
			t.Errorf("%s: %s controller present: %v", h.Name, c, f.Cgroups.Controllers)
		}
	}
	for _, ns := range []string{"cgroup", "ipc", "mnt", "net", "pid", "uts", "user"} {
		if !f.Namespaces.Has(ns) {
			t.Errorf("%s: no %s namespace: %+v", h.Name, ns, f.Namespaces)
		}
	}
	if f.Overlay == nil || !f.Overlay.Listed || f.Overlay.MountTest != facts.MountOK {
		t.Errorf("%s: overlay %+v", h.Name, f.Overlay)
	}
	// Built in, not modules: there is no /lib/modules, yet bridge netfilter is there.
	if f.KernelConfig == nil || f.KernelConfig.Source != "/proc/config.gz" || f.KernelConfig.Options["BRIDGE_NETFILTER"] != "y" || f.KernelConfig.Options["OVERLAY_FS"] != "y" {
		t.Errorf("%s: kernel config %+v", h.Name, f.KernelConfig)
	}
	if f.Modules == nil || f.Modules.Dir || len(f.Modules.Loadable) != 0 {
		t.Errorf("%s: modules %+v", h.Name, f.Modules)
	}
	for _, k := range []string{"net.ipv4.ip_forward", "net.bridge.bridge-nf-call-iptables"} {
		if s, ok := f.Sysctls[k]; !ok || !s.Writable {
			t.Errorf("%s: %s = %+v, %v", h.Name, k, s, ok)
		}
	}
	if s := f.Sysctls["user.max_user_namespaces"]; s.Writable {
		t.Errorf("%s: user.max_user_namespaces writable in a lab host", h.Name)
	}
	for _, b := range []string{"iptables", "nft", "ip", "mount", "nsenter", "conntrack", "socat", "ethtool"} {
		if f.Binaries[b] == "" {
			t.Errorf("%s: %s not found: %v", h.Name, b, f.Binaries)
		}
	}
	if f.Swap == nil || f.Swap.On() {
		t.Errorf("%s: swap %+v", h.Name, f.Swap)
	}
	if f.ProductUUID != "" {
		t.Errorf("%s: product_uuid %q in a container", h.Name, f.ProductUUID)
	}
	if f.Listeners == nil || !slices.ContainsFunc(f.Listeners.Sockets, func(l facts.Listener) bool { return l.Port == 22 && l.Process == "sshd" }) {
		t.Errorf("%s: listeners %+v", h.Name, f.Listeners)
	}
	if f.Kubernetes == nil || f.Kubernetes.KforgeManaged || len(f.Kubernetes.Paths)+len(f.Kubernetes.Units)+len(f.Kubernetes.Processes) != 0 {
		t.Errorf("%s: kubernetes %+v", h.Name, f.Kubernetes)
	}
	if f.Disk == nil || f.Disk.FSType != "tmpfs" || f.Disk.AvailableBytes <= 0 {
		t.Errorf("%s: disk %+v", h.Name, f.Disk)
	}
	if len(f.Unavailable) != 0 {
		// product-uuid is not probed where the file does not exist, so nothing should be missing.
		t.Errorf("%s: unavailable %v", h.Name, f.Unavailable)
	}
}

// alteration changes a lab host for one probe, and undoes it.
type alteration struct {
	name        string
	description []string // for the fixture's header
	setup, undo string
	check       func(t *testing.T, f *facts.Facts)
}

func alterations() []alteration {
	return []alteration{{
		name: "swap",
		description: []string{"Altered: /proc/swaps was covered (bind mount) by a crafted file that lists one 4 GiB swap file, /swap.img,",
			"which does not exist: the kernel has no swap here. Everything else is as the host answered. Undone after the probe."},
		setup: `printf 'Filename\t\t\t\tType\t\tSize\t\tUsed\t\tPriority\n/swap.img                               file\t\t4194300\t\t0\t\t-2\n' > /run/kforge-test-swaps
mount --bind /run/kforge-test-swaps /proc/swaps`,
		undo: `umount /proc/swaps; rm -f /run/kforge-test-swaps`,
		check: func(t *testing.T, f *facts.Facts) {
			if !f.Swap.On() || f.Swap.TotalBytes != 4194300*1024 || f.Swap.Devices[0].Path != "/swap.img" {
				t.Errorf("swap %+v", f.Swap)
			}
		},
	}, {
		name: "no-overlay",
		description: []string{"Altered: /proc/filesystems was covered (bind mount) by a copy without its overlay line, and /var/lib was made",
			"an overlay mount (upper and work directories on /run), so that the probe's real test mount, whose upper",
			"directory is under /var/lib, fails the way it does on a host without a usable overlayfs (here: the kernel",
			"refuses overlayfs as an upper directory). The mount error is the real one. Undone after the probe."},
		setup: `grep -v overlay /proc/filesystems > /run/kforge-test-filesystems
mkdir -p /run/kforge-test-varlib/upper /run/kforge-test-varlib/work
mount -t overlay kforge-test -o lowerdir=/var/lib,upperdir=/run/kforge-test-varlib/upper,workdir=/run/kforge-test-varlib/work /var/lib
mount --bind /run/kforge-test-filesystems /proc/filesystems`,
		undo: `umount /proc/filesystems; umount /var/lib; rm -rf /run/kforge-test-filesystems /run/kforge-test-varlib`,
		check: func(t *testing.T, f *facts.Facts) {
			if f.Overlay.Listed || f.Overlay.MountTest != facts.MountFailed || f.Overlay.MountError == "" || f.Disk.FSType != "overlayfs" {
				t.Errorf("overlay %+v, disk %+v", f.Overlay, f.Disk)
			}
		},
	}, {
		name: "foreign",
		description: []string{"Altered: another Kubernetes was faked: /etc/kubernetes/manifests/kube-apiserver.yaml, a kubelet.service without",
			"kforge's marker, an empty /var/lib/etcd/member/snap/db, and socat listening on 6443/tcp and 30080/tcp (as",
			"transient units); /var/lib was a 1 GiB tmpfs for the probe (too little disk). Undone after the probe."},
		setup: `mount -t tmpfs -o size=1g kforge-test /var/lib
mkdir -p /etc/kubernetes/manifests /var/lib/etcd/member/snap
printf 'apiVersion: v1\nkind: Pod\nmetadata:\n  name: kube-apiserver\n  namespace: kube-system\n' > /etc/kubernetes/manifests/kube-apiserver.yaml
: > /var/lib/etcd/member/snap/db
printf '[Unit]\nDescription=kubelet\n[Service]\nExecStart=/usr/bin/kubelet\n' > /etc/systemd/system/kubelet.service
systemd-run --quiet --unit kforge-test-6443 socat TCP-LISTEN:6443,reuseaddr,fork OPEN:/dev/null
systemd-run --quiet --unit kforge-test-30080 socat TCP-LISTEN:30080,reuseaddr,fork OPEN:/dev/null
` + waitListening(6443, 30080),
		undo: `systemctl stop kforge-test-6443 kforge-test-30080; rm -rf /etc/kubernetes /etc/systemd/system/kubelet.service; umount /var/lib`,
		check: func(t *testing.T, f *facts.Facts) {
			for _, port := range []int{6443, 30080} {
				if !slices.ContainsFunc(f.Listeners.Sockets, func(l facts.Listener) bool { return l.Port == port && l.Process == "socat" }) {
					t.Errorf("no socat on %d: %+v", port, f.Listeners)
				}
			}
			k := f.Kubernetes
			if k.KforgeManaged || len(k.Paths) != 2 || k.Paths[0].Path != "/etc/kubernetes/manifests" || k.Paths[0].Entries != 1 ||
				k.Paths[1].Path != "/var/lib/etcd" || len(k.Units) != 1 || k.Units[0].KforgeMarker {
				t.Errorf("kubernetes %+v", k)
			}
			if f.Disk.TotalBytes != 1<<30 {
				t.Errorf("disk %+v", f.Disk)
			}
		},
	}, {
		name: "managed",
		description: []string{"Altered: a kforge installation was faked: /etc/kforge/managed (naming cluster tfacts), a kubelet.service that",
			"carries kforge's marker, /etc/kubernetes/manifests/kube-apiserver.yaml, and a copy of socat named",
			"kube-apiserver listening on 6443/tcp (a transient unit). Undone after the probe."},
		setup: `mkdir -p /etc/kforge /etc/kubernetes/manifests
echo tfacts > /etc/kforge/managed
printf 'apiVersion: v1\nkind: Pod\nmetadata:\n  name: kube-apiserver\n  namespace: kube-system\n' > /etc/kubernetes/manifests/kube-apiserver.yaml
printf '# Managed by kforge: changes are overwritten.\n[Unit]\nDescription=kubelet\n[Service]\nExecStart=/usr/local/bin/kubelet\n' > /etc/systemd/system/kubelet.service
cp /usr/bin/socat /usr/local/bin/kube-apiserver
systemd-run --quiet --unit kforge-test-apiserver /usr/local/bin/kube-apiserver TCP-LISTEN:6443,reuseaddr,fork OPEN:/dev/null
` + waitListening(6443),
		undo: `systemctl stop kforge-test-apiserver; rm -rf /etc/kforge /etc/kubernetes /etc/systemd/system/kubelet.service /usr/local/bin/kube-apiserver`,
		check: func(t *testing.T, f *facts.Facts) {
			k := f.Kubernetes
			if !k.KforgeManaged || k.KforgeMarker != "tfacts" || len(k.Units) != 1 || !k.Units[0].KforgeMarker ||
				!slices.ContainsFunc(k.Processes, func(p facts.Process) bool { return p.Name == "kube-apiserver" }) {
				t.Errorf("kubernetes %+v", k)
			}
			if !slices.ContainsFunc(f.Listeners.Sockets, func(l facts.Listener) bool { return l.Port == 6443 && l.Process == "kube-apiserver" }) {
				t.Errorf("listeners %+v", f.Listeners)
			}
		},
	}, {
		name: "ro-net",
		description: []string{"Altered: net.ipv4.ip_forward and net.bridge.bridge-nf-call-iptables were set to 0 and /proc/sys/net was",
			"remounted read-only, as in a container that may not change them. Undone after the probe."},
		setup: `cat /proc/sys/net/ipv4/ip_forward /proc/sys/net/bridge/bridge-nf-call-iptables > /run/kforge-test-sysctls
echo 0 > /proc/sys/net/ipv4/ip_forward
echo 0 > /proc/sys/net/bridge/bridge-nf-call-iptables
mount -o remount,bind,ro /proc/sys/net`,
		undo: `mount -o remount,bind,rw /proc/sys/net
{ read -r fwd; read -r br; } < /run/kforge-test-sysctls
echo "$fwd" > /proc/sys/net/ipv4/ip_forward
echo "$br" > /proc/sys/net/bridge/bridge-nf-call-iptables
rm -f /run/kforge-test-sysctls`,
		check: func(t *testing.T, f *facts.Facts) {
			for _, k := range []string{"net.ipv4.ip_forward", "net.bridge.bridge-nf-call-iptables"} {
				if s := f.Sysctls[k]; s.Value != "0" || s.Writable {
					t.Errorf("%s = %+v", k, s)
				}
			}
		},
	}}
}

func waitListening(ports ...int) string {
	var conds []string
	for _, p := range ports {
		conds = append(conds, fmt.Sprintf("ss -Htln | grep -q ':%d '", p))
	}
	return "i=0; until { " + strings.Join(conds, " && ") + "; }; do i=$((i+1)); [ $i -lt 100 ] || exit 1; sleep 0.05; done"
}

// TestProbeAlteredLabHost changes a lab host in ways real hosts differ (swap on, no overlayfs, another
// Kubernetes, read-only kernel settings), probes it, and puts it back.
func TestProbeAlteredLabHost(t *testing.T) {
	l := fixture.Get(t)
	h := l.Hosts[1]
	admin := labClient(t, l, h)
	ctx := context.Background()
	run := func(t *testing.T, script string) {
		t.Helper()
		if res, err := admin.Run(ctx, remote.Command{Script: "set -e\n" + script, Timeout: 30 * time.Second}); err != nil {
			t.Fatalf("%v\n%s", err, res.Stdout)
		}
	}
	baseline, _ := gather(t, labClient(t, l, h))
	for _, a := range alterations() {
		t.Run(a.name, func(t *testing.T) {
			run(t, a.setup)
			undone := false
			defer func() {
				if !undone {
					run(t, a.undo)
				}
			}()
			f, out := gather(t, labClient(t, l, h))
			run(t, a.undo)
			undone = true
			saveRecording(t, "lab-host-"+a.name, fmt.Sprintf("lab host %s of `kforge lab` (systemd-nspawn, the Debian 12 image of providers/lab) on this machine, logged in as root", h.Name),
				a.description, out)
			a.check(t, f)
			// Put back means the host answers as before.
			after, _ := gather(t, labClient(t, l, h))
			assertLabHost(t, h, after)
			if after.MachineID != baseline.MachineID {
				t.Errorf("machine-id changed")
			}
		})
	}
}
