// Package ociimage writes container images as one OCI image-layout tarball (what `ctr images import` reads),
// from directories: reproducible (fixed times, sorted entries), with layers shared between images stored once.
package ociimage

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"time"
)

// Image is one image of a layout: its name (the reference containerd records) and how it runs.
type Image struct {
	Name string `json:"name"`
	// Layers are directories, the lowest first; each becomes a layer with everything under it.
	Layers     []string `json:"layers"`
	Entrypoint []string `json:"entrypoint,omitempty"`
	Cmd        []string `json:"cmd,omitempty"`
	Env        []string `json:"env,omitempty"`
	User       string   `json:"user,omitempty"`
	WorkingDir string   `json:"working_dir,omitempty"`
	// Ports are exposed ports ("80/tcp"), recorded in the config as image builders do.
	Ports []string `json:"ports,omitempty"`
}

// Spec is a layout to write: its images and the architecture they are for (GOARCH names).
type Spec struct {
	Architecture string  `json:"architecture"`
	Images       []Image `json:"images"`
}

// Media types of the OCI image spec.
const (
	mediaIndex    = "application/vnd.oci.image.index.v1+json"
	mediaManifest = "application/vnd.oci.image.manifest.v1+json"
	mediaConfig   = "application/vnd.oci.image.config.v1+json"
	mediaLayer    = "application/vnd.oci.image.layer.v1.tar+gzip"
)

type descriptor struct {
	MediaType   string            `json:"mediaType"`
	Digest      string            `json:"digest"`
	Size        int64             `json:"size"`
	Annotations map[string]string `json:"annotations,omitempty"`
}

// blob is content of the layout, by digest.
type blob struct {
	digest string
	data   []byte
}

func newBlob(data []byte) blob {
	sum := sha256.Sum256(data)
	return blob{digest: "sha256:" + hex.EncodeToString(sum[:]), data: data}
}

// layer is a directory's tar: compressed (the blob) and its uncompressed digest (the config's diff_id).
type layer struct {
	blob
	diffID string
}

// Write writes the layout of spec as a tar to w.
func Write(w io.Writer, spec Spec) error {
	if spec.Architecture == "" {
		return fmt.Errorf("ociimage: no architecture")
	}
	layers := map[string]layer{} // by directory: a directory several images share is packed once
	var blobs []blob
	var manifests []descriptor
	for _, img := range spec.Images {
		if img.Name == "" || len(img.Layers) == 0 {
			return fmt.Errorf("ociimage: an image needs a name and at least one layer: %+v", img)
		}
		var descs []descriptor
		var diffIDs []string
		for _, dir := range img.Layers {
			l, ok := layers[dir]
			if !ok {
				var err error
				if l, err = packLayer(dir); err != nil {
					return fmt.Errorf("ociimage: %s: layer %s: %w", img.Name, dir, err)
				}
				layers[dir] = l
				blobs = append(blobs, l.blob)
			}
			descs = append(descs, descriptor{MediaType: mediaLayer, Digest: l.digest, Size: int64(len(l.data))})
			diffIDs = append(diffIDs, l.diffID)
		}
		cfg, err := json.Marshal(configOf(spec.Architecture, img, diffIDs))
		if err != nil {
			return err
		}
		cb := newBlob(cfg)
		man, err := json.Marshal(struct {
			SchemaVersion int          `json:"schemaVersion"`
			MediaType     string       `json:"mediaType"`
			Config        descriptor   `json:"config"`
			Layers        []descriptor `json:"layers"`
		}{2, mediaManifest, descriptor{MediaType: mediaConfig, Digest: cb.digest, Size: int64(len(cfg))}, descs})
		if err != nil {
			return err
		}
		mb := newBlob(man)
		blobs = append(blobs, cb, mb)
		manifests = append(manifests, descriptor{MediaType: mediaManifest, Digest: mb.digest, Size: int64(len(man)),
			Annotations: map[string]string{"io.containerd.image.name": img.Name, "org.opencontainers.image.ref.name": img.Name}})
	}
	index, err := json.Marshal(struct {
		SchemaVersion int          `json:"schemaVersion"`
		MediaType     string       `json:"mediaType"`
		Manifests     []descriptor `json:"manifests"`
	}{2, mediaIndex, manifests})
	if err != nil {
		return err
	}
	tw := tar.NewWriter(w)
	files := map[string][]byte{"oci-layout": []byte(`{"imageLayoutVersion":"1.0.0"}`), "index.json": index}
	for _, b := range blobs {
		files["blobs/sha256/"+strings.TrimPrefix(b.digest, "sha256:")] = b.data
	}
	names := make([]string, 0, len(files))
	for n := range files {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, d := range []string{"blobs/", "blobs/sha256/"} {
		if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeDir, Name: d, Mode: 0o755, ModTime: time.Unix(0, 0)}); err != nil {
			return err
		}
	}
	for _, n := range names {
		if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: n, Mode: 0o644, Size: int64(len(files[n])), ModTime: time.Unix(0, 0)}); err != nil {
			return err
		}
		if _, err := tw.Write(files[n]); err != nil {
			return err
		}
	}
	return tw.Close()
}

