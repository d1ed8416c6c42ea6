// Package providers turns `provider "NAME"` blocks into hosts: kforge's local lab, Vagrant boxes. Each provider
// decodes its own block; this package holds what they share and the registry the commands use.
package providers

import (
	"context"
	"fmt"
	"maps"
	"net/netip"
	"slices"
	"sort"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/gohcl"

	"github.com/kforge/kforge/config"
)

// Env is what providers may use from the operator's machine.
type Env struct {
	// StateDir is kforge's state directory for this configuration (known_hosts files live there).
	StateDir string
}

// Provider turns one provider block into hosts.
type Provider interface {
	// Validate decodes the block and reports mistakes in it, without contacting anything.
	Validate(block config.Provider) hcl.Diagnostics
	// Hosts returns the hosts the block stands for, as they are now.
	Hosts(ctx context.Context, block config.Provider, env Env) ([]config.Host, hcl.Diagnostics)
}

// Registry maps provider names to providers.
type Registry map[string]Provider

// Names lists the providers, sorted, for config.Options.Providers.
func (r Registry) Names() []string {
	out := make([]string, 0, len(r))
	for n := range r {
		out = append(out, n)
	}
	sort.Strings(out)
	return out
}

// Validate checks every provider block of the cluster without contacting anything.
func (r Registry) Validate(c *config.Cluster) hcl.Diagnostics {
	var diags hcl.Diagnostics
	for _, b := range c.Providers {
		if p, ok := r[b.Name]; ok {
			diags = append(diags, p.Validate(b)...)
		}
	}
	return diags
}

// Resolve asks each provider for its hosts and adds them to the cluster, which then checks all hosts together.
func (r Registry) Resolve(ctx context.Context, c *config.Cluster, env Env) hcl.Diagnostics {
	var diags hcl.Diagnostics
	byProvider := map[string][]config.Host{}
	for _, b := range c.Providers {
		p, ok := r[b.Name]
		if !ok {
			continue // config.Load has reported it
		}
		hosts, ds := p.Hosts(ctx, b, env)
		diags = append(diags, ds...)
		byProvider[b.Name] = hosts
	}
	if diags.HasErrors() {
		return diags
	}
	return append(diags, c.AddProviderHosts(byProvider)...)
}

// HostBlock is the part of a `host "NAME"` block inside a provider block that says what the provider cannot
// know: the host's roles and how the cluster sees it.
type HostBlock struct {
	Name            string            `hcl:"name,label"`
	Roles           []string          `hcl:"roles"`
	InternalAddress *string           `hcl:"internal_address,optional"`
	Labels          map[string]string `hcl:"labels,optional"`
	Taints          []string          `hcl:"taints,optional"`

	DefRange             hcl.Range `hcl:",def_range"`
	RolesRange           hcl.Range `hcl:"roles,attr_value_range"`
	InternalAddressRange hcl.Range `hcl:"internal_address,attr_value_range"`
	LabelsRange          hcl.Range `hcl:"labels,attr_value_range"`
}

// HostSettings is a decoded HostBlock.
type HostSettings struct {
	Roles           []config.Role
	InternalAddress netip.Addr
	Labels          map[string]string
	Taints          []config.Taint
	DeclRange       hcl.Range
}

// DecodeHostBlocks checks the host blocks of a provider and returns their settings by name.
func DecodeHostBlocks(blocks []HostBlock) (map[string]HostSettings, hcl.Diagnostics) {
	var diags hcl.Diagnostics
	out := map[string]HostSettings{}
	for _, b := range blocks {
		if first, ok := out[b.Name]; ok {
			diags = append(diags, errorAt(b.DefRange, "Duplicate host block", fmt.Sprintf("Host %q is already described at %s.", b.Name, first.DeclRange)))
			continue
		}
		s := HostSettings{Labels: b.Labels, DeclRange: b.DefRange}
		if err := config.CheckNodeName(b.Name); err != nil {
			diags = append(diags, errorAt(b.DefRange, "Invalid host name", fmt.Sprintf("Host name %q %s; it becomes the Kubernetes node name.", b.Name, err)))
		}
		if len(b.Roles) == 0 {
			diags = append(diags, errorAt(b.RolesRange, "Host without roles", fmt.Sprintf("Host %q needs at least one role.", b.Name)))
		}
		for _, r := range b.Roles {
			role, err := config.ParseRole(r)
			if err != nil {
				diags = append(diags, errorAt(b.RolesRange, "Unknown role", err.Error()))
				continue
			}
			s.Roles = append(s.Roles, role)
		}
		if b.InternalAddress != nil {
			a, err := netip.ParseAddr(*b.InternalAddress)
			if err != nil {
				diags = append(diags, errorAt(b.InternalAddressRange, "Invalid internal address", fmt.Sprintf("%q is not an IP address.", *b.InternalAddress)))
			} else if _, err := config.ParseIP(*b.InternalAddress); err != nil {
				diags = append(diags, errorAt(b.InternalAddressRange, "Invalid internal address", err.Error()+"."))
				a = netip.Addr{}
			}
			s.InternalAddress = a
		}
		for _, k := range slices.Sorted(maps.Keys(b.Labels)) {
			if err := config.CheckLabel(k, b.Labels[k]); err != nil {
				diags = append(diags, errorAt(b.LabelsRange, "Invalid label", err.Error()+"."))
			}
		}
		for _, t := range b.Taints {
			taint, err := config.ParseTaint(t)
			if err != nil {
				diags = append(diags, errorAt(b.DefRange, "Invalid taint", err.Error()+"."))
				continue
			}
			s.Taints = append(s.Taints, taint)
		}
		out[b.Name] = s
	}
	return out, diags
}

// Decode decodes a provider block's body into v (gohcl tags) with the configuration's variables and functions.
func Decode(block config.Provider, v any) hcl.Diagnostics {
	return gohcl.DecodeBody(block.Body, block.EvalContext, v)
}

func errorAt(rng hcl.Range, summary, detail string) *hcl.Diagnostic {
	r := rng
	return &hcl.Diagnostic{Severity: hcl.DiagError, Summary: summary, Detail: detail, Subject: &r}
}
