// Package ociregistry serves the images of OCI image-layout tarballs read-only over the OCI distribution API
// (pull only), as the registry mirror containerd on lab nodes resolves and pulls images through.
package ociregistry

import (
	"archive/tar"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Request is one request served, for a log: a test proves that a node pulled through the mirror by its requests.
type Request struct {
	RemoteAddr string
	Method     string
	Path       string
	NS         string // the ns query parameter: the registry containerd asks the mirror for
	Status     int
}

// Registry serves the images of the layouts it opened. Its blobs stay in the tarballs: they are indexed by
// their offsets and read per request, as layouts run to gigabytes.
type Registry struct {
	// Log, when set, is called after each request (concurrently, as requests are).
	Log func(Request)

	files  []*os.File
	blobs  map[string]blob // by digest, of all layouts
	images []*image        // sorted by name
}

// blob is a tar entry's data in a layout.
type blob struct {
	f         *os.File
	off, size int64
}

func (b blob) reader() *io.SectionReader { return io.NewSectionReader(b.f, b.off, b.size) }

// image is a name of the index of a layout, normalised as containerd asks a mirror for it, and its manifest.
type image struct {
	host, repo, tag string
	manifest        descriptor
	layout          string // the tarball, for errors
}

func (im *image) name() string { return im.host + "/" + im.repo + ":" + im.tag }

type descriptor struct {
	MediaType   string            `json:"mediaType"`
	Digest      string            `json:"digest"`
	Size        int64             `json:"size"`
	Annotations map[string]string `json:"annotations,omitempty"`
}

// Manifest media types served; image indexes are not (ociimage writes one manifest per image).
var manifestTypes = []string{"application/vnd.oci.image.manifest.v1+json", "application/vnd.docker.distribution.manifest.v2+json"}

// maxManifest bounds what is read into memory at load time (the limit registries commonly have too).
const maxManifest = 4 << 20

// The reference grammar of the distribution spec, so that a name no client could ask for fails at load time.
var (
	repoRE   = regexp.MustCompile(`^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*(?:/[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*)*$`)
	tagRE    = regexp.MustCompile(`^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$`)
	digestRE = regexp.MustCompile(`^sha256:[a-f0-9]{64}$`)
)

// Open indexes the layouts (tar files). Blobs are checked for presence and size, not hashed: hashing gigabytes
// at every start would be slow, and containerd verifies what it pulls.
func Open(paths ...string) (*Registry, error) {
	r := &Registry{blobs: map[string]blob{}}
	for _, p := range paths {
		if err := r.load(p); err != nil {
			r.Close()
			return nil, fmt.Errorf("ociregistry: %s: %w", p, err)
		}
	}
	slices.SortFunc(r.images, func(a, b *image) int { return strings.Compare(a.name(), b.name()) })
	return r, nil
}

// Close closes the layouts.
func (r *Registry) Close() error {
	var errs []error
	for _, f := range r.files {
		errs = append(errs, f.Close())
	}
	r.files = nil
	return errors.Join(errs...)
}

// Images returns the names served, normalised (registry/repository:tag), sorted.
func (r *Registry) Images() []string {
	var names []string
	for _, im := range r.images {
		names = append(names, im.name())
	}
	return names
}

func (r *Registry) load(p string) error {
	f, err := os.Open(p)
	if err != nil {
		return err
	}
	r.files = append(r.files, f)
	blobs := map[string]blob{} // this layout's: its index must not depend on another's blobs
	var index []byte
	tr := tar.NewReader(f)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return fmt.Errorf("reading tar: %w", err)
		}
		if h.Typeflag != tar.TypeReg {
			continue
		}
		for k := range h.PAXRecords {
			if strings.HasPrefix(k, "GNU.sparse.") { // a sparse entry's data is not its content
				return fmt.Errorf("%s: sparse tar entries are not supported", h.Name)
			}
		}
		name := path.Clean(h.Name) // also drops a leading "./"
		if name == "index.json" {
			if index, err = io.ReadAll(io.LimitReader(tr, maxManifest)); err != nil {
				return fmt.Errorf("reading index.json: %w", err)
			}
			continue
		}
		parts := strings.Split(name, "/")
		if len(parts) != 3 || parts[0] != "blobs" {
			continue
		}
		// tar.Reader reads the file directly, without buffering: after Next, the file is at the entry's data.
		off, err := f.Seek(0, io.SeekCurrent)
		if err != nil {
			return err
		}
		blobs[parts[1]+":"+parts[2]] = blob{f: f, off: off, size: h.Size}
	}
	if index == nil {
		return errors.New("no index.json: not an OCI image layout")
	}
	var idx struct {
		Manifests []descriptor `json:"manifests"`
	}
	if err := json.Unmarshal(index, &idx); err != nil {
		return fmt.Errorf("index.json: %w", err)
	}
	for _, d := range idx.Manifests {
		if err := r.addImage(p, d, blobs); err != nil {
			return err
		}
	}
	for dg, b := range blobs {
		if old, ok := r.blobs[dg]; ok && old.size != b.size {
			return fmt.Errorf("blob %s has %d bytes, another layout's %d", dg, b.size, old.size)
		}
		r.blobs[dg] = b
	}
	return nil
}

