package config

import (
	"fmt"
	"net"
	"net/netip"
	"net/url"
	"os"
	"path"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/gohcl"
	"github.com/zclconf/go-cty/cty"

	"github.com/kforge/kforge/config/netcalc"
)

// Defaults for what a cluster block leaves out; kubeadm's conventions, so that users meet no surprises.
const (
	defaultClusterDomain     = "cluster.local"
	defaultPodCIDR           = "10.244.0.0/16"
	defaultServiceCIDR       = "10.96.0.0/12"
	defaultSecretsEncryption = "secretbox"
	defaultAPIServerPort     = 6443
	defaultMaxPods           = 110
	defaultKubeProxyMode     = "iptables"
	defaultCgroupDriver      = "auto"
)

var (
	secretsEncryptions = []string{"secretbox", "aescbc", "none"}
	cgroupDrivers      = []string{"auto", "systemd", "cgroupfs"}
	kubeProxyModes     = []string{"iptables", "nftables", "ipvs"}
	artifactSources    = []string{string(SourceDownload), string(SourceMirror), string(SourceLocal), string(SourceNone)}
)

func (b *builder) clusterSettings(raw clusterBlock, nameRange hcl.Range) {
	c := b.cluster
	if err := checkDNSSubdomain(c.Name); err != nil || len(c.Name) > 63 {
		b.errorAt(nameRange, "Invalid cluster name", fmt.Sprintf("Cluster name %q: a DNS label (lower-case letters, digits and '-', at most 63 characters) is needed.", c.Name))
	}

	version := str(raw.KubernetesVersion, DefaultKubernetesVersion)
	v, err := ParseVersion(version)
	if err == nil {
		err = v.supported()
	}
	if err != nil {
		b.errorAt(raw.KubernetesVersionRange, "Unsupported Kubernetes version", err.Error()+".")
	}
	c.KubernetesVersion = v

	c.ClusterDomain = str(raw.ClusterDomain, defaultClusterDomain)
	if err := checkDNSSubdomain(c.ClusterDomain); err != nil {
		b.errorAt(raw.ClusterDomainRange, "Invalid cluster domain", fmt.Sprintf("cluster_domain %q %s.", c.ClusterDomain, err))
	}

	podOK, svcOK := true, true
	c.PodCIDR, err = netcalc.ParsePrefix(str(raw.PodCIDR, defaultPodCIDR))
	if err != nil {
		b.errorAt(raw.PodCIDRRange, "Invalid pod CIDR", err.Error())
		podOK = false
	}
	c.ServiceCIDR, err = netcalc.ParsePrefix(str(raw.ServiceCIDR, defaultServiceCIDR))
	if err != nil {
		b.errorAt(raw.ServiceCIDRRange, "Invalid service CIDR", err.Error())
		svcOK = false
	}
	if svcOK {
		b.checkServiceCIDR(c.ServiceCIDR, raw.ServiceCIDRRange)
	}
	if podOK && svcOK {
		switch {
		case c.PodCIDR.Addr().Is4() != c.ServiceCIDR.Addr().Is4():
			b.errorAt(raw.ServiceCIDRRange, "Mixed address families",
				fmt.Sprintf("pod_cidr %s and service_cidr %s must both be IPv4 or both IPv6.", c.PodCIDR, c.ServiceCIDR))
		case netcalc.Overlaps(c.PodCIDR, c.ServiceCIDR):
			b.errorAt(raw.ServiceCIDRRange, "Overlapping CIDRs",
				fmt.Sprintf("service_cidr %s overlaps pod_cidr %s: pod and service addresses would collide.", c.ServiceCIDR, c.PodCIDR))
		}
	}

	if podOK {
		bits := c.PodCIDR.Addr().BitLen()
		def := 24
		if bits == 128 {
			def = 64
		}
		c.NodePodCIDRSize = intOr(raw.NodePodCIDRSize, def)
		if c.NodePodCIDRSize <= c.PodCIDR.Bits() || c.NodePodCIDRSize > bits-2 {
			rng := raw.NodePodCIDRSizeRange
			if raw.NodePodCIDRSize == nil {
				rng = raw.PodCIDRRange
			}
			b.errorAt(rng, "Invalid node pod CIDR size",
				fmt.Sprintf("node_pod_cidr_size /%d must be longer than pod_cidr %s and at most /%d.", c.NodePodCIDRSize, c.PodCIDR, bits-2))
		}
	}

	if raw.APIEndpoint != nil {
		ep, err := parseEndpoint(*raw.APIEndpoint, defaultAPIServerPort)
		if err != nil {
			b.errorAt(raw.APIEndpointRange, "Invalid API endpoint", err.Error())
		} else {
			c.APIEndpoint = &ep
			b.checkNotInClusterRanges(ep.Host, raw.APIEndpointRange, "api_endpoint")
		}
	}

	c.SecretsEncryption = str(raw.SecretsEncryption, defaultSecretsEncryption)
	if err := oneOf(c.SecretsEncryption, secretsEncryptions); err != nil {
		b.errorAt(raw.SecretsEncryptionRange, "Invalid secrets_encryption", err.Error())
	}

	b.components(raw)
}

