package etcdsnapshot

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/kforge/kforge/provision/remote"
)

// fakeHost answers commands by their name; it records what ran, in order, across hosts.
type fakeHost struct {
	name    string
	answer  func(cmd remote.Command) (remote.Result, error)
	log     *[]string
	mu      *sync.Mutex
	uploads map[string][]byte
}

func (f *fakeHost) Host() string { return f.name }
func (f *fakeHost) Run(_ context.Context, cmd remote.Command) (remote.Result, error) {
	f.mu.Lock()
	*f.log = append(*f.log, f.name+": "+cmd.Name)
	f.mu.Unlock()
	if f.answer == nil {
		return remote.Result{}, nil
	}
	return f.answer(cmd)
}
func (f *fakeHost) Stat(context.Context, []string) ([]remote.FileInfo, error) { return nil, nil }
func (f *fakeHost) ReadFile(context.Context, string) ([]byte, error)          { return nil, nil }
func (f *fakeHost) Upload(_ context.Context, file remote.File) (bool, error) {
	rc, err := file.Open()
	if err != nil {
		return false, err
	}
	defer rc.Close()
	data, err := io.ReadAll(rc)
	if err != nil {
		return false, err
	}
	sum := sha256.Sum256(data)
	if hex.EncodeToString(sum[:]) != file.SHA256 {
		return false, errors.New("digest mismatch")
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	*f.log = append(*f.log, f.name+": upload "+file.Path)
	f.uploads[file.Path] = data
	return true, nil
}
func (f *fakeHost) Close() error { return nil }

type fakeCluster struct {
	log   []string
	mu    sync.Mutex
	hosts map[string]*fakeHost
}

func newFakeCluster(names ...string) *fakeCluster {
	c := &fakeCluster{hosts: map[string]*fakeHost{}}
	for _, n := range names {
		c.hosts[n] = &fakeHost{name: n, log: &c.log, mu: &c.mu, uploads: map[string][]byte{}}
	}
	return c
}

func (c *fakeCluster) runners() map[string]remote.Runner {
	out := map[string]remote.Runner{}
	for n, h := range c.hosts {
		out[n] = h
	}
	return out
}

// statusJSON is what `etcdctl endpoint status -w json` prints for one endpoint (the fields read here).
const statusJSON = `[{"Endpoint":"https://127.0.0.1:2379","Status":{"header":{"cluster_id":1,"member_id":2,"revision":4242,"raft_term":3},"version":"3.7.3","dbSize":20480}}]`

func TestSaveTakesTheFirstHealthyMember(t *testing.T) {
	c := newFakeCluster("etcd-1", "etcd-2")
	c.hosts["etcd-1"].answer = func(cmd remote.Command) (remote.Result, error) {
		return remote.Result{ExitStatus: 1}, &remote.ExitError{Command: cmd.Name, Status: 1, Stderr: "context deadline exceeded"}
	}
	snapshot := bytes.Repeat([]byte("bolt"), 5000)
	c.hosts["etcd-2"].answer = func(cmd remote.Command) (remote.Result, error) {
		switch cmd.Name {
		case "etcd health":
			if !strings.Contains(cmd.Script, "endpoint health") || !strings.Contains(cmd.Script, "endpoint status -w json") {
				t.Errorf("status script: %s", cmd.Script)
			}
			return remote.Result{Stdout: []byte(statusJSON)}, nil
		case "etcd snapshot save":
			if cmd.Stdout == nil || !cmd.Sudo || !strings.Contains(cmd.Script, `snapshot save "$d/snapshot.db" >&2`) {
				t.Errorf("save command: %+v", cmd)
			}
			cmd.Stdout.Write(snapshot)
		}
		return remote.Result{}, nil
	}
	members := []Member{{Name: "etcd-1", Runner: c.hosts["etcd-1"]}, {Name: "etcd-2", Runner: c.hosts["etcd-2"]}}
	var out bytes.Buffer
	got, err := Save(context.Background(), members, &out)
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(snapshot)
	if got.Member != "etcd-2" || got.Revision != 4242 || got.Size != int64(len(snapshot)) || got.SHA256 != hex.EncodeToString(sum[:]) ||
		!bytes.Equal(out.Bytes(), snapshot) || got.Taken.IsZero() {
		t.Errorf("snapshot %+v, %d bytes written", got, out.Len())
	}
	if strings.Join(c.log, "\n") != "etcd-1: etcd health\netcd-2: etcd health\netcd-2: etcd snapshot save" {
		t.Errorf("commands:\n%s", strings.Join(c.log, "\n"))
	}
}

func TestSaveWithoutAHealthyMemberSaysWhy(t *testing.T) {
	c := newFakeCluster("etcd-1", "etcd-2")
	for _, h := range c.hosts {
		h.answer = func(cmd remote.Command) (remote.Result, error) {
			return remote.Result{}, &remote.HostError{Host: h.name, Step: cmd.Name, Err: errors.New("connection refused")}
		}
	}
	_, err := Save(context.Background(), []Member{{Name: "etcd-1", Runner: c.hosts["etcd-1"]}, {Name: "etcd-2", Runner: c.hosts["etcd-2"]}}, io.Discard)
	if err == nil || !strings.Contains(err.Error(), "no etcd member is healthy") || !strings.Contains(err.Error(), "host etcd-1: etcd health: connection refused") ||
		!strings.Contains(err.Error(), "host etcd-2") {
		t.Errorf("error: %v", err)
	}
	// An empty snapshot is not a snapshot.
	c.hosts["etcd-1"].answer = func(cmd remote.Command) (remote.Result, error) {
		if cmd.Name == "etcd health" {
			return remote.Result{Stdout: []byte(statusJSON)}, nil
		}
		return remote.Result{}, nil
	}
	if _, err := Save(context.Background(), []Member{{Name: "etcd-1", Runner: c.hosts["etcd-1"]}}, io.Discard); err == nil || !strings.Contains(err.Error(), "empty") {
		t.Errorf("empty snapshot: %v", err)
	}
	if _, err := parseRevision([]byte("{}")); err == nil {
		t.Error("parseRevision took an object for an endpoint list")
	}
}

func restoreInput(t *testing.T) RestoreInput {
	t.Helper()
	file := filepath.Join(t.TempDir(), "snap.db")
	data := []byte("a snapshot")
	if err := os.WriteFile(file, data, 0o600); err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(data)
	return RestoreInput{Cluster: "prod", File: file, SHA256: hex.EncodeToString(sum[:]), Size: int64(len(data)),
		Members:      []Member{{Name: "cp-1", IP: "198.18.0.11"}, {Name: "cp-2", IP: "198.18.0.12"}, {Name: "cp-3", IP: "198.18.0.13"}},
		ControlPlane: []string{"cp-1", "cp-2", "cp-3"}, Nodes: []string{"cp-1", "cp-2", "cp-3", "worker-1"}, APIPort: 6443,
		Now: time.Date(2026, 12, 7, 4, 15, 0, 0, time.UTC)}
}

// TestRestorePlan: the steps in their order and on their hosts; each member is restored under its own name and
// address into the same new cluster, with a token of its own.
func TestRestorePlan(t *testing.T) {
	p, err := PlanRestore(restoreInput(t))
	if err != nil {
		t.Fatal(err)
	}
	var steps []string
	for _, s := range p.Steps {
		steps = append(steps, s.Action+" @ "+strings.Join(s.Hosts, ","))
	}
	want := []string{
		"upload the snapshot @ cp-1,cp-2,cp-3", "stop the control plane @ cp-1,cp-2,cp-3", "stop etcd @ cp-1,cp-2,cp-3",
		"restore @ cp-1,cp-2,cp-3", "start etcd @ cp-1,cp-2,cp-3", "start the control plane @ cp-1,cp-2,cp-3",
		"apply kforge's objects @ cp-1,cp-2,cp-3", "restart the kubelets @ cp-1,cp-2,cp-3,worker-1",
	}
	if !slices.Equal(steps, want) {
		t.Errorf("steps:\n%s\nwant:\n%s", strings.Join(steps, "\n"), strings.Join(want, "\n"))
	}
	if p.Token != "kforge-prod-restore-20261207T041500Z" || p.Aside != "/var/lib/etcd.before-restore-20261207T041500Z" {
		t.Errorf("token %q, aside %q", p.Token, p.Aside)
	}
	script := p.Steps[3].scripts["cp-2"]
	for _, s := range []string{
		"--name 'cp-2'",
		"--initial-cluster 'cp-1=https://198.18.0.11:2380,cp-2=https://198.18.0.12:2380,cp-3=https://198.18.0.13:2380'",
		"--initial-cluster-token 'kforge-prod-restore-20261207T041500Z'", "--initial-advertise-peer-urls https://198.18.0.12:2380",
		"--bump-revision 1000000000 --mark-compacted", "mv -T /var/lib/etcd /var/lib/etcd.before-restore-20261207T041500Z",
		`mv -T "$new" /var/lib/etcd`,
	} {
		if !strings.Contains(script, s) {
			t.Errorf("cp-2's restore script lacks %q:\n%s", s, script)
		}
	}
	// The new data is complete before the old moves: a restore cut short leaves etcd its data.
	if strings.Index(script, "snapshot restore") > strings.Index(script, "mv -T /var/lib/etcd ") {
		t.Errorf("the old data directory moves before the new one is made:\n%s", script)
	}
	if _, err := PlanRestore(RestoreInput{Cluster: "x"}); err == nil {
		t.Error("a plan without members")
	}
}

// TestRestoreRunsTheStepsInOrder: every host's commands of a step end before the next step starts; a health
// check is polled until it passes; the snapshot reaches every member whole.
func TestRestoreRunsTheStepsInOrder(t *testing.T) {
	in := restoreInput(t)
	c := newFakeCluster("cp-1", "cp-2", "cp-3", "worker-1")
	unhealthyOnce := map[string]bool{}
	for _, h := range c.hosts {
		h.answer = func(cmd remote.Command) (remote.Result, error) {
			if cmd.Name == "start etcd: health" {
				c.mu.Lock()
				defer c.mu.Unlock()
				if !unhealthyOnce[h.name] {
					unhealthyOnce[h.name] = true
					return remote.Result{}, errors.New("not yet")
				}
			}
			return remote.Result{}, nil
		}
	}
	p, err := PlanRestore(in)
	if err != nil {
		t.Fatal(err)
	}
	var events []string
	progress := func(s Step, done bool, err error) {
		if done {
			events = append(events, "done "+s.Action)
		}
	}
	if err := Restore(context.Background(), p, c.runners(), progress, 10*time.Second); err != nil {
		t.Fatal(err)
	}
	// The log's step names, in order, each once per host, steps not interleaved.
	var order []string
	for _, l := range c.log {
		_, name, _ := strings.Cut(l, ": ")
		if len(order) == 0 || order[len(order)-1] != name {
			order = append(order, name)
		}
	}
	want := []string{"prepare the upload", "upload /var/lib/kforge/etcd-restore/snapshot.db", "stop the control plane", "stop etcd", "restore",
		"start etcd", "start etcd: health", "start the control plane", "start the control plane: health", "apply kforge's objects", "restart the kubelets"}
	if got := dedupe(order); !slices.Equal(got, want) {
		t.Errorf("order:\n%s\nwant:\n%s\nlog:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"), strings.Join(c.log, "\n"))
	}
	for _, m := range []string{"cp-1", "cp-2", "cp-3"} {
		if string(c.hosts[m].uploads["/var/lib/kforge/etcd-restore/snapshot.db"]) != "a snapshot" {
			t.Errorf("%s did not get the snapshot", m)
		}
		if n := strings.Count(strings.Join(c.log, "\n"), m+": start etcd: health"); n != 2 {
			t.Errorf("%s: etcd's health asked %d times, want 2 (once failing)", m, n)
		}
	}
	if len(events) != 8 {
		t.Errorf("progress: %v", events)
	}
}

