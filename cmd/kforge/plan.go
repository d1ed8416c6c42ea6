package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"maps"
	"net/netip"
	"os"
	"os/signal"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/kforge/kforge/cmd/kforge/internal/views"
	"github.com/kforge/kforge/config"
	"github.com/kforge/kforge/internal/atomicfile"
	"github.com/kforge/kforge/pki"
	"github.com/kforge/kforge/provision/apply"
	"github.com/kforge/kforge/provision/artifacts"
	"github.com/kforge/kforge/provision/desired"
	"github.com/kforge/kforge/provision/facts"
	"github.com/kforge/kforge/provision/plan"
	"github.com/kforge/kforge/provision/planner"
	"github.com/kforge/kforge/provision/preflight"
	"github.com/kforge/kforge/provision/ready"
	"github.com/kforge/kforge/provision/remote"
	"github.com/kforge/kforge/provision/resource"
	"github.com/kforge/kforge/provision/skew"
	"github.com/kforge/kforge/provision/ssh"
	"github.com/kforge/kforge/provision/state"
)

// exitChanges is plan --detailed-exitcode's "there are changes".
const exitChanges = 2

// readParallelism bounds the hosts connected to, probed and refreshed at once. Reading costs kforge little
// (1.3 CPU-seconds for a plan of 100 bench hosts, measured with /usr/bin/time) and each host does its own part,
// so a plan's time barely grows with hosts up to this many; changes follow --parallelism.
const readParallelism = 50

// session is one command's hold on the cluster: configuration, state, PKI store and a connection per host.
type session struct {
	*hold    // locked from openSession to close, when an operation asked for it
	cluster  *config.Cluster
	files    string // the backend's files: pki/, known_hosts
	store    *pki.Store
	state    *state.State
	runners  map[string]remote.Runner
	clients  []*ssh.Client
	view     views.Plan
	facts    facts.Cache // probed once per command run
	podCIDRs map[string]netip.Prefix
	set      *artifacts.Set // the binaries to install: nil with artifacts { source = "none" } and for destroy
}

// runnerList lists the connections in the configuration's host order.
func (s *session) runnerList() []remote.Runner {
	var out []remote.Runner
	for _, h := range s.cluster.Hosts {
		if r, ok := s.runners[h.Name]; ok {
			out = append(out, r)
		}
	}
	return out
}

// close ends the session: connections, then the hold on the backend.
func (s *session) close() {
	for _, c := range s.clients {
		c.Close()
	}
	s.release()
}

func (a *app) planView() views.Plan {
	if a.json {
		return &views.PlanJSON{Out: a.stdout}
	}
	return &views.PlanHuman{Out: a.stdout, Err: a.stderr, Term: a.terminal(a.stdout)}
}

// openSession loads everything a plan needs and connects to every host in parallel. With an operation, it
// holds the backend's lock for it until close.
func (a *app) openSession(ctx context.Context, operation string) (*session, error) {
	cluster, err := a.loadCluster(ctx, a.configPath)
	if err != nil {
		return nil, err
	}
	h, err := a.holdBackend(ctx, cluster, operation)
	if err != nil {
		return nil, err
	}
	s := &session{hold: h, cluster: cluster, runners: map[string]remote.Runner{}, view: a.planView()}
	if err := s.open(ctx, a); err != nil {
		s.close()
		return nil, err
	}
	return s, nil
}

// open reads the state and the PKI store from the backend and connects to the hosts.
func (s *session) open(ctx context.Context, a *app) error {
	var err error
	if s.state, err = s.backend.LoadState(ctx); err != nil {
		return err
	}
	if s.files, err = s.backend.Files(ctx); err != nil {
		return err
	}
	if s.store, err = pki.OpenStore(filepath.Join(s.files, "pki")); err != nil {
		return err
	}
	targets := s.targets()
	clients, err := a.connect(ctx, s.files, targets, s.view.Warn)
	for i, c := range clients {
		if c != nil {
			s.clients = append(s.clients, c)
			s.runners[targets[i].Name] = c
		}
	}
	return err
}

