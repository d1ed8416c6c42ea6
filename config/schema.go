package config

import "github.com/hashicorp/hcl/v2"

// The raw shapes gohcl decodes into. They keep pointers for optional values (so that "unset" differs from
// a zero value) and the source ranges that validation points at; the model in model.go is built from them.

// rootSchema is the top level of every file: declarations first, because variables and locals must be
// evaluated before anything that refers to them.
var rootSchema = &hcl.BodySchema{
	Blocks: []hcl.BlockHeaderSchema{
		{Type: "variable", LabelNames: []string{"name"}},
		{Type: "locals"},
		{Type: "cluster", LabelNames: []string{"name"}},
		{Type: "ssh"},
		{Type: "host", LabelNames: []string{"name"}},
		{Type: "artifacts"},
		{Type: "provider", LabelNames: []string{"name"}},
		{Type: "backend", LabelNames: []string{"type"}},
	},
}

type variableBlock struct {
	Type        *hcl.Attribute `hcl:"type,optional"`
	Default     *hcl.Attribute `hcl:"default,optional"`
	Description *string        `hcl:"description,optional"`
	Sensitive   *bool          `hcl:"sensitive,optional"`
}

type clusterBlock struct {
	KubernetesVersion *string          `hcl:"kubernetes_version,optional"`
	ClusterDomain     *string          `hcl:"cluster_domain,optional"`
	PodCIDR           *string          `hcl:"pod_cidr,optional"`
	ServiceCIDR       *string          `hcl:"service_cidr,optional"`
	NodePodCIDRSize   *int             `hcl:"node_pod_cidr_size,optional"`
	APIEndpoint       *string          `hcl:"api_endpoint,optional"`
	SecretsEncryption *string          `hcl:"secrets_encryption,optional"`
	Etcd              *etcdBlock       `hcl:"etcd,block"`
	APIServer         *apiServerBlock  `hcl:"apiserver,block"`
	ControllerManager *componentBlock  `hcl:"controller_manager,block"`
	Scheduler         *componentBlock  `hcl:"scheduler,block"`
	Kubelet           *kubeletBlock    `hcl:"kubelet,block"`
	KubeProxy         *kubeProxyBlock  `hcl:"kube_proxy,block"`
	Containerd        *containerdBlock `hcl:"containerd,block"`
	PKI               *pkiBlock        `hcl:"pki,block"`
	DNS               *dnsBlock        `hcl:"dns,block"`
	Security          *securityBlock   `hcl:"security,block"`
	Network           *networkBlock    `hcl:"network,block"`

	KubernetesVersionRange hcl.Range `hcl:"kubernetes_version,attr_value_range"`
	ClusterDomainRange     hcl.Range `hcl:"cluster_domain,attr_value_range"`
	PodCIDRRange           hcl.Range `hcl:"pod_cidr,attr_value_range"`
	ServiceCIDRRange       hcl.Range `hcl:"service_cidr,attr_value_range"`
	NodePodCIDRSizeRange   hcl.Range `hcl:"node_pod_cidr_size,attr_value_range"`
	APIEndpointRange       hcl.Range `hcl:"api_endpoint,attr_value_range"`
	SecretsEncryptionRange hcl.Range `hcl:"secrets_encryption,attr_value_range"`
}

type componentBlock struct {
	ExtraArgs      map[string]string `hcl:"extra_args,optional"`
	ExtraArgsRange hcl.Range         `hcl:"extra_args,attr_value_range"`
}

type etcdBlock struct {
	ExtraArgs      map[string]string   `hcl:"extra_args,optional"`
	Snapshots      *etcdSnapshotsBlock `hcl:"snapshots,block"`
	ExtraArgsRange hcl.Range           `hcl:"extra_args,attr_value_range"`
}

type etcdSnapshotsBlock struct {
	Schedule *string `hcl:"schedule,optional"`
	Keep     *int    `hcl:"keep,optional"`
	Dir      *string `hcl:"dir,optional"`

	ScheduleRange hcl.Range `hcl:"schedule,attr_value_range"`
	KeepRange     hcl.Range `hcl:"keep,attr_value_range"`
	DirRange      hcl.Range `hcl:"dir,attr_value_range"`
}

type apiServerBlock struct {
	ExtraArgs      map[string]string `hcl:"extra_args,optional"`
	Port           *int              `hcl:"port,optional"`
	ExtraArgsRange hcl.Range         `hcl:"extra_args,attr_value_range"`
	PortRange      hcl.Range         `hcl:"port,attr_value_range"`
}

