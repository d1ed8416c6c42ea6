package state_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/kforge/kforge/config"
	"github.com/kforge/kforge/pki"
	"github.com/kforge/kforge/provision/artifacts"
	"github.com/kforge/kforge/provision/desired"
	"github.com/kforge/kforge/provision/plan"
	"github.com/kforge/kforge/provision/resource"
	"github.com/kforge/kforge/provision/state"
)

// writeState writes a state.json with the one resource m on host cp-1, as JSON spells it (control characters
// escaped), and returns the directory and the file.
func writeState(t *testing.T, m plan.Managed) (dir, file string, data []byte) {
	t.Helper()
	data, err := json.Marshal(map[string]any{"version": state.Version, "lineage": "l", "serial": 3,
		"hosts": map[string][]plan.Managed{"cp-1": {m}}})
	if err != nil {
		t.Fatal(err)
	}
	dir = t.TempDir()
	file = filepath.Join(dir, "state.json")
	if err := os.WriteFile(file, data, 0o600); err != nil {
		t.Fatal(err)
	}
	return dir, file, data
}

// TestLoadRefusesEntriesKforgeNeverWrites: refresh reads as root what the state names, and an apply removes
// what is no longer configured, so a crafted entry is refused at Load with the host, the entry and what is
// wrong; the file stays as it was.
func TestLoadRefusesEntriesKforgeNeverWrites(t *testing.T) {
	for _, tc := range []struct {
		kind, name, id string // id "" is kind:name
		want           string
	}{
		{"sysctl", "../../etc/shadow", "", `a sysctl name has no empty part`},
		{"sysctl", "kernel.x/../../..", "", `a sysctl name is parts of a-z, 0-9, '_' and '-' between dots, not "x/"`},
		{"sysctl", "net.ipv4.ip_forward\nP /etc/shadow", "", `not "ip_forward\nP /etc/shadow"`},
		{"sysctl", "net.ipv4.", "", "no empty part"},
		{"sysctl", "Net.IPv4.ip_forward", "", `not "Net"`},
		{"module", "../../etc", "", "a kernel module's name is"},
		{"module", "br_netfilter;reboot", "", "a kernel module's name is"},
		{"unit", "sshd", "", "not a systemd unit name"},
		{"unit", "../../etc/passwd.service", "", "not a systemd unit name"},
		{"unit", "-x.service", "", "not a systemd unit name"},
		{"unit", "kubelet.service\n--now", "", "not a systemd unit name"},
		{"unit", strings.Repeat("a", 250) + ".service", "", "not a systemd unit name"},
		{"user", "root", "", "root is never a user kforge made"},
		{"user", "Etcd", "", "a system user's name is"},
		{"user", "etcd$", "", "a system user's name is"},
		{"file", "etc/shadow", "", "the path is not absolute"},
		{"file", "/etc/kubernetes/../shadow", "", `the path is not clean (cleaned, it is "/etc/shadow")`},
		{"directory", "/etc/kubernetes/", "", "the path is not clean"},
		{"binary", "/usr/local/bin//kubelet", "", "the path is not clean"},
		{"symlink", "/", "", "the path is the root directory"},
		{"file", "/etc/a\x00b", "", "the path holds a control character"},
		{"file", "/etc/a\nb", "", "the path holds a control character"},
		{"file", "/etc/a\\b", "", "the path holds a backslash"},
		{"data", "/var/lib/etcd", "", `kind "data" is not one kforge manages`},
		{"link", "cni0", "", `kind "link" is not one kforge manages`},
		{"File", "/etc/a", "", `kind "File" is not one kforge manages`},
		{"file", "/etc/kubernetes/admin.conf", "file:/etc/shadow", `its id "file:/etc/shadow" is not "file:/etc/kubernetes/admin.conf"`},
		// Well-formed, but not kforge's to remove.
		{"file", "/etc/passwd", "", "/etc/passwd is not a file kforge places"},
		{"file", "/etc/kubernetes-old/admin.conf", "", "is not a file kforge places"},
		{"binary", "/usr/local/bin/helm", "", "/usr/local/bin/helm is not a file kforge places"},
		{"file", "/etc/systemd/system/ssh.service", "", "is not a file kforge places"},
		{"file", "/etc/sysctl.d/99-tuning.conf", "", "is not a file kforge places"},
		{"symlink", "/etc/systemd/system/multi-user.target.wants/ssh.service", "", "is not a file kforge places"},
		{"unit", "ssh.service", "", "ssh.service is not a unit kforge makes"},
		{"unit", "getty@tty1.service", "", "is not a unit kforge makes"},
		{"unit", "kubelet-evil.service", "", "is not a unit kforge makes"},
		{"user", "admin", "", "admin is not a user kforge makes"},
	} {
		id := tc.id
		if id == "" {
			id = tc.kind + ":" + tc.name
		}
		dir, file, data := writeState(t, plan.Managed{ID: id, Kind: tc.kind, Name: tc.name})
		s, err := state.Load(dir)
		entry := fmt.Sprintf("%s %q", tc.kind, tc.name)
		switch {
		case err == nil || s != nil:
			t.Errorf("%s: loaded", entry)
		case !strings.Contains(err.Error(), `state `+file+` cannot be read: host "cp-1": resource 1 (`+entry+`): `):
			t.Errorf("%s: the error does not name the file, the host and the entry: %v", entry, err)
		case !strings.Contains(err.Error(), tc.want):
			t.Errorf("%s:\n got %v\nwant %s", entry, err, tc.want)
		}
		if after, _ := os.ReadFile(file); !bytes.Equal(after, data) {
			t.Errorf("%s: state.json changed", entry)
		}
	}

	// The same resource twice, and a version recorded for a path no binary has.
	for doc, want := range map[string]string{
		`{"version": 1, "hosts": {"w-1": [{"id": "unit:kubelet.service", "kind": "unit", "name": "kubelet.service"},
		  {"id": "unit:kubelet.service", "kind": "unit", "name": "kubelet.service"}]}}`: `host "w-1": resource 2 (unit "kubelet.service") is listed twice`,
		`{"version": 1, "versions": {"w-1": {"../kubelet": "kubelet v1.37.2"}}}`: `host "w-1": the version of binary "../kubelet": the path is not absolute`,
	} {
		dir := t.TempDir()
		if err := os.WriteFile(filepath.Join(dir, "state.json"), []byte(doc), 0o600); err != nil {
			t.Fatal(err)
		}
		if _, err := state.Load(dir); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("got %v\nwant %s", err, want)
		}
	}
}

