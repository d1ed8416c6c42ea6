// Package apply makes a Plan true on the hosts: each host's changes in order, hosts in phases and in parallel
// within a phase, the state recorded after every change, so that an interrupted apply leaves a true record.
package apply

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"path"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/kforge/kforge/provision/plan"
	"github.com/kforge/kforge/provision/remote"
	"github.com/kforge/kforge/provision/resource"
	"github.com/kforge/kforge/provision/state"
)

// Event is one step of progress, for the views (live lines on a terminal, timestamps in CI, JSON).
type Event struct {
	Time   time.Time `json:"time"`
	Host   string    `json:"host"`
	Action string    `json:"action"`
	Kind   string    `json:"kind"`
	Name   string    `json:"name"`
	Status string    `json:"status"` // start, done, failed
	Error  string    `json:"error,omitempty"`
}

// Engine applies plans.
type Engine struct {
	Runners map[string]remote.Runner
	State   *state.State
	// Store keeps the state, saved after every change (a backend: a local file, or etcd).
	Store StateStore
	// Parallelism bounds the hosts worked on at once; default 10.
	Parallelism int
	// Phases orders hosts: each phase finishes before the next starts. Hosts in no phase go last.
	Phases []Phase
	// HealthTimeout bounds the wait for a unit's health check (default 2 minutes); HealthInterval spaces its
	// tries (default 1 s).
	HealthTimeout, HealthInterval time.Duration
	// Events receives progress; nil discards it.
	Events func(Event)
	// StepTimeout bounds one change; default 10 minutes.
	StepTimeout time.Duration
	// Drainer moves a node's pods away before changes that Disrupt them and lets them back after; with either
	// nil, nothing is drained. At most MaxUnavailable nodes (default 1) are drained at once.
	Drainer        Drainer
	Disrupts       func(plan.HostPlan) bool
	MaxUnavailable int

	mu     sync.Mutex // guards State and its file
	emitMu sync.Mutex // hosts report from their own goroutines; views see one event at a time
}

// StateStore saves the state, refusing to overwrite one that moved on since it was loaded.
type StateStore interface {
	SaveState(ctx context.Context, s *state.State) error
}

// saveTimeout bounds one save of the state; saves outlive an interrupt, so that what was done is recorded.
const saveTimeout = 30 * time.Second

// Drainer drains a node and uncordons it (once it is Ready again).
type Drainer interface {
	Drain(ctx context.Context, node string) error
	Uncordon(ctx context.Context, node string) error
}

// NodeKind marks a plan's change that is about a node rather than a file or unit: "uncordon", for a node that an
// apply drained and did not get to uncordon. The engine uncordons it after the host's other changes.
const NodeKind = "node"

// DataKind marks a data directory (etcd's, containerd's, the kubelet's) that destroy --purge-data deletes with
// everything in it; nothing else in a plan deletes what kforge did not write.
const DataKind resource.Kind = "data"

// LinkKind marks a network interface that destroy --purge-data deletes: the pods' bridge, which the CNI plugin
// made, and flannel's VXLAN device; nothing else removes them (a cluster made on the host later would find them
// with another address).
const LinkKind resource.Kind = "link"

// DataDirs are what destroy --purge-data deletes, where they exist, and the only data a plan may delete.
var DataDirs = []string{"/var/lib/etcd", "/var/lib/containerd", "/var/lib/kubelet", "/var/lib/cni"}

// PodLinks are the interfaces the pod network makes: the bridge of the CNI config kforge writes
// (templates/files/cni.conflist.tmpl) and flanneld's VXLAN device.
var PodLinks = []string{"cni0", "flannel.1"}

// Removable refuses a plan's deletion of something kforge never makes: the state and saved plans are checked as
// they load, and this keeps a crafted or damaged one (or a bug) from having an apply remove a host's own files,
// units, users or data.
func Removable(c plan.Change) error {
	if c.Action != plan.Delete {
		return nil
	}
	switch resource.Kind(c.Kind) {
	case DataKind:
		if !slices.Contains(DataDirs, c.Name) {
			return fmt.Errorf("%s is not a data directory of kforge's (%s)", c.Name, strings.Join(DataDirs, ", "))
		}
	case LinkKind:
		if !slices.Contains(PodLinks, c.Name) {
			return fmt.Errorf("%s is not a link kforge deletes (only the pod network's: %s)", c.Name, strings.Join(PodLinks, ", "))
		}
	}
	return resource.Owned(resource.Kind(c.Kind), c.Name)
}

