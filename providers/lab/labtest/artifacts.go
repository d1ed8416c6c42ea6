package labtest

import (
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
)

// ArtifactSet is the artifact set that lab clusters install: $KFORGE_ARTIFACT_SET, or the one `make artifacts`
// builds (make test and make bench build it first).
func ArtifactSet(t testing.TB) string {
	t.Helper()
	dir := os.Getenv("KFORGE_ARTIFACT_SET")
	if dir == "" {
		_, self, _, _ := runtime.Caller(0)
		script := filepath.Join(filepath.Dir(self), "..", "..", "..", "scripts", "build-artifacts.sh")
		out, err := exec.Command(script, "--print-set").Output()
		if err != nil {
			t.Fatalf("%s --print-set: %v", script, err)
		}
		dir = strings.TrimSpace(string(out))
	}
	if _, err := os.Stat(filepath.Join(dir, "manifest.json")); err != nil {
		t.Fatalf("no artifact set at %s: run make artifacts (make test and make bench do): %v", dir, err)
	}
	return dir
}

// ClusterSettings go inside the cluster block of a lab cluster that runs Kubernetes, as in examples/lab: lab
// hosts are containers on a cgroup v1 machine, whose root may not lower OOM scores nor resize the conntrack
// table, and the lab has no DNS, so cluster DNS answers cluster names only.
const ClusterSettings = `kubelet {
    fail_cgroup_v1 = false
  }
  containerd {
    restrict_oom_score_adj = true
  }
  kube_proxy {
    conntrack_max_per_core = 0
  }
  dns {
    upstream = []
  }`
