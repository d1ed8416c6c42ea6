package main

import (
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/netip"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/kforge/kforge/cmd/kforge/internal/views"
	"github.com/kforge/kforge/config"
	"github.com/kforge/kforge/internal/atomicfile"
	"github.com/kforge/kforge/provision/etcdsnapshot"
	"github.com/kforge/kforge/provision/remote"
	"github.com/kforge/kforge/provision/ssh"
)

func (a *app) etcdCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "etcd",
		Short: "The cluster's etcd: snapshots to this machine, and a restore of the whole cluster from one",
	}
	snapshot := &cobra.Command{
		Use:   "snapshot",
		Short: "Save a snapshot of etcd, or restore every member from one",
	}
	save := &cobra.Command{
		Use:   "save [FILE]",
		Short: "Take a snapshot from a healthy member and write it here (0600), with its sha256 in FILE.sha256",
		Long: `Asks each etcd member in turn until one is healthy (it serves and the cluster has quorum), has it write a
snapshot on its host, and streams that here over SSH. FILE defaults to snapshots/CLUSTER-TIMESTAMP.db in the
state directory (0700); an existing FILE is never overwritten. FILE.sha256 holds the digest in sha256sum's
format (sha256sum -c FILE.sha256 checks it), and restore checks it too.`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(c *cobra.Command, args []string) error {
			file := ""
			if len(args) == 1 {
				file = args[0]
			}
			return a.etcdSnapshotSave(c.Context(), file)
		},
	}
	var autoApprove bool
	var timeout time.Duration
	restore := &cobra.Command{
		Use:   "restore FILE",
		Short: "Rebuild the whole etcd cluster from a snapshot: shows the steps, asks, then restores every member",
		Long: `Restores every etcd member from FILE (checked against FILE.sha256 when it is there): the control plane and
etcd stop, each member's data directory is set aside (kept) and made anew from the snapshot with a new cluster
token and a revision bumped past anything clients saw, then etcd, the control plane and the kubelets start
again. Everything the cluster stored after the snapshot is lost. Asks for confirmation on a terminal;
elsewhere it needs --auto-approve.`,
		Args: cobra.ExactArgs(1),
		RunE: func(c *cobra.Command, args []string) error {
			return a.etcdSnapshotRestore(c.Context(), args[0], autoApprove, timeout)
		},
	}
	restore.Flags().BoolVar(&autoApprove, "auto-approve", false, "restore without asking")
	restore.Flags().DurationVar(&timeout, "timeout", 3*time.Minute, "how long etcd and the API servers may take to be healthy again")
	snapshot.AddCommand(save, restore)
	cmd.AddCommand(snapshot)
	return cmd
}

func (a *app) etcdView() views.Etcd {
	if a.json {
		return &views.EtcdJSON{Out: a.stdout}
	}
	return &views.EtcdHuman{Out: a.stdout, Err: a.stderr}
}

// etcdSession is a command's hold on the cluster's etcd: the configuration, connections to the hosts it picked,
// and the members.
type etcdSession struct {
	*hold
	cluster *config.Cluster
	runners map[string]remote.Runner
	members []etcdsnapshot.Member
	clients []*ssh.Client
}

func (s *etcdSession) close() {
	for _, c := range s.clients {
		if c != nil {
			c.Close()
		}
	}
	s.release()
}

// etcdSession loads the configuration and connects to the hosts pick chooses (the etcd members among them).
func (a *app) etcdSession(ctx context.Context, pick func(config.Host) bool, operation string) (*etcdSession, error) {
	cluster, err := a.loadCluster(ctx, a.configPath)
	if err != nil {
		return nil, err
	}
	h, err := a.holdBackend(ctx, cluster, operation)
	if err != nil {
		return nil, err
	}
	var targets []ssh.Target
	for _, h := range cluster.Hosts {
		if pick(h) || h.Has(config.RoleEtcd) {
			targets = append(targets, ssh.TargetFor(h))
		}
	}
	warn := func(host, msg string) { fmt.Fprintf(a.stderr, "Warning: %s: %s\n", host, msg) }
	s := &etcdSession{hold: h, cluster: cluster, runners: map[string]remote.Runner{}}
	files, err := h.backend.Files(ctx)
	if err != nil {
		s.close()
		return nil, err
	}
	s.clients, err = a.connect(ctx, files, targets, warn)
	if err != nil {
		s.close()
		return nil, err
	}
	for i, c := range s.clients {
		s.runners[targets[i].Name] = c
	}
	if s.members, err = etcdMembers(cluster, s.runners); err != nil {
		s.close()
		return nil, err
	}
	return s, nil
}