// connect dials the targets, readParallelism at once, checking host keys against the user's known_hosts, the
// backend's (in files) and each target's own. Clients are in the targets' order, nil where the dial failed (the
// error says which and why); the caller closes the others.
func (a *app) connect(ctx context.Context, files string, targets []ssh.Target, warn func(host, msg string)) ([]*ssh.Client, error) {
	home, _ := os.UserHomeDir()
	d := &ssh.Dialer{AgentSocket: envValue(a.env, "SSH_AUTH_SOCK"), Home: home, KnownHostsFile: filepath.Join(files, "known_hosts"),
		Warn: warn}
	if home != "" {
		d.UserKnownHostsFile = filepath.Join(home, ".ssh", "known_hosts")
	}
	clients := make([]*ssh.Client, len(targets))
	err := remote.ForEach(ctx, targets, readParallelism, func(t ssh.Target) string { return t.Name }, "connect",
		func(ctx context.Context, t ssh.Target) error {
			c, err := d.Dial(ctx, t)
			if err != nil {
				return err
			}
			clients[indexOfTarget(targets, t.Name)] = c
			return nil
		})
	return clients, err
}

// targets: every configured host, then every host the state still has resources on, reached as it was last.
func (s *session) targets() []ssh.Target {
	var out []ssh.Target
	configured := map[string]bool{}
	for _, h := range s.cluster.Hosts {
		out = append(out, ssh.TargetFor(h))
		configured[h.Name] = true
	}
	for name := range s.state.Hosts {
		if c, ok := s.state.Connections[name]; ok && !configured[name] {
			out = append(out, ssh.Target{Name: name, Address: c.Address, Port: c.Port, User: c.User, PrivateKeyFile: c.PrivateKeyFile,
				KnownHostsFile: c.KnownHostsFile, HostKeyPolicy: config.HostKeyPolicy(c.HostKeyPolicy), Sudo: c.Sudo,
				ConnectTimeout: 10 * time.Second})
		}
	}
	return out
}

// remember records how the configured hosts are reached (for when one leaves the configuration) and the nodes'
// pod CIDRs (which must never move).
func (s *session) remember() {
	s.state.PodCIDRs = map[string]string{}
	for h, p := range s.podCIDRs {
		s.state.PodCIDRs[h] = p.String()
	}
	if s.state.Connections == nil {
		s.state.Connections = map[string]state.Connection{}
	}
	for _, h := range s.cluster.Hosts {
		t := ssh.TargetFor(h)
		s.state.Connections[h.Name] = state.Connection{Address: t.Address, Port: t.Port, User: t.User, PrivateKeyFile: t.PrivateKeyFile,
			KnownHostsFile: t.KnownHostsFile, HostKeyPolicy: string(t.HostKeyPolicy), Sudo: t.Sudo}
	}
}

func indexOfTarget(ts []ssh.Target, name string) int {
	for i, t := range ts {
		if t.Name == name {
			return i
		}
	}
	return -1
}

func envValue(env []string, name string) string {
	for _, kv := range env {
		if v, ok := strings.CutPrefix(kv, name+"="); ok {
			return v
		}
	}
	return ""
}

// planned is a session with the lock held and a plan made.
type planned struct {
	*session
	want       map[string][]resource.Resource
	pkiChanges []pki.Change
	plan       *plan.Plan
	rotation   *pki.Rotation // a CA rotation whose step this apply carries out
}

