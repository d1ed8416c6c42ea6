//go:build unix

package kubeconfig_test

import (
	"os"
	"path/filepath"
	"syscall"
	"testing"

	"github.com/kforge/kforge/internal/kubeconfig"
)

// TestWriteMergedKeepsOwner is the `sudo kforge kubeconfig --merge` case: the user's file must stay theirs.
func TestWriteMergedKeepsOwner(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("only root can give a file another owner")
	}
	path := filepath.Join(t.TempDir(), "config")
	writeFile(t, path, readFile(t, filepath.Join("testdata", "existing.yaml")), 0o600)
	if err := os.Chown(path, 4242, 4343); err != nil {
		t.Fatal(err)
	}
	if _, err := kubeconfig.WriteMerged(path, admin("test", server, "2"), kubeconfig.Options{}); err != nil {
		t.Fatal(err)
	}
	st, _ := os.Stat(path)
	if sys, ok := st.Sys().(*syscall.Stat_t); !ok || sys.Uid != 4242 || sys.Gid != 4343 {
		t.Errorf("owner %+v, want 4242:4343", st.Sys())
	}
}
