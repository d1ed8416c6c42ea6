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
	if dir := os.Getenv("KFORGE_ARTIFACT_SET"); dir != "" {
		return checkSet(t, dir)
	}
	return ArtifactSetFor(t, "")
}

// UpgradeFrom is the Kubernetes version the upgrade test starts from: the release before the default one, whose
// artifact set make artifacts builds too.
const UpgradeFrom = "v1.37.1"

// ArtifactSetFor is the set of Kubernetes version (the default one when empty), as make artifacts builds it.
func ArtifactSetFor(t testing.TB, version string) string {
	t.Helper()
	_, self, _, _ := runtime.Caller(0)
	script := filepath.Join(filepath.Dir(self), "..", "..", "..", "scripts", "build-artifacts.sh")
	cmd := exec.Command(script, "--print-set")
	if version != "" {
		cmd.Env = append(os.Environ(), "K8S_VERSION="+version)
	}
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("%s --print-set: %v", script, err)
	}
	return checkSet(t, strings.TrimSpace(string(out)))
}

func checkSet(t testing.TB, dir string) string {
	t.Helper()
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