// planNow takes the lock, connects, and plans: what plan, apply and destroy all start with.
func (a *app) planNow(ctx context.Context, operation string, destroy bool) (*planned, error) {
	s, err := a.openSession(ctx, operation)
	if err != nil {
		return nil, err
	}
	p := &planned{session: s}
	if !destroy {
		if s.set, err = a.artifactSet(ctx, s.cluster, false); err != nil {
			p.close()
			return nil, err
		}
		// The same checks as kforge preflight: a host that cannot run Kubernetes is refused before anything changes.
		findings, err := a.preflight(ctx, s)
		if err == nil {
			// With --json, standard output is the plan's one document (or apply's event lines): the findings go
			// to standard error.
			pv := a.preflightView()
			if a.json {
				pv = &views.PreflightJSON{Out: a.stderr}
			}
			// The plan ends with the relaxed security settings among its warnings: not twice.
			err = pv.Findings(slices.DeleteFunc(slices.Clone(findings), func(f preflight.Finding) bool { return f.ID == preflight.RelaxedID }), false)
		}
		if err == nil && preflight.HasErrors(findings) {
			err = errors.New("preflight checks failed on some hosts (kforge preflight shows them all; --ignore-preflight ID,… to go on anyway)")
		}
		if err != nil {
			p.close()
			return nil, err
		}
	}
	if p.want, p.pkiChanges, err = s.desired(destroy); err == nil && !destroy {
		err = skew.Check(p.want, s.state.Versions, a.allowDowngrade)
	}
	if err == nil {
		p.plan, err = s.makePlan(ctx, p.want)
	}
	if err == nil && !destroy {
		p.rotation, err = s.store.Rotation()
	}
	if err == nil {
		p.plan.Warnings = pki.Warnings(p.pkiChanges)
		for _, r := range s.cluster.Security.Relaxations() {
			p.plan.Warnings = append(p.plan.Warnings, r.String())
		}
		if p.rotation != nil {
			p.plan.Warnings = append(p.plan.Warnings, p.rotation.Describe())
		}
		p.plan.Rollout = s.engine(defaultParallelism, defaultMaxUnavailable, destroy).Stages(p.plan)
	}
	if err == nil && destroy && a.purgeData {
		p.purge(ctx)
	}
	if err != nil {
		p.close()
		return nil, err
	}
	return p, nil
}

// purge adds the deletion of the data directories that exist on each host to a destroy plan, so that the plan
// shows them before anything happens.
func (p *planned) purge(ctx context.Context) {
	for i, hp := range p.plan.Hosts {
		r, ok := p.runners[hp.Host]
		if !ok {
			continue
		}
		const sysNet = "/sys/class/net/"
		paths := slices.Clone(apply.DataDirs)
		for _, l := range apply.PodLinks {
			paths = append(paths, sysNet+l)
		}
		infos, err := r.Stat(ctx, paths)
		if err != nil {
			continue // the plan goes on without them; the host's error shows in its other steps
		}
		for _, fi := range infos {
			link, isLink := strings.CutPrefix(fi.Path, sysNet)
			switch {
			case !fi.Exists:
			case isLink:
				p.plan.Hosts[i].Changes = append(p.plan.Hosts[i].Changes, plan.Change{ID: string(apply.LinkKind) + ":" + link,
					Kind: string(apply.LinkKind), Name: link, Action: plan.Delete, Reasons: []string{"--purge-data: the pod network's interface"}})
			default:
				p.plan.Hosts[i].Changes = append(p.plan.Hosts[i].Changes, plan.Change{ID: string(apply.DataKind) + ":" + fi.Path,
					Kind: string(apply.DataKind), Name: fi.Path, Action: plan.Delete, Reasons: []string{"--purge-data: everything in it is deleted"}})
			}
		}
	}
}

// desired builds what each host should have; destroy wants nothing anywhere.
func (s *session) desired(destroy bool) (map[string][]resource.Resource, []pki.Change, error) {
	if destroy {
		return map[string][]resource.Resource{}, nil, nil
	}
	if err := s.samePlugin(); err != nil {
		return nil, nil, err
	}
	changes, err := pki.Plan(pki.Catalog(s.cluster), s.store, s.cluster.PKI, time.Now())
	if err != nil {
		return nil, nil, err
	}
	cidrs, err := desired.AssignPodCIDRs(s.cluster, s.state.PodCIDRs)
	if err != nil {
		return nil, nil, err
	}
	s.podCIDRs = cidrs
	want, err := desired.Build(desired.Input{Cluster: s.cluster, Store: s.store, PKIChanges: changes, Artifacts: s.set, PodCIDRs: cidrs})
	return want, changes, err
}

// samePlugin refuses a configuration whose pod-network plugin differs from the one the cluster's nodes run.
func (s *session) samePlugin() error {
	want := s.cluster.Network.Plugin
	for _, host := range slices.Sorted(maps.Keys(s.state.Hosts)) {
		have := desired.PluginOf(s.state.Hosts[host])
		if have == "" || have == want {
			continue
		}
		where := ""
		if r := s.cluster.Network.PluginRange; r.Filename != "" {
			where = fmt.Sprintf("%s:%d:%d: ", r.Filename, r.Start.Line, r.Start.Column)
		}
		return fmt.Errorf("%snetwork plugin %q: this cluster's pods are networked by %q (host %s runs it), and kforge does not switch "+
			"a running cluster's plugin (the pods keep the old one's addresses and routes, and each plugin leaves interfaces and "+
			"firewall rules the other does not know): keep plugin = %q, or destroy the cluster and apply it anew", where, want, have, host, have)
	}
	return nil
}