// Phase is a group of hosts applied together. Rolling phases restart one host at a time (a control plane or an
// etcd cluster keeps serving meanwhile); a rolling phase with nothing to restart still runs in parallel.
type Phase struct {
	Name    string // what its hosts are, for the plan: "etcd hosts"
	Hosts   []string
	Rolling bool
}

// Apply executes p, whose resources' content is in desired (by host). When ctx ends, changes in flight finish
// (each is atomic) and no new one starts.
func (e *Engine) Apply(ctx context.Context, p *plan.Plan, desired map[string][]resource.Resource) error {
	byHost := map[string]plan.HostPlan{}
	var refused []error
	for _, h := range p.Hosts {
		byHost[h.Host] = h
		for _, c := range h.Changes {
			if err := Removable(c); err != nil {
				refused = append(refused, fmt.Errorf("host %s: the plan removes %s %s: %w", h.Host, c.Kind, c.Name, err))
			}
		}
	}
	if len(refused) > 0 {
		return fmt.Errorf("nothing applied: %w", errors.Join(refused...))
	}
	var errs []error
	for _, st := range e.Stages(p) {
		var hosts []plan.HostPlan
		for _, name := range st.Hosts {
			hosts = append(hosts, byHost[name])
		}
		err := remote.ForEach(ctx, hosts, st.AtATime, func(h plan.HostPlan) string { return h.Host }, "apply",
			func(ctx context.Context, h plan.HostPlan) error { return e.host(ctx, h, desired[h.Host]) })
		if err != nil {
			errs = append(errs, err)
			break // later stages depend on this one
		}
	}
	return errors.Join(errs...)
}

// Stages is the order in which Apply works through p: each phase's hosts that have changes, one at a time in a
// rolling phase that restarts something, at most MaxUnavailable at a time where nodes are drained, else
// Parallelism at a time.
func (e *Engine) Stages(p *plan.Plan) []plan.Stage {
	byHost := map[string]plan.HostPlan{}
	for _, h := range p.Hosts {
		byHost[h.Host] = h
	}
	var out []plan.Stage
	for _, phase := range e.phases(p) {
		st := plan.Stage{Name: phase.Name}
		restarts := false
		for _, name := range phase.Hosts {
			h, ok := byHost[name]
			if !ok || len(h.Changes) == 0 {
				continue
			}
			st.Hosts = append(st.Hosts, name)
			restarts = restarts || hasRestart(h)
			if e.drains(h) {
				st.Drain = append(st.Drain, name)
			}
		}
		if len(st.Hosts) == 0 {
			continue
		}
		st.AtATime = e.Parallelism
		if st.AtATime <= 0 {
			st.AtATime = 10
		}
		if phase.Rolling && restarts {
			st.AtATime = 1
		}
		if n := e.maxUnavailable(); n < st.AtATime && len(st.Drain) > 0 {
			st.AtATime = n
		}
		st.AtATime = min(st.AtATime, len(st.Hosts))
		out = append(out, st)
	}
	return out
}

// drains says whether a host's node is drained before its changes.
func (e *Engine) drains(hp plan.HostPlan) bool {
	return e.Drainer != nil && e.Disrupts != nil && e.Disrupts(hp)
}

func (e *Engine) maxUnavailable() int {
	if e.MaxUnavailable <= 0 {
		return 1
	}
	return e.MaxUnavailable
}

// drain drains the host's node, recording first that it is drained: an apply killed before the uncordon leaves
// a state from which the next apply uncordons it.
func (e *Engine) drain(ctx context.Context, r remote.Runner, host string) error {
	e.mu.Lock()
	if e.State.Drained == nil {
		e.State.Drained = map[string]bool{}
	}
	e.State.Drained[host] = true
	e.mu.Unlock()
	if err := e.save(ctx); err != nil {
		return err
	}
	return e.step(ctx, r, host, plan.Change{Action: "drain", Kind: NodeKind, Name: host}, func(ctx context.Context) error {
		return e.Drainer.Drain(ctx, host)
	})
}

