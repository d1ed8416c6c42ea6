package pki

import (
	"encoding/base64"
	"fmt"
	"net"
	"strconv"
	"strings"

	"github.com/kforge/kforge/config"
)

// Kubeconfig is one kubeconfig the cluster needs: whose identity (a certificate of the catalog), which API
// server it talks to, and which hosts receive it.
type Kubeconfig struct {
	Name string // file name: NAME.conf
	Cert string // the client certificate's store name
	// User names the user entry; empty takes the certificate's common name (system:node:…, as kubeadm does).
	User   string
	Server string
	Hosts  []string
}

// APIServerURL is where clients outside the control-plane hosts reach the API: the api_endpoint, or the only
// control-plane host.
func APIServerURL(c *config.Cluster) string {
	if e := c.APIEndpoint; e != nil {
		return "https://" + e.String()
	}
	if cps := c.HostsWith(config.RoleControlPlane); len(cps) > 0 {
		return "https://" + net.JoinHostPort(cps[0].ClusterAddress(), strconv.Itoa(c.APIServer.Port))
	}
	return ""
}

// Kubeconfigs lists the kubeconfigs: components on control-plane hosts talk to their local API server, which
// keeps working when the endpoint's load balancer does not.
func Kubeconfigs(c *config.Cluster) []Kubeconfig {
	local := "https://" + net.JoinHostPort("127.0.0.1", strconv.Itoa(c.APIServer.Port))
	remote := APIServerURL(c)
	cps := hostNames(c.HostsWith(config.RoleControlPlane))
	out := []Kubeconfig{
		// The operator's kubeconfig is merged into kubeconfigs that hold other clusters: its user is named after
		// this cluster, so that two clusters' admins never share an entry.
		{Name: "admin", Cert: "admin", User: c.Name + "-admin", Server: remote},
		{Name: "controller-manager", Cert: "controller-manager", Server: local, Hosts: cps},
		{Name: "scheduler", Cert: "scheduler", Server: local, Hosts: cps},
		{Name: "kube-proxy", Cert: "kube-proxy", Server: remote, Hosts: kubeletHosts(c)},
	}
	if c.Network.RoutesItself() {
		out = append(out, Kubeconfig{Name: PodNetworkCert, Cert: PodNetworkCert, Server: remote, Hosts: kubeletHosts(c)})
	}
	for _, h := range c.Hosts {
		if h.RunsKubelet() {
			out = append(out, Kubeconfig{Name: "kubelet-" + h.Name, Cert: "kubelet-" + h.Name, Server: remote, Hosts: []string{h.Name}})
		}
	}
	return out
}

// RenderKubeconfig writes a kubeconfig with the certificates embedded, so it is one self-contained file.
func RenderKubeconfig(cluster, user, server string, caPEM []byte, client Pair) []byte {
	b64 := func(p []byte) string { return base64.StdEncoding.EncodeToString(p) }
	var b strings.Builder
	fmt.Fprintf(&b, "apiVersion: v1\nkind: Config\nclusters:\n- name: %s\n  cluster:\n", cluster)
	fmt.Fprintf(&b, "    server: %s\n    certificate-authority-data: %s\n", server, b64(caPEM))
	fmt.Fprintf(&b, "users:\n- name: %s\n  user:\n    client-certificate-data: %s\n    client-key-data: %s\n", user, b64(client.CertPEM), b64(client.KeyPEM))
	fmt.Fprintf(&b, "contexts:\n- name: %s@%s\n  context:\n    cluster: %s\n    user: %s\n", user, cluster, cluster, user)
	fmt.Fprintf(&b, "current-context: %s@%s\n", user, cluster)
	return []byte(b.String())
}

// WriteKubeconfigs renders every kubeconfig from the store into DIR/kubeconfig/NAME.conf (0600: they hold
// keys) and returns the paths.
func WriteKubeconfigs(s *Store, c *config.Cluster) ([]string, error) {
	trust, err := s.Trust(ClusterCA)
	if err != nil {
		return nil, err
	}
	if trust == nil {
		return nil, fmt.Errorf("no cluster CA in %s", s.Dir)
	}
	var paths []string
	for _, k := range Kubeconfigs(c) {
		e, err := s.Read(k.Cert)
		if err != nil {
			return nil, err
		}
		if e.CertPEM == nil || e.KeyPEM == nil {
			return nil, fmt.Errorf("kubeconfig %s: certificate %s is not issued", k.Name, k.Cert)
		}
		rel := "kubeconfig/" + k.Name + ".conf"
		user := k.User
		if user == "" {
			user = e.Cert.Subject.CommonName
		}
		data := RenderKubeconfig(c.Name, user, k.Server, trust, Pair{CertPEM: e.CertPEM, KeyPEM: e.KeyPEM})
		if old, _ := s.ReadFile(rel); string(old) != string(data) {
			if err := s.WriteFile(rel, data, 0o600); err != nil {
				return nil, err
			}
		}
		paths = append(paths, s.Dir+"/"+rel)
	}
	return paths, nil
}