type kubeletBlock struct {
	ExtraArgs         map[string]string `hcl:"extra_args,optional"`
	MaxPods           *int              `hcl:"max_pods,optional"`
	CgroupDriver      *string           `hcl:"cgroup_driver,optional"`
	FailCgroupV1      *bool             `hcl:"fail_cgroup_v1,optional"`
	ExtraArgsRange    hcl.Range         `hcl:"extra_args,attr_value_range"`
	MaxPodsRange      hcl.Range         `hcl:"max_pods,attr_value_range"`
	CgroupDriverRange hcl.Range         `hcl:"cgroup_driver,attr_value_range"`
}

type kubeProxyBlock struct {
	ExtraArgs           map[string]string `hcl:"extra_args,optional"`
	Mode                *string           `hcl:"mode,optional"`
	ConntrackMaxPerCore *int              `hcl:"conntrack_max_per_core,optional"`
	ExtraArgsRange      hcl.Range         `hcl:"extra_args,attr_value_range"`
	ModeRange           hcl.Range         `hcl:"mode,attr_value_range"`
}

type containerdBlock struct {
	SandboxImage        *string `hcl:"sandbox_image,optional"`
	RestrictOOMScoreAdj *bool   `hcl:"restrict_oom_score_adj,optional"`
	// RegistryMirrors is decoded by hand (a map of lists), so that each error points at its own entry.
	RegistryMirrors *hcl.Attribute `hcl:"registry_mirrors,optional"`

	SandboxImageRange hcl.Range `hcl:"sandbox_image,attr_value_range"`
}

type securityBlock struct {
	PodSecurity           *string        `hcl:"pod_security,optional"`
	AnonymousHealthChecks *bool          `hcl:"anonymous_health_checks,optional"`
	Profiling             *bool          `hcl:"profiling,optional"`
	ProtectKernelDefaults *bool          `hcl:"protect_kernel_defaults,optional"`
	AuditLog              *auditLogBlock `hcl:"audit_log,block"`

	PodSecurityRange           hcl.Range `hcl:"pod_security,attr_value_range"`
	ProfilingRange             hcl.Range `hcl:"profiling,attr_value_range"`
	ProtectKernelDefaultsRange hcl.Range `hcl:"protect_kernel_defaults,attr_value_range"`
}

type networkBlock struct {
	Plugin      *string   `hcl:"plugin,optional"`
	PluginRange hcl.Range `hcl:"plugin,attr_value_range"`
}

type auditLogBlock struct {
	Enabled    *bool `hcl:"enabled,optional"`
	MaxAge     *int  `hcl:"max_age,optional"`
	MaxBackups *int  `hcl:"max_backups,optional"`
	MaxSize    *int  `hcl:"max_size,optional"`

	EnabledRange    hcl.Range `hcl:"enabled,attr_value_range"`
	MaxAgeRange     hcl.Range `hcl:"max_age,attr_value_range"`
	MaxBackupsRange hcl.Range `hcl:"max_backups,attr_value_range"`
	MaxSizeRange    hcl.Range `hcl:"max_size,attr_value_range"`
}

type dnsBlock struct {
	Enabled  *bool     `hcl:"enabled,optional"`
	Replicas *int      `hcl:"replicas,optional"`
	Image    *string   `hcl:"image,optional"`
	Upstream *[]string `hcl:"upstream,optional"`

	ReplicasRange hcl.Range `hcl:"replicas,attr_value_range"`
	ImageRange    hcl.Range `hcl:"image,attr_value_range"`
	UpstreamRange hcl.Range `hcl:"upstream,attr_value_range"`
}

// sshBlock is used for the top-level defaults and for a host's overrides.
type sshBlock struct {
	User           *string       `hcl:"user,optional"`
	Port           *int          `hcl:"port,optional"`
	PrivateKeyFile *string       `hcl:"private_key_file,optional"`
	UseAgent       *bool         `hcl:"use_agent,optional"`
	KnownHostsFile *string       `hcl:"known_hosts_file,optional"`
	HostKeyPolicy  *string       `hcl:"host_key_policy,optional"`
	Sudo           *bool         `hcl:"sudo,optional"`
	ConnectTimeout *string       `hcl:"connect_timeout,optional"`
	Bastion        *bastionBlock `hcl:"bastion,block"`

	PortRange           hcl.Range `hcl:"port,attr_value_range"`
	PrivateKeyFileRange hcl.Range `hcl:"private_key_file,attr_value_range"`
	KnownHostsFileRange hcl.Range `hcl:"known_hosts_file,attr_value_range"`
	HostKeyPolicyRange  hcl.Range `hcl:"host_key_policy,attr_value_range"`
	ConnectTimeoutRange hcl.Range `hcl:"connect_timeout,attr_value_range"`
}