func (e *Engine) uncordon(ctx context.Context, r remote.Runner, host string) error {
	if err := e.step(ctx, r, host, plan.Change{Action: "uncordon", Kind: NodeKind, Name: host}, func(ctx context.Context) error {
		return e.Drainer.Uncordon(ctx, host)
	}); err != nil {
		return err
	}
	e.mu.Lock()
	delete(e.State.Drained, host)
	e.mu.Unlock()
	return e.save(ctx)
}

func hasRestart(h plan.HostPlan) bool {
	for _, c := range h.Changes {
		if c.Action == plan.Restart {
			return true
		}
	}
	return false
}

// phases lists the configured phases, then every other host of the plan in one last phase.
func (e *Engine) phases(p *plan.Plan) []Phase {
	seen := map[string]bool{}
	out := append([]Phase{}, e.Phases...)
	for _, ph := range e.Phases {
		for _, h := range ph.Hosts {
			seen[h] = true
		}
	}
	var rest []string
	for _, h := range p.Hosts {
		if !seen[h.Host] {
			rest = append(rest, h.Host)
		}
	}
	return append(out, Phase{Name: "other hosts", Hosts: rest})
}

func (e *Engine) host(ctx context.Context, hp plan.HostPlan, want []resource.Resource) error {
	r, ok := e.Runners[hp.Host]
	if !ok {
		return fmt.Errorf("no connection to %s", hp.Host)
	}
	byID := map[string]resource.Resource{}
	for _, res := range want {
		byID[res.ID()] = res
	}
	e.mu.Lock()
	drained := e.State.Drained[hp.Host] // by an apply that did not finish: uncordoned below
	e.mu.Unlock()
	if e.drains(hp) && !drained {
		if err := e.drain(ctx, r, hp.Host); err != nil {
			return err
		}
		drained = true
	}
	reloaded := false
	for _, c := range hp.Changes {
		if err := ctx.Err(); err != nil {
			return fmt.Errorf("stopped before %s %s %s: %w", c.Action, c.Kind, c.Name, err)
		}
		if c.Kind == NodeKind {
			continue // the uncordon, after the rest
		}
		// systemd reads unit files at daemon-reload: once per host, before the first unit is touched.
		if c.Kind == string(resource.Unit) && !reloaded && unitFilesChanged(hp) {
			if err := e.daemonReload(ctx, r, hp.Host); err != nil {
				return err
			}
			reloaded = true
		}
		res, hasRes := byID[c.ID]
		if c.Action != plan.Delete && !hasRes {
			return fmt.Errorf("%s %s: not in the configuration any more; plan again", c.Kind, c.Name)
		}
		if err := e.step(ctx, r, hp.Host, c, func(ctx context.Context) error {
			err := execute(ctx, r, c, res)
			if err == nil {
				err = e.waitHealthy(ctx, r, c, res)
			}
			if err != nil && res.Kind == resource.Unit && c.Action != plan.Delete {
				err = withJournal(ctx, r, res.Name, err)
			}
			return err
		}); err != nil {
			return err
		}
		e.record(hp.Host, c, res)
		if err := e.save(ctx); err != nil {
			return err
		}
	}
	// Removed unit files: systemd forgets them only at the next reload.
	if !reloaded && unitFilesChanged(hp) {
		if err := e.daemonReload(ctx, r, hp.Host); err != nil {
			return err
		}
	}
	// Everything wanted on the host is now kforge's to manage, also what already matched.
	for _, res := range want {
		e.record(hp.Host, plan.Change{ID: res.ID(), Kind: string(res.Kind), Name: res.Name, Action: plan.NoOp}, res)
	}
	if err := e.save(ctx); err != nil {
		return err
	}
	if drained && e.Drainer != nil {
		return e.uncordon(ctx, r, hp.Host)
	}
	return nil
}

func (e *Engine) daemonReload(ctx context.Context, r remote.Runner, host string) error {
	return e.step(ctx, r, host, plan.Change{Action: plan.Update, Kind: "systemd", Name: "daemon-reload"}, func(ctx context.Context) error {
		_, err := r.Run(ctx, remote.Command{Name: "systemctl daemon-reload", Script: "systemctl daemon-reload", Sudo: true})
		return err
	})
}

func unitFilesChanged(hp plan.HostPlan) bool {
	for _, c := range hp.Changes {
		if (c.Kind == string(resource.File)) && strings.HasPrefix(c.Name, "/etc/systemd/system/") {
			return true
		}
	}
	return false
}

