package main

import (
	"strings"
	"testing"

	"github.com/kforge/kforge/provision/plan"
)

func TestStalePlans(t *testing.T) {
	host := func(digest string, changes ...plan.Change) plan.HostPlan {
		return plan.HostPlan{Host: "cp-1", ObservedDigest: digest, Changes: append([]plan.Change{}, changes...)}
	}
	change := plan.Change{ID: "file:/a", Kind: "file", Name: "/a", Action: plan.Create}
	saved := &plan.Plan{State: plan.StateRef{}, Hosts: []plan.HostPlan{host("d1", change)}}
	for _, tc := range []struct {
		name string
		now  *plan.Plan
		want string
	}{
		{"same", &plan.Plan{State: plan.StateRef{}, Hosts: []plan.HostPlan{host("d1", change)}}, ""},
		// made before any state existed; an apply has written one since
		{"state written since", &plan.Plan{State: plan.StateRef{Lineage: "abc", Serial: 4}, Hosts: []plan.HostPlan{host("d1", change)}}, "the state changed since the plan"},
		{"host changed", &plan.Plan{Hosts: []plan.HostPlan{host("d2", change)}}, "hosts changed since the plan: cp-1"},
		{"configuration changed", &plan.Plan{Hosts: []plan.HostPlan{host("d1")}}, "the configuration changed since the plan"},
	} {
		err := stale(saved, tc.now)
		if (tc.want == "") != (err == nil) || (err != nil && !strings.Contains(err.Error(), tc.want)) {
			t.Errorf("%s: %v", tc.name, err)
		}
	}
}
