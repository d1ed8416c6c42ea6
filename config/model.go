package config

import (
	"fmt"
	"net"
	"net/netip"
	"sort"
	"strconv"
	"time"

	"github.com/hashicorp/hcl/v2"

	"github.com/kforge/kforge/config/funcs"
)

// Cluster is the validated model of a configuration: every value is defaulted, parsed and checked.
type Cluster struct {
	Name string
	// Dir is the directory the configuration was loaded from; relative paths in it resolve there.
	Dir   string
	Files []string

	KubernetesVersion Version
	ClusterDomain     string
	PodCIDR           netip.Prefix
	ServiceCIDR       netip.Prefix
	NodePodCIDRSize   int
	// APIEndpoint is where clients reach the API servers; nil means the single control-plane host.
	APIEndpoint       *Endpoint
	SecretsEncryption string // "secretbox", "aescbc", "aesgcm" or "none"

	Etcd              Etcd
	APIServer         APIServer
	ControllerManager Component
	Scheduler         Component
	Kubelet           Kubelet
	KubeProxy         KubeProxy
	Containerd        Containerd
	PKI               PKI
	DNS               DNS
	Security          Security
	Network           Network

	Hosts     []Host
	Artifacts Artifacts
	Providers []Provider
	// Backend is where kforge keeps the state, its lock and the PKI store.
	Backend Backend

	DeclRange hcl.Range
}

// Endpoint is a host name or address with a port.
type Endpoint struct {
	Host string
	Port int
}

func (e Endpoint) String() string { return net.JoinHostPort(e.Host, strconv.Itoa(e.Port)) }

// Component holds what every Kubernetes component accepts: extra command-line flags (names without dashes).
type Component struct {
	ExtraArgs map[string]string
}

// Etcd settings.
type Etcd struct {
	Component
	// Snapshots, when set, has every member snapshot itself on a schedule (a systemd timer).
	Snapshots *EtcdSnapshots
}

// EtcdSnapshots are scheduled snapshots, kept on each member's host.
type EtcdSnapshots struct {
	Schedule string // systemd's OnCalendar syntax: "daily", "hourly", "*-*-* 02:30:00"
	Keep     int    // the newest this many are kept
	Dir      string // absolute
}

// APIServer settings.
type APIServer struct {
	Component
	Port int
}

// Kubelet settings.
type Kubelet struct {
	Component
	MaxPods int
	// CgroupDriver is "systemd", "cgroupfs" or "auto" (chosen from the host's facts).
	CgroupDriver string
	// FailCgroupV1 false lets Kubernetes >= 1.35 run on cgroup v1 hosts (written into the kubelet config).
	FailCgroupV1 bool
}

// KubeProxy settings.
type KubeProxy struct {
	Component
	Mode string // "iptables", "nftables" or "ipvs"
	// ConntrackMaxPerCore overrides kube-proxy's conntrack sizing; 0 leaves the kernel's (for hosts, such as
	// containers, where kube-proxy cannot change it). Nil keeps kube-proxy's default.
	ConntrackMaxPerCore *int
}

// Containerd settings.
type Containerd struct {
	// SandboxImage overrides the pause image; empty means the one the artifacts provide.
	SandboxImage string
	// RestrictOOMScoreAdj is for hosts where root lacks CAP_SYS_RESOURCE (containers, such as lab hosts).
	RestrictOOMScoreAdj bool
	// RegistryMirrors maps a registry, as image names spell it ("docker.io", "registry.k8s.io", "host:5000",
	// or "_default" for every registry without an entry of its own), to the base URLs of its mirrors, which
	// containerd tries in order before the registry itself. Nil when none are set.
	RegistryMirrors map[string][]string
}

// DNS is the cluster DNS add-on: CoreDNS, answering at the tenth address of the service CIDR.
type DNS struct {
	Enabled  bool
	Replicas int
	// Image overrides CoreDNS' image; empty means the artifact set's, or the official one for downloads.
	Image string
	// Upstream lists the resolvers (IP or IP:port) CoreDNS forwards other names to. Nil means each node's
	// /etc/resolv.conf (what its pods would use without cluster DNS); empty means none: cluster names only.
	Upstream []string
}

// Network is how pods on different nodes reach each other.
type Network struct {
	// Plugin is "routes" (kforge writes a route per node to every node), "flannel" (flanneld on every node,
	// a VXLAN overlay) or "kube-router" (kube-router on every node: routes by BGP and enforces NetworkPolicy).
	Plugin string
	// PluginRange is where the configuration names it (empty when it does not), for errors about the choice.
	PluginRange hcl.Range
}

// The pod-network plugins.
const (
	PluginRoutes     = "routes"
	PluginFlannel    = "flannel"
	PluginKubeRouter = "kube-router"
)

// NetworkPlugins lists the plugins, the default first.
var NetworkPlugins = []string{PluginRoutes, PluginFlannel, PluginKubeRouter}

