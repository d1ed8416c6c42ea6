package desired

import (
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/kforge/kforge/config"
	"github.com/kforge/kforge/pki"
	"github.com/kforge/kforge/provision/artifacts"
	"github.com/kforge/kforge/provision/plan"
	"github.com/kforge/kforge/provision/resource"
)

// fullSet is a set with every file Build places (made-up sums), and both plugins.
func fullSet(t *testing.T) *artifacts.Set {
	t.Helper()
	set := setOf(t, "bin/kube-apiserver", "bin/kube-controller-manager", "bin/kube-scheduler", "bin/kubelet", "bin/kube-proxy",
		"bin/kubectl", "bin/etcd", "bin/etcdctl", "bin/etcdutl", "bin/containerd", "bin/containerd-shim-runc-v2", "bin/ctr", "bin/runc",
		"cni/bridge", "cni/host-local", "cni/loopback", "cni/portmap", "bin/flanneld", "bin/kube-router")
	set.Manifest.Flannel, set.Manifest.KubeRouter = "v0.28.11", "v2.1.0"
	return set
}

// digest is what a plan compares of a resource: its kind, name, content and settings.
func digest(r resource.Resource) string {
	return fmt.Sprintf("%s %s %x %s %o %v %v %s", r.Kind, r.Name, r.Content, r.SHA256, r.Mode, r.Enabled, r.Active, r.Health)
}

// TestAddingANodeTouchesOnlyIt: with a plugin that learns the nodes from the API, adding a worker changes
// nothing on the other hosts but the control planes' API objects (its Node object); with routes, every node
// gets a route to the new one. This is the property `make bench` measures on a lab cluster.
func TestAddingANodeTouchesOnlyIt(t *testing.T) {
	for _, plugin := range config.NetworkPlugins {
		t.Run(plugin, func(t *testing.T) {
			full := haCluster(t)
			full.Network.Plugin = plugin
			last := full.Hosts[len(full.Hosts)-1]
			if !last.Has(config.RoleWorker) || last.Has(config.RoleControlPlane) {
				t.Fatalf("the example's last host, %s, is not a plain worker", last.Name)
			}
			smaller := *full
			smaller.Hosts = full.Hosts[:len(full.Hosts)-1]
			store, err := pki.OpenStore(filepath.Join(t.TempDir(), "pki"))
			if err != nil {
				t.Fatal(err)
			}
			set, cidrs := fullSet(t), map[string]string{}
			before := buildAll(t, &smaller, store, set, cidrs)
			after := buildAll(t, full, store, set, cidrs)
			if len(after[last.Name]) == 0 {
				t.Fatalf("the new worker gets nothing")
			}
			var changed []string
			for _, h := range smaller.Hosts {
				was := map[string]string{}
				for _, r := range before[h.Name] {
					was[r.Name] = digest(r)
				}
				for _, r := range after[h.Name] {
					if was[r.Name] != digest(r) {
						changed = append(changed, h.Name+" "+r.Name)
					}
				}
			}
			cps := len(full.HostsWith(config.RoleControlPlane))
			nodes := len(smaller.Hosts) // every host of the example runs a kubelet
			if plugin == config.PluginRoutes {
				if n := countSuffix(changed, "/"+routesUnit); n != nodes {
					t.Errorf("routes: %d of %d nodes get the new route: %v", n, nodes, changed)
				}
				return
			}
			if len(changed) != cps || countSuffix(changed, "/etc/kubernetes/kforge/objects.yaml") != cps {
				t.Errorf("%s: changes on the other hosts %v, want only objects.yaml on the %d control planes", plugin, changed, cps)
			}
		})
	}
}

func countSuffix(list []string, suffix string) int {
	n := 0
	for _, s := range list {
		if strings.HasSuffix(s, suffix) {
			n++
		}
	}
	return n
}