// dedupe drops the repeats of names that interleave across hosts within a step (uploads and their preparation
// run at once on every member).
func dedupe(names []string) []string {
	var out []string
	for _, n := range names {
		if !slices.Contains(out, n) {
			out = append(out, n)
		}
	}
	return out
}

func TestRestoreStopsAtAFailedStep(t *testing.T) {
	in := restoreInput(t)
	c := newFakeCluster("cp-1", "cp-2", "cp-3", "worker-1")
	c.hosts["cp-2"].answer = func(cmd remote.Command) (remote.Result, error) {
		if cmd.Name == "restore" {
			return remote.Result{ExitStatus: 1}, &remote.HostError{Host: "cp-2", Err: &remote.ExitError{Command: "restore", Status: 1, Stderr: "/usr/local/bin/etcdutl is missing"}}
		}
		return remote.Result{}, nil
	}
	p, _ := PlanRestore(in)
	err := Restore(context.Background(), p, c.runners(), nil, time.Second)
	if err == nil || !strings.Contains(err.Error(), "cp-2") || !strings.Contains(err.Error(), "etcdutl is missing") {
		t.Errorf("error: %v", err)
	}
	if strings.Contains(strings.Join(c.log, "\n"), "start etcd") {
		t.Errorf("went on after the failed step:\n%s", strings.Join(c.log, "\n"))
	}
	// A snapshot that changed since it was planned never reaches a host.
	c2 := newFakeCluster("cp-1", "cp-2", "cp-3", "worker-1")
	if err := os.WriteFile(in.File, []byte("another snapshot"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := Restore(context.Background(), p, c2.runners(), nil, time.Second); err == nil || strings.Contains(strings.Join(c2.log, "\n"), "stop") {
		t.Errorf("changed snapshot: %v\n%s", err, strings.Join(c2.log, "\n"))
	}
}