// step runs one change, detached from ctx so that an interrupt lets it finish, bounded by StepTimeout.
func (e *Engine) step(ctx context.Context, r remote.Runner, host string, c plan.Change, do func(context.Context) error) error {
	timeout := e.StepTimeout
	if timeout <= 0 {
		timeout = 10 * time.Minute
	}
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), timeout)
	defer cancel()
	e.emit(Event{Host: host, Action: string(c.Action), Kind: c.Kind, Name: c.Name, Status: "start"})
	err := do(sctx)
	if err != nil {
		e.emit(Event{Host: host, Action: string(c.Action), Kind: c.Kind, Name: c.Name, Status: "failed", Error: err.Error()})
		return &remote.HostError{Host: host, Step: fmt.Sprintf("%s %s %s", c.Action, c.Kind, c.Name), Err: unwrapHost(err)}
	}
	e.emit(Event{Host: host, Action: string(c.Action), Kind: c.Kind, Name: c.Name, Status: "done"})
	return nil
}

// withJournal adds a failed unit's last journal lines to its error: the reason is there, not in systemctl's exit.
func withJournal(ctx context.Context, r remote.Runner, unit string, err error) error {
	journal, jerr := remote.Journal(ctx, r, unit, 15)
	if jerr != nil || strings.TrimSpace(journal) == "" {
		return err
	}
	return fmt.Errorf("%w\nlast lines of its journal:\n%s", err, journal)
}

// waitHealthy polls a unit's health check after it was started or restarted.
func (e *Engine) waitHealthy(ctx context.Context, r remote.Runner, c plan.Change, res resource.Resource) error {
	started := c.Action == plan.Restart || (c.Action == plan.Update && slices.Contains(c.Reasons, "start"))
	if res.Kind != resource.Unit || res.Health == "" || !started {
		return nil
	}
	timeout := e.HealthTimeout
	if timeout <= 0 {
		timeout = 2 * time.Minute
	}
	interval := e.HealthInterval
	if interval <= 0 {
		interval = time.Second
	}
	check := remote.Command{Name: "health of " + res.Name, Script: res.Health, Sudo: true, Timeout: 10 * time.Second}
	if err := remote.Poll(ctx, r, check, timeout, interval); err != nil {
		return fmt.Errorf("%s is not healthy %s after it started: %w", res.Name, timeout, errors.Unwrap(err))
	}
	return nil
}

// unwrapHost keeps an inner error's step but not its host: the step above names the host once.
func unwrapHost(err error) error {
	var he *remote.HostError
	if !errors.As(err, &he) {
		return err
	}
	if he.Step != "" {
		return fmt.Errorf("%s: %w", he.Step, he.Err)
	}
	return he.Err
}

func (e *Engine) emit(ev Event) {
	if e.Events != nil {
		e.emitMu.Lock()
		defer e.emitMu.Unlock()
		ev.Time = time.Now()
		e.Events(ev)
	}
}

func (e *Engine) record(host string, c plan.Change, res resource.Resource) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if c.Action == plan.Delete {
		e.State.Forget(host, c.ID)
		if e.State.Versions[host] != nil {
			delete(e.State.Versions[host], c.Name)
		}
		return
	}
	e.State.Record(host, plan.Managed{ID: c.ID, Kind: c.Kind, Name: c.Name})
	if res.Kind == resource.Binary && res.Version != "" {
		if e.State.Versions == nil {
			e.State.Versions = map[string]map[string]string{}
		}
		if e.State.Versions[host] == nil {
			e.State.Versions[host] = map[string]string{}
		}
		e.State.Versions[host][res.Name] = res.Version
	}
}

func (e *Engine) save(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), saveTimeout)
	defer cancel()
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.Store.SaveState(ctx, e.State)
}

