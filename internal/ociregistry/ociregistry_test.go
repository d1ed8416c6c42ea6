package ociregistry

import (
	"archive/tar"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/kforge/kforge/internal/ociimage"
)

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// layerDir makes a directory with one file, a layer whose content (and so every digest above it) depends on content.
func layerDir(t *testing.T, content string) string {
	t.Helper()
	d := t.TempDir()
	must(t, os.WriteFile(filepath.Join(d, "file"), []byte(content), 0o644))
	return d
}

// writeLayout writes a layout tarball of images, each a layer of its own content, and returns its path.
func writeLayout(t *testing.T, images map[string]string, order ...string) string {
	t.Helper()
	spec := ociimage.Spec{Architecture: "amd64"}
	for _, name := range order {
		spec.Images = append(spec.Images, ociimage.Image{Name: name, Layers: []string{layerDir(t, images[name])}})
	}
	var b bytes.Buffer
	must(t, ociimage.Write(&b, spec))
	p := filepath.Join(t.TempDir(), "layout.tar")
	must(t, os.WriteFile(p, b.Bytes(), 0o644))
	return p
}

// entries returns a tarball's files by name.
func entries(t *testing.T, p string) (names []string, files map[string][]byte) {
	t.Helper()
	f, err := os.Open(p)
	must(t, err)
	defer f.Close()
	files = map[string][]byte{}
	tr := tar.NewReader(f)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return names, files
		}
		must(t, err)
		if h.Typeflag == tar.TypeReg {
			b, err := io.ReadAll(tr)
			must(t, err)
			names = append(names, h.Name)
			files[h.Name] = b
		}
	}
}

// rewrite copies the layout src with edit applied to its files (drop: leave the file out) and returns the copy.
func rewrite(t *testing.T, src string, edit func(name string, data []byte) (newName string, newData []byte, drop bool)) string {
	t.Helper()
	names, files := entries(t, src)
	var b bytes.Buffer
	tw := tar.NewWriter(&b)
	for _, n := range names {
		nn, data, drop := edit(n, files[n])
		if drop {
			continue
		}
		must(t, tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: nn, Mode: 0o644, Size: int64(len(data))}))
		_, err := tw.Write(data)
		must(t, err)
	}
	must(t, tw.Close())
	p := filepath.Join(t.TempDir(), "edited.tar")
	must(t, os.WriteFile(p, b.Bytes(), 0o644))
	return p
}

type indexFile struct {
	Manifests []descriptor `json:"manifests"`
}

// manifestOf returns the manifest descriptor of the image name of a layout, and the layout's files.
func manifestOf(t *testing.T, p, name string) (descriptor, map[string][]byte) {
	t.Helper()
	_, files := entries(t, p)
	var idx indexFile
	must(t, json.Unmarshal(files["index.json"], &idx))
	for _, d := range idx.Manifests {
		if d.Annotations["io.containerd.image.name"] == name {
			return d, files
		}
	}
	t.Fatalf("%s: no image %s", p, name)
	return descriptor{}, nil
}

func digestOf(b []byte) string {
	sum := sha256.Sum256(b)
	return "sha256:" + hex.EncodeToString(sum[:])
}

const (
	agnhost    = "registry.k8s.io/e2e-test-images/agnhost:2.66.1"
	agnhostToo = "localhost:5000/e2e-test-images/agnhost:2.66.1" // the same repository and tag in another registry
	testboxBB  = "kforge.local/testbox:busybox"
	testboxAl  = "kforge.local/testbox:alpine"
	busybox    = "busybox" // docker.io/library/busybox:latest
)