// addImage checks an index's manifest and the blobs it refers to, and adds its name.
func (r *Registry) addImage(layout string, d descriptor, blobs map[string]blob) error {
	name := d.Annotations["io.containerd.image.name"]
	if name == "" {
		name = d.Annotations["org.opencontainers.image.ref.name"]
	}
	if name == "" {
		return fmt.Errorf("index.json: manifest %s has no name annotation", d.Digest)
	}
	if !slices.Contains(manifestTypes, d.MediaType) {
		return fmt.Errorf("image %s: manifest %s: media type %q is not an image manifest", name, d.Digest, d.MediaType)
	}
	if err := checkBlob(blobs, d); err != nil {
		return fmt.Errorf("image %s: manifest: %w", name, err)
	}
	if d.Size > maxManifest {
		return fmt.Errorf("image %s: manifest %s has %d bytes, more than %d", name, d.Digest, d.Size, maxManifest)
	}
	data := make([]byte, d.Size)
	if _, err := blobs[d.Digest].reader().ReadAt(data, 0); err != nil {
		return fmt.Errorf("image %s: manifest %s: %w", name, d.Digest, err)
	}
	// Manifests are small, so hashing them is cheap; a wrong one would fail every pull of the image.
	if sum := sha256.Sum256(data); "sha256:"+hex.EncodeToString(sum[:]) != d.Digest {
		return fmt.Errorf("image %s: manifest %s: content has another digest", name, d.Digest)
	}
	var m struct {
		Config descriptor   `json:"config"`
		Layers []descriptor `json:"layers"`
	}
	if err := json.Unmarshal(data, &m); err != nil {
		return fmt.Errorf("image %s: manifest %s: %w", name, d.Digest, err)
	}
	for _, c := range append([]descriptor{m.Config}, m.Layers...) {
		if err := checkBlob(blobs, c); err != nil {
			return fmt.Errorf("image %s: manifest %s: %w", name, d.Digest, err)
		}
	}
	host, repo, tag, err := parseName(name)
	if err != nil {
		return err
	}
	im := &image{host: host, repo: repo, tag: tag, manifest: d, layout: layout}
	for _, o := range r.images {
		if o.name() == im.name() {
			if o.manifest.Digest != d.Digest {
				return fmt.Errorf("image %s: manifest %s, but %s has it with manifest %s", im.name(), d.Digest, o.layout, o.manifest.Digest)
			}
			return nil // the same image in two layouts
		}
	}
	r.images = append(r.images, im)
	return nil
}

// checkBlob says whether the layout has the blob d describes, with d's size.
func checkBlob(blobs map[string]blob, d descriptor) error {
	b, ok := blobs[d.Digest]
	if !ok {
		return fmt.Errorf("blob %s is missing from the layout", d.Digest)
	}
	if b.size != d.Size {
		return fmt.Errorf("blob %s has %d bytes, its descriptor says %d", d.Digest, b.size, d.Size)
	}
	return nil
}

