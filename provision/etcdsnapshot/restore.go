package etcdsnapshot

import (
	"context"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/kforge/kforge/internal/bytesize"
	"github.com/kforge/kforge/provision/desired"
	"github.com/kforge/kforge/provision/remote"
)

// Where a restore puts the snapshot on each member, and what it makes of the old data directory.
const (
	restoreDir   = "/var/lib/kforge/etcd-restore"
	restoreFile  = restoreDir + "/snapshot.db"
	etcdDataDir  = "/var/lib/etcd"
	etcdutlPath  = "/usr/local/bin/etcdutl"
	revisionBump = 1000000000
)

// RestoreInput is what a restore works from: the snapshot, the members (all restored from it), and the hosts of
// the components that use etcd.
type RestoreInput struct {
	Cluster      string
	File         string // the snapshot on this machine
	SHA256       string
	Size         int64
	Members      []Member
	ControlPlane []string // hosts running the API server, controller-manager and scheduler
	Nodes        []string // hosts running a kubelet
	APIPort      int
	Now          time.Time
}

// RestorePlan is a restore, step by step: a value, shown before anything changes and then carried out.
type RestorePlan struct {
	File   string `json:"file"`
	SHA256 string `json:"sha256"`
	Size   int64  `json:"size"`
	// Token is the restored cluster's: a new one, so that no member of the old cluster is taken for one of it.
	Token string `json:"cluster_token"`
	// Aside is where each member's data directory goes before the restore (kept: the way back).
	Aside string `json:"old_data_dir"`
	Steps []Step `json:"steps"`
}

// Step is one action on some hosts, all at once.
type Step struct {
	Action string   `json:"action"`
	Hosts  []string `json:"hosts"`
	Detail string   `json:"detail"`

	upload  bool              // the step places the snapshot
	scripts map[string]string // by host
	wait    string            // a check polled on every host after the scripts
}

// PlanRestore lays out the restore: the snapshot to every member; the components that use etcd stopped, then
// etcd; each member's data directory set aside and made anew from the snapshot (a new cluster token, the
// revision bumped past anything clients saw, so that watches start over rather than miss changes); etcd
// started on every member at once (each waits for the others) until healthy; the control plane started until
// ready; every kubelet restarted, so that none keeps what it cached of the old state.
func PlanRestore(in RestoreInput) (RestorePlan, error) {
	if len(in.Members) == 0 {
		return RestorePlan{}, fmt.Errorf("the cluster has no etcd member to restore")
	}
	ts := in.Now.UTC().Format("20060102T150405Z")
	p := RestorePlan{File: in.File, SHA256: in.SHA256, Size: in.Size, Token: "kforge-" + in.Cluster + "-restore-" + ts,
		Aside: etcdDataDir + ".before-restore-" + ts}
	var members, initial []string
	for _, m := range in.Members {
		members = append(members, m.Name)
		initial = append(initial, fmt.Sprintf("%s=https://%s", m.Name, hostPort(m.IP, 2380)))
	}
	controllers := []string{"kube-scheduler.service", "kube-controller-manager.service", "kube-apiserver.service"}
	restore := map[string]string{}
	for _, m := range in.Members {
		// The new data directory is made beside the old one and swapped in by two renames: a restore cut short
		// never leaves the member without data, which etcd would take for a new, empty cluster.
		restore[m.Name] = fmt.Sprintf(`set -e
test -x %[1]s || { echo "%[1]s is missing: kforge apply installs it (with an artifact set that has bin/etcdutl)" >&2; exit 1; }
new=%[2]s.restoring
rm -rf "$new"
%[1]s snapshot restore %[4]s --data-dir "$new" --name %[5]s --initial-cluster %[6]s --initial-cluster-token %[7]s \
  --initial-advertise-peer-urls https://%[8]s --bump-revision %[9]d --mark-compacted >&2
chmod 700 "$new"
if [ -e %[2]s ]; then mv -T %[2]s %[3]s; fi
mv -T "$new" %[2]s
rm -rf %[10]s`, etcdutlPath, etcdDataDir, p.Aside, restoreFile, remote.ShellQuote(m.Name), remote.ShellQuote(strings.Join(initial, ",")),
			remote.ShellQuote(p.Token), hostPort(m.IP, 2380), revisionBump, restoreDir)
	}
	p.Steps = []Step{
		{Action: "upload the snapshot", Hosts: members, Detail: fmt.Sprintf("%s (%s, sha256 checked)", restoreFile, bytesize.String(in.Size)), upload: true},
		{Action: "stop the control plane", Hosts: in.ControlPlane, Detail: strings.Join(controllers, ", "),
			scripts: same(in.ControlPlane, "systemctl stop -- "+strings.Join(controllers, " "))},
		{Action: "stop etcd", Hosts: members, Detail: "etcd.service on every member", scripts: same(members, "systemctl stop -- etcd.service")},
		{Action: "restore", Hosts: members, Detail: fmt.Sprintf("etcdutl snapshot restore (new cluster token, revision +%d, compacted); %s moved to %s",
			revisionBump, etcdDataDir, p.Aside), scripts: restore},
		{Action: "start etcd", Hosts: members, Detail: "all at once, then wait until every member is healthy",
			scripts: same(members, "systemctl start --no-block -- etcd.service"), wait: desired.EtcdHealth},
		{Action: StartControlPlane, Hosts: in.ControlPlane, Detail: "then wait until every API server is ready",
			scripts: same(in.ControlPlane, "systemctl start -- "+strings.Join(reverse(controllers), " ")), wait: desired.APIServerHealth(in.APIPort)},
		{Action: "apply kforge's objects", Hosts: in.ControlPlane, Detail: "kforge-objects.service, stopped with the API server",
			scripts: same(in.ControlPlane, "if systemctl cat kforge-objects.service >/dev/null 2>&1; then systemctl start -- kforge-objects.service; fi")},
		{Action: "restart the kubelets", Hosts: in.Nodes, Detail: "kubelet.service, so that none keeps the state it had cached",
			scripts: same(in.Nodes, "systemctl restart -- kubelet.service")},
	}
	return p, nil
}