// fixture is a registry of three layouts: A with three images, B with a short docker.io name, C with an image
// of A's repository and tag under another registry, and A's testbox:alpine again, the same image.
type fixture struct {
	a, b, c string
	srv     *httptest.Server
	reg     *Registry
	mu      sync.Mutex
	log     []Request
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	fx := &fixture{
		a: writeLayout(t, map[string]string{agnhost: "agnhost", testboxBB: "busybox", testboxAl: "alpine"}, agnhost, testboxBB, testboxAl),
		b: writeLayout(t, map[string]string{busybox: "hub busybox"}, busybox),
		c: writeLayout(t, map[string]string{agnhostToo: "another agnhost", testboxAl: "alpine"}, agnhostToo, testboxAl),
	}
	reg, err := Open(fx.a, fx.b, fx.c)
	must(t, err)
	t.Cleanup(func() { must(t, reg.Close()) })
	reg.Log = func(r Request) {
		fx.mu.Lock()
		defer fx.mu.Unlock()
		fx.log = append(fx.log, r)
	}
	fx.reg = reg
	fx.srv = httptest.NewServer(reg)
	t.Cleanup(fx.srv.Close)
	return fx
}

// do sends a request and returns the response with its body read.
func (fx *fixture) do(t *testing.T, method, path string, header ...string) (*http.Response, []byte) {
	t.Helper()
	req, err := http.NewRequest(method, fx.srv.URL+path, nil)
	must(t, err)
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	resp, err := fx.srv.Client().Do(req)
	must(t, err)
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	must(t, err)
	return resp, body
}

// wantError checks a response is the distribution spec's error with status and code.
func wantError(t *testing.T, resp *http.Response, body []byte, status int, code string) {
	t.Helper()
	var e struct {
		Errors []struct{ Code, Message string }
	}
	if resp.StatusCode != status || json.Unmarshal(body, &e) != nil || len(e.Errors) != 1 || e.Errors[0].Code != code || e.Errors[0].Message == "" {
		t.Errorf("%s %s: %d %s, want %d with code %s", resp.Request.Method, resp.Request.URL, resp.StatusCode, body, status, code)
	}
}

func TestImages(t *testing.T) {
	fx := newFixture(t)
	want := []string{"docker.io/library/busybox:latest", "kforge.local/testbox:alpine", "kforge.local/testbox:busybox",
		"localhost:5000/e2e-test-images/agnhost:2.66.1", "registry.k8s.io/e2e-test-images/agnhost:2.66.1"}
	if got := fx.reg.Images(); strings.Join(got, " ") != strings.Join(want, " ") {
		t.Errorf("Images() = %q, want %q", got, want)
	}
}

func TestBase(t *testing.T) {
	fx := newFixture(t)
	resp, body := fx.do(t, "GET", "/v2/")
	if resp.StatusCode != 200 || string(body) != "{}" || resp.Header.Get("Docker-Distribution-API-Version") != "registry/2.0" {
		t.Errorf("/v2/: %d %q %v", resp.StatusCode, body, resp.Header)
	}
}

