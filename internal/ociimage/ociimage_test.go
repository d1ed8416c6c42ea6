package ociimage

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

// readLayout returns a layout tarball's files by name.
func readLayout(t *testing.T, data []byte) map[string][]byte {
	t.Helper()
	files := map[string][]byte{}
	tr := tar.NewReader(bytes.NewReader(data))
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return files
		}
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(tr)
		files[h.Name] = b
	}
}

func blobOf(t *testing.T, files map[string][]byte, digest string) []byte {
	t.Helper()
	b, ok := files["blobs/sha256/"+strings.TrimPrefix(digest, "sha256:")]
	if !ok {
		t.Fatalf("no blob %s", digest)
	}
	if sum := sha256.Sum256(b); "sha256:"+hex.EncodeToString(sum[:]) != digest {
		t.Fatalf("blob %s has another digest", digest)
	}
	return b
}

// TestTwoImagesShareALayer: a base directory two images use is stored once; each image has its name in the
// index, its config's diff_ids are the digests of the uncompressed layers, modes and symlinks are kept, and the
// same input gives the same bytes.
func TestTwoImagesShareALayer(t *testing.T) {
	base, top := t.TempDir(), t.TempDir()
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(os.MkdirAll(filepath.Join(base, "bin"), 0o755))
	must(os.WriteFile(filepath.Join(base, "bin", "tool"), []byte("#!/bin/sh\n"), 0o755))
	must(syscall.Chmod(filepath.Join(base, "bin", "tool"), 0o4755))
	must(os.Symlink("tool", filepath.Join(base, "bin", "alias")))
	must(os.WriteFile(filepath.Join(top, "app"), []byte("app"), 0o644))
	spec := Spec{Architecture: "amd64", Images: []Image{
		{Name: "example.test/base:1", Layers: []string{base}, Entrypoint: []string{"/bin/tool"}},
		{Name: "example.test/app:2", Layers: []string{base, top}, Cmd: []string{"run"}, User: "1000", Ports: []string{"80/tcp"}},
	}}
	var a, b bytes.Buffer
	must(Write(&a, spec))
	must(Write(&b, spec))
	if !bytes.Equal(a.Bytes(), b.Bytes()) {
		t.Fatal("two writes of the same spec differ")
	}
	files := readLayout(t, a.Bytes())
	if string(files["oci-layout"]) != `{"imageLayoutVersion":"1.0.0"}` {
		t.Errorf("oci-layout: %s", files["oci-layout"])
	}
	blobs := 0
	for n := range files {
		if strings.HasPrefix(n, "blobs/sha256/") && len(n) > len("blobs/sha256/") {
			blobs++
		}
	}
	if blobs != 6 { // 2 layers + 2 configs + 2 manifests
		t.Errorf("%d blobs, want 6 (the shared layer once)", blobs)
	}
	var index struct {
		Manifests []descriptor
	}
	must(json.Unmarshal(files["index.json"], &index))
	if len(index.Manifests) != 2 || index.Manifests[0].Annotations["io.containerd.image.name"] != "example.test/base:1" ||
		index.Manifests[1].Annotations["io.containerd.image.name"] != "example.test/app:2" {
		t.Fatalf("index: %s", files["index.json"])
	}
	var man struct {
		Config descriptor
		Layers []descriptor
	}
	must(json.Unmarshal(blobOf(t, files, index.Manifests[1].Digest), &man))
	var cfg imageConfig
	must(json.Unmarshal(blobOf(t, files, man.Config.Digest), &cfg))
	if cfg.Config.User != "1000" || len(cfg.Config.Cmd) != 1 || len(cfg.RootFS.DiffIDs) != 2 || len(man.Layers) != 2 {
		t.Fatalf("config: %+v, manifest %+v", cfg, man)
	}
	if _, ok := cfg.Config.ExposedPorts["80/tcp"]; !ok {
		t.Errorf("exposed ports: %v", cfg.Config.ExposedPorts)
	}
	zr, err := gzip.NewReader(bytes.NewReader(blobOf(t, files, man.Layers[0].Digest)))
	must(err)
	raw, err := io.ReadAll(zr)
	must(err)
	if sum := sha256.Sum256(raw); "sha256:"+hex.EncodeToString(sum[:]) != cfg.RootFS.DiffIDs[0] {
		t.Errorf("diff_id of the base layer is not its uncompressed digest")
	}
	entries := map[string]*tar.Header{}
	tr := tar.NewReader(bytes.NewReader(raw))
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		must(err)
		entries[h.Name] = h
	}
	if h := entries["bin/tool"]; h == nil || h.Mode&0o4000 == 0 || h.ModTime.Unix() != 0 {
		t.Errorf("bin/tool: %+v", h)
	}
	if h := entries["bin/alias"]; h == nil || h.Typeflag != tar.TypeSymlink || h.Linkname != "tool" {
		t.Errorf("bin/alias: %+v", h)
	}
	if entries["bin/"] == nil {
		t.Errorf("no bin/ directory entry: %v", entries)
	}
}

func TestRefusesAnImageWithoutLayers(t *testing.T) {
	err := Write(io.Discard, Spec{Architecture: "amd64", Images: []Image{{Name: "x"}}})
	if err == nil || !strings.Contains(err.Error(), "at least one layer") {
		t.Errorf("err = %v", err)
	}
}
