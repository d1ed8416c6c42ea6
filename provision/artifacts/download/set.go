package download

import (
	"archive/tar"
	"cmp"
	"compress/gzip"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"

	"github.com/kforge/kforge/provision/artifacts"
)

// setDir is where the set of these files lives. Its name is a digest of every file's name, path and sha256, so the
// same files find the same set whether they came from the official hosts or a mirror, and a set with a network
// plugin's binary (another artifact) is another set than one without.
func setDir(cacheDir string, arts []Artifact, sums []string) string {
	h := sha256.New()
	for i, a := range arts {
		fmt.Fprintf(h, "%s %s %s\n", a.Name, a.Path, sums[i])
	}
	return filepath.Join(cacheDir, "sets", hex.EncodeToString(h.Sum(nil))[:32])
}

// complete says whether dir is a set: its manifest is written last, so a set with a manifest has every file.
func complete(dir string) bool {
	_, err := os.Stat(filepath.Join(dir, "manifest.json"))
	return err == nil
}

// buildSet lays the files out in a temporary directory beside the set's and renames it into place, so an
// interrupted build leaves no set behind, only a temporary directory that no lookup finds.
func buildSet(cacheDir string, arts []Artifact, sums []string) (string, error) {
	final := setDir(cacheDir, arts, sums)
	if complete(final) {
		return final, nil
	}
	if err := os.MkdirAll(filepath.Dir(final), 0o755); err != nil {
		return "", fmt.Errorf("download: set: %w", err)
	}
	tmp, err := os.MkdirTemp(filepath.Dir(final), ".tmp-")
	if err != nil {
		return "", fmt.Errorf("download: set: %w", err)
	}
	defer os.RemoveAll(tmp) // nothing is left to remove once it is renamed
	m := artifacts.Manifest{}
	for i, a := range arts {
		blob := filepath.Join(cacheDir, "sha256", sums[i])
		files, err := place(tmp, blob, sums[i], a)
		if err != nil {
			return "", fmt.Errorf("download: %s: %w", a.Name, err)
		}
		m.Files = append(m.Files, files...)
		switch a.Name {
		case "kubelet":
			m.Kubernetes = a.Version
		case "etcd":
			m.Etcd = a.Version
		case "containerd":
			m.Containerd = a.Version
		case "flannel":
			m.Flannel = a.Version
		case "kube_router":
			m.KubeRouter = a.Version
		}
	}
	if err := finish(tmp, m); err != nil {
		return "", fmt.Errorf("download: set: %w", err)
	}
	if err := os.Rename(tmp, final); err != nil {
		if complete(final) { // another kforge built the same set meanwhile
			return final, nil
		}
		return "", fmt.Errorf("download: set: %w", err)
	}
	if err := syncDir(filepath.Dir(final)); err != nil {
		return "", fmt.Errorf("download: set: %w", err)
	}
	return final, nil
}

// finish writes the manifest, last, and flushes the directories, so the rename publishes files that are on disk.
func finish(dir string, m artifacts.Manifest) error {
	slices.SortFunc(m.Files, func(a, b artifacts.File) int { return cmp.Compare(a.Path, b.Path) })
	data, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return err
	}
	if err := writeFileAtomic(filepath.Join(dir, "manifest.json"), append(data, '\n'), 0o644); err != nil {
		return err
	}
	for _, sub := range []string{"bin", "cni"} {
		if err := syncDir(filepath.Join(dir, sub)); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return err
		}
	}
	return nil
}

// place puts the files a contributes to the set into dir: the cached file itself, or members of the cached tarball.
func place(dir, blob, sum string, a Artifact) ([]artifacts.File, error) {
	if dest, ok := a.Files[""]; ok {
		size, err := linkOrCopy(blob, filepath.Join(dir, dest))
		return []artifacts.File{{Path: dest, SHA256: sum, Size: size}}, err
	}
	return extract(dir, blob, a.Files)
}

// extract writes the tarball's members named in want (member → path in the set) under dir.
func extract(dir, tarball string, want map[string]string) ([]artifacts.File, error) {
	f, err := os.Open(tarball)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	gz, err := gzip.NewReader(f)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", tarball, err)
	}
	tr := tar.NewReader(gz)
	var out []artifacts.File
	found := map[string]bool{}
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("%s: %w", tarball, err)
		}
		name := path.Clean(hdr.Name) // "./bridge" in the CNI tarball
		dest, ok := want[name]
		if !ok || found[name] || hdr.Typeflag != tar.TypeReg {
			continue
		}
		found[name] = true
		file, err := writeMember(filepath.Join(dir, dest), tr)
		if err != nil {
			return nil, err
		}
		file.Path = dest
		out = append(out, file)
	}
	var missing []string
	for name := range want {
		if !found[name] {
			missing = append(missing, name)
		}
	}
	if len(missing) > 0 {
		slices.Sort(missing)
		return nil, fmt.Errorf("the tarball has no %s", strings.Join(missing, ", "))
	}
	return out, nil
}

func writeMember(dest string, r io.Reader) (artifacts.File, error) {
	if err := os.MkdirAll(filepath.Dir(dest), 0o755); err != nil {
		return artifacts.File{}, err
	}
	out, err := os.OpenFile(dest, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o755)
	if err != nil {
		return artifacts.File{}, err
	}
	h := sha256.New()
	n, err := io.Copy(io.MultiWriter(out, h), r)
	if err == nil {
		err = out.Sync()
	}
	if cerr := out.Close(); err == nil {
		err = cerr
	}
	return artifacts.File{SHA256: hex.EncodeToString(h.Sum(nil)), Size: n}, err
}

// linkOrCopy hard-links the cached file into the set, which costs no space; across file systems it copies.
func linkOrCopy(blob, dest string) (int64, error) {
	if err := os.MkdirAll(filepath.Dir(dest), 0o755); err != nil {
		return 0, err
	}
	if err := os.Link(blob, dest); err == nil {
		st, err := os.Stat(dest)
		if err != nil {
			return 0, err
		}
		return st.Size(), nil
	}
	in, err := os.Open(blob)
	if err != nil {
		return 0, err
	}
	defer in.Close()
	file, err := writeMember(dest, in)
	return file.Size, err
}

func exists(name string) bool {
	_, err := os.Stat(name)
	return err == nil
}

// writeFileAtomic writes through a temporary file in the same directory, so a reader sees the old file or the new
// one, never part of one, even after a crash.
func writeFileAtomic(name string, data []byte, perm fs.FileMode) error {
	dir := filepath.Dir(name)
	f, err := os.CreateTemp(dir, ".tmp-"+filepath.Base(name)+"-")
	if err != nil {
		return err
	}
	_, err = f.Write(data)
	if err == nil {
		err = f.Chmod(perm)
	}
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(f.Name(), name)
	}
	if err != nil {
		os.Remove(f.Name())
		return err
	}
	return syncDir(dir)
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}