func TestManifestByTagAndDigest(t *testing.T) {
	fx := newFixture(t)
	d, files := manifestOf(t, fx.a, agnhost)
	want := files["blobs/sha256/"+strings.TrimPrefix(d.Digest, "sha256:")]
	check := func(path string) {
		t.Helper()
		resp, body := fx.do(t, "GET", path)
		if resp.StatusCode != 200 || !bytes.Equal(body, want) || digestOf(body) != d.Digest {
			t.Fatalf("GET %s: %d %s", path, resp.StatusCode, body)
		}
		if ct, dcd, cl := resp.Header.Get("Content-Type"), resp.Header.Get("Docker-Content-Digest"), resp.ContentLength; ct != d.MediaType || dcd != d.Digest || cl != d.Size {
			t.Errorf("GET %s: Content-Type %q, Docker-Content-Digest %q, Content-Length %d; want %q %q %d", path, ct, dcd, cl, d.MediaType, d.Digest, d.Size)
		}
	}
	check("/v2/e2e-test-images/agnhost/manifests/2.66.1?ns=registry.k8s.io")
	check("/v2/e2e-test-images/agnhost/manifests/" + d.Digest + "?ns=registry.k8s.io")
	check("/v2/e2e-test-images/agnhost/manifests/" + d.Digest) // a digest is the same bytes in whichever registry

	// Without ns, a name that only one registry has.
	tb, _ := manifestOf(t, fx.a, testboxBB)
	resp, body := fx.do(t, "GET", "/v2/testbox/manifests/busybox")
	if resp.StatusCode != 200 || resp.Header.Get("Docker-Content-Digest") != tb.Digest || digestOf(body) != tb.Digest {
		t.Errorf("testbox:busybox without ns: %d %s", resp.StatusCode, resp.Header)
	}
	// A short name is docker.io's library/.
	bb, _ := manifestOf(t, fx.b, busybox)
	for _, p := range []string{"/v2/library/busybox/manifests/latest?ns=docker.io", "/v2/library/busybox/manifests/latest"} {
		if resp, _ := fx.do(t, "GET", p); resp.StatusCode != 200 || resp.Header.Get("Docker-Content-Digest") != bb.Digest {
			t.Errorf("GET %s: %d %s", p, resp.StatusCode, resp.Header)
		}
	}
	// A digest of another repository's image is not this repository's.
	resp, body = fx.do(t, "GET", "/v2/e2e-test-images/agnhost/manifests/"+tb.Digest)
	wantError(t, resp, body, 404, "MANIFEST_UNKNOWN")
}

func TestHEADHasHeadersAndNoBody(t *testing.T) {
	fx := newFixture(t)
	d, files := manifestOf(t, fx.a, testboxAl)
	resp, body := fx.do(t, "HEAD", "/v2/testbox/manifests/alpine?ns=kforge.local")
	if resp.StatusCode != 200 || len(body) != 0 || resp.Header.Get("Docker-Content-Digest") != d.Digest ||
		resp.Header.Get("Content-Type") != d.MediaType || resp.Header.Get("Content-Length") != itoa(d.Size) {
		t.Errorf("HEAD manifest: %d %q %v", resp.StatusCode, body, resp.Header)
	}
	var m struct{ Config descriptor }
	must(t, json.Unmarshal(files["blobs/sha256/"+strings.TrimPrefix(d.Digest, "sha256:")], &m))
	resp, body = fx.do(t, "HEAD", "/v2/testbox/blobs/"+m.Config.Digest)
	if resp.StatusCode != 200 || len(body) != 0 || resp.Header.Get("Docker-Content-Digest") != m.Config.Digest ||
		resp.Header.Get("Content-Length") != itoa(m.Config.Size) {
		t.Errorf("HEAD blob: %d %q %v", resp.StatusCode, body, resp.Header)
	}
	resp, body = fx.do(t, "HEAD", "/v2/testbox/manifests/nosuchtag")
	if resp.StatusCode != 404 || len(body) != 0 {
		t.Errorf("HEAD unknown manifest: %d %q", resp.StatusCode, body)
	}
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }

func TestBlobs(t *testing.T) {
	fx := newFixture(t)
	d, files := manifestOf(t, fx.c, agnhostToo)
	var m struct {
		Config descriptor
		Layers []descriptor
	}
	must(t, json.Unmarshal(files["blobs/sha256/"+strings.TrimPrefix(d.Digest, "sha256:")], &m))
	for _, b := range append(m.Layers, m.Config) {
		resp, body := fx.do(t, "GET", "/v2/e2e-test-images/agnhost/blobs/"+b.Digest+"?ns=localhost:5000")
		if resp.StatusCode != 200 || digestOf(body) != b.Digest || int64(len(body)) != b.Size ||
			resp.Header.Get("Docker-Content-Digest") != b.Digest || resp.Header.Get("Content-Type") != "application/octet-stream" {
			t.Errorf("blob %s: %d, %d bytes of digest %s, %v", b.Digest, resp.StatusCode, len(body), digestOf(body), resp.Header)
		}
	}
	// A range of the layer, as a resumed pull asks.
	layer := files["blobs/sha256/"+strings.TrimPrefix(m.Layers[0].Digest, "sha256:")]
	if len(layer) < 20 {
		t.Fatalf("layer of %d bytes: too small to test a range", len(layer))
	}
	resp, body := fx.do(t, "GET", "/v2/e2e-test-images/agnhost/blobs/"+m.Layers[0].Digest, "Range", "bytes=5-14")
	if resp.StatusCode != 206 || !bytes.Equal(body, layer[5:15]) || resp.Header.Get("Content-Range") != "bytes 5-14/"+itoa(int64(len(layer))) {
		t.Errorf("range: %d %q, want %q; %v", resp.StatusCode, body, layer[5:15], resp.Header)
	}
}

