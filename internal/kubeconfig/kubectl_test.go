package kubeconfig_test

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"testing"

	"github.com/kforge/kforge/internal/kubeconfig"
)

// TestKubectlReadsMerged checks the merged files with the real reader, kubectl (client-go), which rejects what
// a YAML library would accept: duplicate names, wrong kinds, mistyped fields.
func TestKubectlReadsMerged(t *testing.T) {
	found, _ := filepath.Glob("/var/cache/kforge/artifacts/*/bin/kubectl")
	if len(found) == 0 {
		t.Skip("no kubectl under /var/cache/kforge/artifacts/*/bin (run kforge's artifact download to get one)")
	}
	kubectl := found[len(found)-1]
	existing := readFile(t, filepath.Join("testdata", "existing.yaml"))
	tests := []struct {
		name     string
		existing []byte
		clusters []string
	}{
		{"fresh", nil, []string{"test"}},
		{"realistic", existing, []string{"kind-dev", "arn:aws:eks:eu-west-1:123456789012:cluster/prod", "test"}},
		{"JSON", []byte(`{"kind":"Config","apiVersion":"v1","clusters":[{"name":"a","cluster":{"server":"https://a:6443"}}]}`), []string{"a", "test"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "config")
			if tt.existing != nil {
				writeFile(t, path, tt.existing, 0o600)
			}
			if _, err := kubeconfig.WriteMerged(path, admin("test", server, "2"), kubeconfig.Options{}); err != nil {
				t.Fatal(err)
			}
			cmd := exec.Command(kubectl, "--kubeconfig", path, "config", "view", "-o", "json")
			cmd.Env = append(os.Environ(), "KUBECONFIG=") // the test's file only
			out, err := cmd.Output()
			if err != nil {
				t.Fatalf("kubectl config view: %v\n%s", err, exitStderr(err))
			}
			var view struct {
				Clusters       []struct{ Name string }
				Users          []struct{ Name string }
				Contexts       []struct{ Name string }
				CurrentContext string `json:"current-context"`
			}
			if err := json.Unmarshal(out, &view); err != nil {
				t.Fatalf("%v in %s", err, out)
			}
			var clusters []string
			for _, c := range view.Clusters {
				clusters = append(clusters, c.Name)
			}
			slices.Sort(clusters)
			want := slices.Sorted(slices.Values(tt.clusters))
			if !slices.Equal(clusters, want) || view.CurrentContext != "kubernetes-admin@test" {
				t.Errorf("kubectl sees clusters %v and current-context %q, want %v and kubernetes-admin@test", clusters, view.CurrentContext, want)
			}
		})
	}
}

func exitStderr(err error) []byte {
	if ee, ok := err.(*exec.ExitError); ok {
		return ee.Stderr
	}
	return nil
}
