// Package artifacts reads a set of binaries kforge installs (a directory with a manifest of sha256 sums, as
// `make artifacts` writes or an airgapped site provides) and turns its files into binary resources.
package artifacts

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strings"

	"github.com/kforge/kforge/config"
	"github.com/kforge/kforge/provision/resource"
)

// Manifest is manifest.json: the versions in the set and every file with its digest.
type Manifest struct {
	Kubernetes string `json:"kubernetes"`
	Etcd       string `json:"etcd"`
	Containerd string `json:"containerd"`
	// The pod-network plugins' versions, for sets that carry them (bin/flanneld, bin/kube-router).
	Flannel    string `json:"flannel,omitempty"`
	KubeRouter string `json:"kube_router,omitempty"`
	// PauseImage names the sandbox image: one of Images (or, in sets without Images, the one in images/pause.tar).
	PauseImage string `json:"pause_image,omitempty"`
	// DNSImage names the cluster DNS (CoreDNS) image: one of Images; empty in sets that ship none (downloads).
	DNSImage string `json:"dns_image,omitempty"`
	// Images are container image tarballs (OCI layout) that nodes import into containerd.
	Images []Image `json:"images,omitempty"`
	Files  []File  `json:"files"`
}

// Image is a container image tarball of the set and the name it carries.
type Image struct {
	Name string `json:"name"`
	Path string `json:"path"`
}

// ImageTarballs lists the set's images; a set from before the images list has its pause image only.
func (m Manifest) ImageTarballs() []Image {
	if len(m.Images) == 0 && m.PauseImage != "" {
		return []Image{{Name: m.PauseImage, Path: "images/pause.tar"}}
	}
	return m.Images
}

// File is one file of the set.
type File struct {
	Path   string `json:"path"`
	SHA256 string `json:"sha256"`
	Size   int64  `json:"size"`
}

// Set is a loaded artifact directory.
type Set struct {
	Dir      string
	Manifest Manifest
	byPath   map[string]File
}

// Load reads dir/manifest.json. Files are verified when they are sent, not here: reading 600 MB on every plan
// would make plans slow, and a changed file is caught before it reaches a host.
func Load(dir string) (*Set, error) {
	data, err := os.ReadFile(filepath.Join(dir, "manifest.json"))
	if err != nil {
		return nil, fmt.Errorf("artifacts: %w (make artifacts builds a set)", err)
	}
	s := &Set{Dir: dir, byPath: map[string]File{}}
	if err := json.Unmarshal(data, &s.Manifest); err != nil {
		return nil, fmt.Errorf("artifacts: %s: %w", filepath.Join(dir, "manifest.json"), err)
	}
	if err := s.Manifest.checkImages(); err != nil {
		return nil, fmt.Errorf("artifacts: %s: %w", filepath.Join(dir, "manifest.json"), err)
	}
	for _, f := range s.Manifest.Files {
		s.byPath[f.Path] = f
	}
	return s, nil
}

// imagePath is a tarball's path in the set: the nodes get it under its base name, in a unit's command line.
var imagePath = regexp.MustCompile(`^[A-Za-z0-9_][A-Za-z0-9._-]*(/[A-Za-z0-9_][A-Za-z0-9._-]*)*$`)

// checkImages refuses image names and tarball paths that would not stay what they are in the unit that imports
// the images and the health check that looks for them (a shell script): a set may come from another machine.
func (m Manifest) checkImages() error {
	for _, name := range []string{m.PauseImage, m.DNSImage} {
		if name != "" && !config.IsImageReference(name) {
			return fmt.Errorf("image name %q is not a container image reference", name)
		}
	}
	for _, img := range m.Images {
		if !config.IsImageReference(img.Name) {
			return fmt.Errorf("image name %q is not a container image reference", img.Name)
		}
		if !imagePath.MatchString(img.Path) {
			return fmt.Errorf("image %s: path %q must be relative, of letters, digits, '.', '_', '-' and '/'", img.Name, img.Path)
		}
	}
	return nil
}

// Has reports whether the set has the file at path: for files that sets made by an older kforge lack.
func (s *Set) Has(path string) bool {
	_, ok := s.byPath[path]
	return ok
}

// Binary returns a resource that installs the set's file at dest, described as version.
func (s *Set) Binary(path, dest, version string) (resource.Resource, error) {
	f, ok := s.byPath[path]
	if !ok {
		return resource.Resource{}, fmt.Errorf("artifacts: %s has no %s", s.Dir, path)
	}
	if len(f.SHA256) != 64 || strings.Trim(f.SHA256, "0123456789abcdef") != "" {
		return resource.Resource{}, fmt.Errorf("artifacts: %s: the manifest's sha256 for %s is not a sha256", s.Dir, path)
	}
	full := filepath.Join(s.Dir, path)
	// The upload checks the stream against the manifest's digest, so a file changed since the manifest was
	// written never lands on a host.
	return resource.Resource{Kind: resource.Binary, Name: dest, SHA256: f.SHA256, Size: f.Size, Mode: 0o755, Version: version,
		Open: func() (io.ReadCloser, error) { return os.Open(full) }}, nil
}

// Check reads every file of the set and compares it with the manifest (for `make artifacts` and tests).
func (s *Set) Check() error {
	for _, f := range s.Manifest.Files {
		fh, err := os.Open(filepath.Join(s.Dir, f.Path))
		if err != nil {
			return err
		}
		h := sha256.New()
		_, err = io.Copy(h, fh)
		fh.Close()
		if err != nil {
			return err
		}
		if got := hex.EncodeToString(h.Sum(nil)); got != f.SHA256 {
			return fmt.Errorf("artifacts: %s has sha256 %s, the manifest says %s", f.Path, got, f.SHA256)
		}
	}
	return nil
}
