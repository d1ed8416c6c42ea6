package config

import (
	"fmt"
	"net/netip"
	"strings"

	"github.com/hashicorp/hcl/v2"

	"github.com/kforge/kforge/config/netcalc"
)

// AddProviderHosts adds the hosts that providers stand for (by provider name, in the order of the provider
// blocks) and checks the whole set of hosts as Load does for a configuration without providers. A provider's
// hosts point at its block in diagnostics.
func (c *Cluster) AddProviderHosts(byProvider map[string][]Host) hcl.Diagnostics {
	var diags hcl.Diagnostics
	for _, p := range c.Providers {
		for _, h := range byProvider[p.Name] {
			r := p.DeclRange
			h.DeclRange, h.src = r, hostSource{nameRange: r, addressRange: r, internalRange: r, rolesRange: r}
			SortRoles(h.Roles)
			if err := checkProviderHost(h); err != nil {
				diags = append(diags, errorAt(r, "Invalid host from provider",
					fmt.Sprintf("Provider %q gave host %q: %s; kforge writes it into unit files and scripts as it is.", p.Name, h.Name, err)))
				continue
			}
			c.Hosts = append(c.Hosts, h)
		}
	}
	if diags.HasErrors() {
		return diags
	}
	return topology(c, true)
}

// checkProviderHost holds a provider's host to the rules of a host block: what the provider read (a name, an
// address from vagrant ssh-config) is not to be trusted more than what the configuration says.
func checkProviderHost(h Host) error {
	if err := CheckNodeName(h.Name); err != nil {
		return fmt.Errorf("the name %s", err)
	}
	if err := checkHostAddress(h.Address); err != nil {
		return fmt.Errorf("address: %w", err)
	}
	if h.InternalAddress.Zone() != "" {
		return fmt.Errorf("internal address: %w", zoneError(h.InternalAddress.String()))
	}
	for _, k := range sortedKeys(h.Labels) {
		if err := CheckLabel(k, h.Labels[k]); err != nil {
			return err
		}
	}
	return nil
}

// topology checks the hosts against each other and against the cluster's ranges; roles only when complete
// says every host is known (providers' hosts come later).
func topology(c *Cluster, complete bool) hcl.Diagnostics {
	b := &builder{cluster: c, unknown: map[hcl.Range]bool{}}
	names := map[string]int{}
	dials := map[string]int{}
	clusterAddrs := map[string]int{}
	for i, h := range c.Hosts {
		src := h.src
		if j, ok := names[h.Name]; ok {
			b.errorAt(src.nameRange, "Duplicate host name",
				fmt.Sprintf("Host %q is already defined at %s.", h.Name, c.Hosts[j].src.nameRange))
		} else {
			names[h.Name] = i
		}
		dial := fmt.Sprintf("%s:%d", h.Address, h.SSH.Port)
		if j, ok := dials[dial]; ok {
			b.errorAt(src.addressRange, "Duplicate host address",
				fmt.Sprintf("Hosts %q and %q are both reached at %s (host %q is at %s).", c.Hosts[j].Name, h.Name, dial, c.Hosts[j].Name, c.Hosts[j].src.addressRange))
		} else {
			dials[dial] = i
			if j, ok := clusterAddrs[h.ClusterAddress()]; ok {
				rng := src.addressRange
				if h.InternalAddress.IsValid() {
					rng = src.internalRange
				}
				b.errorAt(rng, "Duplicate cluster address",
					fmt.Sprintf("Hosts %q and %q would both be known to the cluster as %s; set a distinct internal_address on each.", c.Hosts[j].Name, h.Name, h.ClusterAddress()))
			}
		}
		if _, ok := clusterAddrs[h.ClusterAddress()]; !ok {
			clusterAddrs[h.ClusterAddress()] = i
		}
		b.checkNotInClusterRanges(h.Address, src.addressRange, fmt.Sprintf("host %q address", h.Name))
		if h.InternalAddress.IsValid() {
			b.checkNotInClusterRanges(h.InternalAddress.String(), src.internalRange, fmt.Sprintf("host %q internal_address", h.Name))
		}
	}

	if !complete {
		return b.diags
	}
	clusterRange := c.DeclRange
	controlPlanes, etcd := c.HostsWith(RoleControlPlane), c.HostsWith(RoleEtcd)
	if len(controlPlanes) == 0 {
		b.topologyError(clusterRange, "No control-plane host", `At least one host needs roles = ["control-plane", …].`)
	}
	if len(etcd) == 0 {
		b.topologyError(clusterRange, "No etcd host", `At least one host needs the "etcd" role (usually the control-plane hosts).`)
	}
	if n := len(etcd); n > 0 && n%2 == 0 {
		last := etcd[n-1].src.rolesRange
		b.warnAt(last, "Even number of etcd members",
			fmt.Sprintf("%d etcd members tolerate no more failures than %d would (quorum is %d); use an odd number.", n, n-1, n/2+1))
	}
	if len(controlPlanes) > 1 && c.APIEndpoint == nil {
		b.topologyError(clusterRange, "Missing api_endpoint",
			fmt.Sprintf("There are %d control-plane hosts (%s): set api_endpoint in the cluster block to the load balancer or DNS name that fronts them.",
				len(controlPlanes), hostNames(controlPlanes)))
	}
	b.checkNodeCapacity()
	return b.diags
}

func (b *builder) topologyError(rng hcl.Range, summary, detail string) {
	if rng == (hcl.Range{}) {
		b.diags = append(b.diags, plainError(summary, detail))
		return
	}
	b.errorAt(rng, summary, detail)
}

// checkNodeCapacity makes sure every kubelet gets its own pod range, and that the range can hold max_pods.
func (b *builder) checkNodeCapacity() {
	c := b.cluster
	if !c.PodCIDR.IsValid() || c.NodePodCIDRSize <= c.PodCIDR.Bits() || c.NodePodCIDRSize > c.PodCIDR.Addr().BitLen()-2 {
		return
	}
	nodes := 0
	for _, h := range c.Hosts {
		if h.RunsKubelet() {
			nodes++
		}
	}
	if capacity, ok := netcalc.SubnetCount(c.PodCIDR, c.NodePodCIDRSize); ok && int64(nodes) > capacity {
		b.topologyError(c.DeclRange, "Pod CIDR too small for the nodes",
			fmt.Sprintf("pod_cidr %s holds %d node ranges of /%d, but %d hosts run a kubelet.", c.PodCIDR, capacity, c.NodePodCIDRSize, nodes))
	}
	perNode := netcalc.Size(netip.PrefixFrom(c.PodCIDR.Addr(), c.NodePodCIDRSize))
	if perNode.IsInt64() && perNode.Int64()-2 < int64(c.Kubelet.MaxPods) {
		b.warnAt(c.DeclRange, "Node pod range smaller than max_pods",
			fmt.Sprintf("A /%d gives each node %d pod addresses, fewer than max_pods = %d.", c.NodePodCIDRSize, perNode.Int64()-2, c.Kubelet.MaxPods))
	}
}

func hostNames(hosts []Host) string {
	names := make([]string, len(hosts))
	for i, h := range hosts {
		names[i] = h.Name
	}
	return strings.Join(names, ", ")
}