// etcdMembers lists the members with the address they serve peers on, as the etcd units do.
func etcdMembers(cluster *config.Cluster, runners map[string]remote.Runner) ([]etcdsnapshot.Member, error) {
	var out []etcdsnapshot.Member
	for _, h := range cluster.HostsWith(config.RoleEtcd) {
		ip, err := netip.ParseAddr(h.ClusterAddress())
		if err != nil {
			return nil, fmt.Errorf("etcd member %s needs an IP address (%q is a name): set internal_address", h.Name, h.ClusterAddress())
		}
		out = append(out, etcdsnapshot.Member{Name: h.Name, IP: ip.String(), Runner: runners[h.Name]})
	}
	if len(out) == 0 {
		return nil, errors.New("the configuration has no host with the etcd role")
	}
	return out, nil
}

func (a *app) etcdSnapshotSave(ctx context.Context, file string) error {
	ctx, stop := signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
	defer stop()
	s, err := a.etcdSession(ctx, func(config.Host) bool { return false }, "")
	if err != nil {
		return err
	}
	defer s.close()
	cluster := s.cluster
	if file == "" {
		dir := filepath.Join(a.statePath(a.configPath), "snapshots")
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return err
		}
		file = filepath.Join(dir, cluster.Name+"-"+time.Now().UTC().Format("20060102T150405Z")+".db")
	}
	if _, err := os.Lstat(file); err == nil {
		return fmt.Errorf("%s exists: kforge never overwrites a snapshot (name another file)", file)
	}
	// Written beside FILE under another name, synced, then renamed: FILE is whole or absent.
	tmp, err := os.CreateTemp(filepath.Dir(file), "."+filepath.Base(file)+".*.partial")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if err := tmp.Chmod(0o600); err != nil {
		tmp.Close()
		return err
	}
	w := bufio.NewWriterSize(tmp, 1<<20)
	snap, err := etcdsnapshot.Save(ctx, s.members, w)
	if err == nil {
		err = w.Flush()
	}
	if err == nil {
		err = tmp.Sync()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return err
	}
	if err := os.Link(tmp.Name(), file); err != nil { // unlike a rename, never replaces a FILE made meanwhile
		return err
	}
	sumFile := file + ".sha256"
	if err := atomicfile.Write(sumFile, []byte(snap.SHA256+"  "+filepath.Base(file)+"\n"), 0o600); err != nil {
		return err
	}
	return a.etcdView().Saved(views.SnapshotSaved{Cluster: cluster.Name, File: file, SumFile: sumFile, Snapshot: snap})
}

func (a *app) etcdSnapshotRestore(ctx context.Context, file string, autoApprove bool, timeout time.Duration) error {
	ctx, stop := signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
	defer stop()
	sum, size, err := checkSnapshotFile(file)
	if err != nil {
		return err
	}
	s, err := a.etcdSession(ctx, func(h config.Host) bool { return h.Has(config.RoleControlPlane) || h.RunsKubelet() }, "etcd snapshot restore")
	if err != nil {
		return err
	}
	defer s.close()
	cluster := s.cluster
	in := etcdsnapshot.RestoreInput{Cluster: cluster.Name, File: file, SHA256: sum, Size: size, Members: s.members,
		APIPort: cluster.APIServer.Port, Now: time.Now()}
	for _, h := range cluster.Hosts {
		if h.Has(config.RoleControlPlane) {
			in.ControlPlane = append(in.ControlPlane, h.Name)
		}
		if h.RunsKubelet() {
			in.Nodes = append(in.Nodes, h.Name)
		}
	}
	p, err := etcdsnapshot.PlanRestore(in)
	if err != nil {
		return err
	}
	view := a.etcdView()
	if err := view.RestorePlan(p); err != nil {
		return err
	}
	if !autoApprove {
		ok, err := a.confirm("Restore etcd from this snapshot?", "review the steps and run kforge etcd snapshot restore --auto-approve")
		if err != nil {
			return err
		}
		if !ok {
			return errors.New("restore cancelled")
		}
	}
	start := time.Now()
	if err := etcdsnapshot.Restore(ctx, p, s.runners, view.Step, timeout); err != nil {
		return err
	}
	return view.Restored(p, time.Since(start))
}

// checkSnapshotFile reads a snapshot's digest and size, and compares the digest with FILE.sha256 when there is
// one: a snapshot damaged since it was saved is refused before any host is touched.
func checkSnapshotFile(file string) (sum string, size int64, err error) {
	f, err := os.Open(file)
	if err != nil {
		return "", 0, err
	}
	defer f.Close()
	h := sha256.New()
	if size, err = io.Copy(h, f); err != nil {
		return "", 0, fmt.Errorf("%s: %w", file, err)
	}
	sum = hex.EncodeToString(h.Sum(nil))
	if size == 0 {
		return "", 0, fmt.Errorf("%s is empty: not an etcd snapshot", file)
	}
	recorded, err := os.ReadFile(file + ".sha256")
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return sum, size, nil
	case err != nil:
		return "", 0, err
	}
	want, _, _ := strings.Cut(strings.TrimSpace(string(recorded)), " ")
	if want != sum {
		return "", 0, fmt.Errorf("%s has sha256 %s, but %s.sha256 records %s: the snapshot changed since it was saved", file, sum, file, want)
	}
	return sum, size, nil
}
