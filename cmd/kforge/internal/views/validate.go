package views

import (
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"

	"github.com/hashicorp/hcl/v2"

	"github.com/kforge/kforge/config"
	"github.com/kforge/kforge/config/netcalc"
)

// Validate shows the outcome of `kforge validate`: the diagnostics and, when the configuration is valid, a
// summary of the cluster it describes.
type Validate interface {
	Result(r ValidateResult) error
}

// ValidateResult is what validate found: Cluster is nil when the configuration has errors.
type ValidateResult struct {
	Cluster  *config.Cluster
	Files    map[string]*hcl.File
	Diags    hcl.Diagnostics
	StateDir string
	// Backend says where the state is kept when that is not StateDir (a backend "etcd" block).
	Backend string
}

var (
	_ Validate = (*ValidateHuman)(nil)
	_ Validate = (*ValidateJSON)(nil)
)

// ValidateHuman prints diagnostics to Err and the summary to Out.
type ValidateHuman struct {
	Out, Err io.Writer
	Term     Terminal
}

// namesShown caps the hosts listed per role, so that a pool of 100 workers stays one line.
const namesShown = 5

func (v *ValidateHuman) Result(r ValidateResult) error {
	WriteDiagnostics(v.Err, r.Files, v.Term, r.Diags)
	errs, warns := countSeverities(r.Diags)
	if r.Cluster == nil {
		_, err := fmt.Fprintf(v.Err, "The configuration is invalid: %s, %s.\n", plural(errs, "error"), plural(warns, "warning"))
		return err
	}
	s := Summarize(r.Cluster)
	var b strings.Builder
	fmt.Fprintf(&b, "The configuration is valid")
	if warns > 0 {
		fmt.Fprintf(&b, ", with %s", plural(warns, "warning"))
	}
	fmt.Fprintf(&b, ".\n\ncluster %q: Kubernetes %s, %s\n", s.Name, s.KubernetesVersion, plural(s.HostCount, "host"))
	for _, role := range s.Roles {
		if len(role.Hosts) == 0 {
			continue
		}
		names := role.Hosts
		more := ""
		if len(names) > namesShown {
			more = fmt.Sprintf(", … (%d more)", len(names)-namesShown)
			names = names[:namesShown]
		}
		fmt.Fprintf(&b, "  %-14s %3d  %s%s\n", role.Role, len(role.Hosts), strings.Join(names, ", "), more)
	}
	if s.APIEndpoint != "" {
		fmt.Fprintf(&b, "  %-14s      %s\n", "api endpoint", s.APIEndpoint)
	}
	fmt.Fprintf(&b, "  %-14s      pods %s (%s), services %s\n", "networks", s.PodCIDR, s.NetworkPlugin, s.ServiceCIDR)
	fmt.Fprintf(&b, "  %-14s      %s\n", "cluster dns", dnsLine(s.DNS))
	for _, r := range slices.Sorted(maps.Keys(s.RegistryMirrors)) {
		fmt.Fprintf(&b, "  %-14s      %s → %s, then the registry\n", "image mirror", r, strings.Join(s.RegistryMirrors[r], ", "))
	}
	for _, p := range s.Providers {
		fmt.Fprintf(&b, "  %-14s      %s (its hosts are looked up when planning)\n", "provider", p)
	}
	where := r.StateDir
	if r.Backend != "" {
		where = r.Backend
	}
	fmt.Fprintf(&b, "  %-14s      %s\n", "state", where)
	_, err := io.WriteString(v.Out, b.String())
	return err
}

// ValidateJSON prints one JSON document to Out.
type ValidateJSON struct {
	Out io.Writer
}

// ValidateDocument is the JSON shape of `kforge validate --json`.
type ValidateDocument struct {
	FormatVersion string          `json:"format_version"`
	Valid         bool            `json:"valid"`
	ErrorCount    int             `json:"error_count"`
	WarningCount  int             `json:"warning_count"`
	Diagnostics   []Diagnostic    `json:"diagnostics"`
	Cluster       *ClusterSummary `json:"cluster,omitempty"`
	StateDir      string          `json:"state_dir"`
	Backend       string          `json:"backend,omitempty"`
}

