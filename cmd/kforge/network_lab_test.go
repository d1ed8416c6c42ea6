package main

import (
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/kforge/kforge/config"
	"github.com/kforge/kforge/providers/lab"
	"github.com/kforge/kforge/providers/lab/labtest"
	"github.com/kforge/kforge/provision/desired"
)

// TestPodNetworkPluginsOnALab runs the end-to-end pod checks on a 3-node lab cluster with each plugin that learns
// the nodes from the API (routes, the default, is TestComponentsOnALab's): pod to pod across nodes, the
// kubernetes Service's address and cluster DNS; with kube-router, NetworkPolicy; then a fourth node joins with
// changes only on it and the control plane's API objects, and its pods reach the others'; switching the plugin
// is refused; destroy leaves nothing of the plugin's. make test runs it; `make test-network` runs it alone.
func TestPodNetworkPluginsOnALab(t *testing.T) {
	for _, plugin := range []string{config.PluginFlannel, config.PluginKubeRouter} {
		t.Run(plugin, func(t *testing.T) { pluginScenario(t, plugin) })
	}
}

func pluginScenario(t *testing.T, plugin string) {
	l := labFixture.Get(t)
	cleanComponents(t, l)
	t.Cleanup(func() { cleanPlugins(t, l) })
	set := labtest.ArtifactSet(t)
	artifacts := "\nartifacts {\n  source = \"local\"\n  dir    = \"" + set + "\"\n}\n"
	extra := labtest.ClusterSettings + "\n  network {\n    plugin = \"" + plugin + "\"\n  }"
	dir := t.TempDir()
	writeLabConfig(t, dir, l, clusterHosts, extra, artifacts)
	if r := kforge(t, nil, "", "-c", dir, "apply", "--auto-approve"); r.code != 0 || !strings.Contains(r.stdout, "All 3 nodes are Ready") ||
		!strings.Contains(r.stdout, "Cluster DNS is available") {
		t.Fatalf("apply: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	waitNodesReady(t, l, clusterHosts)
	for i := range l.Hosts[:clusterHosts] {
		// No route of kforge's (proto 200): the plugin routes.
		if got := onHost(t, l, i, "systemctl is-active "+desired.PluginUnit(config.Network{Plugin: plugin})+"; ip route show proto 200; test -e /etc/systemd/system/kforge-routes.service && echo routes unit; true"); got != "active" {
			t.Errorf("%s on %s: %q", plugin, l.Hosts[i].Name, got)
		}
	}
	if plugin == config.PluginFlannel {
		if got := onHost(t, l, 1, "ip -d link show flannel.1 | grep -o 'vxlan id 1' || true"); !strings.HasPrefix(got, "vxlan id 1") {
			t.Errorf("flannel.1 on %s: %q", l.Hosts[1].Name, got)
		}
	}

	// Pods on two workers, and the checks of the default plugin's scenario.
	if runPod(t, l, "hello", l.Hosts[1].Name, "/bin/sh", "-c", "exec sleep 3600") == "" {
		t.FailNow()
	}
	ip := runPod(t, l, "server", l.Hosts[2].Name)
	if ip == "" {
		t.FailNow()
	}
	if got := podFetch(t, l, "hello", ip); got != "server" {
		t.Errorf("pod to pod across nodes (%s to %s, %s): %q", l.Hosts[1].Name, l.Hosts[2].Name, ip, got)
	} else {
		t.Logf("%s: pod hello on %s fetched http://%s:8080/ from server on %s", plugin, l.Hosts[1].Name, ip, l.Hosts[2].Name)
	}
	if got := podToService(t, l, "hello"); got != "0" {
		t.Errorf("pod to the kubernetes Service: nc exit %s", got)
	}
	clusterDNS(t, l)
	if plugin == config.PluginKubeRouter {
		networkPolicy(t, l, ip)
	}

	// A fourth node: only it and the control plane's API objects change, and its pods reach the others'.
	newHost := l.Hosts[3].Name
	writeLabConfig(t, dir, l, 4, extra, artifacts)
	r := kforge(t, nil, "", "-c", dir, "plan", "--detailed-exitcode")
	changes := planChanges(r.stdout)
	if r.code != 2 || len(changes) != 2 || !slices.Equal(changes[l.Hosts[0].Name], objectsChanged) || len(changes[newHost]) < 40 {
		t.Fatalf("plan adding %s: exit %d, changes %q\n%s%s", newHost, r.code, changes, r.stdout, r.stderr)
	}
	if r := kforge(t, nil, "", "-c", dir, "apply", "--auto-approve"); r.code != 0 || !strings.Contains(r.stdout, "All 4 nodes are Ready") {
		t.Fatalf("apply adding %s: exit %d\n%s%s", newHost, r.code, r.stdout, r.stderr)
	}
	if runPod(t, l, "newcomer", newHost, "/bin/sh", "-c", "exec sleep 3600") != "" {
		// kube-router peers with the new node at its next sync (20 s) after the node has an address.
		if got := waitFetch(t, l, "newcomer", ip, true); got != "server" {
			t.Errorf("from the new node %s to server on %s: %q", newHost, l.Hosts[2].Name, got)
		} else {
			t.Logf("%s: pod newcomer on the new node %s fetched from server on %s; the other nodes were not touched", plugin, newHost, l.Hosts[2].Name)
		}
	}
	if r := kforge(t, nil, "", "-c", dir, "plan", "--detailed-exitcode"); r.code != 0 || !strings.Contains(r.stdout, "No changes.") {
		t.Errorf("plan after adding %s: exit %d\n%s", newHost, r.code, r.stdout)
	}

	// Another plugin on the running cluster is refused before anything is planned.
	other := strings.Replace(extra, `plugin = "`+plugin+`"`, `plugin = "routes"`, 1)
	writeLabConfig(t, dir, l, 4, other, artifacts)
	if r := kforge(t, nil, "", "-c", dir, "plan"); r.code != 1 || !strings.Contains(r.stderr, `network plugin "routes": this cluster's pods are networked by "`+plugin+`"`) ||
		!strings.Contains(r.stderr, "cluster.hcl:") {
		t.Errorf("switching to routes: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}

	// The fourth node leaves: again only it and the API objects change, and the plugin cleans up after itself on
	// its host as kforge removes it.
	onHost(t, l, 0, kubectl+"delete pod newcomer --now --wait=true")
	writeLabConfig(t, dir, l, clusterHosts, extra, artifacts)
	r = kforge(t, nil, "", "-c", dir, "plan", "--detailed-exitcode")
	changes = planChanges(r.stdout)
	if r.code != 2 || len(changes) != 2 || !slices.Equal(changes[l.Hosts[0].Name], objectsChanged) {
		t.Fatalf("plan removing %s: exit %d, changes %q\n%s%s", newHost, r.code, changes, r.stdout, r.stderr)
	}
	for _, c := range changes[newHost] {
		if !strings.HasPrefix(c, "-") {
			t.Errorf("on the removed host %s, not a removal: %s", newHost, c)
		}
	}
	if r := kforge(t, nil, "", "-c", dir, "apply", "--auto-approve"); r.code != 0 {
		t.Fatalf("apply removing %s: exit %d\n%s%s", newHost, r.code, r.stdout, r.stderr)
	}
	noPluginLeft(t, l, 3, plugin)
	if r := kforge(t, nil, "", "-c", dir, "plan", "--detailed-exitcode"); r.code != 0 {
		t.Errorf("plan after removing %s: exit %d\n%s", newHost, r.code, r.stdout)
	}

	onHost(t, l, 0, kubectl+"delete pod hello server --now --wait=true; "+kubectl+"delete service server --ignore-not-found")
	r = kforge(t, nil, "", "-c", dir, "destroy", "--auto-approve", "--purge-data")
	if r.code != 0 {
		t.Fatalf("destroy: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	if plugin == config.PluginFlannel && !strings.Contains(r.stdout, "-   link flannel.1  (--purge-data: the pod network's interface)") {
		t.Errorf("destroy --purge-data does not delete flannel.1:\n%s", r.stdout)
	}
	for i := range l.Hosts[:clusterHosts] {
		noPluginLeft(t, l, i, plugin)
		if got := onHost(t, l, i, "ls /sys/class/net | grep -c '^cni0$' || true"); got != "0" {
			t.Errorf("cni0 left on %s after destroy --purge-data", l.Hosts[i].Name)
		}
	}
}

// noPluginLeft: nothing of the plugin's is left on host i: no binary, interface, firewall chain, ipset or route
// (each plugin's unit removes what it made when kforge disables and stops it).
func noPluginLeft(t *testing.T, l *lab.Lab, i int, plugin string) {
	t.Helper()
	if got := onHost(t, l, i, "systemctl is-active "+desired.PluginUnit(config.Network{Plugin: plugin})+"; ls /usr/local/bin; ls /sys/class/net | grep '^flannel'; "+
		"iptables-save | grep -E 'FLANNEL|KUBE-ROUTER'; ipset list -n | grep -i kube-router; ip route show proto 17; ls /run/flannel 2>/dev/null; true"); got != "inactive" {
		t.Errorf("left on %s after kforge removed it: %q", l.Hosts[i].Name, got)
	}
}

// networkPolicy: a deny-all ingress policy on the server pod stops the client on another node; a rule allowing
// the client's label on port 8080 lets it through again; without policies it is open.
func networkPolicy(t *testing.T, l *lab.Lab, serverIP string) {
	t.Helper()
	apply := func(yaml string) { onHost(t, l, 0, kubectl+"apply -f - <<'EOF'\n"+yaml+"EOF") }
	apply(`apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata:
  name: deny-all
spec:
  podSelector:
    matchLabels:
      app: server
  policyTypes: [Ingress]
`)
	if got := waitFetch(t, l, "hello", serverIP, false); got == "server" {
		t.Errorf("deny-all: hello still fetched from server; kube-router on %s:\n%s", l.Hosts[2].Name, policyState(t, l, 2))
	} else {
		t.Logf("kube-router: with deny-all on server, hello's fetch fails: %q", got)
	}
	apply(`apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata:
  name: allow-hello
spec:
  podSelector:
    matchLabels:
      app: server
  policyTypes: [Ingress]
  ingress:
    - from:
        - podSelector:
            matchLabels:
              app: hello
      ports:
        - protocol: TCP
          port: 8080
`)
	if got := waitFetch(t, l, "hello", serverIP, true); got != "server" {
		t.Errorf("allow-hello: %q; kube-router on %s:\n%s", got, l.Hosts[2].Name, policyState(t, l, 2))
	} else {
		t.Logf("kube-router: allow-hello lets hello fetch from server again")
	}
	onHost(t, l, 0, kubectl+"delete networkpolicy deny-all allow-hello")
	if got := waitFetch(t, l, "hello", serverIP, true); got != "server" {
		t.Errorf("policies deleted: %q", got)
	}
}

// waitFetch asks until pod's fetch from the server succeeds (or fails, with !want), 2 s apart, for 150 s at most
// (a fetch that times out takes 10 s): policies reach every node's firewall, and routes to a new node every other
// node, a moment after the API has them. It logs how long that took.
func waitFetch(t *testing.T, l *lab.Lab, pod, ip string, want bool) string {
	t.Helper()
	got, start := "", time.Now()
	for time.Since(start) < 150*time.Second {
		if got = podFetch(t, l, pod, ip); (got == "server") == want {
			t.Logf("%s's fetch from %s %s after %.0f s", pod, ip, map[bool]string{true: "succeeded", false: "failed"}[want], time.Since(start).Seconds())
			return got
		}
		time.Sleep(2 * time.Second)
	}
	return got
}

// policyState is what kube-router on host i made of the policies: its log and its policy chains and sets.
func policyState(t *testing.T, l *lab.Lab, i int) string {
	t.Helper()
	return onHost(t, l, i, "journalctl -u kube-router.service --no-pager -o cat --since=-5min | grep -v '^I' | tail -20; "+
		"iptables-save | grep -E 'KUBE-NWPLCY|KUBE-POD-FW' | tail -30; ipset list -n | grep -E 'KUBE-(SRC|DST)'")
}

// cleanPlugins stops the plugins a failed test left running on the lab's hosts (kube-router removes its firewall
// chains, ipsets and routes as it goes) and deletes flannel's interface, so that the next test starts clean.
func cleanPlugins(t *testing.T, l *lab.Lab) {
	for i := range l.Hosts {
		onHost(t, l, i, "systemctl disable --now flanneld.service kube-router.service 2>/dev/null; ip link delete dev flannel.1 2>/dev/null; true")
	}
}