// TestLoadAcceptsWhatKforgeRecords: every resource kforge places on the hosts of the HA example (and the
// binaries an artifact set adds, snapshots and mirrors), and names of each kind as kforge would give them, load
// back: each is in a place resource.Owned lets kforge remove.
func TestLoadAcceptsWhatKforgeRecords(t *testing.T) {
	c, diags := config.NewLoader().Load(config.Options{Path: "../../examples/ha"})
	if diags.HasErrors() {
		t.Fatal(diags)
	}
	store, err := pki.OpenStore(filepath.Join(t.TempDir(), "pki"))
	if err != nil {
		t.Fatal(err)
	}
	changes, err := pki.Plan(pki.Catalog(c), store, c.PKI, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	// What the example leaves out: scheduled snapshots (to a directory of the user's) and registry mirrors.
	c.Etcd.Snapshots = &config.EtcdSnapshots{Schedule: "daily", Keep: 3, Dir: "/srv/etcd-backups"}
	c.Containerd.RegistryMirrors = map[string][]string{"docker.io": {"https://mirror.example"}, "_default": {"https://mirror.example"}}
	cidrs, err := desired.AssignPodCIDRs(c, nil)
	if err != nil {
		t.Fatal(err)
	}
	hosts, err := desired.Build(desired.Input{Cluster: c, Store: store, PKIChanges: changes, Artifacts: artifactSet(t), PodCIDRs: cidrs})
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	s, err := state.Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	kinds := map[resource.Kind]bool{}
	for host, rs := range hosts {
		for _, r := range rs {
			s.Record(host, plan.Managed{ID: r.ID(), Kind: string(r.Kind), Name: r.Name})
			kinds[r.Kind] = true
		}
	}
	if !kinds[resource.File] || !kinds[resource.Directory] || !kinds[resource.Binary] || !kinds[resource.Unit] || !kinds[resource.Sysctl] {
		t.Fatalf("the example's hosts get only %v", kinds)
	}
	for _, r := range []resource.Resource{
		{Kind: resource.Symlink, Name: "/etc/kubernetes/kforge/current"},
		{Kind: resource.Unit, Name: "kforge-etcd-snapshot.timer"},
		{Kind: resource.Unit, Name: "kforge-snapshot@daily.service"},
		{Kind: resource.Sysctl, Name: "net.bridge.bridge-nf-call-iptables"},
		{Kind: resource.Module, Name: "br_netfilter"},
		{Kind: resource.Module, Name: "nf-conntrack"},
		{Kind: resource.User, Name: "etcd"},
		{Kind: resource.User, Name: "kforge-1"},
	} {
		s.Record("extra", plan.Managed{ID: r.ID(), Kind: string(r.Kind), Name: r.Name})
	}
	s.Versions = map[string]map[string]string{"extra": {"/usr/local/bin/kubelet": "kubelet v1.37.2"}}
	if err := s.Save(dir); err != nil {
		t.Fatal(err)
	}
	back, err := state.Load(dir)
	if err != nil {
		t.Fatalf("kforge's own state refused: %v", err)
	}
	for host, rs := range hosts {
		if len(back.Hosts[host]) != len(rs) || len(rs) < 10 {
			t.Errorf("host %s: %d resources back of %d", host, len(back.Hosts[host]), len(rs))
		}
	}
}

// artifactSet is a manifest of every file a cluster takes from an artifact set (the files themselves are only
// read when they are sent).
func artifactSet(t *testing.T) *artifacts.Set {
	t.Helper()
	m := artifacts.Manifest{Kubernetes: "v1.37.2", Etcd: "v3.6.5", Containerd: "2.1.4", PauseImage: "registry.k8s.io/pause:3.10.1",
		DNSImage: "registry.k8s.io/coredns/coredns:v1.14.6", Images: []artifacts.Image{{Name: "registry.k8s.io/pause:3.10.1", Path: "images/pause.tar"},
			{Name: "registry.k8s.io/coredns/coredns:v1.14.6", Path: "images/coredns.tar"}}}
	for _, p := range []string{"bin/containerd", "bin/containerd-shim-runc-v2", "bin/ctr", "bin/runc", "bin/crictl",
		"cni/bridge", "cni/host-local", "cni/loopback", "cni/portmap", "bin/etcd", "bin/etcdctl", "bin/etcdutl",
		"bin/kubectl", "bin/kube-apiserver", "bin/kube-controller-manager", "bin/kube-scheduler", "bin/kubelet",
		"bin/kube-proxy", "images/pause.tar", "images/coredns.tar"} {
		m.Files = append(m.Files, artifacts.File{Path: p, SHA256: strings.Repeat("ab", 32), Size: 1})
	}
	dir := t.TempDir()
	data, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "manifest.json"), data, 0o644); err != nil {
		t.Fatal(err)
	}
	set, err := artifacts.Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	return set
}
