package desired

import (
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/kforge/kforge/config"
	"github.com/kforge/kforge/pki"
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
/etc/kubernetes/pki/ca.key
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
/etc/kubernetes/scheduler.conf
/etc/sysctl.d/99-kforge-kubernetes.conf
/var/lib/kubelet
/var/lib/kubelet/pki
/var/lib/kubelet/pki/kubelet.crt
/var/lib/kubelet/pki/kubelet.key
net.bridge.bridge-nf-call-iptables
net.ipv4.ip_forward`
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
net.bridge.bridge-nf-call-iptables
net.ipv4.ip_forward`
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