func (b *builder) checkServiceCIDR(p netip.Prefix, rng hcl.Range) {
	// kube-apiserver refuses service ranges wider than 20 bits of addresses; the kubernetes service (first
	// address) and cluster DNS (tenth address) need at least 16.
	maxHostBits, bits := 20, p.Addr().BitLen()
	switch {
	case bits-p.Bits() > maxHostBits:
		b.errorAt(rng, "Service CIDR too large",
			fmt.Sprintf("service_cidr %s has %d host bits; kube-apiserver accepts at most %d (a /%d).", p, bits-p.Bits(), maxHostBits, bits-maxHostBits))
	case bits-p.Bits() < 4:
		b.errorAt(rng, "Service CIDR too small",
			fmt.Sprintf("service_cidr %s has room for fewer than 16 addresses; it needs the kubernetes service (first address) and cluster DNS (tenth address): use a /%d or larger.", p, bits-4))
	}
}

// checkNotInClusterRanges reports a host address that falls inside the pod or service range.
func (b *builder) checkNotInClusterRanges(host string, rng hcl.Range, what string) {
	a, err := netip.ParseAddr(host)
	if err != nil {
		return
	}
	for _, r := range []struct {
		name string
		p    netip.Prefix
	}{{"pod_cidr", b.cluster.PodCIDR}, {"service_cidr", b.cluster.ServiceCIDR}} {
		if r.p.IsValid() && netcalc.Contains(r.p, a) {
			b.errorAt(rng, "Address inside a cluster range",
				fmt.Sprintf("%s %s lies inside %s %s: traffic to it would be routed to pods or services.", what, a, r.name, r.p))
		}
	}
}