// parseName splits an image name as container tooling normalises references: the first component is a registry
// if it looks like a host, else the registry is docker.io, where single names are under library/.
func parseName(name string) (host, repo, tag string, err error) {
	if strings.Contains(name, "@") {
		return "", "", "", fmt.Errorf("image %s: names with a digest are not supported", name)
	}
	host, rest := "docker.io", name
	if i := strings.IndexByte(name, '/'); i >= 0 {
		if first := name[:i]; strings.ContainsAny(first, ".:") || first == "localhost" {
			host, rest = normHost(first), name[i+1:]
		}
	}
	repo, tag = rest, "latest"
	if i := strings.LastIndexByte(rest, ':'); i >= 0 { // the host is gone: a colon left is the tag's
		repo, tag = rest[:i], rest[i+1:]
	}
	if host == "docker.io" && !strings.Contains(repo, "/") {
		repo = "library/" + repo
	}
	if !repoRE.MatchString(repo) || !tagRE.MatchString(tag) {
		return "", "", "", fmt.Errorf("image %s: not a valid reference", name)
	}
	return host, repo, tag, nil
}

// normHost gives Docker Hub's legacy name its normal one, as reference parsers do.
func normHost(h string) string {
	if h == "index.docker.io" {
		return "docker.io"
	}
	return h
}

// Routes of the pull side of the distribution API; repositories have slashes, references and digests do not.
var (
	manifestRoute = regexp.MustCompile(`^/v2/(.+)/manifests/([^/]+)$`)
	blobRoute     = regexp.MustCompile(`^/v2/(.+)/blobs/([^/]+)$`)
	tagsRoute     = regexp.MustCompile(`^/v2/(.+)/tags/list$`)
)

// ServeHTTP answers the pull requests of the distribution API; anything else is an error of its spec.
func (r *Registry) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	sw := &statusWriter{ResponseWriter: w}
	ns := req.URL.Query().Get("ns")
	r.serve(sw, req, normHost(ns))
	if r.Log != nil {
		if sw.status == 0 {
			sw.status = http.StatusOK
		}
		r.Log(Request{RemoteAddr: req.RemoteAddr, Method: req.Method, Path: req.URL.Path, NS: ns, Status: sw.status})
	}
}

func (r *Registry) serve(w http.ResponseWriter, req *http.Request, ns string) {
	w.Header().Set("Docker-Distribution-API-Version", "registry/2.0")
	if req.Method != http.MethodGet && req.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		writeError(w, http.StatusMethodNotAllowed, "UNSUPPORTED", "this registry is read-only")
		return
	}
	p := req.URL.Path
	if p == "/v2/" || p == "/v2" {
		writeJSON(w, http.StatusOK, struct{}{})
		return
	}
	if m := manifestRoute.FindStringSubmatch(p); m != nil {
		r.serveManifest(w, req, ns, m[1], m[2])
		return
	}
	if m := blobRoute.FindStringSubmatch(p); m != nil {
		if !digestRE.MatchString(m[2]) {
			writeError(w, http.StatusBadRequest, "DIGEST_INVALID", "not a sha256 digest: "+m[2])
			return
		}
		b, ok := r.blobs[m[2]]
		if !ok {
			writeError(w, http.StatusNotFound, "BLOB_UNKNOWN", "no blob "+m[2])
			return
		}
		serveBlob(w, req, b, m[2], "application/octet-stream")
		return
	}
	if m := tagsRoute.FindStringSubmatch(p); m != nil {
		ims, msg := r.repository(ns, m[1])
		if msg != "" {
			writeError(w, http.StatusNotFound, "NAME_UNKNOWN", msg)
			return
		}
		tags := []string{}
		for _, im := range ims {
			tags = append(tags, im.tag)
		}
		slices.Sort(tags)
		writeJSON(w, http.StatusOK, struct {
			Name string   `json:"name"`
			Tags []string `json:"tags"`
		}{m[1], tags})
		return
	}
	writeError(w, http.StatusNotFound, "NAME_UNKNOWN", "not an endpoint of this registry: "+p)
}

