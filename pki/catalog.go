package pki

import (
	"net/netip"
	"sort"

	"github.com/kforge/kforge/config"
	"github.com/kforge/kforge/config/netcalc"
)

// Kind tells certificates, CAs and the other secrets apart.
type Kind string

const (
	KindCA      Kind = "ca"
	KindCert    Kind = "cert"
	KindKeyPair Kind = "keypair" // the service-account signing key: a key pair without a certificate
)

// Spec is one certificate (or key pair) the cluster needs: what it must say and which hosts receive it.
type Spec struct {
	Name        string // the file name in the store: NAME.crt and NAME.key
	Kind        Kind
	CA          string // the CA that signs it
	CN          string
	O           []string
	DNSNames    []string
	IPs         []netip.Addr
	Usages      []Usage
	Hosts       []string // hosts that receive it, in cluster order
	Description string
}

// The pod-network plugin's certificate and the user it authenticates as (its RBAC names it).
const (
	PodNetworkCert = "pod-network"
	PodNetworkUser = "system:kforge:pod-network"
)

// The CAs, by store name.
const (
	ClusterCA    = "ca"
	EtcdCA       = "etcd-ca"
	FrontProxyCA = "front-proxy-ca"
	ServiceAcct  = "sa"
)

// Catalog lists every certificate and key pair the cluster needs, computed from the configuration alone: CAs
// first, then the certificates, in a stable order.
func Catalog(c *config.Cluster) []Spec {
	controlPlanes, etcd, nodes := hostNames(c.HostsWith(config.RoleControlPlane)), hostNames(c.HostsWith(config.RoleEtcd)), kubeletHosts(c)
	all := unique(controlPlanes, etcd, nodes)
	specs := []Spec{
		{Name: ClusterCA, Kind: KindCA, CN: "kubernetes-ca", Hosts: all, Description: "cluster CA: API server, kubelets, components"},
		{Name: EtcdCA, Kind: KindCA, CN: "etcd-ca", Hosts: unique(etcd, controlPlanes), Description: "etcd CA: etcd peers and clients"},
		{Name: FrontProxyCA, Kind: KindCA, CN: "front-proxy-ca", Hosts: controlPlanes, Description: "front-proxy CA: API aggregation"},
		{Name: ServiceAcct, Kind: KindKeyPair, Hosts: controlPlanes, Description: "service-account token signing key"},
	}
	cert := func(name, ca, cn string, o []string, usages []Usage, hosts []string, desc string) Spec {
		return Spec{Name: name, Kind: KindCert, CA: ca, CN: cn, O: o, Usages: usages, Hosts: hosts, Description: desc}
	}
	server, client, both := []Usage{UsageServer}, []Usage{UsageClient}, []Usage{UsageServer, UsageClient}

	apiserver := cert("apiserver", ClusterCA, "kube-apiserver", nil, server, controlPlanes, "API server serving certificate")
	apiserver.DNSNames, apiserver.IPs = apiServerSANs(c)
	specs = append(specs, apiserver,
		cert("apiserver-kubelet-client", ClusterCA, "kube-apiserver-kubelet-client", nil, client, controlPlanes, "API server to kubelets"),
		cert("apiserver-etcd-client", EtcdCA, "kube-apiserver-etcd-client", nil, client, controlPlanes, "API server to etcd"),
		cert("etcd-healthcheck-client", EtcdCA, "kube-etcd-healthcheck-client", nil, client, etcd, "etcd health checks"),
		cert("front-proxy-client", FrontProxyCA, "front-proxy-client", nil, client, controlPlanes, "API server to aggregated APIs"),
		cert("controller-manager", ClusterCA, "system:kube-controller-manager", nil, client, controlPlanes, "controller-manager's kubeconfig"),
		cert("scheduler", ClusterCA, "system:kube-scheduler", nil, client, controlPlanes, "scheduler's kubeconfig"),
		loopbackServer(cert("controller-manager-serving", ClusterCA, "kube-controller-manager", nil, server, controlPlanes, "controller-manager's HTTPS port on loopback")),
		loopbackServer(cert("scheduler-serving", ClusterCA, "kube-scheduler", nil, server, controlPlanes, "scheduler's HTTPS port on loopback")),
		cert("kube-proxy", ClusterCA, "system:kube-proxy", []string{"system:node-proxier"}, client, nodes, "kube-proxy's kubeconfig"),
		cert("admin", ClusterCA, "kubernetes-admin", []string{"system:masters"}, client, nil, "admin kubeconfig (for the operator)"),
	)
	if c.Network.RoutesItself() {
		// One identity for the plugin on every node, as kube-proxy has: what it may do is the same everywhere.
		specs = append(specs, cert(PodNetworkCert, ClusterCA, PodNetworkUser, nil, client, nodes, c.Network.Plugin+"'s kubeconfig"))
	}
	for _, h := range c.HostsWith(config.RoleEtcd) {
		dns, ips := hostSANs(h)
		for _, kind := range []string{"server", "peer"} {
			s := cert("etcd-"+kind+"-"+h.Name, EtcdCA, h.Name, nil, both, []string{h.Name}, "etcd "+kind+" certificate of "+h.Name)
			s.DNSNames, s.IPs = dns, ips
			specs = append(specs, s)
		}
	}
	for _, h := range c.Hosts {
		if !h.RunsKubelet() {
			continue
		}
		specs = append(specs, cert("kubelet-"+h.Name, ClusterCA, "system:node:"+h.Name, []string{"system:nodes"}, client,
			[]string{h.Name}, "kubelet of "+h.Name+" to the API server"))
		s := cert("kubelet-serving-"+h.Name, ClusterCA, "system:node:"+h.Name, []string{"system:nodes"}, server,
			[]string{h.Name}, "kubelet API of "+h.Name+" (logs, exec)")
		s.DNSNames, s.IPs = hostSANs(h)
		specs = append(specs, s)
	}
	return specs
}