func (b *builder) components(raw clusterBlock) {
	c := b.cluster
	extra := func(args map[string]string, rng hcl.Range, component string) map[string]string {
		if err := checkExtraArgs(args); err != nil {
			b.errorAt(rng, "Invalid extra_args", fmt.Sprintf("%s extra_args: %s.", component, err))
		}
		if args == nil {
			return map[string]string{}
		}
		return args
	}
	if raw.Etcd != nil {
		c.Etcd.ExtraArgs = extra(raw.Etcd.ExtraArgs, raw.Etcd.ExtraArgsRange, "etcd")
		c.Etcd.Snapshots = b.etcdSnapshots(raw.Etcd.Snapshots)
	}
	if raw.ControllerManager != nil {
		c.ControllerManager.ExtraArgs = extra(raw.ControllerManager.ExtraArgs, raw.ControllerManager.ExtraArgsRange, "controller_manager")
	}
	if raw.Scheduler != nil {
		c.Scheduler.ExtraArgs = extra(raw.Scheduler.ExtraArgs, raw.Scheduler.ExtraArgsRange, "scheduler")
	}

	c.APIServer.Port = defaultAPIServerPort
	if a := raw.APIServer; a != nil {
		c.APIServer.ExtraArgs = extra(a.ExtraArgs, a.ExtraArgsRange, "apiserver")
		c.APIServer.Port = intOr(a.Port, defaultAPIServerPort)
		b.checkPort(c.APIServer.Port, a.PortRange)
	}
	if c.APIEndpoint != nil && raw.APIEndpoint != nil && !hasPort(*raw.APIEndpoint) {
		c.APIEndpoint.Port = c.APIServer.Port
	}

	c.Kubelet = Kubelet{MaxPods: defaultMaxPods, CgroupDriver: defaultCgroupDriver, FailCgroupV1: true}
	if k := raw.Kubelet; k != nil {
		c.Kubelet.ExtraArgs = extra(k.ExtraArgs, k.ExtraArgsRange, "kubelet")
		c.Kubelet.MaxPods = intOr(k.MaxPods, defaultMaxPods)
		c.Kubelet.CgroupDriver = str(k.CgroupDriver, defaultCgroupDriver)
		if k.FailCgroupV1 != nil {
			c.Kubelet.FailCgroupV1 = *k.FailCgroupV1
		}
		if c.Kubelet.MaxPods < 1 {
			b.errorAt(k.MaxPodsRange, "Invalid max_pods", fmt.Sprintf("max_pods must be at least 1, not %d.", c.Kubelet.MaxPods))
		}
		if err := oneOf(c.Kubelet.CgroupDriver, cgroupDrivers); err != nil {
			b.errorAt(k.CgroupDriverRange, "Invalid cgroup_driver", err.Error())
		}
	}

	c.KubeProxy.Mode = defaultKubeProxyMode
	if k := raw.KubeProxy; k != nil {
		c.KubeProxy.ExtraArgs = extra(k.ExtraArgs, k.ExtraArgsRange, "kube_proxy")
		c.KubeProxy.Mode = str(k.Mode, defaultKubeProxyMode)
		c.KubeProxy.ConntrackMaxPerCore = k.ConntrackMaxPerCore
		if err := oneOf(c.KubeProxy.Mode, kubeProxyModes); err != nil {
			b.errorAt(k.ModeRange, "Invalid kube_proxy mode", err.Error())
		}
	}
	if raw.Containerd != nil {
		c.Containerd.SandboxImage = str(raw.Containerd.SandboxImage, "")
		if c.Containerd.SandboxImage != "" && !imageReference.MatchString(c.Containerd.SandboxImage) {
			b.errorAt(raw.Containerd.SandboxImageRange, "Invalid sandbox_image",
				fmt.Sprintf("%q is not a container image reference such as \"registry.k8s.io/pause:3.10.2\".", c.Containerd.SandboxImage))
		}
		c.Containerd.RestrictOOMScoreAdj = raw.Containerd.RestrictOOMScoreAdj != nil && *raw.Containerd.RestrictOOMScoreAdj
		c.Containerd.RegistryMirrors = b.registryMirrors(raw.Containerd.RegistryMirrors)
	}
	b.pki(raw.PKI)
	b.dns(raw.DNS)
	b.security(raw.Security)
	b.cluster.Network = Network{Plugin: PluginRoutes}
	if n := raw.Network; n != nil {
		b.cluster.Network = Network{Plugin: str(n.Plugin, PluginRoutes), PluginRange: n.PluginRange}
		if err := oneOf(b.cluster.Network.Plugin, NetworkPlugins); err != nil {
			b.errorAt(n.PluginRange, "Invalid network plugin", err.Error())
		}
	}
}

// podSecurityLevels are Pod Security admission's levels, loosest first.
var podSecurityLevels = []string{"privileged", "baseline", "restricted"}

// DefaultSecurity is a cluster's security without a security block: every CIS benchmark item kforge implements.
func DefaultSecurity() Security {
	return Security{PodSecurity: "baseline", AnonymousHealthChecks: true, ProtectKernelDefaults: true,
		AuditLog: AuditLog{Enabled: true, MaxAge: cisAuditMaxAge, MaxBackups: cisAuditMaxBackups, MaxSize: cisAuditMaxSize},
		ranges:   map[string]hcl.Range{}}
}

