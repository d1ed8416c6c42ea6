package desired

import (
	"testing"

	"github.com/kforge/kforge/config"
)

func TestAssignPodCIDRsIsStable(t *testing.T) {
	c := haCluster(t) // 6 kubelet hosts, pod CIDR 198.19.0.0/16, /24 each
	got, err := AssignPodCIDRs(c, nil)
	if err != nil {
		t.Fatal(err)
	}
	if got["cp-1"].String() != "198.19.0.0/24" || got["worker-3"].String() != "198.19.5.0/24" {
		t.Errorf("first assignment: %v", got)
	}
	// worker-1 leaves, a new host arrives: everyone else keeps their slice, the newcomer takes the free one.
	previous := map[string]string{}
	for h, p := range got {
		previous[h] = p.String()
	}
	var hosts []config.Host
	for _, h := range c.Hosts {
		if h.Name != "worker-1" {
			hosts = append(hosts, h)
		}
	}
	hosts = append(hosts, config.Host{Name: "worker-9", Address: "198.18.0.29", Roles: []config.Role{config.RoleWorker}})
	c.Hosts = hosts
	again, err := AssignPodCIDRs(c, previous)
	if err != nil {
		t.Fatal(err)
	}
	for h, p := range again {
		if h != "worker-9" && p != got[h] {
			t.Errorf("%s moved from %s to %s", h, got[h], p)
		}
	}
	if again["worker-9"] != got["worker-1"] {
		t.Errorf("the newcomer got %s, want the freed %s", again["worker-9"], got["worker-1"])
	}
}
