package main

import (
	"bufio"
	"fmt"
	"net/http"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/kforge/kforge/providers/lab/labtest"
	"github.com/kforge/kforge/provision/state"
)

// upgradeWorkload is a Deployment of the test image's HTTP server behind a NodePort, which a rolling upgrade must
// keep serving: three replicas with a PodDisruptionBudget of two, a readiness probe, and a preStop pause so that a
// pod being evicted serves until every node's kube-proxy has dropped it (the operator's part of zero downtime).
const upgradeWorkload = `apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
spec:
  replicas: 3
  selector:
    matchLabels: {app: web}
  template:
    metadata:
      labels: {app: web}
    spec:
      terminationGracePeriodSeconds: 30
      containers:
        - name: web
          image: kforge.local/testbox:busybox
          imagePullPolicy: Never
          readinessProbe:
            tcpSocket: {port: 8080}
            periodSeconds: 1
          lifecycle:
            preStop:
              exec: {command: ["/bin/sleep", "5"]}
---
apiVersion: policy/v1
kind: PodDisruptionBudget
metadata:
  name: web
spec:
  minAvailable: 2
  selector:
    matchLabels: {app: web}
---
apiVersion: v1
kind: Service
metadata:
  name: web
spec:
  type: NodePort
  selector: {app: web}
  ports:
    - {port: 8080, targetPort: 8080, nodePort: 30080}
`