func (b *builder) security(raw *securityBlock) {
	s := DefaultSecurity()
	defer func() { b.cluster.Security = s }()
	if raw == nil {
		return
	}
	if raw.PodSecurity != nil {
		s.PodSecurity, s.ranges["pod_security"] = *raw.PodSecurity, raw.PodSecurityRange
		if !slices.Contains(podSecurityLevels, s.PodSecurity) {
			b.errorAt(raw.PodSecurityRange, "Invalid pod_security", fmt.Sprintf("pod_security must be one of %s, not %q.", quoteList(podSecurityLevels), s.PodSecurity))
		}
	}
	if raw.AnonymousHealthChecks != nil {
		s.AnonymousHealthChecks = *raw.AnonymousHealthChecks
	}
	if raw.Profiling != nil {
		s.Profiling, s.ranges["profiling"] = *raw.Profiling, raw.ProfilingRange
	}
	if raw.ProtectKernelDefaults != nil {
		s.ProtectKernelDefaults, s.ranges["protect_kernel_defaults"] = *raw.ProtectKernelDefaults, raw.ProtectKernelDefaultsRange
	}
	if a := raw.AuditLog; a != nil {
		s.ranges["audit_log"] = a.EnabledRange
		if a.Enabled != nil {
			s.AuditLog.Enabled = *a.Enabled
		}
		for _, f := range []struct {
			name  string
			value *int
			into  *int
			at    hcl.Range
		}{{"max_age", a.MaxAge, &s.AuditLog.MaxAge, a.MaxAgeRange}, {"max_backups", a.MaxBackups, &s.AuditLog.MaxBackups, a.MaxBackupsRange},
			{"max_size", a.MaxSize, &s.AuditLog.MaxSize, a.MaxSizeRange}} {
			if f.value == nil {
				continue
			}
			*f.into = *f.value
			if a.Enabled == nil {
				s.ranges["audit_log"] = f.at // the warning points at what lowered it
			}
			if *f.value < 1 {
				b.errorAt(f.at, "Invalid audit_log "+f.name, fmt.Sprintf("%s must be at least 1, not %d (audit_log { enabled = false } turns the log off).", f.name, *f.value))
			}
		}
	}
}

// Scheduled snapshot defaults: one a day, a week of them, beside etcd's data rather than in it (a restore sets
// the data directory aside whole).
const (
	defaultSnapshotSchedule = "daily"
	defaultSnapshotKeep     = 7
	defaultSnapshotDir      = "/var/lib/etcd-snapshots"
	maxSnapshotKeep         = 1000
)

var (
	// calendarRe admits what systemd's OnCalendar takes ("daily", "Mon *-*-* 02:00:00", "*:0/15") and nothing
	// a unit file or a shell would read otherwise.
	calendarRe = regexp.MustCompile(`^[A-Za-z0-9*:,./~ +-]{1,100}$`)
	safePathRe = regexp.MustCompile(`^(/[A-Za-z0-9._-]+)+$`)
)

func (b *builder) etcdSnapshots(raw *etcdSnapshotsBlock) *EtcdSnapshots {
	if raw == nil {
		return nil
	}
	s := &EtcdSnapshots{Schedule: str(raw.Schedule, defaultSnapshotSchedule), Keep: intOr(raw.Keep, defaultSnapshotKeep), Dir: str(raw.Dir, defaultSnapshotDir)}
	if !calendarRe.MatchString(s.Schedule) || strings.TrimSpace(s.Schedule) != s.Schedule {
		b.errorAt(raw.ScheduleRange, "Invalid snapshot schedule", fmt.Sprintf("%q is not a systemd calendar expression such as \"daily\", \"hourly\" or \"*-*-* 02:30:00\".", s.Schedule))
	}
	if s.Keep < 1 || s.Keep > maxSnapshotKeep {
		b.errorAt(raw.KeepRange, "Invalid snapshot keep", fmt.Sprintf("keep must be between 1 and %d, not %d.", maxSnapshotKeep, s.Keep))
	}
	switch {
	case !safePathRe.MatchString(s.Dir) || path.Clean(s.Dir) != s.Dir:
		b.errorAt(raw.DirRange, "Invalid snapshot dir", fmt.Sprintf("%q is not an absolute path of letters, digits, '.', '_', '-' and '/'.", s.Dir))
	case s.Dir == "/var/lib/etcd" || strings.HasPrefix(s.Dir, "/var/lib/etcd/"):
		b.errorAt(raw.DirRange, "Invalid snapshot dir", fmt.Sprintf("%q is inside etcd's data directory, which a restore sets aside whole: keep snapshots beside it, such as %q.", s.Dir, defaultSnapshotDir))
	}
	return s
}