// repository returns the images of repo: in registry ns if the request names one (containerd does, asking a
// mirror), else in the one registry that has repo; or why there are none.
func (r *Registry) repository(ns, repo string) ([]*image, string) {
	var ims []*image
	var hosts []string
	for _, im := range r.images {
		if im.repo == repo && (ns == "" || im.host == ns) {
			ims = append(ims, im)
			if !slices.Contains(hosts, im.host) {
				hosts = append(hosts, im.host)
			}
		}
	}
	switch {
	case len(ims) == 0 && ns != "":
		return nil, fmt.Sprintf("no repository %s in registry %s", repo, ns)
	case len(ims) == 0:
		return nil, "no repository " + repo
	case len(hosts) > 1:
		return nil, fmt.Sprintf("repository %s is in several registries (%s): name one with ?ns=", repo, strings.Join(hosts, ", "))
	}
	return ims, ""
}

func (r *Registry) serveManifest(w http.ResponseWriter, req *http.Request, ns, repo, ref string) {
	var found []*image
	known := false
	for _, im := range r.images {
		if im.repo != repo || (ns != "" && im.host != ns) {
			continue
		}
		known = true
		if im.tag == ref || im.manifest.Digest == ref {
			found = append(found, im)
		}
	}
	isDigest := strings.Contains(ref, ":")
	switch {
	case isDigest && !digestRE.MatchString(ref):
		writeError(w, http.StatusBadRequest, "DIGEST_INVALID", "not a sha256 digest: "+ref)
	case !known:
		writeError(w, http.StatusNotFound, "NAME_UNKNOWN", "no repository "+repo+inRegistry(ns))
	case len(found) == 0:
		writeError(w, http.StatusNotFound, "MANIFEST_UNKNOWN", "no manifest "+ref+" in "+repo+inRegistry(ns))
	// By digest, several registries' images are the same bytes; by tag, they may differ and the client must say.
	case len(found) > 1 && !isDigest:
		var names []string
		for _, im := range found {
			names = append(names, im.name())
		}
		writeError(w, http.StatusNotFound, "MANIFEST_UNKNOWN",
			"ambiguous: "+strings.Join(names, ", ")+": name the registry with ?ns=")
	default:
		d := found[0].manifest
		serveBlob(w, req, r.blobs[d.Digest], d.Digest, d.MediaType)
	}
}

func inRegistry(ns string) string {
	if ns == "" {
		return ""
	}
	return " in registry " + ns
}

// serveBlob serves content from its layout; http.ServeContent answers HEAD and Range requests.
func serveBlob(w http.ResponseWriter, req *http.Request, b blob, digest, mediaType string) {
	w.Header().Set("Content-Type", mediaType)
	w.Header().Set("Docker-Content-Digest", digest)
	w.Header().Set("ETag", `"`+digest+`"`)
	http.ServeContent(w, req, "", time.Time{}, b.reader())
}

// writeJSON writes v; to a HEAD request, net/http sends the headers only.
func writeJSON(w http.ResponseWriter, status int, v any) {
	body, err := json.Marshal(v)
	if err != nil {
		panic(err) // only values of this file, which marshal
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(status)
	w.Write(body)
}

// writeError writes the distribution spec's error body.
func writeError(w http.ResponseWriter, status int, code, msg string) {
	type apiError struct {
		Code    string `json:"code"`
		Message string `json:"message"`
	}
	writeJSON(w, status, struct {
		Errors []apiError `json:"errors"`
	}{[]apiError{{code, msg}}})
}

// statusWriter records the status of a response, for the log.
type statusWriter struct {
	http.ResponseWriter
	status int
}

func (s *statusWriter) WriteHeader(code int) {
	if s.status == 0 {
		s.status = code
	}
	s.ResponseWriter.WriteHeader(code)
}

func (s *statusWriter) Write(b []byte) (int, error) {
	if s.status == 0 {
		s.status = http.StatusOK
	}
	return s.ResponseWriter.Write(b)
}

// Unwrap lets http.ResponseController reach the connection.
func (s *statusWriter) Unwrap() http.ResponseWriter { return s.ResponseWriter }
