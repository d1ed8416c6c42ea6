package lab

import (
	"context"
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/hashicorp/hcl/v2"

	"github.com/kforge/kforge/config"
	"github.com/kforge/kforge/providers"
)

// Provider turns `provider "lab" { name = "…" }` into the hosts of that running lab.
type Provider struct {
	Manager *Manager
}

var _ providers.Provider = Provider{}

type block struct {
	Name      string                `hcl:"name"`
	Hosts     []providers.HostBlock `hcl:"host,block"`
	NameRange hcl.Range             `hcl:"name,attr_value_range"`
}

func (p Provider) decode(b config.Provider) (block, map[string]providers.HostSettings, hcl.Diagnostics) {
	var raw block
	diags := providers.Decode(b, &raw)
	if diags.HasErrors() {
		return raw, nil, diags
	}
	if err := checkName(raw.Name); err != nil {
		diags = append(diags, &hcl.Diagnostic{Severity: hcl.DiagError, Summary: "Invalid lab name", Detail: err.Error() + ".", Subject: raw.NameRange.Ptr()})
	}
	settings, ds := providers.DecodeHostBlocks(raw.Hosts)
	return raw, settings, append(diags, ds...)
}

// Validate implements providers.Provider.
func (p Provider) Validate(b config.Provider) hcl.Diagnostics {
	_, _, diags := p.decode(b)
	return diags
}

// Hosts implements providers.Provider: the lab's hosts, logged into as root with the lab's key and checked
// strictly against the lab's known_hosts. Roles come from host blocks; hosts without one get the defaults of
// HostsHCL (host 1 control plane and etcd, the others workers).
func (p Provider) Hosts(_ context.Context, b config.Provider, _ providers.Env) ([]config.Host, hcl.Diagnostics) {
	raw, settings, diags := p.decode(b)
	if diags.HasErrors() {
		return nil, diags
	}
	l, err := p.Manager.Load(raw.Name)
	if err != nil {
		detail := err.Error()
		if errors.Is(err, os.ErrNotExist) {
			detail = fmt.Sprintf("There is no lab %q on this machine: run kforge lab up --name %s.", raw.Name, raw.Name)
		}
		return nil, hcl.Diagnostics{{Severity: hcl.DiagError, Summary: "Lab not found", Detail: detail, Subject: raw.NameRange.Ptr()}}
	}
	names := map[string]bool{}
	var hosts []config.Host
	for i, h := range l.Hosts {
		names[h.Name] = true
		host := l.ConfigHost(h)
		if s, ok := settings[h.Name]; ok {
			host.Roles, host.Labels, host.Taints, host.InternalAddress = s.Roles, s.Labels, s.Taints, s.InternalAddress
		} else {
			for _, r := range defaultRoles(i, len(l.Hosts)) {
				role, _ := config.ParseRole(r)
				host.Roles = append(host.Roles, role)
			}
		}
		hosts = append(hosts, host)
	}
	for name, s := range settings {
		if !names[name] {
			diags = append(diags, &hcl.Diagnostic{Severity: hcl.DiagError, Summary: "No such lab host",
				Detail:  fmt.Sprintf("Lab %q has no host %q (it has %d hosts, %s-1 to %s-%d).", l.Name, name, len(l.Hosts), l.Name, l.Name, len(l.Hosts)),
				Subject: s.DeclRange.Ptr()})
		}
	}
	return hosts, diags
}

// ConfigHost is a lab host as a configured host without roles: reached as root with the lab's key and checked
// strictly against the lab's known_hosts. It is the one description of how a lab host is reached.
func (l *Lab) ConfigHost(h Host) config.Host {
	return config.Host{Name: h.Name, Address: h.Address.String(),
		SSH: config.SSH{User: "root", Port: 22, PrivateKeyFile: l.KeyFile, KnownHostsFile: l.KnownHostsFile,
			HostKeyPolicy: config.HostKeyStrict, ConnectTimeout: 10 * time.Second}}
}
