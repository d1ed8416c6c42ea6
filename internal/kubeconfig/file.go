package kubeconfig

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/kforge/kforge/internal/atomicfile"
)

// DefaultPath is the kubeconfig a merge writes to: the first path in $KUBECONFIG (empty entries skipped), else
// home/.kube/config. The environment and home come in as arguments so that tests and callers decide them.
func DefaultPath(env func(string) string, home string) string {
	for _, p := range filepath.SplitList(env("KUBECONFIG")) {
		if p != "" {
			return p
		}
	}
	return filepath.Join(home, ".kube", "config")
}

// WriteMerged merges add into the kubeconfig at path (see Merge) and replaces the file atomically. A missing
// file is created 0600 (it will hold a private key) in parent directories created 0700; an existing file keeps
// its mode and, where the process may set it, its owner, so that `sudo kforge` does not take a user's kubeconfig
// away from them. A symlink is followed, so a kubeconfig kept in a dotfiles repository stays where it is. The
// file is not touched when the merge changes nothing, or when it fails.
func WriteMerged(path string, add []byte, opts Options) (Summary, error) {
	target, err := followLink(path)
	if err != nil {
		return Summary{}, err
	}
	if err := os.MkdirAll(filepath.Dir(target), 0o700); err != nil {
		return Summary{}, fmt.Errorf("create the directory of %s: %w", path, err)
	}
	unlock, err := lock(path)
	if err != nil {
		return Summary{}, err
	}
	defer unlock()

	mode := os.FileMode(0o600)
	var info fs.FileInfo
	existing, err := os.ReadFile(target)
	switch {
	case err == nil:
		if info, err = os.Stat(target); err != nil {
			return Summary{}, err
		}
		mode = info.Mode().Perm()
	case errors.Is(err, fs.ErrNotExist):
	default:
		return Summary{}, fmt.Errorf("read kubeconfig: %w", err)
	}

	merged, sum, err := Merge(existing, add, opts)
	if err != nil {
		return Summary{}, fmt.Errorf("%s: %w", path, err)
	}
	if info != nil && bytes.Equal(merged, existing) {
		return sum, nil
	}
	if err := atomicfile.Write(target, merged, mode); err != nil {
		return Summary{}, fmt.Errorf("write kubeconfig %s: %w", path, err)
	}
	if info != nil {
		if err := keepOwner(target, info); err != nil {
			return sum, fmt.Errorf("write kubeconfig %s: %w", path, err)
		}
	}
	return sum, nil
}

func followLink(path string) (string, error) {
	info, err := os.Lstat(path)
	if err != nil || info.Mode()&fs.ModeSymlink == 0 {
		return path, nil // a missing file is created where it was asked for; other errors surface on reading
	}
	target, err := filepath.EvalSymlinks(path)
	if err != nil {
		return "", fmt.Errorf("kubeconfig %s is a symlink that does not resolve: %w", path, err)
	}
	return target, nil
}

// lock takes the lock kubectl (client-go) and kind take on a kubeconfig they write, PATH.lock, so that a
// concurrent `kubectl config use-context` cannot lose our write or we its. Like client-go, it does not wait: a
// held lock is an error naming the file to delete if it is stale.
func lock(path string) (unlock func(), err error) {
	name := path + ".lock"
	f, err := os.OpenFile(name, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600)
	if errors.Is(err, fs.ErrExist) {
		return nil, fmt.Errorf("kubeconfig %s is locked by another process (kubectl?); if none is running, delete %s", path, name)
	}
	if err != nil {
		return nil, fmt.Errorf("lock kubeconfig %s: %w", path, err)
	}
	f.Close()
	return func() { os.Remove(name) }, nil
}