// registryMirrors checks containerd's registry_mirrors: each key a registry host as image names spell it
// (or "_default"), each value one or more http(s) base URLs with no path, query or credentials (containerd
// adds /v2/ itself, and a password would land in a world-readable file). Errors point at the entry.
func (b *builder) registryMirrors(attr *hcl.Attribute) map[string][]string {
	if attr == nil {
		return nil
	}
	var raw map[string][]string
	if ds := gohcl.DecodeExpression(attr.Expr, b.ctx, &raw); ds.HasErrors() {
		b.add(ds)
		return nil
	}
	keyAt, urlAt := entryRanges(attr.Expr, b.ctx)
	at := func(m map[string]hcl.Range, k string) hcl.Range {
		if r, ok := m[k]; ok {
			return r
		}
		return attr.Expr.Range()
	}
	out := map[string][]string{}
	for _, registry := range sortedKeys(raw) {
		if err := checkRegistryHost(registry); err != nil {
			b.errorAt(at(keyAt, registry), "Invalid registry_mirrors", fmt.Sprintf("Registry %q: %s.", registry, err))
			continue
		}
		urls := raw[registry]
		if len(urls) == 0 {
			b.errorAt(at(keyAt, registry), "Invalid registry_mirrors", fmt.Sprintf("Registry %q has no mirror: give one URL or more, or leave the registry out.", registry))
			continue
		}
		seen := map[string]bool{}
		for i, u := range urls {
			rng := at(urlAt, fmt.Sprintf("%s\x00%d", registry, i))
			if err := checkMirrorURL(u); err != nil {
				b.errorAt(rng, "Invalid registry_mirrors", fmt.Sprintf("Mirror %q of %s: %s.", u, registry, err))
				continue
			}
			u = strings.TrimSuffix(u, "/")
			if seen[u] {
				b.errorAt(rng, "Invalid registry_mirrors", fmt.Sprintf("Mirror %q of %s is listed twice.", u, registry))
				continue
			}
			seen[u] = true
			out[registry] = append(out[registry], u)
		}
	}
	return out
}

// entryRanges finds, in a map-of-lists expression written literally, where each key is written (by key) and
// each list element (by key NUL index). Values built otherwise (a variable, a function) have no entries here:
// errors about them point at the whole expression.
func entryRanges(expr hcl.Expression, ctx *hcl.EvalContext) (keys, elems map[string]hcl.Range) {
	keys, elems = map[string]hcl.Range{}, map[string]hcl.Range{}
	pairs, ds := hcl.ExprMap(expr)
	if ds.HasErrors() {
		return keys, elems
	}
	for _, p := range pairs {
		k, ds := p.Key.Value(ctx)
		if ds.HasErrors() || !k.IsKnown() || k.IsNull() || k.Type() != cty.String {
			continue
		}
		keys[k.AsString()] = p.Key.Range()
		list, ds := hcl.ExprList(p.Value)
		if ds.HasErrors() {
			continue
		}
		for i, e := range list {
			elems[fmt.Sprintf("%s\x00%d", k.AsString(), i)] = e.Range()
		}
	}
	return keys, elems
}

// maxDNSReplicas bounds dns.replicas: more CoreDNS pods than this is a typo, not a plan.
const maxDNSReplicas = 100

// imageReference is a container image reference: [registry[:port]/]path[:tag][@sha256:digest].
var imageReference = regexp.MustCompile(`^[a-z0-9]+([._-][a-z0-9]+)*(:[0-9]+)?(/[a-z0-9]+([._-]+[a-z0-9]+)*)*(:[A-Za-z0-9_][A-Za-z0-9_.-]{0,127})?(@sha256:[0-9a-f]{64})?$`)

// IsImageReference reports whether s is a container image reference as the configuration accepts one, for
// image names that come from elsewhere (an artifact set's manifest) and end up in the same files and scripts.
func IsImageReference(s string) bool { return imageReference.MatchString(s) }