// loopbackServer names s for a server that listens on loopback only, as the controller-manager and the scheduler
// do: their own certificate, not one they make up at each start.
func loopbackServer(s Spec) Spec {
	s.DNSNames, s.IPs = []string{"localhost"}, []netip.Addr{netip.MustParseAddr("127.0.0.1")}
	return s
}

// apiServerSANs: every name clients use for the API: each control-plane host's names and addresses, the API
// endpoint, the kubernetes Service (first service IP and its DNS names), and loopback.
func apiServerSANs(c *config.Cluster) ([]string, []netip.Addr) {
	dns := []string{"kubernetes", "kubernetes.default", "kubernetes.default.svc", "kubernetes.default.svc." + c.ClusterDomain, "localhost"}
	ips := []netip.Addr{netip.MustParseAddr("127.0.0.1")}
	if first, err := netcalc.Host(c.ServiceCIDR, 1); err == nil {
		ips = append(ips, first)
	}
	for _, h := range c.HostsWith(config.RoleControlPlane) {
		d, i := hostSANs(h)
		dns, ips = append(dns, d...), append(ips, i...)
	}
	if e := c.APIEndpoint; e != nil {
		if a, err := netip.ParseAddr(e.Host); err == nil {
			ips = append(ips, a)
		} else {
			dns = append(dns, e.Host)
		}
	}
	return sortedUnique(dns), sortedAddrs(ips)
}

// hostSANs: a host's name, its addresses, and loopback (components on the host reach themselves locally).
func hostSANs(h config.Host) ([]string, []netip.Addr) {
	dns := []string{h.Name, "localhost"}
	ips := []netip.Addr{netip.MustParseAddr("127.0.0.1")}
	if a, err := netip.ParseAddr(h.Address); err == nil {
		ips = append(ips, a)
	} else {
		dns = append(dns, h.Address)
	}
	if h.InternalAddress.IsValid() {
		ips = append(ips, h.InternalAddress)
	}
	return sortedUnique(dns), sortedAddrs(ips)
}

func hostNames(hosts []config.Host) []string {
	out := make([]string, len(hosts))
	for i, h := range hosts {
		out[i] = h.Name
	}
	return out
}

func kubeletHosts(c *config.Cluster) []string {
	var out []string
	for _, h := range c.Hosts {
		if h.RunsKubelet() {
			out = append(out, h.Name)
		}
	}
	return out
}

// unique concatenates lists, keeping the first occurrence of each name.
func unique(lists ...[]string) []string {
	seen := map[string]bool{}
	var out []string
	for _, l := range lists {
		for _, x := range l {
			if !seen[x] {
				seen[x] = true
				out = append(out, x)
			}
		}
	}
	return out
}

func sortedUnique(xs []string) []string {
	out := unique(xs)
	sort.Strings(out)
	return out
}

func sortedAddrs(xs []netip.Addr) []netip.Addr {
	seen := map[netip.Addr]bool{}
	var out []netip.Addr
	for _, a := range xs {
		if !seen[a] {
			seen[a] = true
			out = append(out, a)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Less(out[j]) })
	return out
}
