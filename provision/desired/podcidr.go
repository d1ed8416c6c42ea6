package desired

import (
	"fmt"
	"net/netip"

	"github.com/kforge/kforge/config"
	"github.com/kforge/kforge/config/netcalc"
)

// AssignPodCIDRs gives every node its slice of the pod CIDR. kforge assigns them, not the controller-manager,
// so that the routes between nodes are known when planning; assignments are stable (previous ones, from the state,
// are kept) and a new node takes the lowest free slice.
func AssignPodCIDRs(c *config.Cluster, previous map[string]string) (map[string]netip.Prefix, error) {
	out := map[string]netip.Prefix{}
	used := map[netip.Prefix]bool{}
	var pending []string
	for _, h := range c.Hosts {
		if !h.RunsKubelet() {
			continue
		}
		p, err := netip.ParsePrefix(previous[h.Name])
		if err == nil && p.Bits() == c.NodePodCIDRSize && c.PodCIDR.Contains(p.Addr()) && !used[p] {
			out[h.Name], used[p] = p, true
			continue
		}
		pending = append(pending, h.Name)
	}
	next := int64(0)
	for _, name := range pending {
		for {
			p, err := netcalc.Subnet(c.PodCIDR, c.NodePodCIDRSize-c.PodCIDR.Bits(), next)
			if err != nil {
				return nil, fmt.Errorf("pod CIDR %s has no free /%d left for %s", c.PodCIDR, c.NodePodCIDRSize, name)
			}
			next++
			if !used[p] {
				out[name], used[p] = p, true
				break
			}
		}
	}
	return out, nil
}
