package plan

import (
	"fmt"

	"github.com/kforge/kforge/provision/resource"
)

// HostInput is what the diff of one host needs: what it should have, what it has, and what kforge put there
// before (from the state), so that what is no longer wanted is removed.
type HostInput struct {
	Host           string
	Desired        []resource.Resource
	Observed       map[string]resource.Observed // by resource ID
	Managed        []Managed
	ObservedDigest string
}

// Managed is a resource kforge placed on a host earlier, as the state records it.
type Managed struct {
	ID   string `json:"id"`
	Kind string `json:"kind"`
	Name string `json:"name"`
}

// Compute diffs one host. Changes keep the order of Desired; removals come last, in reverse. A unit gets a restart when a
// resource naming it in Restarts changes, unless the unit is being started anyway.
func Compute(in HostInput) HostPlan {
	hp := HostPlan{Host: in.Host, ObservedDigest: in.ObservedDigest, Changes: []Change{}}
	desired := map[string]bool{}
	unitChange := map[string]int{} // unit ID -> index in hp.Changes
	restartBecause := map[string][]string{}
	var unitOrder []string
	for _, r := range in.Desired {
		desired[r.ID()] = true
		obs := in.Observed[r.ID()]
		c := diffResource(r, obs)
		if c.Action != NoOp {
			for _, u := range r.Restarts {
				if _, seen := restartBecause[u]; !seen {
					unitOrder = append(unitOrder, u)
				}
				restartBecause[u] = append(restartBecause[u], r.Name+" changed")
			}
		}
		if r.Kind == resource.Unit {
			unitChange[r.ID()] = len(hp.Changes)
		}
		hp.Changes = append(hp.Changes, c)
	}
	for _, u := range unitOrder {
		i, ok := unitChange[u]
		if !ok {
			continue // a restart of a unit kforge does not manage here: nothing to do
		}
		switch c := &hp.Changes[i]; c.Action {
		case NoOp:
			c.Action, c.Reasons = Restart, restartBecause[u]
		case Update:
			if !startsUnit(c) {
				c.Reasons = append(c.Reasons, restartBecause[u]...)
				c.Action = Restart
			}
		}
	}
	var kept []Change
	for _, c := range hp.Changes {
		if c.Action != NoOp {
			kept = append(kept, c)
		}
	}
	hp.Changes = kept
	// Removals go in the reverse of the order things were placed: a unit stops before its files go. Users go
	// last whatever the order: one added to a running cluster is recorded after the unit that runs as it, and
	// userdel refuses a user whose processes run.
	var users []Change
	for i := len(in.Managed) - 1; i >= 0; i-- {
		m := in.Managed[i]
		if desired[m.ID] {
			continue
		}
		obs := in.Observed[m.ID]
		if !obs.Exists {
			continue // already gone
		}
		c := Change{ID: m.ID, Kind: m.Kind, Name: m.Name, Action: Delete,
			Reasons: []string{"no longer in the configuration"}, Before: observedAttributes(resource.Kind(m.Kind), obs, false)}
		if m.Kind == string(resource.User) {
			users = append(users, c)
			continue
		}
		hp.Changes = append(hp.Changes, c)
	}
	hp.Changes = append(hp.Changes, users...)
	if hp.Changes == nil {
		hp.Changes = []Change{}
	}
	return hp
}

// startsUnit reports whether a unit change already (re)starts it.
func startsUnit(c *Change) bool {
	return c.Before != nil && c.Before.Active != nil && !*c.Before.Active && c.After != nil && c.After.Active != nil && *c.After.Active
}

