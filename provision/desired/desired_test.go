package desired

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/kforge/kforge/config"
	"github.com/kforge/kforge/internal/golden"
	"github.com/kforge/kforge/pki"
	"github.com/kforge/kforge/provision/artifacts"
	"github.com/kforge/kforge/provision/resource"
)

func haCluster(t *testing.T) *config.Cluster {
	t.Helper()
	c, diags := config.NewLoader().Load(config.Options{Path: "../../examples/ha"})
	if diags.HasErrors() {
		t.Fatal(diags)
	}
	return c
}

func paths(rs []resource.Resource) string {
	var out []string
	for _, r := range rs {
		out = append(out, r.Name)
	}
	sort.Strings(out)
	return strings.Join(out, "\n")
}

func TestWhatEachHostGets(t *testing.T) {
	c := haCluster(t)
	store, err := pki.OpenStore(filepath.Join(t.TempDir(), "pki"))
	if err != nil {
		t.Fatal(err)
	}
	// Nothing issued yet: every certificate file is pending, with the reason.
	changes, err := pki.Plan(pki.Catalog(c), store, c.PKI, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	before, err := Build(Input{Cluster: c, Store: store, PKIChanges: changes})
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range before["cp-1"] {
		fromPKI := strings.HasPrefix(r.Name, "/etc/kubernetes") || strings.HasPrefix(r.Name, "/var/lib/kubelet")
		if r.Kind == resource.File && fromPKI && (r.Pending == "" || r.SHA256 != "") {
			t.Errorf("%s: pending %q sha %q", r.Name, r.Pending, r.SHA256)
		}
	}
	if err := pki.Apply(store, pki.CFSSL{}, changes, c.PKI); err != nil {
		t.Fatal(err)
	}
	if _, err := pki.EnsureEncryptionConfig(store, c.SecretsEncryption, time.Now()); err != nil {
		t.Fatal(err)
	}
	changes, _ = pki.Plan(pki.Catalog(c), store, c.PKI, time.Now())
	hosts, err := Build(Input{Cluster: c, Store: store, PKIChanges: changes})
	if err != nil {
		t.Fatal(err)
	}
	wantCP := `/etc/kforge
/etc/kforge/managed
/etc/kubernetes
/etc/kubernetes/admin.conf
/etc/kubernetes/controller-manager.conf
/etc/kubernetes/encryption-config.yaml
/etc/kubernetes/kube-proxy.conf
/etc/kubernetes/kubelet.conf
/etc/kubernetes/pki
/etc/kubernetes/pki/apiserver-etcd-client.crt
/etc/kubernetes/pki/apiserver-etcd-client.key
/etc/kubernetes/pki/apiserver-kubelet-client.crt
/etc/kubernetes/pki/apiserver-kubelet-client.key
/etc/kubernetes/pki/apiserver.crt
/etc/kubernetes/pki/apiserver.key
/etc/kubernetes/pki/ca.crt
/etc/kubernetes/pki/cluster-signing.crt
/etc/kubernetes/pki/cluster-signing.key
/etc/kubernetes/pki/controller-manager-serving.crt
/etc/kubernetes/pki/controller-manager-serving.key
/etc/kubernetes/pki/etcd
/etc/kubernetes/pki/etcd/ca.crt
/etc/kubernetes/pki/etcd/healthcheck-client.crt
/etc/kubernetes/pki/etcd/healthcheck-client.key
/etc/kubernetes/pki/etcd/peer.crt
/etc/kubernetes/pki/etcd/peer.key
/etc/kubernetes/pki/etcd/server.crt
/etc/kubernetes/pki/etcd/server.key
/etc/kubernetes/pki/front-proxy-ca.crt
/etc/kubernetes/pki/front-proxy-client.crt
/etc/kubernetes/pki/front-proxy-client.key
/etc/kubernetes/pki/sa.key
/etc/kubernetes/pki/sa.pub
/etc/kubernetes/pki/scheduler-serving.crt
/etc/kubernetes/pki/scheduler-serving.key
/etc/kubernetes/scheduler.conf
/etc/sysctl.d/99-kforge-kubernetes.conf
/var/lib/kubelet
/var/lib/kubelet/pki
/var/lib/kubelet/pki/kubelet.crt
/var/lib/kubelet/pki/kubelet.key
kernel.keys.root_maxbytes
kernel.keys.root_maxkeys
kernel.panic
kernel.panic_on_oops
net.bridge.bridge-nf-call-iptables
net.ipv4.ip_forward
vm.overcommit_memory
vm.panic_on_oom`
	if got := paths(hosts["cp-1"]); got != wantCP {
		t.Errorf("cp-1 gets:\n%s", got)
	}
	wantWorker := `/etc/kforge
/etc/kforge/managed
/etc/kubernetes
/etc/kubernetes/kube-proxy.conf
/etc/kubernetes/kubelet.conf
/etc/kubernetes/pki
/etc/kubernetes/pki/ca.crt
/etc/sysctl.d/99-kforge-kubernetes.conf
/var/lib/kubelet
/var/lib/kubelet/pki
/var/lib/kubelet/pki/kubelet.crt
/var/lib/kubelet/pki/kubelet.key
kernel.keys.root_maxbytes
kernel.keys.root_maxkeys
kernel.panic
kernel.panic_on_oops
net.bridge.bridge-nf-call-iptables
net.ipv4.ip_forward
vm.overcommit_memory
vm.panic_on_oom`
	if got := paths(hosts["worker-1"]); got != wantWorker {
		t.Errorf("worker-1 gets:\n%s", got)
	}
	for _, r := range hosts["worker-1"] {
		if r.Kind != resource.File {
			continue
		}
		if r.Name == "/etc/kforge/managed" || strings.HasPrefix(r.Name, "/etc/sysctl.d/") {
			if r.Name == "/etc/kforge/managed" && string(r.Content) != "ha\n" {
				t.Errorf("marker: %q", r.Content)
			}
			continue
		}
		secret := strings.HasSuffix(r.Name, ".key") || strings.HasSuffix(r.Name, ".conf")
		if r.Secret != secret || (secret && r.Mode != 0o600) || r.Pending != "" || r.SHA256 == "" {
			t.Errorf("%s: secret %v mode %v pending %q", r.Name, r.Secret, r.Mode, r.Pending)
		}
		if r.Name == "/etc/kubernetes/kubelet.conf" && !strings.Contains(string(r.Content), "system:node:worker-1") {
			// the kubeconfig's user is the node's identity
			t.Errorf("worker-1's kubelet.conf is not worker-1's:\n%s", r.Content)
		}
	}
}

// TestAPIObjects: the objects every control-plane host applies name each node with its pod CIDR, its
// configuration's labels, a node-role label per role and its taints (a control plane without the worker role is
// tainted); a golden file shows them whole.
func TestAPIObjects(t *testing.T) {
	c := haCluster(t)
	cidrs, err := AssignPodCIDRs(c, nil)
	if err != nil {
		t.Fatal(err)
	}
	rs, err := apiObjects(c, localSet(t), cidrs)
	if err != nil {
		t.Fatal(err)
	}
	byName := map[string]resource.Resource{}
	for _, r := range rs {
		byName[r.Name] = r
	}
	objects := string(byName["/etc/kubernetes/kforge/objects.yaml"].Content)
	golden.Check(t, "testdata/objects-ha.yaml", objects)
	for _, want := range []string{
		"name: worker-3\n  labels:\n    app.kubernetes.io/managed-by: kforge\n    \"node-role.kubernetes.io/worker\": \"\"\n    \"topology.kubernetes.io/zone\": \"c\"\n",
		"    - key: \"dedicated\"\n      value: \"batch\"\n      effect: NoSchedule\n",
		"name: cp-1\n  labels:\n    app.kubernetes.io/managed-by: kforge\n    \"node-role.kubernetes.io/control-plane\": \"\"\n",
		"    - key: \"node-role.kubernetes.io/control-plane\"\n      effect: NoSchedule\n",
	} {
		if !strings.Contains(objects, want) {
			t.Errorf("objects.yaml lacks\n%s", want)
		}
	}
	if s := byName["/etc/kubernetes/kforge/apply-objects.sh"]; s.Mode != 0o755 || len(s.Restarts) != 1 || s.Restarts[0] != "unit:kforge-objects.service" {
		t.Errorf("apply-objects.sh: mode %v restarts %v", s.Mode, s.Restarts)
	}
}

// TestImageImports: every image tarball of a set lands on the node and is imported by one unit, whose health
// check wants every image; a set without images (downloads: nodes pull) imports nothing.
func TestImageImports(t *testing.T) {
	load := func(manifest string) *artifacts.Set { return loadSet(t, manifest) }
	c := haCluster(t)
	sum := strings.Repeat("ab", 32)
	set := load(`{"pause_image": "example.test/pause:1", "dns_image": "example.test/dns:3", "images": [{"name": "example.test/pause:1", "path": "images/pause.tar"},
	  {"name": "example.test/box:2", "path": "images/box.tar"}, {"name": "example.test/dns:3", "path": "images/dns.tar"}],
	  "files": [{"path": "images/pause.tar", "sha256": "` + sum + `", "size": 10}, {"path": "images/box.tar", "sha256": "` + sum + `", "size": 20},
	  {"path": "images/dns.tar", "sha256": "` + sum + `", "size": 30}]}`)
	// The DNS image is imported only while cluster DNS is on and no other image is configured.
	for _, dns := range []config.DNS{{Enabled: true, Image: "registry.example/dns:4"}, {Enabled: false}} {
		c.DNS = dns
		rs, err := imageImports(c, set)
		if err != nil || strings.Contains(paths(rs), "dns.tar") || !strings.Contains(paths(rs), "box.tar") {
			t.Errorf("dns %+v: %v\n%s", dns, err, paths(rs))
		}
	}
	c.DNS = config.DNS{Enabled: true}
	if rs, err := imageImports(c, set); err != nil || !strings.Contains(paths(rs), "/var/lib/kforge/images/dns.tar") {
		t.Errorf("dns on: %v\n%s", err, paths(rs))
	}
	set = load(`{"pause_image": "example.test/pause:1", "images": [{"name": "example.test/pause:1", "path": "images/pause.tar"},
	  {"name": "example.test/box:2", "path": "images/box.tar"}],
	  "files": [{"path": "images/pause.tar", "sha256": "` + sum + `", "size": 10}, {"path": "images/box.tar", "sha256": "` + sum + `", "size": 20}]}`)
	rs, err := imageImports(c, set)
	if err != nil {
		t.Fatal(err)
	}
	var unit, health string
	var tarballs []string
	for _, r := range rs {
		switch {
		case r.Kind == resource.Binary:
			tarballs = append(tarballs, r.Name+" "+r.Version)
		case r.Name == "/etc/systemd/system/kforge-images.service":
			unit = string(r.Content)
		case r.Kind == resource.Unit:
			health = r.Health
		}
	}
	if strings.Join(tarballs, ",") != "/var/lib/kforge/images/pause.tar example.test/pause:1,/var/lib/kforge/images/box.tar example.test/box:2" {
		t.Errorf("tarballs: %v", tarballs)
	}
	if strings.Count(unit, "images import /var/lib/kforge/images/") != 2 || !strings.Contains(health, "grep -qxF 'example.test/box:2'") || !strings.Contains(health, "grep -qxF 'example.test/pause:1'") {
		t.Errorf("unit:\n%s\nhealth: %s", unit, health)
	}
	// The health check is a shell command: it passes with both images listed and fails with one missing.
	for listed, want := range map[string]bool{"example.test/pause:1\nexample.test/box:2": true, "example.test/pause:1": false} {
		script := "ctr() { printf '%s\\n' '" + listed + "'; }\n" + strings.ReplaceAll(health, "/usr/local/bin/ctr", "ctr")
		if err := exec.Command("sh", "-c", script).Run(); (err == nil) != want {
			t.Errorf("health with %q listed: %v", listed, err)
		}
	}
	// A set from before the images list: its pause image.
	old := load(`{"pause_image": "example.test/pause:1", "files": [{"path": "images/pause.tar", "sha256": "` + sum + `", "size": 10}]}`)
	if rs, err := imageImports(c, old); err != nil || len(rs) != 5 {
		t.Errorf("pause-only set: %d resources, %v", len(rs), err)
	}
	if rs, err := imageImports(c, load(`{"files": []}`)); err != nil || len(rs) != 0 {
		t.Errorf("set without images: %v, %v", rs, err)
	}
}

// loadSet loads an artifact set made of manifest alone.
func loadSet(t *testing.T, manifest string) *artifacts.Set {
	t.Helper()
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "manifest.json"), []byte(manifest), 0o644); err != nil {
		t.Fatal(err)
	}
	set, err := artifacts.Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	return set
}