// execute carries out one change on the host.
func execute(ctx context.Context, r remote.Runner, c plan.Change, res resource.Resource) error {
	run := func(name, script string) error {
		_, err := r.Run(ctx, remote.Command{Name: name, Script: script, Sudo: true})
		return err
	}
	q := remote.ShellQuote
	switch c.Action {
	case plan.Delete:
		switch resource.Kind(c.Kind) {
		case resource.File, resource.Binary, resource.Symlink:
			return run("remove "+c.Name, "rm -f -- "+q(c.Name))
		case resource.Directory:
			// Only an empty directory goes: what others put in it is not kforge's to delete.
			return run("remove "+c.Name, "rmdir -- "+q(c.Name)+" 2>/dev/null || true")
		case resource.Unit:
			return run("stop "+c.Name, "systemctl disable --now -- "+q(c.Name))
		case resource.User:
			// Its files stay (a data directory is purged as data, if asked); a user gone meanwhile is what was wanted.
			return run("remove user "+c.Name, "userdel -- "+q(c.Name)+" || ! getent passwd -- "+q(c.Name)+" >/dev/null")
		case LinkKind:
			// "dev" marks the name as one (ip takes no "--"); a link gone meanwhile is what was wanted.
			return run("delete "+c.Name, "ip link delete dev "+q(c.Name)+" || ! test -e /sys/class/net/"+q(c.Name))
		case DataKind:
			// The kubelet's pod volumes (tmpfs, bind mounts) stay mounted after it stops: unmount what is mounted
			// beneath first, deepest first (lazily if busy), so that rm deletes data rather than failing on a
			// mount point, and never crosses into a file system that is not the directory's.
			return run("purge "+c.Name, "d="+q(c.Name)+"\n"+
				`awk -v d="$d" 'index($2, d "/") == 1 {print $2}' /proc/self/mounts | sort -r | while read -r m; do umount -- "$m" 2>/dev/null || umount -l -- "$m"; done`+"\n"+
				`rm -rf --one-file-system -- "$d"`)
		}
		return nil // a sysctl or module keeps its value; its drop-in file is a file resource of its own
	case plan.Restart:
		return run("restart "+c.Name, "systemctl restart -- "+q(c.Name))
	}
	if c.Action == plan.Replace {
		// Something of another type is in the way: an empty directory or a file goes; a directory with content
		// stays, and the step fails saying so, rather than kforge deleting what it did not make.
		if err := run("clear the way for "+res.Name, "rmdir -- "+q(res.Name)+" 2>/dev/null || rm -f -- "+q(res.Name)); err != nil {
			return err
		}
	}
	switch res.Kind {
	case resource.File, resource.Binary:
		open := res.Open
		if open == nil {
			content := res.Content
			open = func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(content)), nil }
		}
		_, err := r.Upload(ctx, remote.File{Path: res.Name, Mode: res.Mode, Owner: res.Owner, Group: res.Group,
			SHA256: res.SHA256, Size: res.Size, Open: open})
		return err
	case resource.Directory:
		return run("create "+res.Name, fmt.Sprintf("install -d -m %o -o %s -g %s -- %s", res.Mode.Perm(), q(orRoot(res.Owner)), q(orRoot(res.Group)), q(res.Name)))
	case resource.Symlink:
		tmp := path.Join(path.Dir(res.Name), "."+path.Base(res.Name)+".kforge-link")
		return run("link "+res.Name, fmt.Sprintf("ln -sfn -- %s %s && mv -Tf -- %s %s", q(res.Target), q(tmp), q(tmp), q(res.Name)))
	case resource.Sysctl:
		return run("set "+res.Name, fmt.Sprintf("printf '%%s\\n' %s > %s", q(res.Value), q("/proc/sys/"+strings.ReplaceAll(res.Name, ".", "/"))))
	case resource.Module:
		return run("load "+res.Name, "modprobe -- "+q(res.Name))
	case resource.User:
		return run("add user "+res.Name, "getent passwd -- "+q(res.Name)+" >/dev/null || useradd --system --user-group --no-create-home --home-dir "+
			q(res.Value)+" --shell /usr/sbin/nologin --comment "+q(res.Name+" (kforge)")+" -- "+q(res.Name))
	case resource.Unit:
		var steps []string
		for _, reason := range c.Reasons {
			switch reason {
			case "enable":
				steps = append(steps, "systemctl enable -- "+q(res.Name))
			case "start":
				steps = append(steps, "systemctl start -- "+q(res.Name))
			}
		}
		if len(steps) == 0 {
			return nil
		}
		return run(strings.Join(steps, "; "), strings.Join(steps, " && "))
	}
	return fmt.Errorf("cannot apply a %s", res.Kind)
}

func orRoot(s string) string {
	if s == "" {
		return "root"
	}
	return s
}
