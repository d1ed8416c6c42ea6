package download

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/kforge/kforge/config"
	"github.com/kforge/kforge/provision/artifacts"
)

var setPaths = []string{
	"bin/containerd", "bin/containerd-shim-runc-v2", "bin/crictl", "bin/ctr", "bin/etcd", "bin/etcdctl", "bin/etcdutl",
	"bin/kube-apiserver", "bin/kube-controller-manager", "bin/kube-proxy", "bin/kube-scheduler", "bin/kubectl",
	"bin/kubelet", "bin/runc", "cni/bridge", "cni/host-local", "cni/loopback", "cni/portmap",
}

const kubeletPath = "/release/v1.37.2/bin/linux/amd64/kubelet"

// request is a request to the fake's official hosts with its own cache and lock file.
func (u *upstream) request(t *testing.T) Request {
	dir := t.TempDir()
	return Request{CacheDir: filepath.Join(dir, "cache"), LockFile: filepath.Join(dir, LockFileName), Client: u.official()}
}

func fetch(t *testing.T, req Request) string {
	t.Helper()
	dir, err := Fetch(context.Background(), req)
	if err != nil {
		t.Fatal(err)
	}
	return dir
}

// loadSet loads the set as apply does, checks every file against the manifest and against what was published, and
// that it has the files of every set and the extra ones (a network plugin's).
func (u *upstream) loadSet(t *testing.T, dir string, extra ...string) *artifacts.Set {
	t.Helper()
	set, err := artifacts.Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	if err := set.Check(); err != nil {
		t.Fatal(err)
	}
	var paths []string
	for _, f := range set.Manifest.Files {
		paths = append(paths, f.Path)
		got, err := os.ReadFile(filepath.Join(dir, f.Path))
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, u.want[f.Path]) {
			t.Errorf("%s in the set is not the published file", f.Path)
		}
	}
	want := slices.Sorted(slices.Values(append(slices.Clone(setPaths), extra...)))
	if !slices.Equal(paths, want) {
		t.Errorf("set files:\n%v\nwant\n%v", paths, want)
	}
	return set
}

// checkClean fails if the cache holds a temporary file or a cached file whose name is not its digest.
func checkClean(t *testing.T, cache string) {
	t.Helper()
	filepath.WalkDir(cache, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if strings.HasPrefix(d.Name(), ".tmp-") {
			t.Errorf("left behind: %s", p)
		}
		if !d.IsDir() && filepath.Base(filepath.Dir(p)) == "sha256" {
			data, _ := os.ReadFile(p)
			if digest(data) != d.Name() {
				t.Errorf("cached %s holds other content", d.Name())
			}
		}
		return nil
	})
}

// keptNothing: a refused fetch cached no file of digest refused (when given), wrote no lock file and no set,
// and left the cache clean.
func keptNothing(t *testing.T, req Request, refused string) {
	t.Helper()
	if refused != "" && exists(filepath.Join(req.CacheDir, "sha256", refused)) {
		t.Error("the refused file is in the cache")
	}
	if exists(req.LockFile) {
		t.Error("a failed fetch wrote the lock file")
	}
	noSet(t, req.CacheDir)
	checkClean(t, req.CacheDir)
}

func noSet(t *testing.T, cache string) {
	t.Helper()
	sets, _ := os.ReadDir(filepath.Join(cache, "sets"))
	if len(sets) != 0 {
		t.Errorf("a failed fetch left sets: %v", sets)
	}
}