// TestUpgradeOnALab upgrades a cluster of one control plane and three workers from labtest.UpgradeFrom to the
// default version by changing kubernetes_version and the artifact set, while a workload is probed every 250 ms
// through a NodePort from this machine. kforge is killed in the middle of a worker's upgrade, after its drain, and
// run again. Every node ends at the new version and schedulable, no request was lost, the drains went one node at a
// time, and a plan says "No changes.".
func TestUpgradeOnALab(t *testing.T) {
	l := labFixture.Get(t)
	cleanComponents(t, l)
	from, to := labtest.ArtifactSetFor(t, labtest.UpgradeFrom), labtest.ArtifactSet(t)
	toVersion := "v1.37.2"
	dir := t.TempDir()
	configure := func(version, set string) {
		writeLabConfig(t, dir, l, 4, fmt.Sprintf("kubernetes_version = %q\n  %s", version, labtest.ClusterSettings),
			"\nartifacts {\n  source = \"local\"\n  dir    = \""+set+"\"\n}\n")
	}
	configure(labtest.UpgradeFrom, from)
	if r := kforge(t, nil, "", "-c", dir, "apply", "--auto-approve"); r.code != 0 || !strings.Contains(r.stdout, "All 4 nodes are Ready") {
		t.Fatalf("apply %s: exit %d\n%s%s", labtest.UpgradeFrom, r.code, r.stdout, r.stderr)
	}
	defer func() {
		kforge(t, nil, "", "-c", dir, "destroy", "--auto-approve", "--purge-data")
	}()
	onHost(t, l, 0, kubectl+"apply -f - <<'EOF'\n"+upgradeWorkload+"EOF\n"+kubectl+"rollout status deployment web --timeout=120s >&2 || "+
		"{ "+kubectl+"get pods -o wide >&2; "+kubectl+"describe pods -l app=web | tail -30 >&2; exit 1; }")

	// The probe: one GET every 250 ms through the control plane's NodePort, a failure being anything but the
	// name of a web pod within 2 s.
	url := fmt.Sprintf("http://%s:30080/", l.Hosts[0].Address)
	var sent, lost atomic.Int64
	var failures []string
	var mu sync.Mutex
	stop := make(chan struct{})
	probed := make(chan struct{})
	client := &http.Client{Timeout: 2 * time.Second}
	go func() {
		defer close(probed)
		tick := time.NewTicker(250 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-stop:
				return
			case <-tick.C:
			}
			sent.Add(1)
			resp, err := client.Get(url)
			body := ""
			if err == nil {
				b := make([]byte, 128)
				n, _ := resp.Body.Read(b)
				resp.Body.Close()
				body = strings.TrimSpace(string(b[:n]))
			}
			if err != nil || !strings.HasPrefix(body, "web-") {
				lost.Add(1)
				mu.Lock()
				failures = append(failures, fmt.Sprintf("%s: %v %q", time.Now().Format("15:04:05.000"), err, body))
				mu.Unlock()
			}
		}
	}()
	stopProbe := func() {
		select {
		case <-stop:
		default:
			close(stop)
			<-probed
		}
	}
	defer stopProbe()
	// The probe must work before the upgrade, or its silence would prove nothing.
	for deadline := time.Now().Add(30 * time.Second); sent.Load()-lost.Load() < 4; time.Sleep(250 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("the workload does not answer at %s before the upgrade: %v", url, failures)
		}
	}
	mu.Lock()
	failures, before := nil, lost.Load()
	mu.Unlock()

	configure(toVersion, to)
	r := kforge(t, nil, "", "-c", dir, "plan", "--detailed-exitcode")
	changes := planChanges(r.stdout)
	for i := range 4 {
		want := "~   binary /usr/local/bin/kubelet  (kubelet " + labtest.UpgradeFrom + " -> kubelet " + toVersion
		if r.code != 2 || !slices.ContainsFunc(changes[l.Hosts[i].Name], func(c string) bool { return strings.HasPrefix(c, want) }) {
			t.Fatalf("upgrade plan: no %q for %s (exit %d)\n%s%s", want, l.Hosts[i].Name, r.code, r.stdout, r.stderr)
		}
	}
	// The plan says in which order: the control plane's host, then the workers one at a time, each drained first.
	h := func(i int) string { return l.Hosts[i].Name }
	order := fmt.Sprintf("Order of apply:\n  1. etcd hosts: %s\n     drained first, uncordoned once Ready: %[1]s\n"+
		"  2. other hosts, one at a time: %s, %s, %s\n     drained first, uncordoned once Ready: %[2]s, %[3]s, %[4]s\n", h(0), h(1), h(2), h(3))
	if !strings.HasSuffix(r.stdout, order) {
		t.Errorf("upgrade plan: want it to end with\n%s\n%s", order, r.stdout)
	}

	// The upgrade, killed once a worker's node is drained and its kubelet is being replaced.
	bin := filepath.Join(t.TempDir(), "kforge")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("build: %v %s", err, out)
	}
	cmd := exec.Command(bin, "-c", dir, "apply", "--auto-approve")
	stdout, _ := cmd.StdoutPipe()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var log []string
	killedOn := ""
	kubeletOnWorker := regexp.MustCompile(`^\S+  (\S+)\s+update binary /usr/local/bin/kubelet …$`)
	sc := bufio.NewScanner(stdout)
	for sc.Scan() {
		log = append(log, sc.Text())
		if m := kubeletOnWorker.FindStringSubmatch(sc.Text()); m != nil && m[1] != l.Hosts[0].Name {
			killedOn = m[1]
			cmd.Process.Kill()
			break
		}
	}
	cmd.Wait()
	if killedOn == "" {
		t.Fatalf("the upgrade ended before a worker's kubelet was replaced:\n%s", strings.Join(log, "\n"))
	}
	st, err := state.Load(filepath.Join(dir, ".kforge"))
	if err != nil || !st.Drained[killedOn] {
		t.Errorf("state after the kill: %s not recorded as drained (%v, %v)", killedOn, st.Drained, err)
	}
	if got := onHost(t, l, 0, kubectl+"get node "+killedOn+" -o jsonpath={.spec.unschedulable}"); got != "true" {
		t.Errorf("%s after the kill: unschedulable %q, want cordoned", killedOn, got)
	}
	r = kforge(t, nil, "", "-c", dir, "plan")
	if !strings.Contains(r.stdout, "~   node "+killedOn+"  (uncordon: an earlier apply drained it and did not finish)") {
		t.Errorf("plan after the kill does not uncordon %s:\n%s", killedOn, r.stdout)
	}
	r = kforge(t, nil, "", "-c", dir, "apply", "--auto-approve")
	if r.code != 0 {
		t.Fatalf("the upgrade, run again: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	log = append(log, strings.Split(r.stdout, "\n")...)
	stopProbe()

	// Drains went one node at a time: each drain's uncordon comes before the next drain.
	open := ""
	for _, line := range log {
		switch f := strings.Fields(line); {
		case len(f) >= 5 && f[2] == "drain" && f[3] == "node":
			if open != "" && open != killedOn {
				t.Errorf("%s drained while %s was still drained:\n%s", f[4], open, strings.Join(log, "\n"))
			}
			open = f[4]
		case len(f) >= 5 && f[2] == "uncordon" && f[3] == "node" && f[4] == open:
			open = ""
		}
	}
	versions := onHost(t, l, 0, kubectl+"get nodes -o jsonpath='{range .items[*]}{.metadata.name} {.status.nodeInfo.kubeletVersion} {.spec.unschedulable}{\"\\n\"}{end}'")
	upgraded := 0
	for _, line := range strings.Split(versions, "\n") {
		if f := strings.Fields(line); len(f) >= 2 && f[1] == toVersion && (len(f) == 2 || f[2] == "false") { // not cordoned
			upgraded++
		}
	}
	if upgraded != 4 {
		t.Errorf("nodes after the upgrade (want all 4 at %s and schedulable):\n%s", toVersion, versions)
	}
	if got := onHost(t, l, 0, kubectl+"version -o json | grep -c '\"gitVersion\": \""+toVersion+"\"'"); got != "2" {
		t.Errorf("kubectl and the API server at %s: %s", toVersion, onHost(t, l, 0, kubectl+"version"))
	}
	if r := kforge(t, nil, "", "-c", dir, "plan", "--detailed-exitcode"); r.code != 0 {
		t.Errorf("plan after the upgrade: exit %d\n%s", r.code, r.stdout)
	}
	mu.Lock()
	defer mu.Unlock()
	if n := lost.Load() - before; n != 0 {
		t.Errorf("the workload lost %d of %d requests during the upgrade:\n%s", n, sent.Load(), strings.Join(failures, "\n"))
	}
	t.Logf("upgraded %s → %s on 4 nodes, killed once after draining %s and run again: %d requests, none lost",
		labtest.UpgradeFrom, toVersion, killedOn, sent.Load())
}