type bastionBlock struct {
	Address        string  `hcl:"address"`
	Port           *int    `hcl:"port,optional"`
	User           *string `hcl:"user,optional"`
	PrivateKeyFile *string `hcl:"private_key_file,optional"`
	UseAgent       *bool   `hcl:"use_agent,optional"`
	KnownHostsFile *string `hcl:"known_hosts_file,optional"`
	HostKeyPolicy  *string `hcl:"host_key_policy,optional"`

	AddressRange        hcl.Range `hcl:"address,attr_value_range"`
	PortRange           hcl.Range `hcl:"port,attr_value_range"`
	PrivateKeyFileRange hcl.Range `hcl:"private_key_file,attr_value_range"`
	KnownHostsFileRange hcl.Range `hcl:"known_hosts_file,attr_value_range"`
	HostKeyPolicyRange  hcl.Range `hcl:"host_key_policy,attr_value_range"`
}

// hostBlock is a host's body after for_each has been taken out of it.
type hostBlock struct {
	Name            *string           `hcl:"name,optional"`
	Address         string            `hcl:"address"`
	InternalAddress *string           `hcl:"internal_address,optional"`
	Roles           []string          `hcl:"roles"`
	Labels          map[string]string `hcl:"labels,optional"`
	Taints          []string          `hcl:"taints,optional"`
	SSH             *sshBlock         `hcl:"ssh,block"`

	NameRange            hcl.Range `hcl:"name,attr_value_range"`
	AddressRange         hcl.Range `hcl:"address,attr_value_range"`
	InternalAddressRange hcl.Range `hcl:"internal_address,attr_value_range"`
	RolesRange           hcl.Range `hcl:"roles,attr_value_range"`
	LabelsRange          hcl.Range `hcl:"labels,attr_value_range"`
	TaintsRange          hcl.Range `hcl:"taints,attr_value_range"`
}

type artifactsBlock struct {
	Source   *string           `hcl:"source,optional"`
	URL      *string           `hcl:"url,optional"`
	Dir      *string           `hcl:"dir,optional"`
	CacheDir *string           `hcl:"cache_dir,optional"`
	Versions map[string]string `hcl:"versions,optional"`
	SHA256   map[string]string `hcl:"sha256,optional"`

	SourceRange   hcl.Range `hcl:"source,attr_value_range"`
	URLRange      hcl.Range `hcl:"url,attr_value_range"`
	DirRange      hcl.Range `hcl:"dir,attr_value_range"`
	CacheDirRange hcl.Range `hcl:"cache_dir,attr_value_range"`
	VersionsRange hcl.Range `hcl:"versions,attr_value_range"`
	SHA256Range   hcl.Range `hcl:"sha256,attr_value_range"`
}

type pkiBlock struct {
	KeyAlgorithm *string `hcl:"key_algorithm,optional"`
	KeySize      *int    `hcl:"key_size,optional"`
	CAValidity   *string `hcl:"ca_validity,optional"`
	Validity     *string `hcl:"validity,optional"`
	RenewBefore  *string `hcl:"renew_before,optional"`

	KeyAlgorithmRange hcl.Range `hcl:"key_algorithm,attr_value_range"`
	KeySizeRange      hcl.Range `hcl:"key_size,attr_value_range"`
	CAValidityRange   hcl.Range `hcl:"ca_validity,attr_value_range"`
	ValidityRange     hcl.Range `hcl:"validity,attr_value_range"`
	RenewBeforeRange  hcl.Range `hcl:"renew_before,attr_value_range"`
}

type backendBlock struct {
	Dir               *string  `hcl:"dir,optional"`
	Endpoints         []string `hcl:"endpoints,optional"`
	Prefix            *string  `hcl:"prefix,optional"`
	CAFile            *string  `hcl:"ca_file,optional"`
	CertFile          *string  `hcl:"cert_file,optional"`
	KeyFile           *string  `hcl:"key_file,optional"`
	EncryptionKeyFile *string  `hcl:"encryption_key_file,optional"`
	EncryptFiles      *bool    `hcl:"encrypt_files,optional"`
	PKI               *string  `hcl:"pki,optional"`
	LockTTL           *string  `hcl:"lock_ttl,optional"`

	DirRange               hcl.Range `hcl:"dir,attr_value_range"`
	EndpointsRange         hcl.Range `hcl:"endpoints,attr_value_range"`
	PrefixRange            hcl.Range `hcl:"prefix,attr_value_range"`
	CAFileRange            hcl.Range `hcl:"ca_file,attr_value_range"`
	CertFileRange          hcl.Range `hcl:"cert_file,attr_value_range"`
	KeyFileRange           hcl.Range `hcl:"key_file,attr_value_range"`
	EncryptionKeyFileRange hcl.Range `hcl:"encryption_key_file,attr_value_range"`
	EncryptFilesRange      hcl.Range `hcl:"encrypt_files,attr_value_range"`
	PKIRange               hcl.Range `hcl:"pki,attr_value_range"`
	LockTTLRange           hcl.Range `hcl:"lock_ttl,attr_value_range"`
}