func TestNotFound(t *testing.T) {
	fx := newFixture(t)
	for _, c := range []struct{ path, code string }{
		{"/v2/testbox/manifests/nosuchtag", "MANIFEST_UNKNOWN"},
		{"/v2/testbox/manifests/busybox?ns=registry.k8s.io", "NAME_UNKNOWN"}, // the repository is kforge.local's
		{"/v2/no/such/repo/manifests/latest", "NAME_UNKNOWN"},
		{"/v2/testbox/manifests/sha256:" + strings.Repeat("0", 64), "MANIFEST_UNKNOWN"},
		{"/v2/testbox/blobs/sha256:" + strings.Repeat("0", 64), "BLOB_UNKNOWN"},
		{"/v2/no/such/repo/tags/list", "NAME_UNKNOWN"},
		{"/v2/testbox/referrers/sha256:" + strings.Repeat("0", 64), "NAME_UNKNOWN"},
		{"/", "NAME_UNKNOWN"},
	} {
		resp, body := fx.do(t, "GET", c.path)
		wantError(t, resp, body, 404, c.code)
	}
	for _, p := range []string{"/v2/testbox/blobs/sha256:abc", "/v2/testbox/manifests/sha256:XYZ", "/v2/testbox/blobs/latest"} {
		resp, body := fx.do(t, "GET", p)
		wantError(t, resp, body, 400, "DIGEST_INVALID")
	}
}

func TestAmbiguousNameNeedsNS(t *testing.T) {
	fx := newFixture(t)
	resp, body := fx.do(t, "GET", "/v2/e2e-test-images/agnhost/manifests/2.66.1")
	wantError(t, resp, body, 404, "MANIFEST_UNKNOWN")
	if !strings.Contains(string(body), "ns=") {
		t.Errorf("the error does not say how to name the registry: %s", body)
	}
	resp, body = fx.do(t, "GET", "/v2/e2e-test-images/agnhost/tags/list")
	wantError(t, resp, body, 404, "NAME_UNKNOWN")
	for p, ns := range map[string]string{fx.a: "registry.k8s.io", fx.c: "localhost:5000"} {
		name := agnhost
		if ns == "localhost:5000" {
			name = agnhostToo
		}
		d, _ := manifestOf(t, p, name)
		resp, _ := fx.do(t, "GET", "/v2/e2e-test-images/agnhost/manifests/2.66.1?ns="+ns)
		if resp.StatusCode != 200 || resp.Header.Get("Docker-Content-Digest") != d.Digest {
			t.Errorf("with ns=%s: %d %s, want %s", ns, resp.StatusCode, resp.Header.Get("Docker-Content-Digest"), d.Digest)
		}
	}
}

func TestTagsList(t *testing.T) {
	fx := newFixture(t)
	for path, want := range map[string]string{
		"/v2/testbox/tags/list":                                    `{"name":"testbox","tags":["alpine","busybox"]}`,
		"/v2/library/busybox/tags/list?ns=docker.io":               `{"name":"library/busybox","tags":["latest"]}`,
		"/v2/e2e-test-images/agnhost/tags/list?ns=registry.k8s.io": `{"name":"e2e-test-images/agnhost","tags":["2.66.1"]}`,
	} {
		resp, body := fx.do(t, "GET", path)
		if resp.StatusCode != 200 || string(body) != want || resp.Header.Get("Content-Type") != "application/json" {
			t.Errorf("GET %s: %d %s, want %s", path, resp.StatusCode, body, want)
		}
	}
}

