// Package planner makes a Plan: it refreshes every host (one SSH command each, a second only to show the
// diff of drifted text files) and diffs what each should have against what it has and what the state records.
package planner

import (
	"context"
	"fmt"
	"sort"
	"sync"
	"time"

	"github.com/kforge/kforge/provision/plan"
	"github.com/kforge/kforge/provision/refresh"
	"github.com/kforge/kforge/provision/remote"
	"github.com/kforge/kforge/provision/resource"
	"github.com/kforge/kforge/provision/state"
)

// Input is what a plan is made from.
type Input struct {
	Cluster string
	// Hosts orders the hosts in the plan (the configuration's order); hosts only the state knows come after.
	Hosts   []string
	Desired map[string][]resource.Resource
	Runners map[string]remote.Runner
	State   *state.State
	// Parallelism bounds the hosts refreshed at once; default 10.
	Parallelism int
}

// Make refreshes the hosts and returns the plan.
func Make(ctx context.Context, in Input) (*plan.Plan, error) {
	order := append([]string{}, in.Hosts...)
	known := map[string]bool{}
	for _, h := range order {
		known[h] = true
	}
	var removed []string
	for h := range in.State.Hosts {
		if !known[h] {
			removed = append(removed, h)
		}
	}
	sort.Strings(removed)
	order = append(order, removed...)

	p := &plan.Plan{FormatVersion: plan.FormatVersion, Cluster: in.Cluster, CreatedAt: time.Now().UTC(), State: in.State.Ref(),
		Hosts: make([]plan.HostPlan, len(order))}
	limit := in.Parallelism
	if limit <= 0 {
		limit = 10
	}
	var mu sync.Mutex
	idx := map[string]int{}
	for i, h := range order {
		idx[h] = i
	}
	err := remote.ForEach(ctx, order, limit, func(h string) string { return h }, "refresh", func(ctx context.Context, host string) error {
		r, ok := in.Runners[host]
		if !ok {
			return fmt.Errorf("kforge placed files on %s, which the configuration no longer lists, and cannot reach it to remove them: add the host back for one apply", host)
		}
		mu.Lock()
		managed := in.State.Hosts[host]
		versions := in.State.Versions[host]
		mu.Unlock()
		hp, err := hostPlan(ctx, r, host, in.Desired[host], managed, versions)
		if err != nil {
			return err
		}
		mu.Lock()
		p.Hosts[idx[host]] = hp
		mu.Unlock()
		return nil
	})
	if err != nil {
		return nil, err
	}
	return p, nil
}

func hostPlan(ctx context.Context, r remote.Runner, host string, want []resource.Resource, managed []plan.Managed, versions map[string]string) (plan.HostPlan, error) {
	var wants []refresh.Want
	seen := map[string]bool{}
	for _, res := range want {
		wants = append(wants, refresh.Want{Kind: res.Kind, Name: res.Name})
		seen[res.ID()] = true
	}
	for _, m := range managed {
		if !seen[m.ID] {
			wants = append(wants, refresh.Want{Kind: resource.Kind(m.Kind), Name: m.Name})
		}
	}
	got, err := refresh.Host(ctx, r, wants)
	if err != nil {
		return plan.HostPlan{}, err
	}
	for path, v := range versions {
		id := resource.ID(resource.Binary, path)
		if o, ok := got.Observed[id]; ok {
			o.Version = v
			got.Observed[id] = o
		}
	}
	in := plan.HostInput{Host: host, Desired: want, Observed: got.Observed, Managed: managed, ObservedDigest: got.Digest}
	// Drifted text files get a second look, for a diff a person can read.
	var drifted []string
	for _, res := range want {
		o := got.Observed[res.ID()]
		if res.Kind == resource.File && res.Diffable && !res.Secret && o.Exists && o.SHA256 != res.SHA256 {
			drifted = append(drifted, res.Name)
		}
	}
	if len(drifted) > 0 {
		contents, err := refresh.Contents(ctx, r, drifted, 64<<10)
		if err != nil {
			return plan.HostPlan{}, err
		}
		for path, b := range contents {
			id := resource.ID(resource.File, path)
			o := got.Observed[id]
			o.Content = b
			got.Observed[id] = o
		}
	}
	return plan.Compute(in), nil
}
