package preflight_test

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/kforge/kforge/config"
	"github.com/kforge/kforge/providers/lab/labtest"
	"github.com/kforge/kforge/provision/facts"
	"github.com/kforge/kforge/provision/preflight"
	"github.com/kforge/kforge/provision/remote"
	"github.com/kforge/kforge/provision/ssh"
	"github.com/kforge/kforge/provision/ssh/sshdtest"
)

var fixture = labtest.New("tprefl", 2)

func TestMain(m *testing.M) { os.Exit(fixture.Main(m)) }

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

// TestRealHosts probes two lab hosts and this machine (through a loopback sshd, as a sudo user) in one
// GatherAll, one SSH session each, and checks the findings a cluster of them gets.
func TestRealHosts(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root: starts sshd and creates a user with sudo rights")
	}
	l := fixture.Get(t)

	u := sshdtest.SystemUser(t, sshdtest.SudoNoPassword)
	srv := sshdtest.Start(t, sshdtest.Options{Users: []*sshdtest.User{u}})
	d := &ssh.Dialer{KnownHostsFile: filepath.Join(t.TempDir(), "known_hosts"), UserKnownHostsFile: srv.WriteKnownHosts(t), ConnectAttempts: 3}
	clients := []*ssh.Client{dial(t, d, ssh.Target{Name: "this-machine", Address: srv.Host, Port: srv.Port, User: u.Name,
		PrivateKeyFile: u.KeyFile, HostKeyPolicy: config.HostKeyStrict, Sudo: true, ConnectTimeout: 5 * time.Second})}
	for _, h := range l.Hosts {
		clients = append(clients, dial(t, d, ssh.TargetFor(l.ConfigHost(h))))
	}
	runners := make([]remote.Runner, len(clients))
	for i, c := range clients {
		runners[i] = c
	}

	operator := time.Now()
	var cache facts.Cache
	all, err := cache.GatherAll(context.Background(), runners, 8)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range clients {
		if n := c.Sessions(); n != 1 {
			t.Errorf("%s: %d SSH sessions, want 1", c.Host(), n)
		}
	}

	cp, w := l.Hosts[0].Name, l.Hosts[1].Name
	cluster := &config.Cluster{Name: "tprefl", Security: config.DefaultSecurity(), KubernetesVersion: config.Version{Major: 1, Minor: 37, Patch: 2},
		APIServer: config.APIServer{Port: 6443}, Kubelet: config.Kubelet{FailCgroupV1: true}, KubeProxy: config.KubeProxy{Mode: "iptables"},
		Hosts: []config.Host{
			{Name: cp, Roles: []config.Role{config.RoleControlPlane, config.RoleEtcd}},
			{Name: w, Roles: []config.Role{config.RoleWorker}},
			{Name: "this-machine", Roles: []config.Role{config.RoleWorker}},
		}}
	findings := preflight.Run(preflight.Input{Cluster: cluster, Facts: all, OperatorTime: operator})
	if len(findings) != 3*len(preflight.Checks()) {
		t.Fatalf("%d findings", len(findings))
	}

	// Lab hosts (notes/lab-hosts.md): ready for Kubernetes but for cgroup v1, and without DMI.
	labExceptions := map[string]preflight.Severity{"cgroup-v1": preflight.SeverityError, "unique-product-uuid": preflight.SeveritySkipped}
	// This machine: what it is decides what it must show.
	_, systemdErr := os.Stat("/run/systemd/system")
	var st unix.Statfs_t
	v1 := unix.Statfs("/sys/fs/cgroup", &st) == nil && st.Type != unix.CGROUP2_SUPER_MAGIC
	machine := map[string]preflight.Severity{"probe": preflight.SeverityOK, "arch": preflight.SeverityOK, "overlayfs": preflight.SeverityOK,
		"unique-hostname": preflight.SeverityOK, "unique-machine-id": preflight.SeverityOK, "clock-skew": preflight.SeverityOK,
		"systemd": preflight.SeverityOK, "cgroup-v1": preflight.SeverityOK}
	if systemdErr != nil {
		machine["systemd"] = preflight.SeverityError
	}
	if v1 {
		machine["cgroup-v1"] = preflight.SeverityError
	}
	systemdPath := "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
	if err := exec.Command("sh", "-c", systemdPath+" command -v iptables-restore && command -v ip && command -v mount").Run(); err != nil {
		machine["binaries"] = preflight.SeverityError
	}

	for _, f := range findings {
		switch f.Host {
		case cp, w:
			want, ok := labExceptions[f.ID]
			if !ok {
				want = preflight.SeverityOK
			}
			if f.Severity != want {
				t.Errorf("%s %s: %s (%s), want %s", f.Host, f.ID, f.Severity, f.Detail, want)
			}
		case "this-machine":
			if want, ok := machine[f.ID]; ok && f.Severity != want {
				t.Errorf("this machine %s: %s (%s), want %s", f.ID, f.Severity, f.Detail, want)
			}
		default:
			t.Errorf("finding for %q", f.Host)
		}
		t.Logf("%-12s %-20s %-8s %s", f.Host, f.ID, f.Severity, f.Detail)
	}

	// With fail_cgroup_v1 = false the lab hosts pass: only warnings are left there.
	cluster.Kubelet.FailCgroupV1 = false
	for _, f := range preflight.Run(preflight.Input{Cluster: cluster, Facts: all, OperatorTime: operator}) {
		if (f.Host == cp || f.Host == w) && f.Severity == preflight.SeverityError {
			t.Errorf("%s %s: %s", f.Host, f.ID, f.Detail)
		}
		if f.ID == "cgroup-v1" && f.Host == cp && f.Severity != preflight.SeverityWarning {
			t.Errorf("cgroup-v1 with fail_cgroup_v1 = false: %+v", f)
		}
	}

	// The cache answers a second step of the same run without a round trip.
	if again, err := cache.GatherAll(context.Background(), runners, 8); err != nil || again[cp] != all[cp] {
		t.Errorf("second GatherAll: %v", err)
	}
	for _, c := range clients {
		if n := c.Sessions(); n != 1 {
			t.Errorf("%s: %d SSH sessions after the second GatherAll", c.Host(), n)
		}
	}
}
