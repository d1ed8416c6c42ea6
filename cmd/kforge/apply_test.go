package main

import (
	"bufio"
	"context"
	"crypto/sha256"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/kforge/kforge/internal/ociregistry"
	"github.com/kforge/kforge/pki"
	"github.com/kforge/kforge/providers/lab"
	"github.com/kforge/kforge/providers/lab/labtest"
	"github.com/kforge/kforge/provision/remote"
	"github.com/kforge/kforge/provision/ssh"
	"github.com/kforge/kforge/provision/state"
)

// The lab has a fourth host that only TestComponentsOnALab uses: the worker it adds and removes.
var labFixture = labtest.New("tcmd", 4)

// clusterHosts is how many of the lab's hosts a configuration lists unless a test says otherwise.
const clusterHosts = 3

func TestMain(m *testing.M) { os.Exit(labFixture.Main(m)) }

// labConfig writes a configuration for the test lab. Lab hosts have cgroup v1, which Kubernetes 1.37 runs on
// only when told to.
func labConfig(t *testing.T, l *lab.Lab) string {
	return labConfigWith(t, l, "kubelet {\n    fail_cgroup_v1 = false\n  }")
}

// labConfigWith adds extra inside the cluster block; the configuration installs no components (the tests of plan
// and apply mechanics need no Kubernetes binaries).
func labConfigWith(t *testing.T, l *lab.Lab, extra string) string {
	t.Helper()
	return labConfigFull(t, l, extra, noArtifacts)
}

const noArtifacts = "\nartifacts {\n  source = \"none\"\n}\n"

// labConfigFull adds extra inside the cluster block and topLevel after it; the hosts are the lab's first
// clusterHosts, listed as host blocks (the way a user lists machines).
func labConfigFull(t *testing.T, l *lab.Lab, extra, topLevel string) string {
	t.Helper()
	dir := t.TempDir()
	writeLabConfig(t, dir, l, clusterHosts, extra, topLevel)
	return dir
}