// localSet is a set of local artifacts as make artifacts writes: it ships a DNS image.
func localSet(t *testing.T) *artifacts.Set {
	return loadSet(t, `{"kubernetes": "v1.37.2", "pause_image": "kforge.local/pause:3.10.2", "dns_image": "kforge.local/coredns:v1.14.6",
	  "images": [{"name": "kforge.local/pause:3.10.2", "path": "images/pause.tar"}, {"name": "kforge.local/coredns:v1.14.6", "path": "images/coredns.tar"}],
	  "files": []}`)
}

// TestDNSAddon: with cluster DNS on, every control-plane host gets CoreDNS' manifest (a golden file shows it
// whole) and the script applies it; turned off, the manifest goes and the script deletes the add-on's objects.
// The image is the configuration's, else the set's, else the official one; a local set without one is refused.
func TestDNSAddon(t *testing.T) {
	c := haCluster(t)
	cidrs, err := AssignPodCIDRs(c, nil)
	if err != nil {
		t.Fatal(err)
	}
	files := func(c *config.Cluster, set *artifacts.Set) map[string]string {
		t.Helper()
		rs, err := apiObjects(c, set, cidrs)
		if err != nil {
			t.Fatal(err)
		}
		out := map[string]string{}
		for _, r := range rs {
			if r.Kind == resource.File {
				out[r.Name] = string(r.Content)
				if r.Diffable != true || len(r.Restarts) != 1 || r.Restarts[0] != "unit:kforge-objects.service" {
					t.Errorf("%s: diffable %v, restarts %v", r.Name, r.Diffable, r.Restarts)
				}
			}
		}
		return out
	}
	on := files(c, localSet(t))
	manifest, script := on[AddonsDir+"/dns.yaml"], on["/etc/kubernetes/kforge/apply-objects.sh"]
	golden.Check(t, "testdata/coredns-ha.yaml", manifest)
	for _, want := range []string{"clusterIP: 198.18.128.10\n", "kubernetes cluster.local in-addr.arpa ip6.arpa {", "replicas: 2\n",
		`image: "kforge.local/coredns:v1.14.6"`, "forward . /etc/resolv.conf {"} {
		if !strings.Contains(manifest, want) {
			t.Errorf("dns.yaml lacks %q", want)
		}
	}
	if !strings.Contains(script, "-f /etc/kubernetes/kforge/objects.yaml -f "+AddonsDir+"/dns.yaml -o name") || strings.Contains(script, "delete --all-namespaces") {
		t.Errorf("apply-objects.sh with DNS on:\n%s", script)
	}

	// 7 replicas spread over the 5 nodes CoreDNS may run on (worker-3's taint it does not tolerate).
	c.DNS = config.DNS{Enabled: true, Replicas: 7, Image: "registry.example/coredns:1", Upstream: []string{"198.18.0.1", "198.18.0.2:5353"}}
	custom := files(c, loadSet(t, `{"files": []}`))[AddonsDir+"/dns.yaml"]
	for _, want := range []string{"replicas: 7\n", "minDomains: 5\n", `image: "registry.example/coredns:1"`, "forward . 198.18.0.1 198.18.0.2:5353 {"} {
		if !strings.Contains(custom, want) {
			t.Errorf("dns.yaml with dns %+v lacks %q", c.DNS, want)
		}
	}
	c.DNS = config.DNS{Enabled: true, Replicas: 2, Upstream: []string{}}
	if got := files(c, loadSet(t, `{"files": []}`))[AddonsDir+"/dns.yaml"]; strings.Contains(got, "forward") || !strings.Contains(got, `image: "`+OfficialDNSImage+`"`) {
		t.Errorf("dns.yaml without upstreams, from downloads:\n%s", got)
	}

	c.DNS = config.DNS{Enabled: false}
	off := files(c, localSet(t))
	if _, ok := off[AddonsDir+"/dns.yaml"]; ok {
		t.Error("dns.yaml placed with DNS off")
	}
	if s := off["/etc/kubernetes/kforge/apply-objects.sh"]; !strings.Contains(s, "-f /etc/kubernetes/kforge/objects.yaml -o name") ||
		!strings.Contains(s, "-l app.kubernetes.io/managed-by=kforge,kforge.io/addon=dns") {
		t.Errorf("apply-objects.sh with DNS off:\n%s", s)
	}

	c.DNS = config.DNS{Enabled: true, Replicas: 2}
	noDNS := loadSet(t, `{"pause_image": "kforge.local/pause:3.10.2", "images": [{"name": "kforge.local/pause:3.10.2", "path": "images/pause.tar"}], "files": []}`)
	if _, err := apiObjects(c, noDNS, cidrs); err == nil || !strings.Contains(err.Error(), "no DNS image") {
		t.Errorf("local set without a DNS image: %v", err)
	}
}