// StartControlPlane is the step after which the API serves again.
const StartControlPlane = "start the control plane"

// Progress hears of each step as it starts and ends (err nil when it worked).
type Progress func(step Step, done bool, err error)

// Restore carries out a plan. Runners has every host the plan names; the snapshot is read from plan.File and
// must still have plan.SHA256. A failed step stops the restore: the error names the host, the step and what the
// command said, and the old data directories are where the plan said.
func Restore(ctx context.Context, p RestorePlan, runners map[string]remote.Runner, progress Progress, timeout time.Duration) error {
	for _, s := range p.Steps {
		if len(s.Hosts) == 0 {
			continue
		}
		if progress != nil {
			progress(s, false, nil)
		}
		err := remote.ForEach(ctx, s.Hosts, len(s.Hosts), func(h string) string { return h }, s.Action, func(ctx context.Context, h string) error {
			r, ok := runners[h]
			if !ok {
				return fmt.Errorf("no connection to %s", h)
			}
			if s.upload {
				return upload(ctx, r, p)
			}
			if _, err := r.Run(ctx, remote.Command{Name: s.Action, Script: s.scripts[h], Sudo: true}); err != nil {
				return err
			}
			if s.wait == "" {
				return nil
			}
			return remote.Poll(ctx, r, remote.Command{Name: s.Action + ": health", Script: s.wait, Sudo: true, Timeout: 10 * time.Second}, timeout, time.Second)
		})
		if progress != nil {
			progress(s, true, err)
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// upload places the snapshot on a member, checked against the plan's digest on the way (Upload verifies it).
func upload(ctx context.Context, r remote.Runner, p RestorePlan) error {
	if _, err := r.Run(ctx, remote.Command{Name: "prepare the upload", Script: "install -d -m 0700 -- " + restoreDir, Sudo: true}); err != nil {
		return err
	}
	_, err := r.Upload(ctx, remote.File{Path: restoreFile, Mode: 0o600, SHA256: p.SHA256, Size: p.Size,
		Open: func() (io.ReadCloser, error) { return os.Open(p.File) }})
	return err
}

func same(hosts []string, script string) map[string]string {
	out := map[string]string{}
	for _, h := range hosts {
		out[h] = script
	}
	return out
}

func reverse(s []string) []string {
	out := make([]string, len(s))
	for i, v := range s {
		out[len(s)-1-i] = v
	}
	return out
}

func hostPort(ip string, port int) string {
	if strings.Contains(ip, ":") {
		return fmt.Sprintf("[%s]:%d", ip, port)
	}
	return fmt.Sprintf("%s:%d", ip, port)
}
