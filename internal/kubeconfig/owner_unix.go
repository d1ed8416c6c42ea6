//go:build unix

package kubeconfig

import (
	"errors"
	"io/fs"
	"os"
	"syscall"
)

// keepOwner gives the replaced file its previous owner and group: the atomic write made a new file, owned by
// whoever runs kforge, which under sudo is root. Where the process may not restore them (a group it has left),
// the file is already written and readable by its writer, so that is not an error.
func keepOwner(path string, old fs.FileInfo) error {
	st, ok := old.Sys().(*syscall.Stat_t)
	if !ok || (int(st.Uid) == os.Geteuid() && int(st.Gid) == os.Getegid()) {
		return nil
	}
	if err := os.Lchown(path, int(st.Uid), int(st.Gid)); err != nil && !errors.Is(err, fs.ErrPermission) {
		return err
	}
	return nil
}