func TestFetchWritesSetAndLock(t *testing.T) {
	u := newUpstream(t)
	req := u.request(t)
	var mu sync.Mutex
	reports := map[string][][2]int64{}
	req.Progress = func(name string, done, total int64) {
		mu.Lock()
		defer mu.Unlock()
		reports[name] = append(reports[name], [2]int64{done, total})
	}
	dir := fetch(t, req)

	set := u.loadSet(t, dir)
	m := set.Manifest
	if m.Kubernetes != "v1.37.2" || m.Etcd != "v3.7.3" || m.Containerd != "v2.4.2" || m.PauseImage != "" {
		t.Errorf("manifest versions: %+v", m)
	}
	for path, host := range u.hosts {
		want := "github.com"
		if strings.HasPrefix(path, "/release/") {
			want = "dl.k8s.io"
		}
		if host != want {
			t.Errorf("%s was asked from %s, want %s", path, host, want)
		}
	}
	if len(reports) != 11 {
		t.Errorf("progress for %d artifacts, want 11", len(reports))
	}
	for name, rs := range reports {
		last := rs[len(rs)-1]
		if rs[0][0] != 0 || last[0] != last[1] || last[1] <= 0 {
			t.Errorf("%s: progress %v does not run from 0 to the size", name, rs)
		}
	}
	if n := len(reports["kubelet"]); n < 4 {
		t.Errorf("kubelet (700 KiB): %d progress reports, want one per 256 KiB", n)
	}

	lock, err := os.ReadFile(req.LockFile)
	if err != nil {
		t.Fatal(err)
	}
	block := `artifact "kubelet" {
  version = "v1.37.2"
  path    = "` + kubeletPath + `"
  sha256  = "` + digest(u.files[kubeletPath]) + `"
}`
	if !strings.Contains(string(lock), block) {
		t.Errorf("lock file has no\n%s\nin\n%s", block, lock)
	}
	var names []string
	for line := range strings.Lines(string(lock)) {
		if name, ok := strings.CutPrefix(line, "artifact "); ok {
			names = append(names, strings.Fields(name)[0])
		}
	}
	if len(names) != 11 || !slices.IsSorted(names) {
		t.Errorf("lock blocks %v: want 11, sorted", names)
	}

	// The same files give the same lock, byte for byte.
	other := u.request(t)
	fetch(t, other)
	if again, _ := os.ReadFile(other.LockFile); !bytes.Equal(again, lock) {
		t.Errorf("a second lock differs:\n%s\nfirst:\n%s", again, lock)
	}
	checkClean(t, req.CacheDir)
}

func TestSecondFetchMakesNoRequest(t *testing.T) {
	u := newUpstream(t)
	req := u.request(t)
	dir := fetch(t, req)
	lock, _ := os.ReadFile(req.LockFile)
	before := u.requests.Load()

	if again := fetch(t, req); again != dir {
		t.Errorf("second fetch: %s, want %s", again, dir)
	}
	// Without the set, the cached files and the lock still suffice to build it again.
	if err := os.RemoveAll(filepath.Join(req.CacheDir, "sets")); err != nil {
		t.Fatal(err)
	}
	if again := fetch(t, req); again != dir {
		t.Errorf("rebuilt set: %s, want %s", again, dir)
	}
	u.loadSet(t, dir)
	if n := u.requests.Load() - before; n != 0 {
		t.Errorf("%d requests with everything cached, want 0", n)
	}
	if after, _ := os.ReadFile(req.LockFile); !bytes.Equal(after, lock) {
		t.Error("the lock file changed")
	}
}

func TestWrongPublishedChecksumIsRefused(t *testing.T) {
	u := newUpstream(t)
	base := "/etcd-io/etcd/releases/download/v3.7.3/"
	tarball := u.files[base+"etcd-v3.7.3-linux-amd64.tar.gz"]
	wrong := digest([]byte("something else"))
	u.put(base+"SHA256SUMS", []byte(wrong+"  etcd-v3.7.3-linux-amd64.tar.gz\n"))
	req := u.request(t)

	_, err := Fetch(context.Background(), req)
	var ce *ChecksumError
	if !errors.As(err, &ce) {
		t.Fatalf("got %v, want a checksum error", err)
	}
	if ce.Artifact != "etcd" || ce.Source != Published || ce.Expected != wrong || ce.Actual != digest(tarball) {
		t.Errorf("got %+v", ce)
	}
	for _, s := range []string{"etcd", "https://github.com" + base + "etcd-v3.7.3-linux-amd64.tar.gz", wrong, digest(tarball),
		"published checksum file https://github.com" + base + "SHA256SUMS"} {
		if !strings.Contains(err.Error(), s) {
			t.Errorf("error %q does not name %s", err, s)
		}
	}
	keptNothing(t, req, digest(tarball))
}