func (b *builder) dns(raw *dnsBlock) {
	d := DNS{Enabled: true, Replicas: 2}
	defer func() { b.cluster.DNS = d }()
	if raw == nil {
		return
	}
	if raw.Enabled != nil {
		d.Enabled = *raw.Enabled
	}
	d.Replicas = intOr(raw.Replicas, 2)
	if d.Replicas < 1 || d.Replicas > maxDNSReplicas {
		b.errorAt(raw.ReplicasRange, "Invalid dns replicas", fmt.Sprintf("replicas must be between 1 and %d, not %d (dns { enabled = false } turns cluster DNS off).", maxDNSReplicas, d.Replicas))
	}
	if raw.Image != nil {
		d.Image = *raw.Image
		if !imageReference.MatchString(d.Image) {
			b.errorAt(raw.ImageRange, "Invalid dns image", fmt.Sprintf("%q is not a container image reference such as \"registry.k8s.io/coredns/coredns:v1.14.6\".", d.Image))
		}
	}
	if raw.Upstream != nil {
		d.Upstream = []string{}
		for _, u := range *raw.Upstream {
			a, err := netip.ParseAddr(u)
			if err != nil {
				var ap netip.AddrPort
				if ap, err = netip.ParseAddrPort(u); err != nil {
					b.errorAt(raw.UpstreamRange, "Invalid dns upstream", fmt.Sprintf("%q is not an IP address or IP:port of a resolver.", u))
					continue
				}
				a = ap.Addr()
			}
			if a.Zone() != "" {
				b.errorAt(raw.UpstreamRange, "Invalid dns upstream", zoneError(u).Error()+".")
				continue
			}
			d.Upstream = append(d.Upstream, u)
		}
	}
}

// Certificate defaults: ECDSA P-256 keys, CAs for 10 years, everything else for 1 year, renewed in its last 30 days.
const (
	defaultCAValidity  = 10 * 365 * 24 * time.Hour
	defaultValidity    = 365 * 24 * time.Hour
	defaultRenewBefore = 30 * 24 * time.Hour
)

var keySizes = map[string][]int{"ecdsa": {256, 384, 521}, "rsa": {2048, 3072, 4096}}

func (b *builder) pki(raw *pkiBlock) {
	p := PKI{KeyAlgorithm: "ecdsa", KeySize: 256, CAValidity: defaultCAValidity, Validity: defaultValidity, RenewBefore: defaultRenewBefore}
	defer func() { b.cluster.PKI = p }()
	if raw == nil {
		return
	}
	p.KeyAlgorithm = str(raw.KeyAlgorithm, "ecdsa")
	sizes, ok := keySizes[p.KeyAlgorithm]
	if !ok {
		b.errorAt(raw.KeyAlgorithmRange, "Invalid key_algorithm", oneOf(p.KeyAlgorithm, []string{"ecdsa", "rsa"}).Error())
		return
	}
	p.KeySize = intOr(raw.KeySize, sizes[0])
	if raw.KeySize == nil && p.KeyAlgorithm == "rsa" {
		p.KeySize = 2048
	}
	valid := false
	for _, s := range sizes {
		valid = valid || s == p.KeySize
	}
	if !valid {
		b.errorAt(raw.KeySizeRange, "Invalid key_size", fmt.Sprintf("%s keys are %v bits, not %d.", p.KeyAlgorithm, sizes, p.KeySize))
	}
	duration := func(v *string, rng hcl.Range, name string, def time.Duration) time.Duration {
		if v == nil {
			return def
		}
		d, err := time.ParseDuration(*v)
		if err != nil || d <= 0 {
			b.errorAt(rng, "Invalid "+name, fmt.Sprintf("%q is not a positive duration such as \"8760h\" (a year).", *v))
			return def
		}
		return d
	}
	p.CAValidity = duration(raw.CAValidity, raw.CAValidityRange, "ca_validity", defaultCAValidity)
	p.Validity = duration(raw.Validity, raw.ValidityRange, "validity", defaultValidity)
	p.RenewBefore = duration(raw.RenewBefore, raw.RenewBeforeRange, "renew_before", defaultRenewBefore)
	if p.RenewBefore >= p.Validity {
		b.errorAt(raw.RenewBeforeRange, "Invalid renew_before", fmt.Sprintf("renew_before (%s) must be shorter than validity (%s), or every run would re-issue every certificate.", p.RenewBefore, p.Validity))
	}
	if p.Validity > p.CAValidity {
		b.errorAt(raw.ValidityRange, "Invalid validity", fmt.Sprintf("validity (%s) must not exceed ca_validity (%s): a certificate cannot outlive its CA.", p.Validity, p.CAValidity))
	}
}

