package kubeconfig_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/kforge/kforge/internal/kubeconfig"
)

func TestWriteMerged(t *testing.T) {
	existing := readFile(t, filepath.Join("testdata", "existing.yaml"))
	tests := []struct {
		name     string
		setup    func(t *testing.T, path string) // nil: no file
		wantMode os.FileMode
		wantErr  string
	}{
		{name: "missing file and directories", wantMode: 0o600},
		{name: "the file's mode is kept", wantMode: 0o640, setup: func(t *testing.T, path string) {
			writeFile(t, path, existing, 0o640)
		}},
		{name: "not a kubeconfig: error, file unchanged", wantErr: `kind is "Pod"`, setup: func(t *testing.T, path string) {
			writeFile(t, path, []byte("apiVersion: v1\nkind: Pod\n"), 0o644)
		}},
		{name: "invalid YAML: error, file unchanged", wantErr: "yaml:", setup: func(t *testing.T, path string) {
			writeFile(t, path, []byte("clusters: [\n"), 0o600)
		}},
		{name: "locked by kubectl: error, file unchanged", wantErr: "is locked by another process", setup: func(t *testing.T, path string) {
			writeFile(t, path, existing, 0o600)
			writeFile(t, path+".lock", nil, 0o600)
		}},
		{name: "a directory: error", wantErr: "is a directory", setup: func(t *testing.T, path string) {
			if err := os.MkdirAll(path, 0o700); err != nil {
				t.Fatal(err)
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "home", ".kube", "config")
			var before []byte
			if tt.setup != nil {
				if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
					t.Fatal(err)
				}
				tt.setup(t, path)
				before, _ = os.ReadFile(path)
			}
			sum, err := kubeconfig.WriteMerged(path, admin("test", server, "2"), kubeconfig.Options{})
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) || !strings.Contains(err.Error(), path) {
					t.Fatalf("error %v, want one naming %s and containing %q", err, path, tt.wantErr)
				}
				if after, _ := os.ReadFile(path); string(after) != string(before) {
					t.Errorf("the file changed:\n%s", after)
				}
				assertNoLeftovers(t, filepath.Dir(path), tt.name)
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !sum.Changed() || sum.CurrentContext != "kubernetes-admin@test" {
				t.Errorf("summary %+v", sum)
			}
			st, err := os.Stat(path)
			if err != nil {
				t.Fatal(err)
			}
			if st.Mode().Perm() != tt.wantMode {
				t.Errorf("mode %v, want %v", st.Mode().Perm(), tt.wantMode)
			}
			if tt.setup == nil {
				dir, _ := os.Stat(filepath.Dir(path))
				if dir.Mode().Perm() != 0o700 {
					t.Errorf("created directory mode %v, want 0700", dir.Mode().Perm())
				}
			}
			checkMerged(t, before, admin("test", server, "2"), readFile(t, path), "kubernetes-admin@test")
			assertNoLeftovers(t, filepath.Dir(path), tt.name)
		})
	}
}

func TestWriteMergedUnchangedLeavesTheFileAlone(t *testing.T) {
	path := filepath.Join(t.TempDir(), "config")
	if _, err := kubeconfig.WriteMerged(path, admin("test", server, "1"), kubeconfig.Options{}); err != nil {
		t.Fatal(err)
	}
	before, _ := os.Stat(path)
	sum, err := kubeconfig.WriteMerged(path, admin("test", server, "1"), kubeconfig.Options{})
	if err != nil {
		t.Fatal(err)
	}
	after, _ := os.Stat(path)
	if sum.Changed() || !os.SameFile(before, after) || !after.ModTime().Equal(before.ModTime()) {
		t.Errorf("an unchanged merge rewrote the file (summary %+v)", sum)
	}
}

func TestWriteMergedFollowsSymlink(t *testing.T) {
	dir := t.TempDir()
	real := filepath.Join(dir, "dotfiles", "kubeconfig")
	link := filepath.Join(dir, "config")
	if err := os.MkdirAll(filepath.Dir(real), 0o700); err != nil {
		t.Fatal(err)
	}
	writeFile(t, real, readFile(t, filepath.Join("testdata", "existing.yaml")), 0o600)
	if err := os.Symlink(real, link); err != nil {
		t.Fatal(err)
	}
	if _, err := kubeconfig.WriteMerged(link, admin("test", server, "2"), kubeconfig.Options{}); err != nil {
		t.Fatal(err)
	}
	if st, _ := os.Lstat(link); st.Mode()&os.ModeSymlink == 0 {
		t.Error("the symlink was replaced by a file")
	}
	if !strings.Contains(string(readFile(t, real)), "k8s.example.internal") {
		t.Error("the link's target was not merged into")
	}
}

func TestDefaultPath(t *testing.T) {
	sep := string(os.PathListSeparator)
	tests := []struct {
		name, kubeconfig, want string
	}{
		{"unset", "", filepath.Join("/home/u", ".kube", "config")},
		{"one file", "/k/a", "/k/a"},
		{"the first of several", "/k/a" + sep + "/k/b", "/k/a"},
		{"empty entries skipped", sep + sep + "/k/b" + sep, "/k/b"},
		{"only separators", sep, filepath.Join("/home/u", ".kube", "config")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			env := func(k string) string {
				if k == "KUBECONFIG" {
					return tt.kubeconfig
				}
				return ""
			}
			if got := kubeconfig.DefaultPath(env, "/home/u"); got != tt.want {
				t.Errorf("got %q, want %q", got, tt.want)
			}
		})
	}
}

func writeFile(t *testing.T, path string, data []byte, mode os.FileMode) {
	t.Helper()
	if err := os.WriteFile(path, data, mode); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(path, mode); err != nil { // WriteFile's mode is masked by the umask
		t.Fatal(err)
	}
}

// assertNoLeftovers fails on temporary files, and on a lock file the test did not put there itself.
func assertNoLeftovers(t *testing.T, dir, name string) {
	t.Helper()
	entries, _ := os.ReadDir(dir)
	for _, e := range entries {
		switch {
		case e.Name() == "config":
		case e.Name() == "config.lock" && strings.Contains(name, "locked"):
		default:
			t.Errorf("left behind: %s", e.Name())
		}
	}
}