// writeLabConfig writes dir/cluster.hcl with the lab's first n hosts.
func writeLabConfig(t *testing.T, dir string, l *lab.Lab, n int, extra, topLevel string) {
	t.Helper()
	src := fmt.Sprintf(`cluster "lab" {
  pod_cidr     = "198.19.0.0/17"
  service_cidr = "198.19.128.0/20"
  %s
}
%s`, extra, topLevel)
	for _, b := range hostBlocks(t, l)[:n] {
		src += "\n" + b
	}
	if err := os.WriteFile(filepath.Join(dir, "cluster.hcl"), []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
}

// hostBlocks are the lab's hosts as the host blocks `kforge lab up` writes (host 1 the control plane and etcd,
// the others workers).
func hostBlocks(t *testing.T, l *lab.Lab) []string {
	t.Helper()
	blocks := strings.Split(lab.HostsHCL(l), "\nhost ")[1:]
	if len(blocks) != len(l.Hosts) {
		t.Fatalf("hosts of %s:\n%s", l.Name, lab.HostsHCL(l))
	}
	for i := range blocks {
		blocks[i] = "host " + blocks[i]
	}
	return blocks
}

func onHost(t *testing.T, l *lab.Lab, i int, script string) string {
	t.Helper()
	h := l.Hosts[i]
	c, err := (&ssh.Dialer{}).Dial(context.Background(), ssh.TargetFor(l.ConfigHost(h)))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	res, err := c.Run(context.Background(), remote.Command{Script: script})
	if err != nil {
		t.Fatalf("%s: %v", h.Name, err)
	}
	return strings.TrimSpace(string(res.Stdout))
}

// TestPlanApplyOnALab: plan shows the PKI to place, a saved plan applies, a second plan has no changes, a
// plan made stale by drift is refused, apply never prompts without a terminal, and destroy removes it all.
func TestPlanApplyOnALab(t *testing.T) {
	l := labFixture.Get(t)
	dir := labConfig(t, l)
	clean(t, l)

	r := kforge(t, nil, "", "-c", dir, "plan", "--detailed-exitcode", "-out", filepath.Join(dir, "first.plan"))
	if r.code != 2 || !strings.Contains(r.stdout, "+   file /etc/kubernetes/pki/ca.crt  (0600 root:root, certificate ca to issue at apply: new)") {
		t.Fatalf("first plan: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	if r := kforge(t, nil, "", "-c", dir, "apply"); r.code != 1 || !strings.Contains(r.stderr, "no terminal") {
		t.Errorf("apply without a terminal: exit %d %s", r.code, r.stderr)
	}
	r = kforge(t, nil, "", "-c", dir, "apply", filepath.Join(dir, "first.plan"))
	if r.code != 0 || !strings.Contains(r.stdout, "Apply complete") {
		t.Fatalf("apply: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	if got := onHost(t, l, 0, "stat -c '%a %U' /etc/kubernetes/pki/cluster-signing.key /etc/kubernetes/kubelet.conf; grep -q 'name: system:node:"+l.Hosts[0].Name+"$' /etc/kubernetes/kubelet.conf && echo own-identity"); got != "600 root\n600 root\nown-identity" {
		t.Errorf("control plane host:\n%s", got)
	}
	if got := onHost(t, l, 1, "ls /etc/kubernetes/pki"); got != "ca.crt" {
		t.Errorf("worker's pki: %q", got)
	}
	r = kforge(t, nil, "", "-c", dir, "plan", "--detailed-exitcode")
	if r.code != 0 || !strings.Contains(r.stdout, "No changes.") {
		t.Fatalf("second plan: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}

	// Drift after a plan was saved: the saved plan is refused, naming the host.
	onHost(t, l, 1, "chmod 0666 /etc/kubernetes/pki/ca.crt")
	r = kforge(t, nil, "", "-c", dir, "plan", "-out", filepath.Join(dir, "drift.plan"))
	if !strings.Contains(r.stdout, "mode 0666 -> 0600") {
		t.Fatalf("drift plan:\n%s", r.stdout)
	}
	onHost(t, l, 1, "chmod 0600 /etc/kubernetes/pki/ca.crt")
	r = kforge(t, nil, "", "-c", dir, "apply", filepath.Join(dir, "drift.plan"))
	if r.code != 1 || !strings.Contains(r.stderr, "stale") || !strings.Contains(r.stderr, l.Hosts[1].Name) {
		t.Errorf("stale plan: exit %d %s", r.code, r.stderr)
	}
	if r := kforge(t, nil, "", "-c", dir, "show", filepath.Join(dir, "drift.plan")); !strings.Contains(r.stdout, "mode 0666 -> 0600") {
		t.Errorf("show: %s", r.stdout)
	}
	// --json for CI: plan's standard output is one JSON document (the preflight findings go to standard error),
	// apply's is one JSON event per line.
	r = kforge(t, nil, "", "-c", dir, "plan", "--json")
	var doc struct {
		FormatVersion string `json:"format_version"`
		Hosts         []struct{ Changes []any }
	}
	if err := json.Unmarshal([]byte(r.stdout), &doc); err != nil || r.code != 0 || doc.FormatVersion == "" || len(doc.Hosts) != clusterHosts || !strings.Contains(r.stderr, `"findings"`) {
		t.Fatalf("plan --json: exit %d %v\n%s\nstderr:\n%s", r.code, err, r.stdout, r.stderr)
	}
	onHost(t, l, 1, "chmod 0644 /etc/kubernetes/pki/ca.crt") // something for apply to change
	r = kforge(t, nil, "", "-c", dir, "apply", "--auto-approve", "--json")
	lines := strings.Split(strings.TrimSpace(r.stdout), "\n")
	for _, line := range lines {
		var ev map[string]any
		if err := json.Unmarshal([]byte(line), &ev); err != nil || ev["type"] == nil || ev["format_version"] != "1.0" {
			t.Errorf("apply --json line %q: %v", line, err)
		}
	}
	if r.code != 0 || !strings.Contains(lines[len(lines)-1], `"type":"applied"`) {
		t.Fatalf("apply --json: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}

	r = kforge(t, nil, "", "-c", dir, "destroy", "--auto-approve")
	if r.code != 0 || !strings.Contains(r.stdout, "destroyed") {
		t.Fatalf("destroy: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	if got := onHost(t, l, 0, "ls /etc/kubernetes /var/lib/kubelet 2>&1 | wc -l; ls -A /etc/kubernetes 2>/dev/null | wc -l"); !strings.HasSuffix(got, "\n0") {
		t.Errorf("after destroy: %s", got)
	}
	st, _ := state.Load(filepath.Join(dir, ".kforge"))
	if len(st.Hosts) != 0 {
		t.Errorf("state after destroy: %+v", st.Hosts)
	}
}

// TestKilledApplyConverges kills `kforge apply` (SIGKILL) in the middle: no host has a half-written file, the
// lock says who held it, and the next apply converges.
func TestKilledApplyConverges(t *testing.T) {
	l := labFixture.Get(t)
	dir := labConfig(t, l)
	clean(t, l)
	bin := filepath.Join(t.TempDir(), "kforge")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("build: %v %s", err, out)
	}
	// Certificates first, so that the apply below only uploads.
	if r := kforge(t, nil, "", "-c", dir, "certs", "issue"); r.code != 0 {
		t.Fatal(r.stderr)
	}
	cmd := exec.Command(bin, "-c", dir, "apply", "--auto-approve", "--parallelism", "1")
	stdout, _ := cmd.StdoutPipe()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	sc := bufio.NewScanner(stdout)
	started := 0
	for sc.Scan() {
		if strings.HasSuffix(sc.Text(), " …") {
			if started++; started == 8 {
				cmd.Process.Kill()
				break
			}
		}
	}
	cmd.Wait()
	if started < 8 {
		t.Fatalf("apply finished before it could be killed (%d steps)", started)
	}
	holder, err := state.Holder(filepath.Join(dir, ".kforge"))
	if err != nil || holder.Operation != "apply" || holder.PID != cmd.Process.Pid {
		t.Errorf("lock holder after the kill: %+v %v", holder, err)
	}
	// Whatever exists on the hosts is whole: the plan only creates, it never repairs a file's content.
	r := kforge(t, nil, "", "-c", dir, "plan")
	if strings.Contains(r.stdout, "content changed") {
		t.Errorf("a partial file after the kill:\n%s", r.stdout)
	}
	if !strings.Contains(r.stderr, "ended without releasing the lock") {
		t.Errorf("no word about the interrupted apply: %s", r.stderr)
	}
	if r := kforge(t, nil, "", "-c", dir, "apply", "--auto-approve"); r.code != 0 {
		t.Fatalf("re-run: %s%s", r.stdout, r.stderr)
	}
	if r := kforge(t, nil, "", "-c", dir, "plan", "--detailed-exitcode"); r.code != 0 {
		t.Errorf("after the re-run: exit %d\n%s", r.code, r.stdout)
	}
	kforge(t, nil, "", "-c", dir, "destroy", "--auto-approve")
}

// TestInterruptedApplyStopsCleanly sends SIGINT (Ctrl-C) in the middle of an apply: the step in flight
// finishes, kforge exits non-zero, the lock is released and the state records what was done.
func TestInterruptedApplyStopsCleanly(t *testing.T) {
	l := labFixture.Get(t)
	dir := labConfig(t, l)
	clean(t, l)
	bin := filepath.Join(t.TempDir(), "kforge")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("build: %v %s", err, out)
	}
	if r := kforge(t, nil, "", "-c", dir, "certs", "issue"); r.code != 0 {
		t.Fatal(r.stderr)
	}
	cmd := exec.Command(bin, "-c", dir, "apply", "--auto-approve", "--parallelism", "1")
	stdout, _ := cmd.StdoutPipe()
	var stderr strings.Builder
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	sc := bufio.NewScanner(stdout)
	started := 0
	for sc.Scan() {
		if strings.HasSuffix(sc.Text(), " …") {
			if started++; started == 6 {
				cmd.Process.Signal(os.Interrupt)
			}
		}
	}
	err := cmd.Wait()
	if err == nil || !strings.Contains(stderr.String(), "stopped before") {
		t.Fatalf("interrupted apply: %v, stderr:\n%s", err, stderr.String())
	}
	if started >= 40 {
		t.Errorf("the apply went on after the interrupt (%d steps)", started)
	}
	holder, _ := state.Holder(filepath.Join(dir, ".kforge"))
	if holder.PID != 0 {
		t.Errorf("the lock was not released: %+v", holder)
	}
	st, _ := state.Load(filepath.Join(dir, ".kforge"))
	if st.Serial == 0 || len(st.Hosts) == 0 {
		t.Errorf("the state does not record the steps that finished: %+v", st)
	}
	if r := kforge(t, nil, "", "-c", dir, "apply", "--auto-approve"); r.code != 0 {
		t.Fatalf("re-run: %s%s", r.stdout, r.stderr)
	}
	kforge(t, nil, "", "-c", dir, "destroy", "--auto-approve")
}

// clean removes what an earlier test placed on the lab hosts.
// cleanComponents stops and removes every component an earlier test may have left on the lab's hosts.
func cleanComponents(t *testing.T, l *lab.Lab) {
	t.Helper()
	for i := range l.Hosts {
		onHost(t, l, i, "systemctl disable --now kforge-routes.service kforge-objects.service kube-proxy.service kubelet.service kforge-images.service etcd.service containerd.service kube-apiserver.service kube-controller-manager.service kube-scheduler.service 2>/dev/null; rm -rf /var/lib/cni /var/lib/kforge /etc/systemd/system/kforge-routes.service /etc/systemd/system/kforge-objects.service /var/lib/kube-proxy /etc/systemd/system/kube-proxy.service /etc/systemd/system/kubelet.service /etc/systemd/system/kforge-images.service /var/lib/etcd /var/lib/containerd /usr/local/bin/* /usr/local/sbin/runc /opt/cni /etc/cni /etc/containerd /etc/systemd/system/etcd.service /etc/systemd/system/containerd.service /etc/systemd/system/kube-*.service; systemctl daemon-reload")
	}
	clean(t, l)
}

func clean(t *testing.T, l *lab.Lab) {
	t.Helper()
	for i := range l.Hosts {
		onHost(t, l, i, "rm -rf /etc/kubernetes /var/lib/kubelet /etc/kforge")
	}
}

// TestPreflightOnALab: the lab's cgroup v1 is the one error, with its fix; everything else passes; ignoring
// it turns it into a warning, and so does the cluster's own opt-in.
func TestPreflightOnALab(t *testing.T) {
	l := labFixture.Get(t)
	clean(t, l)
	strict := labConfigWith(t, l, "")
	r := kforge(t, nil, "", "-c", strict, "preflight")
	if r.code != 1 || !strings.Contains(r.stdout, "Preflight: 3 errors, 0 warnings.") {
		t.Fatalf("preflight: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	for _, line := range strings.Split(r.stdout, "\n") {
		if strings.Contains(line, " error ") && !strings.HasPrefix(strings.TrimSpace(line), "cgroup-v1 ") {
			t.Errorf("an error other than cgroup v1: %s", line)
		}
	}
	if strings.Count(r.stdout, "fail_cgroup_v1") < 3 {
		t.Errorf("the fix does not say how:\n%s", r.stdout)
	}
	if r := kforge(t, nil, "", "-c", strict, "plan"); r.code != 1 || !strings.Contains(r.stderr, "preflight checks failed") {
		t.Errorf("plan went on despite preflight errors: exit %d %s", r.code, r.stderr)
	}
	r = kforge(t, nil, "", "-c", strict, "preflight", "--ignore-preflight", "cgroup-v1", "--json")
	var doc struct {
		Findings []struct {
			ID, Severity string
			Ignored      bool
		}
		Errors bool
	}
	if err := json.Unmarshal([]byte(r.stdout), &doc); err != nil || r.code != 0 || doc.Errors {
		t.Fatalf("ignored: exit %d %v\n%s", r.code, err, r.stdout)
	}
	ignored := 0
	for _, f := range doc.Findings {
		if f.ID == "cgroup-v1" && f.Ignored && f.Severity == "warning" {
			ignored++
		}
	}
	if ignored != 3 {
		t.Errorf("%d hosts with cgroup-v1 ignored, want 3", ignored)
	}
	if r := kforge(t, nil, "", "-c", labConfig(t, l), "preflight"); r.code != 0 || !strings.Contains(r.stdout, "Preflight: 0 errors, 3 warnings.") {
		t.Errorf("with fail_cgroup_v1 = false: exit %d\n%s", r.code, r.stdout)
	}
	// A security setting below the CIS benchmark: a warning of preflight, and once at the end of the plan.
	relaxed := labConfigWith(t, l, "kubelet {\n    fail_cgroup_v1 = false\n  }\n  security {\n    profiling = true\n  }")
	const warning = "security profiling relaxes CIS 1.2.15, 1.3.2, 1.4.1"
	if r := kforge(t, nil, "", "-c", relaxed, "preflight"); r.code != 0 || !strings.Contains(r.stdout, "Preflight: 0 errors, 4 warnings.") ||
		!strings.Contains(r.stdout, "cis-relaxed") || !strings.Contains(r.stdout, warning) {
		t.Errorf("preflight with profiling = true: exit %d\n%s", r.code, r.stdout)
	}
	if r := kforge(t, nil, "", "-c", relaxed, "plan"); r.code != 0 || strings.Count(r.stdout, warning) != 1 || !strings.Contains(r.stdout, "Warning: "+warning) {
		t.Errorf("plan with profiling = true: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
}

// TestRemovedHostIsCleanedUp: a host leaves the configuration; the next plan removes what kforge placed on it,
// reaching it as the state recorded, and the state forgets it.
func TestRemovedHostIsCleanedUp(t *testing.T) {
	l := labFixture.Get(t)
	clean(t, l)
	dir := t.TempDir()
	write := func(n int) { writeLabConfig(t, dir, l, n, "kubelet {\n    fail_cgroup_v1 = false\n  }", noArtifacts) }
	write(3)
	if r := kforge(t, nil, "", "-c", dir, "apply", "--auto-approve"); r.code != 0 {
		t.Fatalf("apply: %s%s", r.stdout, r.stderr)
	}
	write(2)
	r := kforge(t, nil, "", "-c", dir, "plan")
	removed := l.Hosts[2].Name
	if r.code != 0 || !strings.Contains(r.stdout, "host "+removed+"\n") || !strings.Contains(r.stdout, "(no longer in the configuration)") ||
		!strings.Contains(r.stdout, "Plan: 0 to add, 0 to change, 20 to destroy, 0 to restart.") {
		t.Fatalf("plan after removing %s: exit %d\n%s%s", removed, r.code, r.stdout, r.stderr)
	}
	if r := kforge(t, nil, "", "-c", dir, "apply", "--auto-approve"); r.code != 0 {
		t.Fatalf("apply the removal: %s%s", r.stdout, r.stderr)
	}
	if got := onHost(t, l, 2, "ls -A /etc/kubernetes /var/lib/kubelet /etc/kforge 2>/dev/null | wc -l"); got != "0" {
		t.Errorf("left on %s: %s", removed, onHost(t, l, 2, "find /etc/kubernetes /var/lib/kubelet /etc/kforge 2>/dev/null"))
	}
	st, _ := state.Load(filepath.Join(dir, ".kforge"))
	if _, ok := st.Hosts[removed]; ok || st.Connections[removed] != (state.Connection{}) {
		t.Errorf("state still has %s", removed)
	}
	if r := kforge(t, nil, "", "-c", dir, "plan", "--detailed-exitcode"); r.code != 0 {
		t.Errorf("after the removal: exit %d\n%s", r.code, r.stdout)
	}
	kforge(t, nil, "", "-c", dir, "destroy", "--auto-approve")
}

// TestComponentsOnALab is the scenario on lab hosts: plan and apply a cluster from the artifact set until
// every node is Ready; etcd over TLS, leader leases, pods (logs, exec, pod to pod, the kubernetes Service); no
// changes on a second plan; drift shown exactly and healed; a worker added and removed (drained); destroy, then
// destroy --purge-data.
func TestComponentsOnALab(t *testing.T) {
	l := labFixture.Get(t)
	clean(t, l)
	set := labtest.ArtifactSet(t)
	cleanComponents(t, l)
	// A registry on this machine serves the test image, and containerd on every node has it as the mirror of
	// the image's registry (kforge.local, which exists nowhere else): a pod that must pull shows the mirror works.
	mirror := newMirror(t, l, filepath.Join(set, "images/testbox.tar"))
	extra := strings.Replace(labtest.ClusterSettings, "restrict_oom_score_adj = true",
		"restrict_oom_score_adj = true\n    registry_mirrors = { \"kforge.local\" = [\"http://"+mirror.addr+"\"] }", 1)
	artifacts := "\nartifacts {\n  source = \"local\"\n  dir    = \"" + set + "\"\n}\n"
	dir := labConfigFull(t, l, extra, artifacts)
	r := kforge(t, nil, "", "-c", dir, "plan")
	if !strings.Contains(r.stdout, "+   binary /usr/local/bin/etcd  (etcd v3.7.3, 0755 root:root") || !strings.Contains(r.stdout, "~   unit etcd.service  (enable, start)") ||
		strings.Count(r.stdout, "~   unit containerd.service  (enable, start)") != 3 ||
		strings.Count(r.stdout, "+   file /etc/containerd/certs.d/kforge.local/hosts.toml  (") != 3 {
		t.Fatalf("plan: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	// apply waits for every node to be Ready, then for cluster DNS.
	if r := kforge(t, nil, "", "-c", dir, "apply", "--auto-approve"); r.code != 0 || !strings.Contains(r.stdout, "All 3 nodes are Ready") ||
		!strings.Contains(r.stdout, "Cluster DNS is available: 2 replicas") {
		t.Fatalf("apply: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	ctl := "/usr/local/bin/etcdctl --endpoints=https://" + l.Hosts[0].Address.String() + ":2379 --cacert=/etc/kubernetes/pki/etcd/ca.crt " +
		"--cert=/etc/kubernetes/pki/etcd/healthcheck-client.crt --key=/etc/kubernetes/pki/etcd/healthcheck-client.key"
	if got := onHost(t, l, 0, ctl+" put kforge hello >/dev/null && "+ctl+" get kforge --print-value-only"); got != "hello" {
		t.Errorf("etcd over TLS: %q", got)
	}
	if got := onHost(t, l, 0, "systemctl is-active etcd.service; systemctl is-enabled etcd.service"); got != "active\nenabled" {
		t.Errorf("etcd unit: %q", got)
	}
	// The control plane: the API server is ready (apply waited for it), and the controller-manager and the
	// scheduler took their leader leases through it.
	if got := onHost(t, l, 0, kubectl+"get --raw=/readyz"); got != "ok" {
		t.Errorf("readyz: %q", got)
	}
	leases := ""
	for deadline := time.Now().Add(60 * time.Second); time.Now().Before(deadline); time.Sleep(time.Second) {
		if leases = onHost(t, l, 0, kubectl+"-n kube-system get lease -o name 2>/dev/null | sort | tr '\\n' ' '"); strings.Contains(leases, "kube-controller-manager") && strings.Contains(leases, "kube-scheduler") {
			break
		}
	}
	if !strings.Contains(leases, "lease.coordination.k8s.io/kube-controller-manager") || !strings.Contains(leases, "lease.coordination.k8s.io/kube-scheduler") {
		t.Errorf("leader leases: %q", leases)
	}
	// Every kubelet registers its node, which is Ready once containerd has written its CNI config from the pod
	// CIDR the controller-manager gave the node.
	waitNodesReady(t, l, clusterHosts)
	checkCIS(t, l, clusterHosts)
	// The API, not the kubelet, labels and taints the nodes: a role label each, the control plane tainted.
	if got := onHost(t, l, 0, kubectl+"get nodes -o jsonpath='{range .items[*]}{.metadata.name} {.metadata.labels}{\" \"}{.spec.taints[*].key}{\"\\n\"}{end}'"); !strings.Contains(got, l.Hosts[0].Name+" ") ||
		!regexp.MustCompile(`(?m)^`+l.Hosts[0].Name+` .*"node-role.kubernetes.io/control-plane":"".* node-role.kubernetes.io/control-plane$`).MatchString(got) ||
		!regexp.MustCompile(`(?m)^`+l.Hosts[1].Name+` .*"node-role.kubernetes.io/worker":""[^ ]* $`).MatchString(got) {
		t.Errorf("node labels and taints:\n%s", got)
	}
	// A pod of the test image on a worker: it runs, and the API server reaches the kubelet
	// for its logs and for exec (the RBAC kforge applies).
	if runPod(t, l, "hello", l.Hosts[1].Name, "/bin/sh", "-c", "echo hello from kforge; exec sleep 3600") != "" {
		if got := onHost(t, l, 0, kubectl+"logs hello"); got != "hello from kforge" {
			t.Errorf("kubectl logs: %q", got)
		}
		if got := onHost(t, l, 0, kubectl+"exec hello -- /bin/sh -c 'echo $((6*7))'"); got != "42" {
			t.Errorf("kubectl exec: %q", got)
		} else {
			t.Logf("pod hello on %s runs; kubectl logs and kubectl exec (6*7 = %s) work", l.Hosts[1].Name, got)
		}
	}
	// Pod to pod across two workers: the test image's HTTP server (it answers with the pod's name) on one, a
	// client on the other, through the routes kforge placed between the nodes' pod CIDRs.
	if ip := runPod(t, l, "server", l.Hosts[2].Name); ip != "" {
		if got := podFetch(t, l, "hello", ip); got != "server" {
			t.Errorf("from %s to %s (%s): %q", l.Hosts[1].Name, l.Hosts[2].Name, ip, got)
		} else {
			t.Logf("pod to pod: hello on %s fetched http://%s:8080/ from server on %s: %q", l.Hosts[1].Name, ip, l.Hosts[2].Name, got)
		}
	}
	// A pod reaches the API server through the kubernetes Service's address (kube-proxy's rules).
	if got := podToService(t, l, "hello"); got != "0" {
		t.Errorf("pod to the kubernetes Service 198.19.128.1:443: nc exit %s", got)
	} else {
		t.Logf("pod to Service: hello reached the kubernetes Service at 198.19.128.1:443 (kube-proxy)")
	}
	clusterDNS(t, l)
	pullThroughMirror(t, l, mirror)
	onHost(t, l, 0, kubectl+"delete pod hello server pulled --now --wait=true; "+kubectl+"delete service server")
	for i := range l.Hosts[:clusterHosts] {
		// kube-proxy programs the kubernetes Service's address into every node's iptables.
		svc := onHost(t, l, i, "iptables -t nat -S KUBE-SERVICES 2>/dev/null | grep -c 'default/kubernetes:https' || true")
		if svc == "0" || svc == "" {
			t.Errorf("kube-proxy on %s: no rule for the kubernetes Service", l.Hosts[i].Name)
		}
		got := onHost(t, l, i, "ctr version | sed -n '/^Server:/,$ s/^ *Version: *//p'; grep -c 'SystemdCgroup = true' /etc/containerd/config.toml")
		if got != "v2.4.2\n1" {
			t.Errorf("containerd on %s: %q", l.Hosts[i].Name, got)
		}
	}
	if r := kforge(t, nil, "", "-c", dir, "plan", "--detailed-exitcode"); r.code != 0 {
		t.Errorf("second plan: exit %d\n%s", r.code, r.stdout)
	}

	// Drift: the kubelet's config edited by hand on one worker, containerd stopped on the other (which stops the
	// units that require it: the image import and the kubelet). The plan shows exactly that (and the kubelet's
	// restart), apply heals it, and the plan after is empty again.
	onHost(t, l, 1, "sed -i 's/^maxPods: 110$/maxPods: 250/' /var/lib/kubelet/config.yaml")
	onHost(t, l, 2, "systemctl stop containerd.service")
	r = kforge(t, nil, "", "-c", dir, "plan", "--detailed-exitcode")
	changes := strings.Join(regexp.MustCompile(`(?m)^  (?:[~+↻-]|-/\+)\s+.*$`).FindAllString(r.stdout, -1), "\n")
	wantDrift := "  ~   file /var/lib/kubelet/config.yaml  (content changed)\n" +
		"  ↻   unit kubelet.service  (/var/lib/kubelet/config.yaml changed)\n" +
		"  ~   unit containerd.service  (start)\n" +
		"  ~   unit kforge-images.service  (start)\n" +
		"  ~   unit kubelet.service  (start)"
	if r.code != 2 || changes != wantDrift || !strings.Contains(r.stdout, "-maxPods: 250") {
		t.Errorf("drift plan: exit %d, changes:\n%s\nwant:\n%s\n%s", r.code, changes, wantDrift, r.stdout)
	}
	if r := kforge(t, nil, "", "-c", dir, "apply", "--auto-approve"); r.code != 0 {
		t.Fatalf("heal: %s%s", r.stdout, r.stderr)
	}
	if r := kforge(t, nil, "", "-c", dir, "plan", "--detailed-exitcode"); r.code != 0 {
		t.Errorf("plan after healing: exit %d\n%s", r.code, r.stdout)
	}

	addAndRemoveAWorker(t, l, dir, extra, artifacts)
	dnsOff(t, l, dir, extra, artifacts)
	if r := kforge(t, nil, "", "-c", dir, "destroy", "--auto-approve"); r.code != 0 {
		t.Fatalf("destroy: %s%s", r.stdout, r.stderr)
	}
	if got := onHost(t, l, 0, "systemctl is-active etcd.service containerd.service; ls -A /usr/local/bin; ls /usr/local/sbin/runc 2>/dev/null; ls /var/lib/etcd"); got != "inactive\ninactive\nmember" {
		t.Errorf("after destroy (etcd and containerd stopped and removed, etcd's data kept): %q", got)
	}
	// --purge-data shows the data directories in the plan, then deletes them.
	r = kforge(t, nil, "", "-c", dir, "destroy", "--auto-approve", "--purge-data")
	if r.code != 0 || !strings.Contains(r.stdout, "-   data /var/lib/etcd  (--purge-data: everything in it is deleted)") {
		t.Fatalf("destroy --purge-data: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	if got := onHost(t, l, 0, "ls -d /var/lib/etcd /var/lib/containerd 2>/dev/null | wc -l"); got != "0" {
		t.Errorf("data left after --purge-data: %s", got)
	}
	for i := range l.Hosts {
		onHost(t, l, i, "rm -rf /var/lib/etcd /var/lib/containerd /var/lib/kubelet /etc/cni /var/lib/cni")
	}
}

const kubectl = "/usr/local/bin/kubectl --kubeconfig=/etc/kubernetes/admin.conf "

// podFetch is what pod's GET of http://ip:8080/ answered (the test image's server answers with its pod's name),
// or the error, within 10 s.
func podFetch(t *testing.T, l *lab.Lab, pod, ip string) string {
	t.Helper()
	return onHost(t, l, 0, kubectl+"exec "+pod+" -- /bin/sh -c 'printf \"GET / HTTP/1.0\\r\\n\\r\\n\" | nc -w 10 "+ip+" 8080' 2>&1 | tail -1 || true")
}

// podToService is nc's exit status ("0" when it connected) from pod to the kubernetes Service's address, which
// kube-proxy's rules send to the API server.
func podToService(t *testing.T, l *lab.Lab, pod string) string {
	t.Helper()
	return onHost(t, l, 0, kubectl+"exec "+pod+" -- /bin/sh -c 'echo | nc -w 5 198.19.128.1 443 >/dev/null 2>&1; echo $?'")
}

// waitNodesReady waits until n nodes are Ready and logs them as kubectl shows them.
func waitNodesReady(t *testing.T, l *lab.Lab, n int) {
	t.Helper()
	nodes := ""
	for deadline := time.Now().Add(120 * time.Second); time.Now().Before(deadline); time.Sleep(2 * time.Second) {
		nodes = onHost(t, l, 0, kubectl+"get nodes --no-headers -o custom-columns=NAME:.metadata.name,READY:.status.conditions[-1].type,STATUS:.status.conditions[-1].status,CIDR:.spec.podCIDR 2>/dev/null")
		if strings.Count(nodes, " True ") == n {
			break
		}
	}
	t.Logf("kubectl get nodes -o wide:\n%s", onHost(t, l, 0, kubectl+"get nodes -o wide"))
	if strings.Count(nodes, "Ready") != n || strings.Count(nodes, " True ") != n {
		t.Errorf("want %d nodes Ready:\n%s", n, nodes)
	}
}

// runPod starts a pod of the test image on node (running command, or the image's HTTP server) and waits until it
// runs; it returns the pod's IP, or "" after reporting why the pod did not run.
func runPod(t *testing.T, l *lab.Lab, name, node string, command ...string) string {
	t.Helper()
	return runPodPulling(t, l, name, node, "Never", command...)
}

// runPodPulling is runPod with an image pull policy.
func runPodPulling(t *testing.T, l *lab.Lab, name, node, pullPolicy string, command ...string) string {
	t.Helper()
	cmd := ""
	if len(command) > 0 {
		b, _ := json.Marshal(command)
		cmd = "\n      command: " + string(b)
	}
	onHost(t, l, 0, kubectl+`apply -f - <<'EOF'
apiVersion: v1
kind: Pod
metadata:
  name: `+name+`
  labels:
    app: `+name+`
spec:
  nodeName: `+node+`
  containers:
    - name: main
      image: kforge.local/testbox:busybox
      imagePullPolicy: `+pullPolicy+cmd+`
EOF`)
	for deadline := time.Now().Add(90 * time.Second); time.Now().Before(deadline); time.Sleep(2 * time.Second) {
		if onHost(t, l, 0, kubectl+"get pod "+name+" -o jsonpath={.status.phase}") == "Running" {
			return onHost(t, l, 0, kubectl+"get pod "+name+" -o jsonpath={.status.podIP}")
		}
	}
	t.Errorf("pod %s on %s is not running:\n%s", name, node, onHost(t, l, 0, kubectl+"describe pod "+name+" | tail -15"))
	return ""
}

// mirror is a registry on this machine's lab address serving image layouts, with a log of what it served.
type mirror struct {
	addr string
	mu   sync.Mutex
	log  []ociregistry.Request
}

func newMirror(t *testing.T, l *lab.Lab, layouts ...string) *mirror {
	t.Helper()
	reg, err := ociregistry.Open(layouts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { reg.Close() })
	ln, err := net.Listen("tcp", netip.AddrPortFrom(l.MachineAddress(), 0).String())
	if err != nil {
		t.Fatal(err)
	}
	m := &mirror{addr: ln.Addr().String()}
	reg.Log = func(r ociregistry.Request) {
		m.mu.Lock()
		defer m.mu.Unlock()
		m.log = append(m.log, r)
	}
	srv := &httptest.Server{Listener: ln, Config: &http.Server{Handler: reg}}
	srv.Start()
	t.Cleanup(srv.Close)
	return m
}

// served lists the requests from host that the registry answered with status 200, as "METHOD PATH ns=NS".
func (m *mirror) served(host netip.Addr) []string {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []string
	for _, r := range m.log {
		if ap, err := netip.ParseAddrPort(r.RemoteAddr); err == nil && ap.Addr() == host && r.Status == http.StatusOK {
			out = append(out, r.Method+" "+r.Path+" ns="+r.NS)
		}
	}
	return out
}

// pullThroughMirror: a pod whose image must be pulled (imagePullPolicy Always, although the node has the image)
// runs, and the registry mirror kforge configured on its node answered the node's manifest request.
func pullThroughMirror(t *testing.T, l *lab.Lab, m *mirror) {
	t.Helper()
	node := l.Hosts[2]
	if runPodPulling(t, l, "pulled", node.Name, "Always", "/bin/sh", "-c", "exec sleep 3600") == "" {
		return
	}
	served := m.served(node.Address)
	if !slices.Contains(served, "GET /v2/testbox/manifests/busybox ns=kforge.local") &&
		!slices.Contains(served, "HEAD /v2/testbox/manifests/busybox ns=kforge.local") {
		t.Errorf("pod pulled on %s, but the mirror served it no manifest of kforge.local/testbox:busybox: %q", node.Name, served)
		return
	}
	t.Logf("pod pulled (imagePullPolicy Always) runs on %s; containerd resolved the image through the mirror at %s: %q", node.Name, m.addr, served)
}

// clusterDNS: CoreDNS runs its 2 replicas on two nodes; pod hello resolves the kubernetes Service's name and
// that of a Service in front of pod server (and fetches from it by its short name, through the search path);
// a CoreDNS pod killed is replaced, and names resolve again.
func clusterDNS(t *testing.T, l *lab.Lab) {
	t.Helper()
	const dnsPods = "-n kube-system get pods -l k8s-app=kube-dns -o jsonpath='{range .items[*]}{.metadata.name} {.spec.nodeName} {.status.conditions[?(@.type==\"Ready\")].status}{\"\\n\"}{end}'"
	pods := onHost(t, l, 0, kubectl+dnsPods)
	nodes := map[string]bool{}
	for _, line := range strings.Split(pods, "\n") {
		if f := strings.Fields(line); len(f) == 3 && f[2] == "True" {
			nodes[f[1]] = true
		}
	}
	if len(nodes) != 2 {
		t.Errorf("CoreDNS pods, want 2 ready on two nodes:\n%s", pods)
	}
	if got := onHost(t, l, 0, kubectl+"-n kube-system get service kube-dns -o jsonpath={.spec.clusterIP}"); got != "198.19.128.10" {
		t.Errorf("kube-dns Service at %q, want 198.19.128.10 (the tenth of service_cidr)", got)
	}
	// resolve: the addresses nslookup found for name (those after its "Name:" line), or its output, and
	// whether that is "Address: " + want. It asks again for up to 30 s: a new Service reaches CoreDNS's watch,
	// and the kube-dns endpoints every node's kube-proxy, a moment after the API has them.
	resolve := func(name, want string) (string, bool) {
		got := ""
		for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(time.Second) {
			got = onHost(t, l, 0, kubectl+"exec hello -- nslookup "+name+" 2>&1 || true")
			if _, after, ok := strings.Cut(got, "Name:"); ok {
				got = strings.Join(regexp.MustCompile(`Address:\s*(\S+)`).FindAllString(after, -1), " ")
			}
			if got == "Address: "+want {
				return got, true
			}
		}
		return got, false
	}
	if got, ok := resolve("kubernetes.default.svc.cluster.local", "198.19.128.1"); !ok {
		t.Errorf("kubernetes.default.svc.cluster.local from pod hello: %q", got)
	}
	onHost(t, l, 0, kubectl+"expose pod server --port=8080")
	svc := onHost(t, l, 0, kubectl+"get service server -o jsonpath={.spec.clusterIP}")
	if got, ok := resolve("server.default.svc.cluster.local", svc); !ok {
		t.Errorf("server.default.svc.cluster.local from pod hello: %q, want the Service's %s", got, svc)
	}
	// nc -w bounds each try (this busybox's wget has no timeout, and a connection to the Service's address
	// before kube-proxy on the node has its rule waits out the kernel's SYN retries, well past the deadline).
	fetch := ""
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(time.Second) {
		if fetch = onHost(t, l, 0, kubectl+"exec hello -- /bin/sh -c 'printf \"GET / HTTP/1.0\\r\\n\\r\\n\" | nc -w 5 server 8080' 2>&1 | tail -1 || true"); fetch == "server" {
			break
		}
	}
	if fetch != "server" {
		t.Errorf("http://server:8080/ from pod hello: %q", fetch)
	} else {
		t.Logf("cluster DNS: pod hello resolved kubernetes.default and server.default.svc.cluster.local (%s) and fetched http://server:8080/", svc)
	}

	// A CoreDNS pod killed: the Deployment replaces it, and names resolve through the new one.
	victim := strings.Fields(pods)[0]
	onHost(t, l, 0, kubectl+"-n kube-system delete pod "+victim+" --wait=true")
	healed := ""
	for deadline := time.Now().Add(90 * time.Second); time.Now().Before(deadline); time.Sleep(2 * time.Second) {
		healed = onHost(t, l, 0, kubectl+dnsPods)
		if strings.Count(healed, " True") == 2 && !strings.Contains(healed, victim) {
			break
		}
	}
	if strings.Count(healed, " True") != 2 || strings.Contains(healed, victim) ||
		onHost(t, l, 0, kubectl+"-n kube-system get deployment coredns -o jsonpath={.status.availableReplicas}") != "2" {
		t.Errorf("after deleting CoreDNS pod %s, want 2 other pods ready:\n%s", victim, healed)
	} else if got, ok := resolve("kubernetes.default.svc.cluster.local", "198.19.128.1"); !ok {
		t.Errorf("after CoreDNS pod %s was replaced: %q", victim, got)
	} else {
		t.Logf("cluster DNS healed: CoreDNS pod %s deleted, replaced:\n%s", victim, healed)
	}
}

// dnsOff: cluster DNS turned off, the plan removes its manifest and changes the script that applies the
// objects; apply deletes the add-on's objects; a second plan is empty.
func dnsOff(t *testing.T, l *lab.Lab, dir, extra, artifacts string) {
	t.Helper()
	writeLabConfig(t, dir, l, 3, strings.Replace(extra, "upstream = []", "enabled = false", 1), artifacts)
	r := kforge(t, nil, "", "-c", dir, "plan", "--detailed-exitcode")
	cp := planChanges(r.stdout)[l.Hosts[0].Name]
	if r.code != 2 || !slices.Contains(cp, "-   file /etc/kubernetes/kforge/addons/dns.yaml  (no longer in the configuration)") ||
		!slices.Contains(cp, "~   file /etc/kubernetes/kforge/apply-objects.sh  (content changed)") {
		t.Fatalf("plan with dns off: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	if r := kforge(t, nil, "", "-c", dir, "apply", "--auto-approve"); r.code != 0 || strings.Contains(r.stdout, "Cluster DNS is available") {
		t.Fatalf("apply with dns off: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	if got := onHost(t, l, 0, kubectl+"get deployments,services,configmaps,serviceaccounts,clusterroles,clusterrolebindings -A -l kforge.io/addon=dns -o name"); got != "" {
		t.Errorf("left with dns off: %s", got)
	}
	if r := kforge(t, nil, "", "-c", dir, "plan", "--detailed-exitcode"); r.code != 0 {
		t.Errorf("plan after dns off: exit %d\n%s", r.code, r.stdout)
	}
}

// planChanges are a plan's change lines under each host's heading, in order.
func planChanges(out string) map[string][]string {
	changes := map[string][]string{}
	host := ""
	for _, line := range strings.Split(out, "\n") {
		if m := regexp.MustCompile(`^host (\S+)`).FindStringSubmatch(line); m != nil {
			host = m[1]
		} else if regexp.MustCompile(`^  (?:[~+↻-]|-/\+)\s`).MatchString(line) && host != "" {
			changes[host] = append(changes[host], strings.TrimSpace(line))
		}
	}
	return changes
}

// objectsChanged is the plan on a control-plane host when the API objects kforge applies change (a node joins or
// leaves): the file and the unit that applies it.
var objectsChanged = []string{"~   file /etc/kubernetes/kforge/objects.yaml  (content changed)",
	"↻   unit kforge-objects.service  (/etc/kubernetes/kforge/objects.yaml changed)"}

// addAndRemoveAWorker: a fourth host joins as a worker (the plan creates everything on it and, elsewhere, only
// adds its Node object and the routes to its pods), becomes Ready, then leaves: the plan removes its files and
// its Node object, which apply drains first.
func addAndRemoveAWorker(t *testing.T, l *lab.Lab, dir, extra, artifacts string) {
	newHost := l.Hosts[3].Name
	writeLabConfig(t, dir, l, 4, extra, artifacts)
	r := kforge(t, nil, "", "-c", dir, "plan", "--detailed-exitcode")
	changes := planChanges(r.stdout)
	routes := []string{"~   file /etc/systemd/system/kforge-routes.service  (content changed)",
		"↻   unit kforge-routes.service  (/etc/systemd/system/kforge-routes.service changed)"}
	want := map[string][]string{
		l.Hosts[0].Name: append(slices.Clone(objectsChanged), routes...),
		l.Hosts[1].Name: routes, l.Hosts[2].Name: routes,
	}
	for _, h := range l.Hosts[:3] {
		if got := strings.Join(changes[h.Name], "\n"); got != strings.Join(want[h.Name], "\n") {
			t.Errorf("adding %s changes on %s:\n%s\nwant:\n%s", newHost, h.Name, got, strings.Join(want[h.Name], "\n"))
		}
	}
	for _, c := range changes[newHost] {
		if !strings.HasPrefix(c, "+") && !strings.HasPrefix(c, "~   unit") && !strings.HasPrefix(c, "~   sysctl") {
			t.Errorf("on the new host %s, not a creation: %s", newHost, c)
		}
	}
	if r.code != 2 || len(changes) != 4 || len(changes[newHost]) < 40 || !strings.Contains(r.stdout, "+  name: "+newHost) {
		t.Fatalf("plan adding %s: exit %d, %d hosts changed\n%s%s", newHost, r.code, len(changes), r.stdout, r.stderr)
	}
	if r := kforge(t, nil, "", "-c", dir, "apply", "--auto-approve"); r.code != 0 || !strings.Contains(r.stdout, "All 4 nodes are Ready") {
		t.Fatalf("apply adding %s: exit %d\n%s%s", newHost, r.code, r.stdout, r.stderr)
	}
	waitNodesReady(t, l, 4)
	if r := kforge(t, nil, "", "-c", dir, "plan", "--detailed-exitcode"); r.code != 0 {
		t.Errorf("plan after adding %s: exit %d\n%s", newHost, r.code, r.stdout)
	}

	// A pod on the worker that leaves: the drain evicts it before the Node object goes.
	runPod(t, l, "leaver", newHost)
	writeLabConfig(t, dir, l, 3, extra, artifacts)
	r = kforge(t, nil, "", "-c", dir, "plan", "--detailed-exitcode")
	changes = planChanges(r.stdout)
	if r.code != 2 || !strings.Contains(r.stdout, "host "+newHost+"\n") || !strings.Contains(r.stdout, "(no longer in the configuration)") ||
		!strings.Contains(r.stdout, "-  name: "+newHost) || !slices.Contains(changes[l.Hosts[0].Name], objectsChanged[1]) {
		t.Fatalf("plan removing %s: exit %d\n%s%s", newHost, r.code, r.stdout, r.stderr)
	}
	for _, c := range changes[newHost] {
		if !strings.HasPrefix(c, "-") {
			t.Errorf("on the removed host %s, not a removal: %s", newHost, c)
		}
	}
	if r := kforge(t, nil, "", "-c", dir, "apply", "--auto-approve"); r.code != 0 {
		t.Fatalf("apply removing %s: %s%s", newHost, r.stdout, r.stderr)
	}
	if got := onHost(t, l, 0, kubectl+"get node "+newHost+" 2>&1; "+kubectl+"get pod leaver 2>&1; true"); !strings.Contains(got, `nodes "`+newHost+`" not found`) || !strings.Contains(got, `pods "leaver" not found`) {
		t.Errorf("after removing %s: %s", newHost, got)
	}
	if got := onHost(t, l, 0, "journalctl -u kforge-objects.service --no-pager -o cat | grep -F '"+newHost+"' | sort -u"); !strings.Contains(got, "node/"+newHost+" drained") || !strings.Contains(got, `node "`+newHost+`" deleted`) {
		t.Errorf("kforge-objects.service did not drain and delete %s:\n%s", newHost, got)
	}
	if got := onHost(t, l, 3, "systemctl is-active kubelet.service containerd.service; find /etc/kubernetes /usr/local/bin /etc/kforge -mindepth 1 2>/dev/null; true"); got != "inactive\ninactive" {
		t.Errorf("left on %s: %q", newHost, got)
	}
	waitNodesReady(t, l, 3)
	if r := kforge(t, nil, "", "-c", dir, "plan", "--detailed-exitcode"); r.code != 0 {
		t.Errorf("plan after removing %s: exit %d\n%s", newHost, r.code, r.stdout)
	}
}

// TestWrongChecksumChangesNothing: with artifacts from a mirror whose file does not match the sum published
// beside it, apply stops before any host changes, names the file and both sums, and writes no lock file.
func TestWrongChecksumChangesNothing(t *testing.T) {
	l := labFixture.Get(t)
	clean(t, l)
	var asked atomic.Int64
	mirror := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		asked.Add(1)
		if strings.HasSuffix(r.URL.Path, ".sha256") {
			fmt.Fprint(w, strings.Repeat("0", 64))
			return
		}
		fmt.Fprint(w, "not the release file")
	}))
	defer mirror.Close()
	cache := t.TempDir()
	dir := labConfigFull(t, l, "kubelet {\n    fail_cgroup_v1 = false\n  }",
		fmt.Sprintf("\nartifacts {\n  source    = \"mirror\"\n  url       = %q\n  cache_dir = %q\n}\n", mirror.URL, cache))
	r := kforge(t, nil, "", "-c", dir, "apply", "--auto-approve")
	for _, want := range []string{"kube-apiserver", mirror.URL + "/release/v1.37.2/bin/linux/amd64/kube-apiserver", strings.Repeat("0", 64), "published checksum", "nothing was cached"} {
		if !strings.Contains(r.stderr, want) {
			t.Errorf("apply's error lacks %q", want)
		}
	}
	if r.code != 1 || asked.Load() == 0 {
		t.Fatalf("apply: exit %d, %d requests\n%s%s", r.code, asked.Load(), r.stdout, r.stderr)
	}
	if got := onHost(t, l, 0, "ls -d /etc/kforge/managed /etc/kubernetes /usr/local/bin/kube-apiserver 2>/dev/null | wc -l"); got != "0" {
		t.Errorf("apply changed %s: %s", l.Hosts[0].Name, got)
	}
	if _, err := os.Stat(filepath.Join(dir, ".kforge.lock.hcl")); !os.IsNotExist(err) {
		t.Errorf("lock file: %v", err)
	}
	if blobs, _ := filepath.Glob(filepath.Join(cache, "sha256", "*")); len(blobs) != 0 {
		t.Errorf("cached: %v", blobs)
	}
}

// TestHAControlPlaneOnALab: three control-plane hosts with etcd behind an api_endpoint (a TCP load balancer the
// test runs on the lab's bridge, as a user provides one) and a worker. etcd has three members, every API server is
// ready, every kubeconfig for nodes names the endpoint, and the cluster keeps serving through the endpoint with
// one API server stopped; the plan shows that server's start and apply heals it.
func TestHAControlPlaneOnALab(t *testing.T) {
	l := labFixture.Get(t)
	cleanComponents(t, l)
	set := labtest.ArtifactSet(t)
	endpoint := netip.AddrPortFrom(l.MachineAddress(), 6443) // every lab host reaches it
	var backends []string
	for _, h := range l.Hosts[:3] {
		backends = append(backends, netip.AddrPortFrom(h.Address, 6443).String())
	}
	lb := newTCPBalancer(t, endpoint.String(), backends)

	blocks := hostBlocks(t, l)
	for i := 1; i < 3; i++ {
		blocks[i] = strings.Replace(blocks[i], `roles   = ["worker"]`, `roles   = ["control-plane", "etcd"]`, 1)
	}
	// Scheduled snapshots on every member, two kept.
	src := fmt.Sprintf("cluster \"ha\" {\n  pod_cidr     = \"198.19.0.0/17\"\n  service_cidr = \"198.19.128.0/20\"\n  api_endpoint = %q\n  %s\n"+
		"  etcd {\n    snapshots {\n      schedule = \"hourly\"\n      keep     = 2\n    }\n  }\n}\n\nartifacts {\n  source = \"local\"\n  dir    = %q\n}\n\n%s",
		endpoint, labtest.ClusterSettings,
		set, strings.Join(blocks, "\n"))
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "cluster.hcl"), []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	r := kforge(t, nil, "", "-c", dir, "apply", "--auto-approve")
	if r.code != 0 || !strings.Contains(r.stdout, "All 4 nodes are Ready") {
		t.Fatalf("apply: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	defer func() {
		if r := kforge(t, nil, "", "-c", dir, "destroy", "--auto-approve", "--purge-data"); r.code != 0 {
			t.Errorf("destroy: %s%s", r.stdout, r.stderr)
		}
	}()
	ctl := "/usr/local/bin/etcdctl --endpoints=https://127.0.0.1:2379 --cacert=/etc/kubernetes/pki/etcd/ca.crt " +
		"--cert=/etc/kubernetes/pki/etcd/healthcheck-client.crt --key=/etc/kubernetes/pki/etcd/healthcheck-client.key "
	if got := onHost(t, l, 0, ctl+"member list | grep -c ', started, '"); got != "3" {
		t.Errorf("etcd members started: %s\n%s", got, onHost(t, l, 0, ctl+"member list"))
	}
	for i := range 3 {
		if got := onHost(t, l, i, kubectl+"--server=https://127.0.0.1:6443 get --raw=/readyz"); got != "ok" {
			t.Errorf("API server on %s: %q", l.Hosts[i].Name, got)
		}
	}
	for _, i := range []int{0, 3} {
		want := "server: https://" + endpoint.String()
		if got := onHost(t, l, i, "grep -h 'server:' /etc/kubernetes/kubelet.conf /etc/kubernetes/kube-proxy.conf | sort -u | tr -d ' '"); got != strings.ReplaceAll(want, " ", "") {
			t.Errorf("kubelet and kube-proxy on %s talk to %q, want %q", l.Hosts[i].Name, got, want)
		}
	}
	// Through the endpoint, many times: every API server answers some.
	for range 12 {
		onHost(t, l, 0, kubectl+"--server=https://"+endpoint.String()+" get --raw=/readyz")
	}
	for _, b := range backends {
		if lb.served(b) == 0 {
			t.Errorf("the endpoint sent nothing to %s: %v", b, lb.counts())
		}
	}
	// One API server down: the cluster serves on through the endpoint; the plan shows exactly its start (and that
	// of the unit that applies kforge's objects, which requires it); apply waits for that API server itself.
	onHost(t, l, 1, "systemctl stop kube-apiserver.service")
	for range 6 {
		if got := onHost(t, l, 0, kubectl+"--server=https://"+endpoint.String()+" get nodes --no-headers | wc -l"); got != "4" {
			t.Errorf("through the endpoint with %s's API server stopped: %q", l.Hosts[1].Name, got)
		}
	}
	r = kforge(t, nil, "", "-c", dir, "plan", "--detailed-exitcode")
	changes := planChanges(r.stdout)
	if r.code != 2 || len(changes) != 1 || strings.Join(changes[l.Hosts[1].Name], "\n") != "~   unit kube-apiserver.service  (start)\n~   unit kforge-objects.service  (start)" {
		t.Errorf("plan with an API server stopped: exit %d\n%s", r.code, r.stdout)
	}
	if r := kforge(t, nil, "", "-c", dir, "apply", "--auto-approve"); r.code != 0 {
		t.Fatalf("heal: %s%s", r.stdout, r.stderr)
	}
	if got := onHost(t, l, 1, kubectl+"--server=https://127.0.0.1:6443 get --raw=/readyz"); got != "ok" {
		t.Errorf("API server on %s after apply: %q", l.Hosts[1].Name, got)
	}
	lb.checkHealth(t, storeTLS(filepath.Join(dir, ".kforge", "pki"), pki.ClusterCA, "admin"), "/readyz", 100*time.Millisecond)
	renewWithoutDowntime(t, l, dir, lb)
	rotateCAsWithoutDowntime(t, l, dir, lb)
	scheduledSnapshots(t, l)
	snapshotRoundTrip(t, l, dir)
	rebootEveryHost(t, l, dir)
}

// rebootEveryHost: every host of the cluster, control plane included, reboots at once; with no kforge run, the
// nodes are Ready again, a Deployment's pods run again and reach each other across nodes (the routes are back),
// the sysctls kforge set hold, and kforge sees nothing to change.
func rebootEveryHost(t *testing.T, l *lab.Lab, dir string) {
	t.Helper()
	const pods = kubectl + "get pods -l app=web -o jsonpath='{range .items[*]}{.spec.nodeName} {.status.podIP} {.status.phase}{\"\\n\"}{end}'"
	// One pod per node (the control-plane nodes' taint tolerated), so that pod-to-pod traffic crosses nodes.
	onHost(t, l, 0, kubectl+`apply -f - <<'EOF'
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
spec:
  replicas: 4
  selector:
    matchLabels: {app: web}
  template:
    metadata:
      labels: {app: web}
    spec:
      tolerations:
        - {key: node-role.kubernetes.io/control-plane, effect: NoSchedule}
      topologySpreadConstraints:
        - {maxSkew: 1, topologyKey: kubernetes.io/hostname, whenUnsatisfiable: DoNotSchedule, labelSelector: {matchLabels: {app: web}}}
      containers:
        - {name: web, image: kforge.local/testbox:busybox, imagePullPolicy: Never}
EOF
`+kubectl+"rollout status deployment web --timeout=120s >/dev/null")
	labFixture.Reboot(t)
	waitNodesReady(t, l, 4)
	// Running with an address: right after the reboot a pod can show Running before its new sandbox has one.
	withIP := regexp.MustCompile(`(?m)^\S+ \d+\.\d+\.\d+\.\d+ Running$`)
	running := ""
	for deadline := time.Now().Add(3 * time.Minute); time.Now().Before(deadline); time.Sleep(2 * time.Second) {
		if running = onHost(t, l, 0, kubectl+"rollout status deployment web --timeout=5s >/dev/null 2>&1 && "+pods+" || true"); len(withIP.FindAllString(running, -1)) == 4 {
			break
		}
	}
	if len(withIP.FindAllString(running, -1)) != 4 {
		t.Fatalf("after rebooting every host, the Deployment's pods:\n%s\n%s", running, onHost(t, l, 0, kubectl+"get pods -o wide"))
	}
	// Pod to pod across nodes: from the first pod to every pod on another node.
	var from, fromNode string
	reached := 0
	for _, line := range strings.Split(running, "\n") {
		f := strings.Fields(line)
		if from == "" {
			fromNode = f[0]
			from = onHost(t, l, 0, kubectl+"get pods -l app=web -o jsonpath='{.items[0].metadata.name}'")
			continue
		}
		if f[0] == fromNode {
			continue
		}
		got := onHost(t, l, 0, kubectl+"exec "+from+" -- /bin/sh -c 'printf \"GET / HTTP/1.0\\r\\n\\r\\n\" | nc -w 5 "+f[1]+" 8080' 2>&1 | tail -1 || true")
		if !strings.HasPrefix(got, "web-") {
			t.Errorf("after the reboot, pod %s on %s to %s on %s: %q", from, fromNode, f[1], f[0], got)
			continue
		}
		reached++
	}
	if reached < 2 {
		t.Errorf("after the reboot, pod %s on %s reached pods on %d other nodes, want at least 2:\n%s", from, fromNode, reached, running)
	}
	for i := range 4 {
		if got := onHost(t, l, i, "sysctl -n net.ipv4.ip_forward net.bridge.bridge-nf-call-iptables; ip route show proto 200 | wc -l"); got != "1\n1\n3" {
			t.Errorf("after the reboot, %s's sysctls and routes to the other nodes' pods: %q", l.Hosts[i].Name, got)
		}
	}
	if r := kforge(t, nil, "", "-c", dir, "plan", "--detailed-exitcode"); r.code != 0 {
		t.Errorf("plan after rebooting every host: exit %d\n%s", r.code, r.stdout)
	}
	t.Logf("every host rebooted: 4 nodes Ready, the Deployment's 4 pods run, pod to pod across nodes (%d pairs) works", reached)
	onHost(t, l, 0, kubectl+"delete deployment web")
}

// scheduledSnapshots: every member's timer is on; its service, run three times, leaves the newest two snapshots
// with their sums.
func scheduledSnapshots(t *testing.T, l *lab.Lab) {
	t.Helper()
	for i := range 3 {
		if got := onHost(t, l, i, "systemctl is-enabled kforge-etcd-snapshot.timer; systemctl is-active kforge-etcd-snapshot.timer"); got != "enabled\nactive" {
			t.Errorf("snapshot timer on %s: %q", l.Hosts[i].Name, got)
		}
	}
	// Names have the second they were taken in: one second apart, three runs make three names.
	got := onHost(t, l, 0, "for n in 1 2 3; do systemctl start kforge-etcd-snapshot.service; sleep 1; done; "+
		"cd /var/lib/etcd-snapshots && ls | wc -l && sha256sum -c --quiet *.sha256 && echo sums ok")
	if got != "4\nsums ok" {
		t.Errorf("scheduled snapshots on %s after three runs (want 2 snapshots and 2 sums):\n%s\n%s", l.Hosts[0].Name, got,
			onHost(t, l, 0, "ls -l /var/lib/etcd-snapshots; journalctl -u kforge-etcd-snapshot.service -n 20 --no-pager"))
	}
}

// snapshotRoundTrip: an object made before a snapshot and deleted after it, another made after it: once the
// three members are restored from the snapshot, the first is back and the second gone, every member and API
// server is healthy, the nodes are Ready, and kforge sees nothing to change.
func snapshotRoundTrip(t *testing.T, l *lab.Lab, dir string) {
	t.Helper()
	onHost(t, l, 0, kubectl+"create configmap before-snapshot --from-literal=k=v")
	file := filepath.Join(t.TempDir(), "etcd.db")
	r := kforge(t, nil, "", "-c", dir, "--json", "etcd", "snapshot", "save", file)
	var saved struct {
		File, Member, SHA256 string
		Revision, Size       int64
	}
	if err := json.Unmarshal([]byte(r.stdout), &saved); r.code != 0 || err != nil || saved.File != file || saved.Revision <= 0 || saved.Size <= 0 {
		t.Fatalf("snapshot save: exit %d, %v\n%s%s", r.code, err, r.stdout, r.stderr)
	}
	data, err := os.ReadFile(file)
	sums, _ := os.ReadFile(file + ".sha256")
	info, _ := os.Stat(file)
	if err != nil || int64(len(data)) != saved.Size || string(sums) != fmt.Sprintf("%x  etcd.db\n", sha256.Sum256(data)) || info.Mode().Perm() != 0o600 {
		t.Fatalf("snapshot file: %v, %d bytes, sums %q, mode %v", err, len(data), sums, info.Mode())
	}
	if r := kforge(t, nil, "", "-c", dir, "etcd", "snapshot", "save", file); r.code == 0 || !strings.Contains(r.stderr, "never overwrites") {
		t.Errorf("a second save to the same file: exit %d\n%s", r.code, r.stderr)
	}
	onHost(t, l, 0, kubectl+"delete configmap before-snapshot && "+kubectl+"create configmap after-snapshot --from-literal=k=v")
	// Without a terminal and without --auto-approve, the plan is shown and nothing happens.
	r = kforge(t, nil, "", "-c", dir, "etcd", "snapshot", "restore", file)
	if r.code == 0 || !strings.Contains(r.stdout, "4. restore on "+l.Hosts[0].Name+", "+l.Hosts[1].Name+", "+l.Hosts[2].Name) ||
		!strings.Contains(r.stderr, "no terminal to ask for confirmation") {
		t.Fatalf("restore without approval: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	r = kforge(t, nil, "", "-c", dir, "etcd", "snapshot", "restore", "--auto-approve", file)
	if r.code != 0 || !strings.Contains(r.stdout, "every member is healthy and every API server ready") {
		t.Fatalf("restore: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	got := onHost(t, l, 0, kubectl+"get configmap before-snapshot after-snapshot -o name 2>&1 || true")
	if !strings.Contains(got, "configmap/before-snapshot") || !strings.Contains(got, `"after-snapshot" not found`) {
		t.Errorf("after the restore: %q", got)
	}
	ctl := "/usr/local/bin/etcdctl --endpoints=https://127.0.0.1:2379 --cacert=/etc/kubernetes/pki/etcd/ca.crt " +
		"--cert=/etc/kubernetes/pki/etcd/healthcheck-client.crt --key=/etc/kubernetes/pki/etcd/healthcheck-client.key "
	if got := onHost(t, l, 0, ctl+"member list | grep -c ', started, '"); got != "3" {
		t.Errorf("etcd members started after the restore: %s", got)
	}
	waitNodesReady(t, l, 4)
	if r := kforge(t, nil, "", "-c", dir, "plan", "--detailed-exitcode"); r.code != 0 {
		t.Errorf("plan after the restore: exit %d\n%s", r.code, r.stdout)
	}
	t.Logf("etcd restored from a snapshot of %d bytes (revision %d, from %s): the object deleted after it is back, the one made after it gone", saved.Size, saved.Revision, saved.Member)
}

// tcpBalancer is the load balancer a user puts in front of the API servers: TCP, round robin, skipping a
// backend that refuses and, once checkHealth runs, one whose last health check failed.
type tcpBalancer struct {
	addr     string
	backends []string
	mu       sync.Mutex
	next     int
	count    map[string]int
	open     map[net.Conn]bool // closed at the end: components keep their connections
	down     map[string]bool   // by the health check, or a refused connection until the next check passes
	checked  bool              // checkHealth runs
}

// checkHealth asks every backend for path every interval, from now until the test ends, and sends no new
// connection to one that does not answer 200.
func (b *tcpBalancer) checkHealth(t *testing.T, cfg *tls.Config, path string, interval time.Duration) {
	client := &http.Client{Timeout: interval * 5, Transport: &http.Transport{TLSClientConfig: cfg, DisableKeepAlives: true}}
	stop := make(chan struct{})
	var wg sync.WaitGroup
	t.Cleanup(func() { close(stop); wg.Wait() })
	b.mu.Lock()
	b.checked = true
	b.mu.Unlock()
	for _, backend := range b.backends {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				resp, err := client.Get("https://" + backend + path)
				ok := err == nil && resp.StatusCode == http.StatusOK
				if err == nil {
					resp.Body.Close()
				}
				b.mu.Lock()
				b.down[backend] = !ok
				b.mu.Unlock()
				select {
				case <-stop:
					return
				case <-time.After(interval):
				}
			}
		}()
	}
}

// pick is the next backend in turn that is not down; when all are, the next in turn.
func (b *tcpBalancer) pick() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	for range b.backends {
		addr := b.backends[b.next%len(b.backends)]
		b.next++
		if !b.down[addr] {
			return addr
		}
	}
	addr := b.backends[b.next%len(b.backends)]
	b.next++
	return addr
}

func newTCPBalancer(t *testing.T, addr string, backends []string) *tcpBalancer {
	t.Helper()
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	b := &tcpBalancer{addr: addr, backends: backends, count: map[string]int{}, open: map[net.Conn]bool{}, down: map[string]bool{}}
	var wg sync.WaitGroup
	t.Cleanup(func() {
		ln.Close()
		b.mu.Lock()
		for c := range b.open {
			c.Close()
		}
		b.mu.Unlock()
		wg.Wait()
	})
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			wg.Add(1)
			go func() { defer wg.Done(); b.proxy(c) }()
		}
	}()
	return b
}

func (b *tcpBalancer) proxy(c net.Conn) {
	defer c.Close()
	for range b.backends {
		addr := b.pick()
		up, err := net.DialTimeout("tcp", addr, 2*time.Second)
		if err != nil {
			b.mu.Lock()
			b.down[addr] = b.checked
			b.mu.Unlock()
			continue
		}
		b.mu.Lock()
		b.count[addr]++
		b.open[c], b.open[up] = true, true
		b.mu.Unlock()
		done := make(chan struct{}, 2)
		go func() { io.Copy(up, c); up.(*net.TCPConn).CloseWrite(); done <- struct{}{} }()
		go func() { io.Copy(c, up); c.(*net.TCPConn).CloseWrite(); done <- struct{}{} }()
		<-done
		<-done
		up.Close()
		b.mu.Lock()
		delete(b.open, c)
		delete(b.open, up)
		b.mu.Unlock()
		return
	}
}

func (b *tcpBalancer) served(addr string) int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.count[addr]
}

func (b *tcpBalancer) counts() map[string]int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return maps.Clone(b.count)
}