func TestPinMismatchIsRefused(t *testing.T) {
	u := newUpstream(t)
	req := u.request(t)
	pin := strings.Repeat("0", 64)
	req.SHA256 = map[string]string{"runc": pin}

	_, err := Fetch(context.Background(), req)
	var ce *ChecksumError
	if !errors.As(err, &ce) || ce.Source != Pin || ce.Artifact != "runc" || ce.Expected != pin {
		t.Fatalf("got %v, want a pin mismatch for runc", err)
	}
	if !strings.Contains(err.Error(), "pin") || !strings.Contains(err.Error(), ce.Actual) {
		t.Errorf("error %q does not name the pin and the actual sum", err)
	}
	noSet(t, req.CacheDir)

	// The right pin passes.
	req.SHA256["runc"] = ce.Actual
	u.loadSet(t, fetch(t, req))
}

func TestUnknownPinOrComponentIsAnError(t *testing.T) {
	for _, req := range []Request{
		{SHA256: map[string]string{"kubelt": strings.Repeat("0", 64)}},
		{Versions: map[string]string{"calico": "v3.28.2"}},
		{NetworkPlugin: "calico"},
		{NetworkPlugin: "kube-router", SHA256: map[string]string{"flannel": strings.Repeat("0", 64)}},
		{Arch: "s390x"},
		{Versions: map[string]string{"etcd": "v3.7.3/../../evil"}},
		{SHA256: map[string]string{"runc": "ABC"}},
	} {
		if _, err := Resolve(req); err == nil {
			t.Errorf("%+v: no error", req)
		}
	}
}

func TestChangedUpstreamFileIsRefusedByTheLock(t *testing.T) {
	u := newUpstream(t)
	req := u.request(t)
	fetch(t, req)
	old := digest(u.files[kubeletPath])

	// Upstream replaces kubelet and its checksum file consistently; another machine fetches with the same lock.
	changed := payload("kubelet rebuilt", 1000)
	u.put(kubeletPath, changed)
	u.put(kubeletPath+".sha256", []byte(digest(changed)))
	elsewhere := req
	elsewhere.CacheDir = filepath.Join(t.TempDir(), "cache")

	_, err := Fetch(context.Background(), elsewhere)
	var ce *ChecksumError
	if !errors.As(err, &ce) || ce.Source != Lock || ce.Artifact != "kubelet" {
		t.Fatalf("got %v, want a lock mismatch for kubelet", err)
	}
	for _, s := range []string{old, digest(changed), req.LockFile, "-upgrade", "https://dl.k8s.io" + kubeletPath} {
		if !strings.Contains(err.Error(), s) {
			t.Errorf("error %q does not say %s", err, s)
		}
	}
	if exists(filepath.Join(elsewhere.CacheDir, "sha256", digest(changed))) {
		t.Error("the refused file is in the cache")
	}
	noSet(t, elsewhere.CacheDir)

	// Accepting the change deliberately records the new digest.
	elsewhere.Upgrade = true
	fetch(t, elsewhere)
	lock, _ := os.ReadFile(req.LockFile)
	if !strings.Contains(string(lock), digest(changed)) || strings.Contains(string(lock), old) {
		t.Errorf("after the upgrade the lock does not hold the new kubelet only:\n%s", lock)
	}
}