func (s *session) makePlan(ctx context.Context, want map[string][]resource.Resource) (*plan.Plan, error) {
	var hosts []string
	for _, h := range s.cluster.Hosts {
		hosts = append(hosts, h.Name)
	}
	p, err := planner.Make(ctx, planner.Input{Cluster: s.cluster.Name, Hosts: hosts, Desired: want, Runners: s.runners, State: s.state,
		Parallelism: readParallelism})
	if err != nil {
		return nil, err
	}
	// A node an earlier apply drained and did not uncordon (it was killed, or a step failed) is uncordoned by
	// this one, once its host's other changes are made.
	for i, hp := range p.Hosts {
		if s.state.Drained[hp.Host] {
			p.Hosts[i].Changes = append(p.Hosts[i].Changes, plan.Change{ID: apply.NodeKind + ":" + hp.Host, Kind: apply.NodeKind, Name: hp.Host,
				Action: plan.Update, Reasons: []string{"uncordon: an earlier apply drained it and did not finish"}})
		}
	}
	return p, nil
}

// disruptive are the binaries whose replacement disrupts a node's pods: its node is drained first.
var disruptive = map[string]bool{"/usr/local/bin/kubelet": true, "/usr/local/bin/containerd": true,
	"/usr/local/bin/containerd-shim-runc-v2": true, "/usr/local/sbin/runc": true}

// disrupts says whether a host's plan replaces what runs its pods (an upgrade): not a first install, which has
// no pods yet, nor a restart for a new configuration, which pods outlive.
func disrupts(hp plan.HostPlan) bool {
	for _, c := range hp.Changes {
		if c.Kind == string(resource.Binary) && disruptive[c.Name] && (c.Action == plan.Update || c.Action == plan.Replace) {
			return true
		}
	}
	return false
}

// The defaults of apply's --parallelism and --max-unavailable, and the order a plan shows.
const (
	defaultParallelism    = 10
	defaultMaxUnavailable = 1
)

// engine is what applies a plan to the session's hosts, draining nodes through the control plane when their
// kubelet or container runtime is replaced.
func (s *session) engine(parallelism, maxUnavailable int, destroy bool) *apply.Engine {
	e := &apply.Engine{Runners: s.runners, State: s.state, Store: s.backend, Parallelism: parallelism,
		Phases: phases(s.cluster), MaxUnavailable: maxUnavailable}
	if cp := s.controlPlaneRunner(); cp != nil && !destroy {
		e.Drainer, e.Disrupts = &ready.Drainer{CP: cp, Nodes: s.runners}, disrupts
	}
	return e
}

// phases: etcd members first, then the API servers, then everything else (the cluster's start order); the
// first two restart one host at a time.
func phases(c *config.Cluster) []apply.Phase {
	var etcd, cp []string
	for _, h := range c.Hosts {
		switch {
		case h.Has(config.RoleEtcd):
			etcd = append(etcd, h.Name)
		case h.Has(config.RoleControlPlane):
			cp = append(cp, h.Name)
		}
	}
	return []apply.Phase{{Name: "etcd hosts", Hosts: etcd, Rolling: true}, {Name: "control-plane hosts", Hosts: cp, Rolling: true}}
}