func TestReadOnly(t *testing.T) {
	fx := newFixture(t)
	for _, m := range []string{"POST", "PUT", "DELETE", "PATCH"} {
		resp, body := fx.do(t, m, "/v2/testbox/manifests/busybox")
		wantError(t, resp, body, 405, "UNSUPPORTED")
	}
	resp, body := fx.do(t, "POST", "/v2/testbox/blobs/uploads/")
	wantError(t, resp, body, 405, "UNSUPPORTED")
}

func TestLog(t *testing.T) {
	fx := newFixture(t)
	fx.do(t, "GET", "/v2/testbox/manifests/busybox?ns=kforge.local")
	fx.do(t, "HEAD", "/v2/testbox/manifests/nosuchtag")
	fx.mu.Lock()
	defer fx.mu.Unlock()
	if len(fx.log) != 2 {
		t.Fatalf("log: %+v", fx.log)
	}
	got, want := fx.log[0], Request{Method: "GET", Path: "/v2/testbox/manifests/busybox", NS: "kforge.local", Status: 200}
	if got.RemoteAddr == "" || !strings.HasPrefix(got.RemoteAddr, "127.0.0.1:") {
		t.Errorf("remote address %q", got.RemoteAddr)
	}
	got.RemoteAddr = ""
	if got != want {
		t.Errorf("log[0] = %+v, want %+v", got, want)
	}
	if fx.log[1].Method != "HEAD" || fx.log[1].Status != 404 || fx.log[1].NS != "" {
		t.Errorf("log[1] = %+v", fx.log[1])
	}
}

// TestDotSlashNames: tar entries named ./blobs/... (as `tar -C dir -cf x.tar .` writes them) are the layout's.
func TestDotSlashNames(t *testing.T) {
	a := writeLayout(t, map[string]string{testboxBB: "busybox"}, testboxBB)
	p := rewrite(t, a, func(n string, b []byte) (string, []byte, bool) { return "./" + n, b, false })
	reg, err := Open(p)
	must(t, err)
	defer reg.Close()
	d, _ := manifestOf(t, a, testboxBB)
	req := httptest.NewRequest("GET", "/v2/testbox/manifests/busybox", nil)
	rec := httptest.NewRecorder()
	reg.ServeHTTP(rec, req)
	if rec.Code != 200 || digestOf(rec.Body.Bytes()) != d.Digest {
		t.Errorf("%d %s", rec.Code, rec.Body)
	}
}

func TestSameImageInTwoLayoutsIsOne(t *testing.T) {
	fx := newFixture(t) // testbox:alpine is in A and C
	n := 0
	for _, name := range fx.reg.Images() {
		if name == testboxAl {
			n++
		}
	}
	if n != 1 {
		t.Errorf("%s served %d times: %q", testboxAl, n, fx.reg.Images())
	}
}