func TestCorruptLockFileIsAnError(t *testing.T) {
	u := newUpstream(t)
	req := u.request(t)
	if err := os.WriteFile(req.LockFile, []byte("artifact \"kubelet\" {\n  sha256 = 1\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	_, err := Fetch(context.Background(), req)
	if err == nil || !strings.Contains(err.Error(), req.LockFile) {
		t.Fatalf("got %v, want an error naming the lock file", err)
	}
	if n := u.requests.Load(); n != 0 {
		t.Errorf("%d requests before the lock file was read", n)
	}
}

func TestVersionChangeReplacesLockEntries(t *testing.T) {
	u := newUpstream(t)
	req := u.request(t)
	fetch(t, req)
	versions := DefaultVersions()
	versions["crictl"] = "v1.34.0"
	u.publish("amd64", versions)
	before := u.requests.Load()

	req.Versions = map[string]string{"crictl": "1.34.0"} // configs may leave out the "v"
	u.loadSet(t, fetch(t, req))
	if n := u.requests.Load() - before; n != 2 {
		t.Errorf("%d requests, want 2: crictl's checksum file and tarball", n)
	}
	lock, _ := os.ReadFile(req.LockFile)
	if strings.Count(string(lock), `artifact "crictl"`) != 1 || !strings.Contains(string(lock), `"v1.34.0"`) || strings.Contains(string(lock), "v1.37.0") {
		t.Errorf("the lock does not hold crictl v1.34.0 alone:\n%s", lock)
	}
}

func TestLockKeepsOtherArchitectures(t *testing.T) {
	u := newUpstream(t)
	req := u.request(t)
	amd := fetch(t, req)
	u.publish("arm64", DefaultVersions())
	req.Arch = "arm64"
	arm := fetch(t, req)
	if amd == arm {
		t.Error("amd64 and arm64 share a set")
	}
	u.loadSet(t, arm)
	lock, _ := os.ReadFile(req.LockFile)
	for _, arch := range []string{"amd64", "arm64"} {
		if !strings.Contains(string(lock), "/bin/linux/"+arch+"/kubelet") || !strings.Contains(string(lock), "runc."+arch) {
			t.Errorf("the lock lost %s:\n%s", arch, lock)
		}
	}
}

func TestMirror(t *testing.T) {
	u := newUpstream(t)
	official := fetch(t, u.request(t))

	req := u.request(t)
	req.Client, req.Mirror = nil, u.srv.URL+"/mirror/"
	u.mu.Lock()
	clear(u.hosts)
	u.mu.Unlock()
	dir := fetch(t, req)
	u.loadSet(t, dir)
	for path := range u.hosts {
		if !strings.HasPrefix(path, "/mirror/") {
			t.Errorf("%s was not asked from the mirror", path)
		}
	}
	if _, ok := u.hosts["/mirror"+kubeletPath]; !ok {
		t.Errorf("kubelet was not fetched at /mirror%s", kubeletPath)
	}
	if filepath.Base(dir) != filepath.Base(official) {
		t.Errorf("the mirror's set %s differs from the official %s", filepath.Base(dir), filepath.Base(official))
	}
}

func TestInterruptedDownloadLeavesNothing(t *testing.T) {
	u := newUpstream(t)
	req := u.request(t)
	u.cut = kubeletPath

	_, err := Fetch(context.Background(), req)
	if err == nil || !strings.Contains(err.Error(), "https://dl.k8s.io"+kubeletPath) {
		t.Fatalf("got %v, want an error naming kubelet's URL", err)
	}
	keptNothing(t, req, "")

	u.cut = ""
	u.loadSet(t, fetch(t, req))
	checkClean(t, req.CacheDir)
}

func TestMissingFileNamesItsURL(t *testing.T) {
	u := newUpstream(t)
	p := "/containerd/containerd/releases/download/v2.4.2/containerd-2.4.2-linux-amd64.tar.gz"
	u.remove(p)
	req := u.request(t)
	_, err := Fetch(context.Background(), req)
	if err == nil || !strings.Contains(err.Error(), "https://github.com"+p) || !strings.Contains(err.Error(), "404") {
		t.Fatalf("got %v, want a 404 naming %s", err, p)
	}
	noSet(t, req.CacheDir)
}

func TestResolveOfficialURLs(t *testing.T) {
	arts, err := Resolve(Request{})
	if err != nil {
		t.Fatal(err)
	}
	got := map[string][2]string{}
	for _, a := range arts {
		got[a.Name] = [2]string{a.URL, a.SumsURL}
	}
	want := map[string][2]string{
		"kube-apiserver": {"https://dl.k8s.io/release/v1.37.2/bin/linux/amd64/kube-apiserver", "https://dl.k8s.io/release/v1.37.2/bin/linux/amd64/kube-apiserver.sha256"},
		"etcd":           {"https://github.com/etcd-io/etcd/releases/download/v3.7.3/etcd-v3.7.3-linux-amd64.tar.gz", "https://github.com/etcd-io/etcd/releases/download/v3.7.3/SHA256SUMS"},
		"containerd":     {"https://github.com/containerd/containerd/releases/download/v2.4.2/containerd-2.4.2-linux-amd64.tar.gz", "https://github.com/containerd/containerd/releases/download/v2.4.2/containerd-2.4.2-linux-amd64.tar.gz.sha256sum"},
		"runc":           {"https://github.com/opencontainers/runc/releases/download/v1.5.3/runc.amd64", "https://github.com/opencontainers/runc/releases/download/v1.5.3/runc.sha256sum"},
		"cni_plugins":    {"https://github.com/containernetworking/plugins/releases/download/v1.10.0/cni-plugins-linux-amd64-v1.10.0.tgz", "https://github.com/containernetworking/plugins/releases/download/v1.10.0/cni-plugins-linux-amd64-v1.10.0.tgz.sha256"},
		"crictl":         {"https://github.com/kubernetes-sigs/cri-tools/releases/download/v1.37.0/crictl-v1.37.0-linux-amd64.tar.gz", "https://github.com/kubernetes-sigs/cri-tools/releases/download/v1.37.0/crictl-v1.37.0-linux-amd64.tar.gz.sha256"},
	}
	for name, w := range want {
		if got[name] != w {
			t.Errorf("%s: got %v, want %v", name, got[name], w)
		}
	}
	if len(arts) != 11 {
		t.Errorf("%d artifacts, want 11", len(arts))
	}
}

func TestParseSums(t *testing.T) {
	sum := func(s string) string { h := sha256.Sum256([]byte(s)); return hex.EncodeToString(h[:]) }
	a, b := sum("a"), sum("b")
	for _, tc := range []struct {
		data, file, want, err string
	}{
		{data: a, file: "kubelet", want: a},
		{data: a + "\n", file: "crictl.tar.gz", want: a},
		{data: strings.ToUpper(a) + "\n", file: "x", want: a},
		{data: b + "  one.tar.gz\n" + a + "  two.tar.gz\n", file: "two.tar.gz", want: a},
		{data: b + " *runc.arm64\n" + a + " *runc.amd64\n", file: "runc.amd64", want: a},
		{data: a + "  ./dist/two.tgz\n", file: "two.tgz", want: a},
		{data: b + "  one.tar.gz\n", file: "two.tar.gz", err: "no line for two.tar.gz (it lists one.tar.gz)"},
		{data: "", file: "x", err: "no sha256"},
		{data: "<html>Not Found</html>", file: "x", err: "neither a sha256 digest"},
	} {
		got, err := parseSums([]byte(tc.data), tc.file)
		if got != tc.want || (err == nil) != (tc.err == "") || (err != nil && !strings.Contains(err.Error(), tc.err)) {
			t.Errorf("parseSums(%q, %s) = %q, %v; want %q, %q", tc.data, tc.file, got, err, tc.want, tc.err)
		}
	}
}

func TestCancelledFetchLeavesNothing(t *testing.T) {
	u := newUpstream(t)
	req := u.request(t)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := Fetch(ctx, req); !errors.Is(err, context.Canceled) {
		t.Fatalf("got %v, want context.Canceled", err)
	}
	checkClean(t, req.CacheDir)
	noSet(t, req.CacheDir)
}

func TestFromConfig(t *testing.T) {
	pins := map[string]string{"runc": strings.Repeat("a", 64)}
	req, err := FromConfig(config.Artifacts{Source: config.SourceMirror, URL: "https://mirror.example/k", CacheDir: "/c",
		Versions: map[string]string{"etcd": "v3.7.3"}, SHA256: pins}, "v1.37.2")
	if err != nil {
		t.Fatal(err)
	}
	if req.Mirror != "https://mirror.example/k" || req.CacheDir != "/c" || req.Kubernetes != "v1.37.2" || req.Versions["etcd"] != "v3.7.3" || req.SHA256["runc"] != pins["runc"] {
		t.Errorf("got %+v", req)
	}
	if req, err = FromConfig(config.Artifacts{Source: config.SourceDownload}, ""); err != nil || req.Mirror != "" || !strings.HasSuffix(req.CacheDir, filepath.Join("kforge", "artifacts")) {
		t.Errorf("download: got %+v, %v", req, err)
	}
	if _, err := FromConfig(config.Artifacts{Source: config.SourceLocal, Dir: "/set"}, ""); err == nil {
		t.Error("local artifacts: no error")
	}
}

func TestPinOfTheOtherPluginSaysSo(t *testing.T) {
	_, err := Resolve(Request{NetworkPlugin: "kube-router", SHA256: map[string]string{"flannel": strings.Repeat("0", 64)}})
	if err == nil || !strings.Contains(err.Error(), `"flannel", which only the flannel network plugin uses (this cluster's: kube-router)`) {
		t.Errorf("got %v", err)
	}
	_, err = Resolve(Request{SHA256: map[string]string{"kube_router": strings.Repeat("0", 64)}})
	if err == nil || !strings.Contains(err.Error(), "only the kube-router network plugin uses (this cluster's: routes)") {
		t.Errorf("got %v", err)
	}
}

func TestResolveNetworkPlugin(t *testing.T) {
	const mirror = "https://mirror.example/k"
	for _, tc := range []struct {
		req             Request
		name, url, dest string // the plugin's artifact; "" for none
	}{
		{req: Request{}},
		{req: Request{NetworkPlugin: "routes"}},
		{req: Request{NetworkPlugin: "flannel"}, name: "flannel", dest: "bin/flanneld",
			url: "https://github.com/flannel-io/flannel/releases/download/v0.28.11/flanneld-amd64"},
		{req: Request{NetworkPlugin: "flannel", Arch: "arm64", Mirror: mirror + "/", Versions: map[string]string{"flannel": "0.27.4"}},
			name: "flannel", dest: "bin/flanneld", url: mirror + "/flannel-io/flannel/releases/download/v0.27.4/flanneld-arm64"},
		{req: Request{NetworkPlugin: "kube-router"}, name: "kube_router", dest: "bin/kube-router",
			url: "https://github.com/cloudnativelabs/kube-router/releases/download/v2.1.0/kube-router_2.1.0_linux_amd64.tar.gz"},
		{req: Request{NetworkPlugin: "kube-router", Arch: "arm64", Mirror: mirror, Versions: map[string]string{"kube_router": "v2.2.1"}},
			name: "kube_router", dest: "bin/kube-router",
			url: mirror + "/cloudnativelabs/kube-router/releases/download/v2.2.1/kube-router_2.2.1_linux_arm64.tar.gz"},
	} {
		arts, err := Resolve(tc.req)
		if err != nil {
			t.Fatal(err)
		}
		want := 11
		if tc.name != "" {
			want = 12
		}
		if len(arts) != want {
			t.Errorf("%+v: %d artifacts, want %d", tc.req, len(arts), want)
		}
		for _, a := range arts {
			if (a.Name == "flannel" || a.Name == "kube_router") && a.Name != tc.name {
				t.Errorf("%+v: resolves %s", tc.req, a.Name)
			}
			if a.Name != tc.name {
				continue
			}
			if a.URL != tc.url || a.SumsURL != "" {
				t.Errorf("%s: URL %s, checksum file %q; want %s and none (the project publishes none)", a.Name, a.URL, a.SumsURL, tc.url)
			}
			var dests []string
			for _, d := range a.Files {
				dests = append(dests, d)
			}
			if !slices.Equal(dests, []string{tc.dest}) {
				t.Errorf("%s: files %v, want %s", a.Name, a.Files, tc.dest)
			}
		}
	}
}

func TestPluginWithoutPinIsRefusedBeforeDownloading(t *testing.T) {
	for plugin, p := range map[string]string{"flannel": flanneldPath, "kube-router": kubeRouterPath} {
		u := newUpstream(t)
		req := u.request(t)
		req.NetworkPlugin = plugin
		req.Upgrade = true // no published checksum to accept either
		_, err := Fetch(context.Background(), req)
		if !errors.Is(err, ErrNoChecksum) {
			t.Fatalf("%s: got %v, want ErrNoChecksum", plugin, err)
		}
		name := strings.ReplaceAll(plugin, "-", "_")
		for _, s := range []string{"https://github.com" + p, "publishes no checksum", req.LockFile, "sha256 = { " + name + " = "} {
			if !strings.Contains(err.Error(), s) {
				t.Errorf("error %q does not say %s", err, s)
			}
		}
		if n := u.requests.Load(); n != 0 {
			t.Errorf("%s: %d requests before refusing", plugin, n)
		}
		keptNothing(t, req, "")
	}
}

func TestFetchFlannel(t *testing.T) {
	u := newUpstream(t)
	plain := fetch(t, u.request(t))
	req := u.request(t)
	req.NetworkPlugin = "flannel"
	sum := digest(u.files[flanneldPath])
	req.SHA256 = map[string]string{"flannel": sum}
	dir := fetch(t, req)

	set := u.loadSet(t, dir, "bin/flanneld")
	if m := set.Manifest; m.Flannel != "v0.28.11" || m.KubeRouter != "" || m.Kubernetes != "v1.37.2" {
		t.Errorf("manifest versions: %+v", m)
	}
	if filepath.Base(dir) == filepath.Base(plain) {
		t.Error("the set with flanneld has the key of the set without")
	}
	if host := u.hosts[flanneldPath]; host != "github.com" {
		t.Errorf("flanneld was asked from %q, want github.com", host)
	}
	lock, _ := os.ReadFile(req.LockFile)
	block := `artifact "flannel" {
  version = "v0.28.11"
  path    = "` + flanneldPath + `"
  sha256  = "` + sum + `"
}`
	if !strings.Contains(string(lock), block) {
		t.Errorf("lock file has no\n%s\nin\n%s", block, lock)
	}

	// The lock vouches for the file from now on: no pin needed, and nothing is asked again.
	req.SHA256 = nil
	before := u.requests.Load()
	if again := fetch(t, req); again != dir {
		t.Errorf("second fetch: %s, want %s", again, dir)
	}
	if n := u.requests.Load() - before; n != 0 {
		t.Errorf("%d requests with everything cached, want 0", n)
	}
	// Another machine with the lock alone downloads it, even with -upgrade.
	elsewhere := req
	elsewhere.CacheDir, elsewhere.Upgrade = filepath.Join(t.TempDir(), "cache"), true
	if other := fetch(t, elsewhere); filepath.Base(other) != filepath.Base(dir) {
		t.Errorf("the same files built set %s, want %s", filepath.Base(other), filepath.Base(dir))
	}
	checkClean(t, req.CacheDir)
}

func TestFetchKubeRouterFromMirror(t *testing.T) {
	u := newUpstream(t)
	req := u.request(t)
	req.Client, req.Mirror = nil, u.srv.URL+"/mirror/"
	req.NetworkPlugin = "kube-router"
	req.SHA256 = map[string]string{"kube_router": digest(u.files[kubeRouterPath])}
	dir := fetch(t, req)

	set := u.loadSet(t, dir, "bin/kube-router")
	if m := set.Manifest; m.KubeRouter != "v2.1.0" || m.Flannel != "" {
		t.Errorf("manifest versions: %+v", m)
	}
	if _, ok := u.hosts["/mirror"+kubeRouterPath]; !ok {
		t.Errorf("kube-router was not fetched at /mirror%s", kubeRouterPath)
	}
	for path := range u.hosts {
		if !strings.HasPrefix(path, "/mirror/") {
			t.Errorf("%s was not asked from the mirror", path)
		}
	}

	// The same cache builds another set for flannel, and the plugin-less set is a third.
	req.NetworkPlugin = "flannel"
	req.SHA256 = map[string]string{"flannel": digest(u.files[flanneldPath])}
	flannel := fetch(t, req)
	req.NetworkPlugin, req.SHA256 = "routes", nil
	routes := fetch(t, req)
	if dir == flannel || dir == routes || flannel == routes {
		t.Errorf("sets for kube-router %s, flannel %s and routes %s are not three", dir, flannel, routes)
	}
	u.loadSet(t, routes)
}

func TestWrongPluginChecksumIsRefused(t *testing.T) {
	for name, p := range map[string]string{"flannel": flanneldPath, "kube_router": kubeRouterPath} {
		u := newUpstream(t)
		req := u.request(t)
		req.NetworkPlugin = strings.ReplaceAll(name, "_", "-")
		wrong := digest([]byte("something else"))
		req.SHA256 = map[string]string{name: wrong}

		_, err := Fetch(context.Background(), req)
		var ce *ChecksumError
		if !errors.As(err, &ce) || ce.Artifact != name || ce.Source != Pin || ce.Expected != wrong || ce.Actual != digest(u.files[p]) {
			t.Fatalf("%s: got %v, want a pin mismatch", name, err)
		}
		if !strings.Contains(err.Error(), "https://github.com"+p) {
			t.Errorf("error %q does not name the URL", err)
		}
		keptNothing(t, req, ce.Actual)
	}
}

func TestChangedPluginFileIsRefusedByTheLock(t *testing.T) {
	u := newUpstream(t)
	req := u.request(t)
	req.NetworkPlugin = "flannel"
	old := digest(u.files[flanneldPath])
	req.SHA256 = map[string]string{"flannel": old}
	fetch(t, req)

	// Upstream replaces flanneld; another machine fetches with the same lock and no pin, even with -upgrade.
	changed := payload("flanneld rebuilt", 200)
	u.put(flanneldPath, changed)
	elsewhere := req
	elsewhere.CacheDir, elsewhere.SHA256, elsewhere.Upgrade = filepath.Join(t.TempDir(), "cache"), nil, true

	_, err := Fetch(context.Background(), elsewhere)
	var ce *ChecksumError
	if !errors.As(err, &ce) || ce.Source != Lock || ce.Artifact != "flannel" || !ce.Unpublished {
		t.Fatalf("got %v, want a lock mismatch for flannel", err)
	}
	for _, s := range []string{old, digest(changed), req.LockFile, "publishes no checksum", "sha256 = { flannel = "} {
		if !strings.Contains(err.Error(), s) {
			t.Errorf("error %q does not say %s", err, s)
		}
	}
	if strings.Contains(err.Error(), "-upgrade") {
		t.Errorf("error %q offers -upgrade, which cannot accept a file without a published checksum", err)
	}
	noSet(t, elsewhere.CacheDir)

	// A new pin accepts the change and replaces the locked digest.
	elsewhere.SHA256 = map[string]string{"flannel": digest(changed)}
	fetch(t, elsewhere)
	lock, _ := os.ReadFile(req.LockFile)
	if !strings.Contains(string(lock), digest(changed)) || strings.Contains(string(lock), old) {
		t.Errorf("after the new pin the lock does not hold the new flanneld only:\n%s", lock)
	}
}
