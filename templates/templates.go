// Package templates holds the files kforge writes on hosts (systemd units, component configs), embedded in the
// binary, and renders them from plain data: no logic beyond filling in values lives in a template.
package templates

import (
	"bytes"
	"embed"
	"encoding/json"
	"fmt"
	"text/template"
)

//go:embed files/*.tmpl
var files embed.FS

// funcs are the template functions: quoting only, so that values from the configuration stay values.
var funcs = template.FuncMap{
	// quote makes a YAML string of any value: JSON strings are YAML strings.
	"quote": func(s string) (string, error) {
		b, err := json.Marshal(s)
		return string(b), err
	},
}

// Render fills the named template (a file under files/, without .tmpl) with data.
func Render(name string, data any) ([]byte, error) {
	t, err := template.New(name+".tmpl").Option("missingkey=error").Funcs(funcs).ParseFS(files, "files/"+name+".tmpl")
	if err != nil {
		return nil, fmt.Errorf("template %s: %w", name, err)
	}
	var b bytes.Buffer
	if err := t.Execute(&b, data); err != nil {
		return nil, fmt.Errorf("template %s: %w", name, err)
	}
	return b.Bytes(), nil
}

// CNI is what a node's pod network config (bridge, host-local addresses, portmap) needs.
type CNI struct {
	// PodCIDR is the node's slice of the pod CIDR, from which its pods get addresses.
	PodCIDR string
	// MTU is the pods' interfaces' MTU; 0 leaves the bridge plugin's default (the host's).
	MTU int
	// IPMasq has the bridge plugin masquerade what pods send beyond their node's slice; with a plugin that
	// masquerades only traffic leaving the cluster, pods see each other's own addresses (as NetworkPolicy needs).
	IPMasq bool
}

// PodNetworkPlugin is what a node's flanneld or kube-router unit needs.
type PodNetworkPlugin struct {
	Name       string // the node's name
	IP         string // the address that carries pod traffic between nodes (flanneld's --iface)
	Kubeconfig string
	NetConf    string // flannel's network config file
	StopScript string // the clean-up when kforge removes it
	// ServiceCIDR is the cluster's Service range (kube-router's firewall lets traffic to it through).
	ServiceCIDR string
}

// PodNetworkStop is what a plugin's clean-up script removes: chains and ipsets by name (extended regular
// expressions, without anchors), interfaces, the routes of a protocol number, directories.
type PodNetworkStop struct {
	Unit, Chains, IPSets string
	Links, Dirs          []string
	RouteProto           int
}

// FlannelNetConf is flannel's network config: the cluster's pod CIDR and the backend.
type FlannelNetConf struct{ Network, Backend string }

// Etcd is what etcd.service needs.
type Etcd struct {
	Name           string // the member name: the host's name
	IP             string // the address it listens on and advertises
	InitialCluster string // name=https://ip:2380,… for every member
	Token          string // the cluster's initial-cluster-token: unique per cluster
	// TLSCipherSuites is the comma-separated list etcd serves TLS 1.2 with, to clients and peers.
	TLSCipherSuites string
}

// EtcdSnapshots is what the scheduled snapshots of an etcd member need.
type EtcdSnapshots struct {
	Schedule string
	Keep     int
	Dir      string
	Etcdctl  string // etcdctl with what it needs to reach the local member
}

// KeepFrom is the rank, newest first, of the first snapshot that goes.
func (e EtcdSnapshots) KeepFrom() int { return e.Keep + 1 }

// Containerd is what containerd's config needs.
type Containerd struct {
	SandboxImage string
	// SystemdCgroup: runc creates containers' cgroups through systemd, as the kubelet's cgroupDriver must agree.
	SystemdCgroup bool
	// RestrictOOMScoreAdj keeps containers' OOM scores at or above containerd's own, for hosts where root lacks
	// CAP_SYS_RESOURCE (containers such as kforge's lab hosts).
	RestrictOOMScoreAdj bool
	// RegistryConfigPath is the directory of per-registry hosts.toml files; empty when no mirror is configured.
	RegistryConfigPath string
}