// TestRegistryMirrors: with mirrors, every node gets a hosts.toml per registry (golden files show two whole)
// and containerd's config points at them; hosts.toml files restart nothing (containerd reads them at each pull),
// config.toml restarts containerd. Without mirrors neither is there.
func TestRegistryMirrors(t *testing.T) {
	c := haCluster(t)
	var files []string
	for _, f := range []string{"bin/containerd", "bin/containerd-shim-runc-v2", "bin/ctr", "bin/runc", "cni/bridge", "cni/host-local", "cni/loopback", "cni/portmap"} {
		files = append(files, `{"path": "`+f+`", "sha256": "`+strings.Repeat("ab", 32)+`", "size": 1}`)
	}
	set := loadSet(t, `{"containerd": "v2.4.2", "files": [`+strings.Join(files, ", ")+`]}`)
	build := func() map[string]resource.Resource {
		t.Helper()
		out := map[string][]resource.Resource{}
		if err := containerd(c, set, out); err != nil {
			t.Fatal(err)
		}
		byName := map[string]resource.Resource{}
		for _, r := range out["worker-1"] {
			byName[r.Name] = r
		}
		return byName
	}
	off := build()
	if strings.Contains(string(off["/etc/containerd/config.toml"].Content), "config_path") {
		t.Errorf("config.toml without mirrors names a config_path:\n%s", off["/etc/containerd/config.toml"].Content)
	}
	for name := range off {
		if strings.HasPrefix(name, "/etc/containerd/certs.d") {
			t.Errorf("%s without mirrors", name)
		}
	}
	c.Containerd.RegistryMirrors = map[string][]string{
		"registry.k8s.io": {"http://198.18.100.1:5000", "https://mirror.example"},
		"docker.io":       {"https://hub-cache.example"},
		"_default":        {"https://cache.example:8443"},
	}
	on := build()
	conf := string(on["/etc/containerd/config.toml"].Content)
	if !strings.Contains(conf, "[plugins.'io.containerd.cri.v1.images'.registry]\n      config_path = '/etc/containerd/certs.d'\n") ||
		strings.Join(on["/etc/containerd/config.toml"].Restarts, " ") != "unit:containerd.service" {
		t.Errorf("config.toml with mirrors:\n%s", conf)
	}
	golden.Check(t, "testdata/hosts-registry.k8s.io.toml", string(on["/etc/containerd/certs.d/registry.k8s.io/hosts.toml"].Content))
	golden.Check(t, "testdata/hosts-_default.toml", string(on["/etc/containerd/certs.d/_default/hosts.toml"].Content))
	if got := string(on["/etc/containerd/certs.d/docker.io/hosts.toml"].Content); !strings.Contains(got, "server = 'https://registry-1.docker.io'\n") ||
		!strings.Contains(got, "[host.'https://hub-cache.example']\n") {
		t.Errorf("docker.io hosts.toml:\n%s", got)
	}
	for _, d := range []string{"/etc/containerd/certs.d", "/etc/containerd/certs.d/registry.k8s.io", "/etc/containerd/certs.d/docker.io", "/etc/containerd/certs.d/_default"} {
		if r, ok := on[d]; !ok || r.Kind != resource.Directory {
			t.Errorf("directory %s: %+v", d, r)
		}
	}
	for name, r := range on {
		if strings.HasSuffix(name, "/hosts.toml") && (len(r.Restarts) != 0 || !r.Diffable || r.Mode != 0o644) {
			t.Errorf("%s: restarts %v, diffable %v, mode %v", name, r.Restarts, r.Diffable, r.Mode)
		}
	}
}