func (a *app) planCmd() *cobra.Command {
	var out string
	var detailed bool
	cmd := &cobra.Command{
		Use:   "plan",
		Short: "Show what apply would change on every host; change nothing",
		Long: `Reads every host's current state (one SSH command per host) and shows each file, directory, unit and
certificate that apply would create, change, restart or remove. Exit codes: 0 success, 1 error; with
--detailed-exitcode 0 no changes, 2 changes.`,
		Args: cobra.NoArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			pl, err := a.planNow(c.Context(), "plan", false)
			if err != nil {
				return err
			}
			defer pl.close()
			p := pl.plan
			if out != "" {
				b, err := plan.JSON(p)
				if err != nil {
					return err
				}
				if err := atomicfile.Write(out, b, 0o600); err != nil {
					return fmt.Errorf("save plan: %w", err)
				}
			}
			if err := pl.view.Plan(p); err != nil {
				return err
			}
			if detailed && !p.Empty() {
				return exitCode(exitChanges)
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&out, "out", "", "save the plan to FILE, for kforge apply FILE")
	cmd.Flags().BoolVar(&detailed, "detailed-exitcode", false, "exit 2 when there are changes, 0 when there are none")
	return cmd
}

func (a *app) showCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "show FILE",
		Short: "Show a saved plan",
		Args:  cobra.ExactArgs(1),
		RunE: func(_ *cobra.Command, args []string) error {
			data, err := os.ReadFile(args[0])
			if err != nil {
				return err
			}
			p, err := plan.Read(data)
			if err != nil {
				return fmt.Errorf("%s: %w", args[0], err)
			}
			return a.planView().Plan(p)
		},
	}
}

func (a *app) applyCmd() *cobra.Command {
	var autoApprove bool
	var parallelism, maxUnavailable int
	cmd := &cobra.Command{
		Use:   "apply [FILE]",
		Short: "Make the hosts match the configuration: plan, confirm, apply (or apply a saved plan)",
		Long: `Without FILE, apply plans, shows the plan and asks for confirmation (on a terminal; elsewhere it needs
--auto-approve). With FILE (from plan -out), it applies that plan if nothing changed since it was made — the
hosts, the state and the configuration — and refuses it, naming what changed, otherwise.`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(c *cobra.Command, args []string) error {
			file := ""
			if len(args) == 1 {
				file = args[0]
			}
			return a.runApply(c.Context(), file, autoApprove, parallelism, maxUnavailable, false)
		},
	}
	cmd.Flags().BoolVar(&autoApprove, "auto-approve", false, "apply without asking")
	cmd.Flags().IntVar(&parallelism, "parallelism", defaultParallelism, "hosts worked on at once")
	cmd.Flags().IntVar(&maxUnavailable, "max-unavailable", defaultMaxUnavailable, "nodes drained at once when their kubelet or container runtime is replaced")
	return cmd
}

func (a *app) destroyCmd() *cobra.Command {
	var autoApprove, purge bool
	var parallelism int
	cmd := &cobra.Command{
		Use:   "destroy",
		Short: "Remove everything kforge placed on the hosts (shown first, like any plan)",
		Args:  cobra.NoArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			a.purgeData = purge
			return a.runApply(c.Context(), "", autoApprove, parallelism, defaultMaxUnavailable, true)
		},
	}
	cmd.Flags().BoolVar(&autoApprove, "auto-approve", false, "destroy without asking")
	cmd.Flags().BoolVar(&purge, "purge-data", false, "also delete the data directories of etcd, containerd and the kubelet (the cluster's data is lost)")
	cmd.Flags().IntVar(&parallelism, "parallelism", defaultParallelism, "hosts worked on at once")
	return cmd
}

func (a *app) forceUnlockCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "force-unlock",
		Short: "Remove the state lock of a kforge that is gone (shows who held it)",
		Args:  cobra.NoArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			be, err := a.backendOnly(c.Context())
			if err != nil {
				return err
			}
			defer be.Close()
			info, err := be.ForceUnlock(c.Context())
			if err != nil {
				return err
			}
			// A damaged lock names no PID; kill(0, 0) would ask about this process group instead. A PID is only
			// worth asking about on the machine that holder ran on.
			host, _ := os.Hostname()
			if info.PID > 0 && info.Hostname == host && syscall.Kill(info.PID, 0) == nil {
				fmt.Fprintf(a.stderr, "Warning: PID %d still runs; if it is that kforge, it may still change hosts.\n", info.PID)
			}
			_, err = fmt.Fprintf(a.stdout, "Lock removed from %s (it was held by %s).\n", be.Name(), info)
			return err
		},
	}
}