// FormatVersion is bumped when a JSON document changes incompatibly.
const FormatVersion = "1.0"

func (v *ValidateJSON) Result(r ValidateResult) error {
	errs, warns := countSeverities(r.Diags)
	doc := ValidateDocument{FormatVersion: FormatVersion, Valid: r.Cluster != nil, ErrorCount: errs, WarningCount: warns,
		Diagnostics: JSONDiagnostics(r.Diags), StateDir: r.StateDir, Backend: r.Backend}
	if r.Cluster != nil {
		s := Summarize(r.Cluster)
		doc.Cluster = &s
	}
	return writeJSON(v.Out, doc)
}

// ClusterSummary is what validate reports about a valid cluster.
type ClusterSummary struct {
	Name              string        `json:"name"`
	KubernetesVersion string        `json:"kubernetes_version"`
	HostCount         int           `json:"host_count"`
	Roles             []RoleSummary `json:"roles"`
	APIEndpoint       string        `json:"api_endpoint,omitempty"`
	PodCIDR           string        `json:"pod_cidr"`
	ServiceCIDR       string        `json:"service_cidr"`
	NetworkPlugin     string        `json:"network_plugin"`
	Providers         []string      `json:"providers,omitempty"`
	DNS               DNSSummary    `json:"dns"`
	// RegistryMirrors: registry → the mirrors containerd tries first, as configured.
	RegistryMirrors map[string][]string `json:"registry_mirrors,omitempty"`
}

// DNSSummary is the cluster DNS add-on as configured.
type DNSSummary struct {
	Enabled  bool   `json:"enabled"`
	Replicas int    `json:"replicas,omitempty"`
	Address  string `json:"address,omitempty"` // the kube-dns Service's address
	// Upstream are the resolvers it forwards other names to; absent means each node's, empty none.
	Upstream []string `json:"upstream,omitempty"`
	// ClusterNamesOnly says that it forwards nothing (upstream = []).
	ClusterNamesOnly bool `json:"cluster_names_only,omitempty"`
}

// RoleSummary lists the hosts that have a role.
type RoleSummary struct {
	Role  string   `json:"role"`
	Hosts []string `json:"hosts"`
}

// Summarize extracts the summary from a validated cluster.
func Summarize(c *config.Cluster) ClusterSummary {
	s := ClusterSummary{Name: c.Name, KubernetesVersion: c.KubernetesVersion.String(), HostCount: len(c.Hosts),
		PodCIDR: c.PodCIDR.String(), ServiceCIDR: c.ServiceCIDR.String(), NetworkPlugin: c.Network.Plugin}
	for _, r := range []config.Role{config.RoleControlPlane, config.RoleEtcd, config.RoleWorker} {
		rs := RoleSummary{Role: string(r), Hosts: []string{}}
		for _, h := range c.HostsWith(r) {
			rs.Hosts = append(rs.Hosts, h.Name)
		}
		s.Roles = append(s.Roles, rs)
	}
	if c.APIEndpoint != nil {
		s.APIEndpoint = c.APIEndpoint.String()
	}
	for _, p := range c.Providers {
		s.Providers = append(s.Providers, p.Name)
	}
	s.RegistryMirrors = c.Containerd.RegistryMirrors
	if d := c.DNS; d.Enabled {
		s.DNS = DNSSummary{Enabled: true, Replicas: d.Replicas, Upstream: d.Upstream, ClusterNamesOnly: d.Upstream != nil && len(d.Upstream) == 0}
		if ip, err := netcalc.Host(c.ServiceCIDR, 10); err == nil {
			s.DNS.Address = ip.String()
		}
	}
	return s
}

// dnsLine describes cluster DNS in a sentence.
func dnsLine(d DNSSummary) string {
	if !d.Enabled {
		return "off"
	}
	to := "each node's resolvers"
	switch {
	case d.ClusterNamesOnly:
		to = "nothing (cluster names only)"
	case len(d.Upstream) > 0:
		to = strings.Join(d.Upstream, ", ")
	}
	return fmt.Sprintf("CoreDNS at %s, %s, forwarding to %s", d.Address, plural(d.Replicas, "replica"), to)
}

func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}