// TestEtcdSnapshotSchedule: with snapshots configured, every etcd member gets the script, the oneshot unit and
// an enabled timer; the script, run against a stand-in etcdctl, writes a snapshot and its sum and keeps the
// newest `keep`.
func TestEtcdSnapshotSchedule(t *testing.T) {
	rs, err := etcdSnapshots(&config.EtcdSnapshots{Schedule: "*-*-* 02:30:00", Keep: 2, Dir: "/var/lib/etcd-snapshots"})
	if err != nil {
		t.Fatal(err)
	}
	byName := map[string]resource.Resource{}
	for _, r := range rs {
		byName[r.Name] = r
	}
	timer := string(byName["/etc/systemd/system/kforge-etcd-snapshot.timer"].Content)
	if !strings.Contains(timer, "OnCalendar=*-*-* 02:30:00\n") || !strings.Contains(timer, "Persistent=true\n") ||
		strings.Join(byName["/etc/systemd/system/kforge-etcd-snapshot.timer"].Restarts, " ") != "unit:kforge-etcd-snapshot.timer" {
		t.Errorf("timer:\n%s", timer)
	}
	if u := byName["kforge-etcd-snapshot.timer"]; u.Kind != resource.Unit || !u.Enabled || !u.Active {
		t.Errorf("timer unit: %+v", u)
	}
	if d := byName["/var/lib/etcd-snapshots"]; d.Kind != resource.Directory || d.Mode != 0o700 {
		t.Errorf("directory: %+v", d)
	}
	script := byName["/usr/local/lib/kforge/etcd-snapshot.sh"]
	if script.Mode != 0o755 || !strings.Contains(string(script.Content), Etcdctl+` snapshot save "$tmp"`) {
		t.Fatalf("script (%v):\n%s", script.Mode, script.Content)
	}
	// The script, with the directory and etcdctl swapped for a temporary directory and a stand-in that writes the
	// time it was called; date is a stand-in too, so that the names differ without waiting.
	dir := t.TempDir()
	bin := t.TempDir()
	stub := func(name, body string) {
		if err := os.WriteFile(filepath.Join(bin, name), []byte("#!/bin/sh\n"+body+"\n"), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	stub("etcdctl", `printf 'snapshot %s\n' "$(cat `+bin+`/n)" > "$3"`)
	stub("date", `n=$(cat `+bin+`/n); printf '2026120%dT000000Z\n' "$n"`)
	body := strings.ReplaceAll(string(script.Content), "dir=/var/lib/etcd-snapshots", "dir="+dir)
	body = strings.ReplaceAll(body, Etcdctl, "etcdctl")
	for n := 1; n <= 3; n++ {
		if err := os.WriteFile(filepath.Join(bin, "n"), []byte(fmt.Sprint(n)), 0o644); err != nil {
			t.Fatal(err)
		}
		cmd := exec.Command("sh", "-c", body)
		cmd.Env = append(os.Environ(), "PATH="+bin+":"+os.Getenv("PATH"))
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("run %d: %v\n%s", n, err, out)
		}
	}
	entries, _ := os.ReadDir(dir)
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	if strings.Join(names, " ") != "etcd-20261202T000000Z.db etcd-20261202T000000Z.db.sha256 etcd-20261203T000000Z.db etcd-20261203T000000Z.db.sha256" {
		t.Errorf("kept (want the newest 2, each with its sum): %v", names)
	}
	check := exec.Command("sha256sum", "-c", "etcd-20261203T000000Z.db.sha256")
	check.Dir = dir
	if out, err := check.CombinedOutput(); err != nil {
		t.Errorf("sha256sum -c: %v\n%s", err, out)
	}
	if none, err := etcdSnapshots(nil); err != nil || none != nil {
		t.Errorf("no schedule: %v %v", none, err)
	}
}

// TestAPIServerShutdownDelay: with several control-plane hosts, a stopping API server keeps serving while its
// /readyz fails (a balancer that checks it stops sending requests first); with one, it stops at once; a value in
// extra_args replaces kforge's.
func TestAPIServerShutdownDelay(t *testing.T) {
	set := controlPlaneSet(t)
	unit := func(c *config.Cluster) string {
		t.Helper()
		out := map[string][]resource.Resource{}
		if err := controlPlane(c, set, nil, out); err != nil {
			t.Fatal(err)
		}
		for _, r := range out["cp-1"] {
			if r.Name == "/etc/systemd/system/kube-apiserver.service" {
				return string(r.Content)
			}
		}
		t.Fatal("no kube-apiserver unit on cp-1")
		return ""
	}
	c := haCluster(t)
	if got := unit(c); strings.Count(got, "--shutdown-delay-duration=") != 1 || !strings.Contains(got, "  --shutdown-delay-duration=10s \\\n") {
		t.Errorf("HA API server unit:\n%s", got)
	}
	c.APIServer.ExtraArgs = map[string]string{"shutdown-delay-duration": "30s"}
	if got := unit(c); strings.Count(got, "--shutdown-delay-duration=") != 1 || !strings.Contains(got, "--shutdown-delay-duration=30s") {
		t.Errorf("HA API server unit with extra_args:\n%s", got)
	}
	single := *c
	single.APIServer.ExtraArgs = nil
	single.Hosts = nil
	for _, h := range c.Hosts {
		if h.Name == "cp-1" || !h.Has(config.RoleControlPlane) {
			single.Hosts = append(single.Hosts, h)
		}
	}
	if got := unit(&single); strings.Contains(got, "--shutdown-delay-duration") {
		t.Errorf("single control plane's API server unit:\n%s", got)
	}
}

// TestSigningPairThroughARotation: the controller-manager's signing pair is one certificate and its key, while
// ca.crt carries both CAs during a rotation; the pair is the new CA from the rotation's sign step on, so that
// nothing it signs then is under the CA about to be dropped.
func TestSigningPairThroughARotation(t *testing.T) {
	c := haCluster(t)
	store, err := pki.OpenStore(filepath.Join(t.TempDir(), "pki"))
	if err != nil {
		t.Fatal(err)
	}
	build := func() map[string][]byte {
		t.Helper()
		files := map[string][]byte{}
		for _, r := range buildAll(t, c, store, nil, map[string]string{})["cp-1"] {
			files[r.Name] = r.Content
		}
		return files
	}
	read := func(name string) []byte {
		t.Helper()
		b, err := store.ReadFile(name)
		if err != nil || b == nil {
			t.Fatalf("%s: %v", name, err)
		}
		return b
	}
	check := func(step string, wantCA []byte, signer string) {
		t.Helper()
		files := build()
		if got := files[PKIDir+"/ca.crt"]; string(got) != string(wantCA) {
			t.Errorf("%s: ca.crt holds %d certificates, not the %d wanted", step, strings.Count(string(got), "BEGIN CERTIFICATE"), strings.Count(string(wantCA), "BEGIN CERTIFICATE"))
		}
		if got := files[ClusterSigningCert]; string(got) != string(read(signer+".crt")) {
			t.Errorf("%s: the signing certificate is not %s.crt:\n%s", step, signer, got)
		}
		if got := files[ClusterSigningKey]; string(got) != string(read(signer+".key")) {
			t.Errorf("%s: the signing key is not %s.key", step, signer)
		}
	}
	build() // issues the PKI
	check("before", read("ca.crt"), "ca")
	if _, err := pki.StartRotation(store, pki.CFSSL{}, pki.Catalog(c), []string{pki.ClusterCA}, c.PKI, time.Now()); err != nil {
		t.Fatal(err)
	}
	both := append(append([]byte{}, read("ca.crt")...), read("ca.next.crt")...)
	check("step 1", both, "ca")
	if _, err := store.AdvanceRotation(); err != nil {
		t.Fatal(err)
	}
	check("step 2", both, "ca.next")
	newCA := read("ca.next.crt")
	if _, err := store.AdvanceRotation(); err != nil {
		t.Fatal(err)
	}
	check("after", newCA, "ca")
}

// TestControlPlaneRestarts: a file restarts the control-plane components that read it, and no other (a new
// signing pair restarts the controller-manager, not the API server; etcd's own certificates restart neither).
func TestControlPlaneRestarts(t *testing.T) {
	set := controlPlaneSet(t)
	c := haCluster(t)
	inputs := []string{PKIDir + "/ca.crt", ClusterSigningCert, ClusterSigningKey, PKIDir + "/apiserver.key", EtcdPKIDir + "/server.crt",
		EtcdPKIDir + "/ca.crt", "/etc/kubernetes/controller-manager.conf", "/etc/kubernetes/scheduler.conf", AuditPolicyFile,
		PKIDir + "/controller-manager-serving.crt", PKIDir + "/scheduler-serving.key"}
	out := map[string][]resource.Resource{}
	for _, name := range inputs {
		out["cp-1"] = append(out["cp-1"], file(name, []byte(name), 0o600, true, ""))
	}
	if err := controlPlane(c, set, nil, out); err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, r := range out["cp-1"][:len(inputs)] {
		got = append(got, r.Name+": "+strings.Join(r.Restarts, " "))
	}
	want := []string{
		"/etc/kubernetes/pki/ca.crt: unit:kube-apiserver.service unit:kube-controller-manager.service",
		"/etc/kubernetes/pki/cluster-signing.crt: unit:kube-controller-manager.service",
		"/etc/kubernetes/pki/cluster-signing.key: unit:kube-controller-manager.service",
		"/etc/kubernetes/pki/apiserver.key: unit:kube-apiserver.service",
		"/etc/kubernetes/pki/etcd/server.crt: ",
		"/etc/kubernetes/pki/etcd/ca.crt: unit:kube-apiserver.service",
		"/etc/kubernetes/controller-manager.conf: unit:kube-controller-manager.service",
		"/etc/kubernetes/scheduler.conf: unit:kube-scheduler.service",
		"/etc/kubernetes/audit-policy.yaml: unit:kube-apiserver.service",
		"/etc/kubernetes/pki/controller-manager-serving.crt: unit:kube-controller-manager.service",
		"/etc/kubernetes/pki/scheduler-serving.key: unit:kube-scheduler.service",
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("restarts:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

// TestFlagsReachTheComponentAsWritten: '%' and '$' in extra_args are escaped for systemd, which would otherwise
// read a specifier or a variable; systemd-analyze verify is not at hand, so the escaping is checked as text.
func TestFlagsReachTheComponentAsWritten(t *testing.T) {
	got := flags(map[string]string{"eviction-hard": "memory.available<10%", "b": "a$HOME"})
	if want := []string{"--b=a$$HOME", "--eviction-hard=memory.available<10%%"}; strings.Join(got, " ") != strings.Join(want, " ") {
		t.Errorf("flags: %q, want %q", got, want)
	}
}

// TestSecuritySettings: the security block reaches the API server's flags and files, the other components'
// profiling and the kubelet; by default the hardened set, each relaxation as configured.
func TestSecuritySettings(t *testing.T) {
	set := controlPlaneSet(t)
	build := func(c *config.Cluster) map[string]string {
		t.Helper()
		out := map[string][]resource.Resource{}
		if err := controlPlane(c, set, nil, out); err != nil {
			t.Fatal(err)
		}
		got := map[string]string{}
		for _, r := range out["cp-1"] {
			got[r.Name] = string(r.Content)
		}
		return got
	}
	c := haCluster(t)
	hardened := build(c)
	api := hardened["/etc/systemd/system/kube-apiserver.service"]
	for _, want := range []string{"--profiling=false", "--audit-policy-file=" + AuditPolicyFile, "--audit-log-maxage=30", "--audit-log-maxbackup=10",
		"--audit-log-maxsize=100", "--authentication-config=" + AuthenticationConfigFile, "--admission-control-config-file=" + AdmissionConfigFile} {
		if !strings.Contains(api, want+" \\\n") {
			t.Errorf("hardened API server lacks %s:\n%s", want, api)
		}
	}
	if strings.Contains(api, "--anonymous-auth") || !strings.Contains(hardened[AdmissionConfigFile], `enforce: "baseline"`) ||
		!strings.Contains(hardened[AuthenticationConfigFile], "- path: /readyz") || hardened[AuditPolicyFile] == "" ||
		!strings.Contains(hardened["/etc/systemd/system/kube-scheduler.service"], "--profiling=false") {
		t.Errorf("hardened: anonymous-auth flag, admission config %q, authentication config %q", hardened[AdmissionConfigFile], hardened[AuthenticationConfigFile])
	}
	c.Security = config.Security{PodSecurity: "privileged", AnonymousHealthChecks: false, Profiling: true, AuditLog: config.AuditLog{Enabled: false}}
	relaxed := build(c)
	api = relaxed["/etc/systemd/system/kube-apiserver.service"]
	if !strings.Contains(api, "--anonymous-auth=false \\\n") || strings.Contains(api, "--audit") || strings.Contains(api, "--authentication-config") ||
		!strings.Contains(api, "--profiling=true") || !strings.Contains(relaxed["/etc/systemd/system/kube-controller-manager.service"], "--profiling=true") {
		t.Errorf("relaxed API server:\n%s", api)
	}
	if _, ok := relaxed[AuditPolicyFile]; ok {
		t.Error("an audit policy without an audit log")
	}
	if _, ok := relaxed[AuthenticationConfigFile]; ok {
		t.Error("an authentication config with --anonymous-auth=false")
	}
	if !strings.Contains(relaxed[AdmissionConfigFile], `enforce: "privileged"`) {
		t.Errorf("admission config:\n%s", relaxed[AdmissionConfigFile])
	}
}

// buildAll is every host's resources for c (with set's binaries, if any), its PKI issued in store and each node's
// pod CIDR kept in cidrs, as an apply leaves them.
func buildAll(t *testing.T, c *config.Cluster, store *pki.Store, set *artifacts.Set, cidrs map[string]string) map[string][]resource.Resource {
	t.Helper()
	changes, err := pki.Plan(pki.Catalog(c), store, c.PKI, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if err := pki.Apply(store, pki.CFSSL{}, changes, c.PKI); err != nil {
		t.Fatal(err)
	}
	if _, err := pki.EnsureEncryptionConfig(store, c.SecretsEncryption, time.Now()); err != nil {
		t.Fatal(err)
	}
	if changes, err = pki.Plan(pki.Catalog(c), store, c.PKI, time.Now()); err != nil {
		t.Fatal(err)
	}
	assigned, err := AssignPodCIDRs(c, cidrs)
	if err != nil {
		t.Fatal(err)
	}
	for h, p := range assigned {
		cidrs[h] = p.String()
	}
	out, err := Build(Input{Cluster: c, Store: store, PKIChanges: changes, Artifacts: set, PodCIDRs: assigned})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// controlPlaneSet is an artifact set with the control plane's binaries (fake digests): enough for controlPlane.
func controlPlaneSet(t *testing.T) *artifacts.Set {
	return setOf(t, "bin/kubectl", "bin/kube-apiserver", "bin/kube-controller-manager", "bin/kube-scheduler")
}

// setOf is a set of Kubernetes v1.37.2 holding the given files (made-up sums: nothing reads them).
func setOf(t *testing.T, paths ...string) *artifacts.Set {
	var files []string
	for _, p := range paths {
		files = append(files, fmt.Sprintf(`{"path": %q, "sha256": "%064x", "size": 1}`, p, len(p)))
	}
	return loadSet(t, `{"kubernetes": "v1.37.2", "files": [`+strings.Join(files, ",")+`]}`)
}

// TestPodNetworkConfig: every node gets a CNI config of its own pod CIDR, 0600 (CIS 1.1.9), under the name
// containerd used to write from a template; containerd is given no template any more.
func TestPodNetworkConfig(t *testing.T) {
	c := haCluster(t)
	cidrs, err := AssignPodCIDRs(c, nil)
	if err != nil {
		t.Fatal(err)
	}
	set := setOf(t, "bin/containerd", "bin/containerd-shim-runc-v2", "bin/ctr", "bin/runc", "cni/bridge", "cni/host-local",
		"cni/loopback", "cni/portmap", "bin/kubelet", "bin/kube-proxy")
	out := map[string][]resource.Resource{}
	if err := containerd(c, set, out); err != nil {
		t.Fatal(err)
	}
	if err := node(c, set, cidrs, out); err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	for host, rs := range out {
		for _, r := range rs {
			switch r.Name {
			case cniConfig:
				want := `"ranges": [[{"subnet": "` + cidrs[host].String() + `"}]]`
				if r.Mode != 0o600 || !strings.Contains(string(r.Content), want) || strings.Contains(string(r.Content), "{{") {
					t.Errorf("%s: mode %v, content\n%s\nwant %s", host, r.Mode, r.Content, want)
				}
				seen[host] = true
			case "/etc/containerd/config.toml":
				if strings.Contains(string(r.Content), "conf_template") {
					t.Errorf("%s: containerd still writes the CNI config from a template:\n%s", host, r.Content)
				}
			}
		}
	}
	for _, h := range c.Hosts {
		if h.RunsKubelet() != seen[h.Name] {
			t.Errorf("%s (node: %v) has a CNI config: %v", h.Name, h.RunsKubelet(), seen[h.Name])
		}
	}
	if _, err := podNetwork(c, set, c.Hosts[0], nil); err == nil || !strings.Contains(err.Error(), c.Hosts[0].Name) {
		t.Errorf("a node without a pod CIDR: %v", err)
	}
}
