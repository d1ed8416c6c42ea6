package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/kforge/kforge/config"
	"github.com/kforge/kforge/provision/plan"
	"github.com/kforge/kforge/provision/state"
)

// TestSwitchingPluginsIsRefused: a configuration whose network plugin differs from the one the state says the
// nodes run is refused before anything is planned, pointing at the plugin's line; the same plugin, or a state
// without nodes, plans.
func TestSwitchingPluginsIsRefused(t *testing.T) {
	dir := t.TempDir()
	src := "cluster \"x\" {\n  network {\n    plugin = \"flannel\"\n  }\n}\nhost \"a\" {\n  address = \"198.18.0.10\"\n  roles = [\"control-plane\", \"etcd\", \"worker\"]\n}\n"
	if err := os.WriteFile(filepath.Join(dir, "cluster.hcl"), []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	c, diags := config.NewLoader().Load(config.Options{Path: dir})
	if diags.HasErrors() {
		t.Fatal(diags)
	}
	unit := func(name string) []plan.Managed {
		return []plan.Managed{{ID: "unit:" + name, Kind: "unit", Name: name}}
	}
	for _, tc := range []struct {
		hosts map[string][]plan.Managed
		want  string // "" plans
	}{
		{nil, ""},
		{map[string][]plan.Managed{"a": unit("flanneld.service")}, ""},
		{map[string][]plan.Managed{"a": unit("kforge-routes.service")},
			filepath.Join(dir, "cluster.hcl") + `:3:14: network plugin "flannel": this cluster's pods are networked by "routes" (host a runs it)`},
		{map[string][]plan.Managed{"a": {{Kind: "file", Name: "/etc/kubernetes/kubelet.conf"}}, "b": unit("kube-router.service")},
			`networked by "kube-router" (host b runs it)`},
	} {
		s := &session{cluster: c, state: &state.State{Hosts: tc.hosts}}
		err := s.samePlugin()
		if tc.want == "" && err != nil || tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)) {
			t.Errorf("state %v: %v, want %q", tc.hosts, err, tc.want)
		}
	}
}