// runApply plans (or reads a saved plan), confirms, issues the PKI the plan needs, and applies.
func (a *app) runApply(ctx context.Context, file string, autoApprove bool, parallelism, maxUnavailable int, destroy bool) error {
	ctx, stop := signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
	defer stop()
	pl, err := a.planNow(ctx, "apply", destroy)
	if err != nil {
		return err
	}
	defer pl.close()
	ctx, lost := whileLocked(ctx, pl.lock)
	defer lost(nil)
	s, p, want := pl.session, pl.plan, pl.want
	if v, ok := s.view.(*views.PlanJSON); ok {
		v.Stream = true
	}
	if file != "" {
		saved, err := readPlan(file)
		if err != nil {
			return err
		}
		if err := stale(saved, p); err != nil {
			return fmt.Errorf("the saved plan %s is stale: %w; run kforge plan again", file, err)
		}
		autoApprove = true // a saved plan was reviewed when it was made
	}
	e := s.engine(parallelism, maxUnavailable, destroy)
	p.Rollout = e.Stages(p)
	if err := s.view.Plan(p); err != nil {
		return err
	}
	if p.Empty() && pl.rotation == nil {
		return nil
	}
	if !autoApprove && !p.Empty() {
		ok, err := a.confirm("Apply these changes?", "review the plan and run kforge apply --auto-approve (or apply a saved plan)")
		if err != nil {
			return err
		}
		if !ok {
			return errors.New("apply cancelled")
		}
	}
	start := time.Now()
	if !destroy {
		// What the plan shows as made "at apply" (certificates, the encryption config) is made now, and the files
		// made from it become concrete.
		if err := pki.Apply(s.store, pki.CFSSL{}, pl.pkiChanges, s.cluster.PKI); err != nil {
			return err
		}
		if _, err := pki.EnsureEncryptionConfig(s.store, s.cluster.SecretsEncryption, time.Now()); err != nil {
			return err
		}
		if _, err := pki.WriteKubeconfigs(s.store, s.cluster); err != nil {
			return err
		}
		// Kept before any host gets them: a run that dies later must not leave hosts with certificates (or a
		// CA) that the backend does not know.
		if err := syncFiles(ctx, s.backend); err != nil {
			return err
		}
		if want, _, err = s.desired(false); err != nil {
			return err
		}
	}
	if !destroy {
		s.remember()
	}
	e.Events = s.view.Event
	if err := e.Apply(ctx, p, want); err != nil {
		if cause := context.Cause(ctx); errors.Is(cause, errLockLost) {
			return fmt.Errorf("%w (%s): %v", cause, s.backend.Name(), err)
		}
		return err
	}
	if err := s.view.Applied(p.Summary(), time.Since(start)); err != nil || destroy {
		return err
	}
	if s.set != nil {
		if err := s.waitReady(ctx); err != nil {
			return err
		}
	}
	if pl.rotation == nil {
		return nil
	}
	if err := s.advanceRotation(ctx, pl.rotation); err != nil {
		return err
	}
	return syncFiles(ctx, s.backend)
}

// advanceRotation records that every host has the rotation's current step. After step 1 (every host trusts
// both CAs), cluster DNS restarts, once its namespace's kube-root-ca.crt holds both, so that its pods trust the
// API servers' new certificates of step 2.
func (s *session) advanceRotation(ctx context.Context, r *pki.Rotation) error {
	if r.Rotating(pki.ClusterCA) == pki.StepTrust && s.cluster.DNS.Enabled && s.set != nil {
		if cp := s.controlPlaneRunner(); cp != nil {
			trust, err := s.store.Trust(pki.ClusterCA)
			if err != nil {
				return err
			}
			if err := ready.RestartTrusting(ctx, cp, dnsDeployment, trust, dnsAvailableTimeout, 2*time.Second); err != nil {
				return err
			}
			if _, err := ready.WaitAvailable(ctx, cp, dnsDeployment, dnsAvailableTimeout, 2*time.Second); err != nil {
				return err
			}
		}
	}
	next, err := s.store.AdvanceRotation()
	if err != nil {
		return err
	}
	s.view.Note(rotationNote(r, next))
	return nil
}

// rotationNote says what an apply did of a CA rotation, and what comes next.
func rotationNote(was, now *pki.Rotation) string {
	cas := strings.Join(was.CAs, ", ")
	if now != nil {
		return "CA rotation of " + cas + ": every host trusts the old and the new CAs. Restart the pods of yours that talk to the API server, then apply again: it re-issues every certificate with the new CAs."
	}
	return "CA rotation of " + cas + ": every certificate is signed by the new CAs, which replaced the old ones in the state directory. Apply again to remove the old CAs from the hosts."
}