func diffResource(r resource.Resource, obs resource.Observed) Change {
	c := Change{ID: r.ID(), Kind: string(r.Kind), Name: r.Name, Action: NoOp, After: desiredAttributes(r)}
	if obs.Exists {
		c.Before = observedAttributes(r.Kind, obs, r.Secret)
	}
	switch r.Kind {
	case resource.File, resource.Binary, resource.Directory, resource.Symlink:
		want := map[resource.Kind]string{resource.File: "file", resource.Binary: "file", resource.Directory: "directory", resource.Symlink: "symlink"}[r.Kind]
		switch {
		case !obs.Exists:
			c.Action = Create
			if r.Pending != "" {
				c.Reasons = []string{r.Pending}
			}
		case obs.Type != want:
			c.Action, c.Reasons = Replace, []string{fmt.Sprintf("a %s is in the way", obs.Type)}
		case r.Pending != "":
			c.Action, c.Reasons = Update, []string{r.Pending}
		default:
			c.Reasons = pathReasons(r, obs)
			if len(c.Reasons) > 0 {
				c.Action = Update
			}
			if r.Kind == resource.File && r.Diffable && !r.Secret && obs.SHA256 != r.SHA256 {
				c.Diff = unifiedDiff(obs.Content, r.Content)
			}
		}
	case resource.Unit:
		if r.Enabled && !obs.Enabled {
			c.Reasons = append(c.Reasons, "enable")
		}
		if r.Active && !obs.Active {
			c.Reasons = append(c.Reasons, "start")
		}
		if len(c.Reasons) > 0 {
			c.Action = Update
		}
		c.Before = &Attributes{Enabled: boolPtr(obs.Enabled), Active: boolPtr(obs.Active)}
	case resource.User:
		// An account that exists is kept as it is: its home directory is where the component's data is, which
		// kforge does not move.
		if !obs.Exists {
			c.Action, c.After, c.Reasons = Create, nil, []string{"system account and group, home " + r.Value + ", no login"}
		}
	case resource.Sysctl, resource.Module:
		if !obs.Exists && r.Kind == resource.Module {
			c.Action, c.Reasons = Create, []string{"load"}
		} else if obs.Value != r.Value {
			c.Action, c.Reasons = Update, []string{fmt.Sprintf("%s -> %s", orNone(obs.Value), r.Value)}
		}
	}
	return c
}

// pathReasons says what differs at an existing path of the right type.
func pathReasons(r resource.Resource, obs resource.Observed) []string {
	var reasons []string
	switch r.Kind {
	case resource.File:
		if obs.SHA256 != r.SHA256 {
			reasons = append(reasons, "content changed")
		}
	case resource.Binary:
		if obs.SHA256 != r.SHA256 {
			if obs.Version != "" && r.Version != "" && obs.Version != r.Version {
				reasons = append(reasons, fmt.Sprintf("%s -> %s", obs.Version, r.Version))
			} else {
				reasons = append(reasons, fmt.Sprintf("sha256 %s -> %s", short(obs.SHA256), short(r.SHA256)))
			}
		}
	case resource.Symlink:
		if obs.Target != r.Target {
			reasons = append(reasons, fmt.Sprintf("points to %s, not %s", obs.Target, r.Target))
		}
	}
	if r.Kind != resource.Symlink {
		if obs.Mode.Perm() != r.Mode.Perm() {
			reasons = append(reasons, fmt.Sprintf("mode %#o -> %#o", obs.Mode.Perm(), r.Mode.Perm()))
		}
		if owner(obs.Owner, obs.Group) != owner(r.Owner, r.Group) {
			reasons = append(reasons, fmt.Sprintf("owner %s -> %s", owner(obs.Owner, obs.Group), owner(r.Owner, r.Group)))
		}
	}
	return reasons
}

func desiredAttributes(r resource.Resource) *Attributes {
	a := observedAttributes(r.Kind, resource.Observed{SHA256: r.SHA256, Size: r.Size, Mode: r.Mode, Owner: r.Owner, Group: r.Group,
		Version: r.Version, Target: r.Target, Enabled: r.Enabled, Active: r.Active, Value: r.Value}, r.Secret)
	a.Pending = r.Pending != "" && a.SHA256 == ""
	return a
}

// observedAttributes is what a plan shows of a resource's state: for files digests and metadata, never content.
func observedAttributes(k resource.Kind, obs resource.Observed, secret bool) *Attributes {
	switch k {
	case resource.Unit:
		return &Attributes{Enabled: boolPtr(obs.Enabled), Active: boolPtr(obs.Active)}
	case resource.Sysctl, resource.Module, resource.User:
		return &Attributes{Value: obs.Value}
	case resource.Symlink:
		return &Attributes{Target: obs.Target}
	case resource.Directory:
		return &Attributes{Mode: fmt.Sprintf("%#o", obs.Mode.Perm()), Owner: owner(obs.Owner, obs.Group)}
	}
	return &Attributes{SHA256: obs.SHA256, Size: obs.Size, Mode: fmt.Sprintf("%#o", obs.Mode.Perm()), Owner: owner(obs.Owner, obs.Group),
		Version: obs.Version, Secret: secret}
}

func owner(u, g string) string {
	if u == "" {
		u = "root"
	}
	if g == "" {
		g = "root"
	}
	return u + ":" + g
}

func short(sha string) string {
	if len(sha) > 12 {
		return sha[:12]
	}
	return orNone(sha)
}

func orNone(s string) string {
	if s == "" {
		return "(none)"
	}
	return s
}

func boolPtr(b bool) *bool { return &b }
