// Package desired computes what every host should have, from the configuration and the PKI: the resources a
// plan compares with the hosts. Kubernetes' binaries, configs and units join here as kforge learns to install them.
package desired

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io/fs"
	"net/netip"
	"path"
	"strings"

	"github.com/kforge/kforge/config"
	"github.com/kforge/kforge/pki"
	"github.com/kforge/kforge/provision/artifacts"
	"github.com/kforge/kforge/provision/facts"
	"github.com/kforge/kforge/provision/resource"
)

// Where things go on a host: kubeadm's layout, which operators know.
const (
	KubernetesDir = "/etc/kubernetes"
	PKIDir        = "/etc/kubernetes/pki"
	EtcdPKIDir    = "/etc/kubernetes/pki/etcd"
	KubeletPKIDir = "/var/lib/kubelet/pki"

	// The pair the controller-manager signs certificate requests with.
	ClusterSigningCert = PKIDir + "/cluster-signing.crt"
	ClusterSigningKey  = PKIDir + "/cluster-signing.key"
)

// placement says where a store entry's certificate and key go, and whether the key goes at all.
type placement struct {
	dir, base string
	key       bool
}

func placementOf(s pki.Spec) (placement, bool) {
	switch {
	case s.Name == pki.ClusterCA:
		return placement{PKIDir, "ca", false}, true // its key: see ClusterSigningKey
	case s.Name == pki.EtcdCA:
		return placement{EtcdPKIDir, "ca", false}, true
	case s.Name == pki.FrontProxyCA:
		return placement{PKIDir, "front-proxy-ca", false}, true
	case s.Name == "etcd-healthcheck-client":
		return placement{EtcdPKIDir, "healthcheck-client", true}, true
	case strings.HasPrefix(s.Name, "etcd-server-"):
		return placement{EtcdPKIDir, "server", true}, true
	case strings.HasPrefix(s.Name, "etcd-peer-"):
		return placement{EtcdPKIDir, "peer", true}, true
	case strings.HasPrefix(s.Name, "kubelet-serving-"):
		return placement{KubeletPKIDir, "kubelet", true}, true
	case s.Name == "apiserver", s.Name == "apiserver-kubelet-client", s.Name == "apiserver-etcd-client", s.Name == "front-proxy-client",
		s.Name == "controller-manager-serving", s.Name == "scheduler-serving":
		return placement{PKIDir, s.Name, true}, true
	}
	return placement{}, false // client certificates that live only inside kubeconfigs
}

// kubeconfigPath is where a kubeconfig goes on its hosts.
func kubeconfigPath(name string) string {
	if strings.HasPrefix(name, "kubelet-") {
		return path.Join(KubernetesDir, "kubelet.conf")
	}
	return path.Join(KubernetesDir, name+".conf")
}

// Input is what the desired state is computed from.
type Input struct {
	Cluster *config.Cluster
	Store   *pki.Store
	// PKIChanges is the PKI plan: what it issues or re-issues is pending (known only at apply), and so is every
	// file made from it.
	PKIChanges []pki.Change
	// Artifacts is the binaries' set; without one only the PKI and host settings are placed.
	Artifacts *artifacts.Set
	// PodCIDRs is each node's slice of the pod CIDR (AssignPodCIDRs).
	PodCIDRs map[string]netip.Prefix
}