// nodesReadyTimeout bounds the wait for nodes after an apply: a node's first start pulls nothing (the sandbox
// image is imported) and takes seconds; minutes mean something is wrong, and the error says what.
const nodesReadyTimeout = 3 * time.Minute

// controlPlaneRunner is the connection to the first control-plane host, where kubectl has admin.conf.
func (s *session) controlPlaneRunner() remote.Runner {
	for _, h := range s.cluster.Hosts {
		if r, ok := s.runners[h.Name]; ok && h.Has(config.RoleControlPlane) {
			return r
		}
	}
	return nil
}

// waitReady waits until every node of the configuration is Ready, asking a control-plane host.
func (s *session) waitReady(ctx context.Context) error {
	var nodes []string
	cp := s.controlPlaneRunner()
	for _, h := range s.cluster.Hosts {
		if h.RunsKubelet() {
			nodes = append(nodes, h.Name)
		}
	}
	if cp == nil || len(nodes) == 0 {
		return nil
	}
	start := time.Now()
	if err := ready.Wait(ctx, cp, s.runners, nodes, nodesReadyTimeout, 2*time.Second); err != nil {
		return err
	}
	if err := s.view.NodesReady(len(nodes), time.Since(start)); err != nil || !s.cluster.DNS.Enabled {
		return err
	}
	start = time.Now()
	n, err := ready.WaitAvailable(ctx, cp, dnsDeployment, dnsAvailableTimeout, 2*time.Second)
	if err != nil {
		return err
	}
	return s.view.AddonAvailable("dns", n, time.Since(start))
}

// dnsDeployment is the cluster DNS add-on's Deployment (templates/files/coredns.yaml.tmpl).
var dnsDeployment = ready.Deployment{Namespace: "kube-system", Name: "coredns", Selector: "k8s-app=kube-dns"}

// dnsAvailableTimeout bounds the wait for cluster DNS once the nodes are Ready: its image is imported or pulled,
// and CoreDNS is ready seconds after it starts.
const dnsAvailableTimeout = 3 * time.Minute

func readPlan(file string) (*plan.Plan, error) {
	data, err := os.ReadFile(file)
	if err != nil {
		return nil, err
	}
	p, err := plan.Read(data)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", file, err)
	}
	return p, nil
}

// stale compares a saved plan with one made now: same state, same hosts as read, same changes.
func stale(saved, now *plan.Plan) error {
	if saved.State != now.State {
		return fmt.Errorf("the state changed since the plan (lineage %q serial %d, now %q serial %d)",
			saved.State.Lineage, saved.State.Serial, now.State.Lineage, now.State.Serial)
	}
	digests := map[string]string{}
	for _, h := range saved.Hosts {
		digests[h.Host] = h.ObservedDigest
	}
	var changed []string
	for _, h := range now.Hosts {
		if d, ok := digests[h.Host]; !ok || d != h.ObservedDigest {
			changed = append(changed, h.Host)
		}
	}
	if len(changed) > 0 || len(saved.Hosts) != len(now.Hosts) {
		return fmt.Errorf("hosts changed since the plan: %s", strings.Join(changed, ", "))
	}
	a, _ := plan.JSON(&plan.Plan{Hosts: saved.Hosts})
	b, _ := plan.JSON(&plan.Plan{Hosts: now.Hosts})
	if !bytes.Equal(a, b) {
		return errors.New("the configuration changed since the plan")
	}
	return nil
}

// confirm asks question on the terminal; without one it refuses, saying what to do instead (orElse), so CI
// never hangs on a prompt.
func (a *app) confirm(question, orElse string) (bool, error) {
	f, ok := a.stdin.(*os.File)
	if !ok || !term.IsTerminal(int(f.Fd())) {
		return false, errors.New("no terminal to ask for confirmation: " + orElse)
	}
	fmt.Fprintf(a.stderr, "\n%s Only 'yes' is accepted: ", question)
	line, err := bufio.NewReader(f).ReadString('\n')
	if err != nil {
		return false, err
	}
	return strings.TrimSpace(line) == "yes", nil
}