func TestLoadErrors(t *testing.T) {
	a := writeLayout(t, map[string]string{testboxBB: "busybox", agnhost: "agnhost"}, testboxBB, agnhost)
	d, files := manifestOf(t, a, agnhost)
	var m struct{ Layers []descriptor }
	must(t, json.Unmarshal(files["blobs/sha256/"+strings.TrimPrefix(d.Digest, "sha256:")], &m))
	layer := m.Layers[0].Digest
	editIndex := func(edit func(*indexFile)) string {
		return rewrite(t, a, func(n string, b []byte) (string, []byte, bool) {
			if n == "index.json" {
				var idx indexFile
				must(t, json.Unmarshal(b, &idx))
				edit(&idx)
				b, _ = json.Marshal(idx)
			}
			return n, b, false
		})
	}
	data, err := os.ReadFile(a)
	must(t, err)
	truncated := filepath.Join(t.TempDir(), "truncated.tar")
	must(t, os.WriteFile(truncated, data[:len(data)/2], 0o644))

	for _, c := range []struct {
		name  string
		paths []string
		want  []string // in the error
	}{
		{"the same name with other content in another layout",
			[]string{a, writeLayout(t, map[string]string{testboxBB: "another busybox"}, testboxBB)}, []string{testboxBB, a}},
		{"a manifest missing", []string{rewrite(t, a, func(n string, b []byte) (string, []byte, bool) {
			return n, b, n == "blobs/sha256/"+strings.TrimPrefix(d.Digest, "sha256:")
		})}, []string{d.Digest, "missing"}},
		{"a layer missing", []string{rewrite(t, a, func(n string, b []byte) (string, []byte, bool) {
			return n, b, n == "blobs/sha256/"+strings.TrimPrefix(layer, "sha256:")
		})}, []string{layer, "missing", agnhost}},
		{"a size that is not the blob's", []string{editIndex(func(idx *indexFile) { idx.Manifests[1].Size++ })}, []string{d.Digest, "bytes"}},
		{"no name", []string{editIndex(func(idx *indexFile) { idx.Manifests[1].Annotations = nil })}, []string{d.Digest, "no name"}},
		{"a digested name", []string{editIndex(func(idx *indexFile) {
			idx.Manifests[1].Annotations = map[string]string{"io.containerd.image.name": "registry.k8s.io/pause@" + d.Digest}
		})}, []string{"digest", "registry.k8s.io/pause@"}},
		{"a truncated tarball", []string{truncated}, []string{truncated}},
		{"no index", []string{rewrite(t, a, func(n string, b []byte) (string, []byte, bool) { return n, b, n == "index.json" })}, []string{"index.json"}},
		{"not there", []string{filepath.Join(t.TempDir(), "nothing.tar")}, []string{"nothing.tar"}},
	} {
		reg, err := Open(c.paths...)
		if err == nil {
			reg.Close()
			t.Errorf("%s: no error", c.name)
			continue
		}
		for _, w := range c.want {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("%s: error %q does not say %q", c.name, err, w)
			}
		}
		if !strings.Contains(err.Error(), c.paths[len(c.paths)-1]) {
			t.Errorf("%s: error %q does not name the layout", c.name, err)
		}
	}
}

func TestParseName(t *testing.T) {
	for name, want := range map[string][3]string{
		"registry.k8s.io/e2e-test-images/agnhost:2.66.1": {"registry.k8s.io", "e2e-test-images/agnhost", "2.66.1"},
		"kforge.local/testbox:busybox":                   {"kforge.local", "testbox", "busybox"},
		"localhost/x":                                    {"localhost", "x", "latest"},
		"localhost:5000/a/b:c":                           {"localhost:5000", "a/b", "c"},
		"busybox":                                        {"docker.io", "library/busybox", "latest"},
		"busybox:1.37":                                   {"docker.io", "library/busybox", "1.37"},
		"nginxinc/nginx-unprivileged:1":                  {"docker.io", "nginxinc/nginx-unprivileged", "1"},
		"index.docker.io/library/busybox:1":              {"docker.io", "library/busybox", "1"},
		"docker.io/busybox":                              {"docker.io", "library/busybox", "latest"},
	} {
		h, r, tag, err := parseName(name)
		if err != nil || [3]string{h, r, tag} != want {
			t.Errorf("parseName(%q) = %q %q %q %v, want %q", name, h, r, tag, err, want)
		}
	}
	for _, bad := range []string{"busybox@sha256:" + strings.Repeat("a", 64), "Upper/case", "a:", "x.io/"} {
		if _, _, _, err := parseName(bad); err == nil {
			t.Errorf("parseName(%q): no error", bad)
		}
	}
}