// RoutesItself reports whether the plugin learns the nodes from the API rather than from kforge's plan: adding
// a node then changes nothing on the others.
func (n Network) RoutesItself() bool { return n.Plugin != PluginRoutes }

// Security is how far the cluster follows the CIS Kubernetes Benchmark: all the way by default; each setting
// that relaxes an item is listed by Relaxations, which plan and preflight show as warnings.
type Security struct {
	// PodSecurity is the Pod Security level namespaces enforce unless labelled otherwise.
	PodSecurity string // "privileged", "baseline" or "restricted"
	// AnonymousHealthChecks lets requests without credentials read /livez, /readyz and /healthz (load
	// balancers' probes); false refuses every anonymous request (--anonymous-auth=false).
	AnonymousHealthChecks bool
	Profiling             bool // the components' /debug/pprof
	ProtectKernelDefaults bool // the kubelet refuses kernel settings other than those it needs
	AuditLog              AuditLog

	// Where each relaxable setting was written, for the warnings.
	ranges map[string]hcl.Range
}

// AuditLog is the API server's audit log: kept or not, and its rotation (days, files, megabytes).
type AuditLog struct {
	Enabled                     bool
	MaxAge, MaxBackups, MaxSize int
}

// The CIS benchmark's floor for the audit log's rotation (1.2.17-1.2.19).
const (
	cisAuditMaxAge     = 30
	cisAuditMaxBackups = 10
	cisAuditMaxSize    = 100
)

// Relaxation is a security setting below the CIS benchmark, and where the configuration says so.
type Relaxation struct {
	Setting, Item, Why string
	Range              hcl.Range
}

func (r Relaxation) String() string {
	msg := fmt.Sprintf("security %s relaxes CIS %s: %s", r.Setting, r.Item, r.Why)
	if r.Range.Filename == "" {
		return msg
	}
	return fmt.Sprintf("%s (%s:%d:%d)", msg, r.Range.Filename, r.Range.Start.Line, r.Range.Start.Column)
}

// Relaxations lists the settings that keep the cluster from a CIS benchmark item, in a stable order.
func (s Security) Relaxations() []Relaxation {
	var out []Relaxation
	add := func(setting, item, why string) {
		out = append(out, Relaxation{Setting: setting, Item: item, Why: why, Range: s.ranges[setting]})
	}
	if s.PodSecurity == "privileged" {
		add("pod_security", "5.2", `namespaces without pod-security labels admit privileged pods (pod_security = "privileged")`)
	}
	if s.Profiling {
		add("profiling", "1.2.15, 1.3.2, 1.4.1", "the API server, controller-manager and scheduler serve /debug/pprof")
	}
	if !s.ProtectKernelDefaults {
		add("protect_kernel_defaults", "4.2.6", "the kubelet changes kernel settings it disagrees with instead of refusing to start")
	}
	if !s.AuditLog.Enabled {
		add("audit_log", "1.2.16, 3.2.1", "the API server keeps no audit log")
	} else if s.AuditLog.MaxAge < cisAuditMaxAge || s.AuditLog.MaxBackups < cisAuditMaxBackups || s.AuditLog.MaxSize < cisAuditMaxSize {
		add("audit_log", "1.2.17-1.2.19", fmt.Sprintf("the audit log keeps less than %d days, %d files of %d MB (%d, %d, %d)",
			cisAuditMaxAge, cisAuditMaxBackups, cisAuditMaxSize, s.AuditLog.MaxAge, s.AuditLog.MaxBackups, s.AuditLog.MaxSize))
	}
	return out
}

// PKI says how certificates are made.
type PKI struct {
	KeyAlgorithm string // "ecdsa" or "rsa"
	KeySize      int    // ecdsa: 256, 384, 521; rsa: 2048, 3072, 4096
	CAValidity   time.Duration
	Validity     time.Duration
	// RenewBefore re-issues a certificate when it expires within this window.
	RenewBefore time.Duration
}

// Role is what a host does in the cluster.
type Role string

const (
	RoleControlPlane Role = "control-plane"
	RoleEtcd         Role = "etcd"
	RoleWorker       Role = "worker"
)

// knownRoles lists the roles in the order summaries show them.
var knownRoles = []Role{RoleControlPlane, RoleEtcd, RoleWorker}

// Host is one machine of the cluster, with its SSH settings already merged over the defaults.
type Host struct {
	Name            string
	Address         string     // what kforge dials: an IP address or a DNS name
	InternalAddress netip.Addr // what cluster components use; invalid when unset
	Roles           []Role     // sorted, no duplicates
	Labels          map[string]string
	Taints          []Taint
	SSH             SSH

	// DeclRange is the host block (for a for_each instance, the block that made it, for a provider's host the
	// provider block); Key is its for_each key.
	DeclRange hcl.Range
	Key       string

	src hostSource // where its attributes are written, for diagnostics that compare hosts
}

// Has reports whether the host has the role.
func (h Host) Has(r Role) bool {
	for _, x := range h.Roles {
		if x == r {
			return true
		}
	}
	return false
}

