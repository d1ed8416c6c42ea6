// Package skew checks a change of component versions against Kubernetes' version-skew policy before anything is
// planned: what each host has (as kforge placed it) against what the configuration wants.
package skew

import (
	"errors"
	"fmt"
	"sort"
	"strings"

	"github.com/kforge/kforge/config"
	"github.com/kforge/kforge/provision/resource"
)

// Rules, from Kubernetes' version-skew policy and etcd's upgrade guide.
var (
	// controlPlane components, and etcd, move one minor version at a time.
	oneMinorAtATime = map[string]bool{"kube-apiserver": true, "kube-controller-manager": true, "kube-scheduler": true, "etcd": true}
	// nodeAgents may be up to maxNodeSkew minors older than the API server, never newer: an upgrade that would
	// leave one further behind the new API server (while it waits for its turn) is refused.
	nodeAgents = map[string]bool{"kubelet": true, "kube-proxy": true}
	// downgradable lists what a downgrade is checked for: the components above and the runtime.
	checked = map[string]bool{"containerd": true}
)

const maxNodeSkew = 3

// Check compares, host by host, each binary the plan wants (its Version, "kubelet v1.37.2") with the version
// kforge last placed at that path (placed: host → path → version, from the state). It returns nil, or an error
// listing every violation with its host and the rule. Downgrades are violations unless allowDowngrade.
func Check(want map[string][]resource.Resource, placed map[string]map[string]string, allowDowngrade bool) error {
	apiTarget := target(want, "kube-apiserver")
	var problems []string
	hosts := make([]string, 0, len(want))
	for h := range want {
		hosts = append(hosts, h)
	}
	sort.Strings(hosts)
	for _, h := range hosts {
		for _, r := range want[h] {
			if r.Kind != resource.Binary {
				continue
			}
			name, to, ok := parse(r.Version)
			if !ok || !(oneMinorAtATime[name] || nodeAgents[name] || checked[name]) {
				continue
			}
			pname, from, ok := parse(placed[h][r.Name])
			if !ok || pname != name {
				continue // new on this host: nothing to skew from
			}
			switch {
			case less(to, from) && !allowDowngrade:
				problems = append(problems, fmt.Sprintf("%s on %s: %s → %s is a downgrade, which kforge refuses unless --allow-downgrade (a downgrade can lose data the newer version wrote)", name, h, from, to))
			case oneMinorAtATime[name] && to.Major == from.Major && to.Minor > from.Minor+1:
				problems = append(problems, fmt.Sprintf("%s on %s: %s → %s skips v%d.%d: the control plane and etcd upgrade one minor version at a time; upgrade to v%d.%d.x first", name, h, from, to, from.Major, from.Minor+1, from.Major, from.Minor+1))
			case nodeAgents[name] && apiTarget != nil && apiTarget.Major == from.Major && from.Minor+maxNodeSkew < apiTarget.Minor:
				problems = append(problems, fmt.Sprintf("%s on %s: %s would be more than %d minor versions older than the API server (%s) until its turn to upgrade; upgrade in smaller steps", name, h, from, maxNodeSkew, apiTarget))
			}
		}
	}
	if len(problems) == 0 {
		return nil
	}
	return errors.New("the version change breaks Kubernetes' version-skew policy:\n  " + strings.Join(problems, "\n  "))
}

// target is the version the plan wants for a component (the first host that has it: all have the same).
func target(want map[string][]resource.Resource, component string) *config.Version {
	for _, rs := range want {
		for _, r := range rs {
			if name, v, ok := parse(r.Version); ok && r.Kind == resource.Binary && name == component {
				return &v
			}
		}
	}
	return nil
}

// parse reads "NAME vX.Y.Z", as binaries' versions are recorded.
func parse(s string) (string, config.Version, bool) {
	name, ver, ok := strings.Cut(s, " ")
	if !ok {
		return "", config.Version{}, false
	}
	v, err := config.ParseVersion(ver)
	return name, v, err == nil
}

func less(a, b config.Version) bool {
	if a.Major != b.Major {
		return a.Major < b.Major
	}
	if a.Minor != b.Minor {
		return a.Minor < b.Minor
	}
	return a.Patch < b.Patch
}