func (b *builder) checkPort(port int, rng hcl.Range) {
	if port < 1 || port > 65535 {
		b.errorAt(rng, "Invalid port", fmt.Sprintf("%d is not a TCP port (1-65535).", port))
	}
}

func (b *builder) artifacts(raw artifactsBlock, declRange hcl.Range) {
	a := &b.cluster.Artifacts
	a.Source = ArtifactSource(str(raw.Source, string(SourceDownload)))
	if err := oneOf(string(a.Source), artifactSources); err != nil {
		b.errorAt(raw.SourceRange, "Invalid artifact source", err.Error())
	}
	a.Versions, a.SHA256 = raw.Versions, raw.SHA256
	if raw.CacheDir != nil {
		a.CacheDir = b.path(*raw.CacheDir, raw.CacheDirRange)
	}
	switch a.Source {
	case SourceMirror:
		if raw.URL == nil {
			b.errorAt(declRange, "Missing mirror URL", `source = "mirror" needs url = "https://…", the base URL of the mirror.`)
		}
	case SourceLocal:
		if raw.Dir == nil {
			b.errorAt(declRange, "Missing artifact directory", `source = "local" needs dir = "…", a directory with the artifacts and their manifest.`)
		}
	}
	if raw.URL != nil {
		a.URL = *raw.URL
		u, err := url.Parse(a.URL)
		switch {
		case a.Source != SourceMirror:
			b.errorAt(raw.URLRange, "url without a mirror", fmt.Sprintf(`url is only used with source = "mirror"; source is %q.`, a.Source))
		case err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "":
			b.errorAt(raw.URLRange, "Invalid mirror URL", fmt.Sprintf("%q is not an http(s) URL.", a.URL))
		}
	}
	if raw.Dir != nil {
		a.Dir = b.path(*raw.Dir, raw.DirRange)
		if a.Source != SourceLocal {
			b.errorAt(raw.DirRange, "dir without local artifacts", fmt.Sprintf(`dir is only used with source = "local"; source is %q.`, a.Source))
		} else if st, err := os.Stat(a.Dir); err != nil || !st.IsDir() {
			b.errorAt(raw.DirRange, "Artifact directory not found", fmt.Sprintf("%s is not a directory.", a.Dir))
		}
	}
	for _, k := range sortedKeys(raw.Versions) {
		if err := oneOf(k, artifactKeys); err != nil {
			b.errorAt(raw.VersionsRange, "Unknown artifact", "versions: "+err.Error())
		} else if !releaseVersion.MatchString(raw.Versions[k]) {
			b.errorAt(raw.VersionsRange, "Invalid artifact version", fmt.Sprintf("versions.%s = %q is not a release version like v1.2.3.", k, raw.Versions[k]))
		}
	}
	for _, k := range sortedKeys(raw.SHA256) {
		if !sha256Hex.MatchString(raw.SHA256[k]) {
			b.errorAt(raw.SHA256Range, "Invalid sha256", fmt.Sprintf("sha256[%q] must be 64 lower-case hex digits.", k))
		}
	}
}

// parseEndpoint reads host or host:port (IPv6 in brackets when a port is given).
func parseEndpoint(s string, defaultPort int) (Endpoint, error) {
	host, port := s, defaultPort
	if hasPort(s) {
		h, p, err := net.SplitHostPort(s)
		if err != nil {
			return Endpoint{}, fmt.Errorf("%q: %v", s, err)
		}
		n, err := strconv.Atoi(p)
		if err != nil || n < 1 || n > 65535 {
			return Endpoint{}, fmt.Errorf("%q: port %q is not a TCP port (1-65535)", s, p)
		}
		host, port = h, n
	}
	if err := checkHostAddress(host); err != nil {
		return Endpoint{}, err
	}
	return Endpoint{Host: host, Port: port}, nil
}

// hasPort tells host:port from a bare host, including bare IPv6 addresses.
func hasPort(s string) bool {
	if _, err := netip.ParseAddr(s); err == nil {
		return false
	}
	_, _, err := net.SplitHostPort(s)
	return err == nil || (len(s) > 0 && s[0] == '[')
}

func str(p *string, def string) string {
	if p == nil {
		return def
	}
	return *p
}

func intOr(p *int, def int) int {
	if p == nil {
		return def
	}
	return *p
}