// TestPluginResources: each plugin's node gets its binary, unit and files (restarting it when they change), a
// CNI config of its MTU that leaves masquerading to the plugin, and its credentials; the API gets its RBAC; no
// routes unit. The state tells which plugin a host runs.
func TestPluginResources(t *testing.T) {
	for _, tc := range []struct {
		plugin, unit, bin, mtu string
		files                  []string
	}{
		{config.PluginFlannel, flannelUnit, "/usr/local/bin/flanneld", `"mtu": 1450`, []string{"/etc/kubernetes/flanneld/net-conf.json"}},
		{config.PluginKubeRouter, kubeRouterUnit, "/usr/local/bin/kube-router", `"mtu": 1480`, nil},
	} {
		t.Run(tc.plugin, func(t *testing.T) {
			c := haCluster(t)
			c.Network.Plugin = tc.plugin
			store, err := pki.OpenStore(filepath.Join(t.TempDir(), "pki"))
			if err != nil {
				t.Fatal(err)
			}
			hosts := buildAll(t, c, store, fullSet(t), map[string]string{})
			for _, h := range c.Hosts {
				byName := map[string]resource.Resource{}
				var managed []plan.Managed
				for _, r := range hosts[h.Name] {
					byName[r.Name] = r
					managed = append(managed, plan.Managed{Kind: string(r.Kind), Name: r.Name})
					if err := resource.Owned(r.Kind, r.Name); err != nil {
						t.Errorf("%s: %v", h.Name, err)
					}
				}
				if got := PluginOf(managed); got != tc.plugin {
					t.Errorf("%s: PluginOf = %q", h.Name, got)
				}
				if _, ok := byName[routesUnit]; ok {
					t.Errorf("%s: has the routes unit", h.Name)
				}
				unitID := "unit:" + tc.unit
				for _, name := range append([]string{tc.bin, "/etc/systemd/system/" + tc.unit, podNetworkKubeconfig}, tc.files...) {
					if r, ok := byName[name]; !ok || !slices.Contains(r.Restarts, unitID) {
						t.Errorf("%s: %s: present %v, restarts %v", h.Name, name, ok, r.Restarts)
					}
				}
				stop := byName[pluginDir(tc.unit)+"/stop.sh"]
				if unit := string(byName["/etc/systemd/system/"+tc.unit].Content); stop.Mode != 0o755 || len(stop.Restarts) != 0 ||
					!strings.Contains(unit, "ExecStopPost=-"+stop.Name+"\n") || !strings.Contains(string(stop.Content), "systemctl -q is-enabled "+tc.unit+" && exit 0") {
					t.Errorf("%s: stop script %s (mode %v, restarts %v) or its ExecStopPost:\n%s", h.Name, stop.Name, stop.Mode, stop.Restarts, unit)
				}
				if u := byName[tc.unit]; u.Kind != resource.Unit || !u.Enabled || !u.Active || u.Health == "" {
					t.Errorf("%s: unit %+v", h.Name, u)
				}
				cni := string(byName[cniConfig].Content)
				if !strings.Contains(cni, tc.mtu) || !strings.Contains(cni, `"ipMasq": false`) {
					t.Errorf("%s: CNI config\n%s", h.Name, cni)
				}
				if unit := string(byName["/etc/systemd/system/"+tc.unit].Content); !strings.Contains(unit, h.Name) || !strings.Contains(unit, h.ClusterAddress()) && tc.plugin == config.PluginFlannel {
					t.Errorf("%s: unit names neither the node nor its address:\n%s", h.Name, unit)
				}
				if h.Has(config.RoleControlPlane) {
					objects := string(byName["/etc/kubernetes/kforge/objects.yaml"].Content)
					if strings.Count(objects, "name: kforge:pod-network") != 3 || !strings.Contains(objects, `name: "`+pki.PodNetworkUser+`"`) {
						t.Errorf("%s: objects lack the plugin's RBAC:\n%s", h.Name, objects)
					}
				}
			}
		})
	}
}