// RunsKubelet reports whether the host is a Kubernetes node: workers and control-plane hosts are, etcd-only hosts are not.
func (h Host) RunsKubelet() bool { return h.Has(RoleControlPlane) || h.Has(RoleWorker) }

// ClusterAddress is the address cluster components use for the host: the internal address when set.
func (h Host) ClusterAddress() string {
	if h.InternalAddress.IsValid() {
		return h.InternalAddress.String()
	}
	return h.Address
}

// HostsWith returns the hosts that have the role, in configuration order.
func (c *Cluster) HostsWith(r Role) []Host {
	var out []Host
	for _, h := range c.Hosts {
		if h.Has(r) {
			out = append(out, h)
		}
	}
	return out
}

// Taint is a node taint, key[=value]:effect.
type Taint struct {
	Key, Value, Effect string
}

func (t Taint) String() string {
	if t.Value == "" {
		return t.Key + ":" + t.Effect
	}
	return t.Key + "=" + t.Value + ":" + t.Effect
}

// HostKeyPolicy says how kforge treats SSH host keys.
type HostKeyPolicy string

const (
	HostKeyStrict    HostKeyPolicy = "strict"
	HostKeyAcceptNew HostKeyPolicy = "accept-new"
	HostKeyInsecure  HostKeyPolicy = "insecure"
)

// SSH is how kforge reaches a host.
type SSH struct {
	User           string
	Port           int
	PrivateKeyFile string // absolute; empty means the agent and the user's default keys
	UseAgent       bool
	// KnownHostsFile adds a known_hosts file to the user's and kforge's own; empty adds none.
	KnownHostsFile string
	HostKeyPolicy  HostKeyPolicy
	Sudo           bool
	ConnectTimeout time.Duration
	Bastion        *Bastion
}

// Bastion is a jump host; unset fields inherit the SSH settings it belongs to.
type Bastion struct {
	Address        string
	Port           int
	User           string
	PrivateKeyFile string
	UseAgent       bool
	KnownHostsFile string
	HostKeyPolicy  HostKeyPolicy
}

// ArtifactSource says where binaries come from.
type ArtifactSource string

const (
	SourceDownload ArtifactSource = "download"
	SourceMirror   ArtifactSource = "mirror"
	SourceLocal    ArtifactSource = "local"
	// SourceNone installs no binaries and runs no components: kforge places the PKI, kubeconfigs and host
	// settings only, for hosts whose Kubernetes comes from elsewhere (and for tests of plan and apply themselves).
	SourceNone ArtifactSource = "none"
)

// Artifacts says where the binaries kforge installs come from and which versions to take.
type Artifacts struct {
	Source   ArtifactSource
	URL      string // base URL for a mirror
	Dir      string // absolute directory for local artifacts
	CacheDir string // absolute; empty means the user's cache directory
	// Versions overrides component versions (etcd, containerd, runc, cni_plugins, crictl).
	Versions map[string]string
	// SHA256 pins artifacts by name to a hex digest, checked on top of the published checksums.
	SHA256 map[string]string
}

// Provider is a provider block; its body is decoded by the provider of that name, with EvalContext (variables,
// locals and functions, as everywhere in the configuration).
type Provider struct {
	Name        string
	Body        hcl.Body
	DeclRange   hcl.Range
	EvalContext *hcl.EvalContext
	// Paths resolves paths in the block as everywhere in the configuration.
	Paths funcs.Paths
}

// RoleCounts counts hosts per role, for summaries.
func (c *Cluster) RoleCounts() map[Role]int {
	out := map[Role]int{}
	for _, h := range c.Hosts {
		for _, r := range h.Roles {
			out[r]++
		}
	}
	return out
}

// SortRoles puts roles in their canonical order: control-plane, etcd, worker.
func SortRoles(rs []Role) {
	rank := map[Role]int{}
	for i, r := range knownRoles {
		rank[r] = i
	}
	sort.Slice(rs, func(i, j int) bool { return rank[rs[i]] < rank[rs[j]] })
}

// Backend is where kforge keeps its state, the lock and its files (the PKI store, known hosts).
type Backend struct {
	Type BackendType
	// Local: the directory; empty means .kforge beside the configuration (or --state).
	Dir string
	// etcd: where, and the client's TLS files (absolute paths).
	Endpoints                 []string
	Prefix                    string // begins and ends with "/"
	CAFile, CertFile, KeyFile string
	// EncryptionKeyFile holds the key (32 random bytes, base64) that encrypts the files kept in etcd; empty
	// only when the configuration says encrypt_files = false.
	EncryptionKeyFile string
	// LocalPKI keeps the PKI store (and known hosts) in the local directory while state and lock are in etcd.
	LocalPKI bool
	// LockTTL is how long a killed holder's lock outlives it.
	LockTTL time.Duration

	DeclRange hcl.Range
}

// BackendType names a backend.
type BackendType string

const (
	BackendLocal BackendType = "local"
	BackendEtcd  BackendType = "etcd"
)

var backendTypes = []string{string(BackendLocal), string(BackendEtcd)}