// Build returns each host's resources, in the order apply places them: directories, then files, then the
// components.
func Build(in Input) (map[string][]resource.Resource, error) {
	c, store, changes, set := in.Cluster, in.Store, in.PKIChanges, in.Artifacts
	out := map[string][]resource.Resource{}
	pending := map[string]string{}
	for _, ch := range changes {
		if ch.Action != pki.ActionKeep {
			pending[ch.Spec.Name] = fmt.Sprintf("certificate %s to %s at apply: %s", ch.Spec.Name, ch.Action, ch.Reason)
		}
	}
	add := func(host string, r resource.Resource) { out[host] = append(out[host], r) }
	for _, h := range c.Hosts {
		// The marker first: whatever else an interrupted apply placed, the host says whose it is.
		add(h.Name, dir(path.Dir(facts.MarkerFile), 0o755))
		add(h.Name, file(facts.MarkerFile, []byte(c.Name+"\n"), 0o644, false, ""))
		add(h.Name, dir(KubernetesDir, 0o755))
		add(h.Name, dir(PKIDir, 0o700))
		if h.Has(config.RoleEtcd) || h.Has(config.RoleControlPlane) {
			add(h.Name, dir(EtcdPKIDir, 0o700))
		}
		if h.RunsKubelet() {
			add(h.Name, dir("/var/lib/kubelet", 0o700))
			add(h.Name, dir(KubeletPKIDir, 0o700))
			for _, r := range nodeSysctls() {
				add(h.Name, r)
			}
		}
	}
	for _, s := range pki.Catalog(c) {
		if s.Kind == pki.KindKeyPair {
			for _, host := range s.Hosts {
				key, pub, err := storeFiles(store, s.Name, ".key", ".pub", pending[s.Name])
				if err != nil {
					return nil, err
				}
				add(host, file(path.Join(PKIDir, "sa.key"), key, 0o600, true, pending[s.Name]))
				add(host, file(path.Join(PKIDir, "sa.pub"), pub, 0o600, false, pending[s.Name]))
			}
			continue
		}
		p, placed := placementOf(s)
		if !placed {
			continue
		}
		cert, key, err := storeFiles(store, s.Name, ".crt", ".key", pending[s.Name])
		if err != nil {
			return nil, err
		}
		if s.Kind == pki.KindCA && cert != nil {
			// During a rotation, the hosts trust the new CA too.
			if cert, err = store.Trust(s.Name); err != nil {
				return nil, err
			}
		}
		for _, host := range s.Hosts {
			add(host, file(path.Join(p.dir, p.base+".crt"), cert, 0o600, false, pending[s.Name]))
			if p.key {
				add(host, file(path.Join(p.dir, p.base+".key"), key, 0o600, true, pending[s.Name]))
			}
		}
	}
	// The controller-manager signs CSRs with the cluster CA, as a pair of its own: ca.crt is a bundle during a
	// rotation, which a signer refuses, and the signing CA changes at the rotation's second step. No other CA key
	// leaves the operator's machine.
	signCert, signKey, err := signingPair(store, pending[pki.ClusterCA])
	if err != nil {
		return nil, err
	}
	for _, h := range c.HostsWith(config.RoleControlPlane) {
		add(h.Name, file(ClusterSigningCert, signCert, 0o600, false, pending[pki.ClusterCA]))
		add(h.Name, file(ClusterSigningKey, signKey, 0o600, true, pending[pki.ClusterCA]))
	}
	for _, k := range pki.Kubeconfigs(c) {
		hosts := k.Hosts
		if k.Name == "admin" {
			hosts = hostNames(c.HostsWith(config.RoleControlPlane)) // for kubectl on a control-plane host
		}
		reason := pending[k.Cert]
		if reason == "" {
			reason = pending[pki.ClusterCA]
		}
		var content []byte
		if reason == "" {
			trust, err := store.Trust(pki.ClusterCA)
			if err != nil {
				return nil, err
			}
			e, err := store.Read(k.Cert)
			if err != nil {
				return nil, err
			}
			if e.CertPEM == nil || trust == nil {
				return nil, fmt.Errorf("kubeconfig %s: certificate %s is not in %s", k.Name, k.Cert, store.Dir)
			}
			content = pki.RenderKubeconfig(c.Name, e.Cert.Subject.CommonName, k.Server, trust, pki.Pair{CertPEM: e.CertPEM, KeyPEM: e.KeyPEM})
		}
		for _, host := range hosts {
			add(host, file(kubeconfigPath(k.Name), content, 0o600, true, reason))
		}
	}
	enc, err := store.ReadFile(pki.EncryptionConfigFile)
	if err != nil {
		return nil, err
	}
	encReason := ""
	if enc == nil {
		encReason = "encryption config to make at apply"
	}
	for _, h := range c.HostsWith(config.RoleControlPlane) {
		add(h.Name, file(path.Join(KubernetesDir, "encryption-config.yaml"), enc, 0o600, true, encReason))
	}
	if set != nil {
		if err := etcd(c, set, out); err != nil {
			return nil, err
		}
		if err := controlPlane(c, set, in.PodCIDRs, out); err != nil {
			return nil, err
		}
		if err := containerd(c, set, out); err != nil {
			return nil, err
		}
		if err := node(c, set, in.PodCIDRs, out); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// signingPair is the cluster CA that signs now (the new one at the sign step of its rotation), nil while pending.
func signingPair(store *pki.Store, pending string) (cert, key []byte, err error) {
	if pending != "" {
		return nil, nil, nil
	}
	r, err := store.Rotation()
	if err != nil {
		return nil, nil, err
	}
	return storeFiles(store, r.Signing(pki.ClusterCA), ".crt", ".key", "")
}

func storeFiles(store *pki.Store, name, certExt, keyExt, pendingReason string) ([]byte, []byte, error) {
	if pendingReason != "" {
		return nil, nil, nil
	}
	a, err := store.ReadFile(name + certExt)
	if err != nil {
		return nil, nil, err
	}
	b, err := store.ReadFile(name + keyExt)
	if err != nil {
		return nil, nil, err
	}
	if a == nil {
		return nil, nil, fmt.Errorf("%s%s is not in %s", name, certExt, store.Dir)
	}
	return a, b, nil
}

func dir(p string, mode uint32) resource.Resource {
	return resource.Resource{Kind: resource.Directory, Name: p, Mode: fs.FileMode(mode)}
}

func file(p string, content []byte, mode uint32, secret bool, pending string) resource.Resource {
	r := resource.Resource{Kind: resource.File, Name: p, Mode: fs.FileMode(mode), Secret: secret, Pending: pending}
	if pending == "" {
		sum := sha256.Sum256(content)
		r.Content, r.SHA256, r.Size = content, hex.EncodeToString(sum[:]), int64(len(content))
	}
	return r
}

func hostNames(hs []config.Host) []string {
	out := make([]string, len(hs))
	for i, h := range hs {
		out[i] = h.Name
	}
	return out
}

// nodeSysctls: pods' traffic is routed and bridged through the node, so the kernel must forward it and show
// bridged packets to iptables. The file keeps the values across reboots; the sysctls set them now.
func nodeSysctls() []resource.Resource {
	values := [][2]string{{"net.ipv4.ip_forward", "1"}, {"net.bridge.bridge-nf-call-iptables", "1"},
		// What the kubelet wants of the kernel: with protectKernelDefaults it refuses to start on other values
		// (CIS 4.2.6) instead of changing them itself.
		{"vm.overcommit_memory", "1"}, {"vm.panic_on_oom", "0"}, {"kernel.panic", "10"}, {"kernel.panic_on_oops", "1"},
		{"kernel.keys.root_maxkeys", "1000000"}, {"kernel.keys.root_maxbytes", "25000000"}}
	var conf strings.Builder
	conf.WriteString("# Written by kforge: Kubernetes nodes route and bridge pod traffic, and the kubelet checks the rest.\n")
	for _, v := range values {
		fmt.Fprintf(&conf, "%s = %s\n", v[0], v[1])
	}
	f := file("/etc/sysctl.d/99-kforge-kubernetes.conf", []byte(conf.String()), 0o644, false, "")
	f.Diffable = true
	out := []resource.Resource{f}
	for _, v := range values {
		out = append(out, resource.Resource{Kind: resource.Sysctl, Name: v[0], Value: v[1]})
	}
	return out
}