// ContainerdHosts is one registry's hosts.toml: the mirrors containerd tries first, then Server (none for
// containerd's "_default", which stands for every registry without a file of its own).
type ContainerdHosts struct {
	Registry string
	Server   string
	Mirrors  []string
}

// ControlPlane is what the control-plane units need.
type ControlPlane struct {
	IP            string // the host's address, advertised by its API server
	Port          int
	EtcdServers   string // https://ip:2379,… of every etcd member
	ClusterName   string
	ClusterDomain string
	ServiceCIDR   string
	// ShutdownDelay keeps a stopping API server serving while its /readyz fails, so that a load balancer that
	// checks it sends no new request there before it stops listening: several control-plane hosts only.
	ShutdownDelay string
	// TLSCipherSuites is the comma-separated list every control-plane component serves TLS 1.2 with.
	TLSCipherSuites string
	// PodSecurity is the Pod Security level every namespace enforces unless labelled otherwise.
	PodSecurity string
	Audit       AuditLog
	// AnonymousHealthChecks lets anonymous requests read the health endpoints only; false refuses all.
	AnonymousHealthChecks bool
	Profiling             bool
	// ExtraArgs are "--name=value" flags from the configuration, sorted.
	ExtraArgs []string
}

// AuditLog is how the API server keeps its audit log: days, files and megabytes before rotation.
type AuditLog struct {
	Enabled                     bool
	MaxAge, MaxBackups, MaxSize int
}

// Kubelet is what the kubelet's config and unit need.
type Kubelet struct {
	Name, IP      string
	CgroupDriver  string
	ClusterDNS    string
	ClusterDomain string
	FailCgroupV1  bool
	MaxPods       int
	// TLSCipherSuites is the comma-separated list the kubelet serves TLS 1.2 with.
	TLSCipherSuites       string
	ProtectKernelDefaults bool
	ExtraArgs             []string
}

// Images is what the image-import unit needs: the tarballs to import.
type Images struct{ Tarballs []string }

// KubeProxy is what kube-proxy's config and unit need.
type KubeProxy struct {
	Name, PodCIDR, Mode string
	// ConntrackMaxPerCore is the value to set, "" to leave kube-proxy's default ("0" leaves the kernel's).
	ConntrackMaxPerCore string
	ExtraArgs           []string
}

// Objects are the API objects kforge manages.
type Objects struct {
	Nodes []Node
	// PodNetwork is the pod-network plugin that runs on the nodes ("routes" when none does); the others get the
	// access they need to the API.
	PodNetwork, PodNetworkUser string
}

// Node is a node object kforge creates before its kubelet registers, with the pod CIDR kforge assigned and the
// labels and taints of the configuration (the API, not the kubelet, sets them: NodeRestriction forbids a kubelet
// the node-role labels, and a kubelet registers its taints only when it creates the object itself).
type Node struct {
	Name, PodCIDR string
	Labels        []Label // sorted by key
	Taints        []Taint
}

// Label is a node label; Key and Value are quoted for YAML by the template.
type Label struct{ Key, Value string }

// Taint is a node taint.
type Taint struct{ Key, Value, Effect string }

// Routes are a node's routes to the other nodes' pods.
type Routes struct{ Routes []Route }

// Route sends a pod CIDR to the node that has it.
type Route struct{ Destination, Via string }

// ObjectsScript is what the script applying kforge's API objects needs.
type ObjectsScript struct {
	Files []string // the manifests to apply
	Off   []string // the add-ons turned off, whose objects are deleted
}

// DNS is what the cluster DNS add-on needs.
type DNS struct {
	Domain    string
	ClusterIP string
	Image     string
	Replicas  int
	// MinDomains is how many nodes the replicas spread over at least: min(replicas, nodes it may run on).
	MinDomains int
	// Forward is what CoreDNS forwards other names to ("/etc/resolv.conf" or resolvers); "" forwards nothing.
	Forward string
}