type imageConfig struct {
	Architecture string    `json:"architecture"`
	OS           string    `json:"os"`
	Config       runConfig `json:"config"`
	RootFS       struct {
		Type    string   `json:"type"`
		DiffIDs []string `json:"diff_ids"`
	} `json:"rootfs"`
}

type runConfig struct {
	User         string              `json:"User,omitempty"`
	ExposedPorts map[string]struct{} `json:"ExposedPorts,omitempty"`
	Env          []string            `json:"Env,omitempty"`
	Entrypoint   []string            `json:"Entrypoint,omitempty"`
	Cmd          []string            `json:"Cmd,omitempty"`
	WorkingDir   string              `json:"WorkingDir,omitempty"`
}

func configOf(arch string, img Image, diffIDs []string) imageConfig {
	c := imageConfig{Architecture: arch, OS: "linux",
		Config: runConfig{User: img.User, Env: img.Env, Entrypoint: img.Entrypoint, Cmd: img.Cmd, WorkingDir: img.WorkingDir}}
	if len(img.Ports) > 0 {
		c.Config.ExposedPorts = map[string]struct{}{}
		for _, p := range img.Ports {
			c.Config.ExposedPorts[p] = struct{}{}
		}
	}
	c.RootFS.Type, c.RootFS.DiffIDs = "layers", diffIDs
	return c
}

// packLayer tars dir (sorted, times zeroed, owners and modes as on disk: an image's setuid binaries and
// users' files keep theirs) and compresses it without a name or time in the gzip header.
func packLayer(dir string) (layer, error) {
	var raw bytes.Buffer
	tw := tar.NewWriter(&raw)
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(dir, p)
		if err != nil || rel == "." {
			return err
		}
		info, err := os.Lstat(p)
		if err != nil {
			return err
		}
		link := ""
		if info.Mode()&fs.ModeSymlink != 0 {
			if link, err = os.Readlink(p); err != nil {
				return err
			}
		}
		if !info.Mode().IsRegular() && !info.IsDir() && info.Mode()&fs.ModeSymlink == 0 {
			return nil // devices, sockets, pipes: a runtime makes its own /dev
		}
		h, err := tar.FileInfoHeader(info, link)
		if err != nil {
			return err
		}
		h.Name = filepath.ToSlash(rel)
		if info.IsDir() {
			h.Name += "/"
		}
		h.ModTime, h.AccessTime, h.ChangeTime = time.Unix(0, 0), time.Time{}, time.Time{}
		h.Uname, h.Gname = "", ""
		if st, ok := info.Sys().(*syscall.Stat_t); ok {
			h.Uid, h.Gid = int(st.Uid), int(st.Gid)
		}
		h.Format = tar.FormatPAX
		h.PAXRecords = nil
		if err := tw.WriteHeader(h); err != nil {
			return err
		}
		if info.Mode().IsRegular() {
			f, err := os.Open(p)
			if err != nil {
				return err
			}
			_, err = io.Copy(tw, f)
			f.Close()
			return err
		}
		return nil
	})
	if err == nil {
		err = tw.Close()
	}
	if err != nil {
		return layer{}, err
	}
	diff := sha256.Sum256(raw.Bytes())
	var gz bytes.Buffer
	zw, err := gzip.NewWriterLevel(&gz, gzip.BestSpeed)
	if err != nil {
		return layer{}, err
	}
	if _, err := zw.Write(raw.Bytes()); err != nil {
		return layer{}, err
	}
	if err := zw.Close(); err != nil {
		return layer{}, err
	}
	return layer{blob: newBlob(gz.Bytes()), diffID: "sha256:" + hex.EncodeToString(diff[:])}, nil
}
