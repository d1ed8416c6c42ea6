package download

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
)

// upstream is a fake of the official download hosts: dl.k8s.io and github.com releases, with tarballs laid out as
// each project lays them out and checksum files in each project's format. Files are keyed by their path after the
// host, which is also the layout a mirror serves under its base URL.
type upstream struct {
	t        *testing.T
	srv      *httptest.Server
	requests atomic.Int64

	mu    sync.Mutex
	files map[string][]byte
	hosts map[string]string // path → the Host it was last asked from
	cut   string            // a path whose body is cut off halfway
	want  map[string][]byte // set path → the content the set must hold
}

func newUpstream(t *testing.T) *upstream {
	u := &upstream{t: t, files: map[string][]byte{}, hosts: map[string]string{}, want: map[string][]byte{}}
	u.srv = httptest.NewServer(http.HandlerFunc(u.serve))
	t.Cleanup(u.srv.Close)
	u.publish("amd64", DefaultVersions())
	return u
}

func (u *upstream) serve(w http.ResponseWriter, r *http.Request) {
	u.requests.Add(1)
	p := strings.TrimPrefix(r.URL.Path, "/mirror")
	u.mu.Lock()
	data, ok := u.files[p]
	cut := u.cut == p
	u.hosts[r.URL.Path] = r.Host
	u.mu.Unlock()
	if !ok {
		http.NotFound(w, r)
		return
	}
	w.Header().Set("Content-Length", strconv.Itoa(len(data)))
	if cut {
		w.Write(data[:len(data)/2])
		w.(http.Flusher).Flush()
		panic(http.ErrAbortHandler) // drops the connection mid-body
	}
	w.Write(data)
}

// official is a client that sends requests for the official hosts to the fake, keeping their Host.
func (u *upstream) official() *http.Client {
	target, _ := url.Parse(u.srv.URL)
	return &http.Client{Transport: rewrite{target: target, next: u.srv.Client().Transport}}
}

type rewrite struct {
	target *url.URL
	next   http.RoundTripper
}

func (rw rewrite) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	r.Host = r.URL.Host
	r.URL.Scheme, r.URL.Host = rw.target.Scheme, rw.target.Host
	return rw.next.RoundTrip(r)
}

func (u *upstream) put(path string, data []byte) {
	u.mu.Lock()
	defer u.mu.Unlock()
	u.files[path] = data
}

func (u *upstream) remove(path string) {
	u.mu.Lock()
	defer u.mu.Unlock()
	delete(u.files, path)
}

// publish puts one release of every component on the fake hosts.
func (u *upstream) publish(arch string, v map[string]string) {
	k8s := v["kubernetes"]
	for _, name := range []string{"kube-apiserver", "kube-controller-manager", "kube-scheduler", "kubelet", "kube-proxy", "kubectl"} {
		size := 64
		if name == "kubelet" {
			size = 700 << 10 // several progress reports, and room to cut the body
		}
		data := payload(name+" "+k8s+" "+arch, size)
		p := "/release/" + k8s + "/bin/linux/" + arch + "/" + name
		u.put(p, data)
		u.put(p+".sha256", []byte(digest(data))) // a bare digest, no newline
		u.want["bin/"+name] = data
	}

	etcd := v["etcd"]
	dir := "etcd-" + etcd + "-linux-" + arch
	etcdTar := u.tarball(dir, map[string]string{dir + "/etcd": "bin/etcd", dir + "/etcdctl": "bin/etcdctl", dir + "/etcdutl": "bin/etcdutl"},
		dir+"/", dir+"/README.md")
	base := "/etcd-io/etcd/releases/download/" + etcd + "/"
	u.put(base+dir+".tar.gz", etcdTar)
	other := payload("etcd darwin", 32)
	u.put(base+"SHA256SUMS", fmt.Appendf(nil, "%s  etcd-%s-darwin-arm64.zip\n%s  %s.tar.gz\n%s  etcd-%s-windows-amd64.zip\n",
		digest(other), etcd, digest(etcdTar), dir, digest(other), etcd))

	ctd := strings.TrimPrefix(v["containerd"], "v")
	ctdTar := u.tarball(ctd+arch, map[string]string{"bin/containerd": "bin/containerd", "bin/containerd-shim-runc-v2": "bin/containerd-shim-runc-v2", "bin/ctr": "bin/ctr"},
		"bin/", "bin/containerd-stress")
	name := "containerd-" + ctd + "-linux-" + arch + ".tar.gz"
	p := "/containerd/containerd/releases/download/" + v["containerd"] + "/" + name
	u.put(p, ctdTar)
	u.put(p+".sha256sum", fmt.Appendf(nil, "%s  %s\n", digest(ctdTar), name))

	runc := payload("runc "+v["runc"]+" "+arch, 96)
	base = "/opencontainers/runc/releases/download/" + v["runc"] + "/"
	u.put(base+"runc."+arch, runc)
	asc := payload("signature", 16)
	u.put(base+"runc.sha256sum", fmt.Appendf(nil, "%s *runc.%s.asc\n%s *runc.%s\n", digest(asc), arch, digest(runc), arch))
	u.want["bin/runc"] = runc

	cni := v["cni_plugins"]
	cniTar := u.tarball(cni+arch, map[string]string{"./bridge": "cni/bridge", "./host-local": "cni/host-local", "./loopback": "cni/loopback", "./portmap": "cni/portmap"},
		"./", "./vlan", "./LICENSE")
	name = "cni-plugins-linux-" + arch + "-" + cni + ".tgz"
	p = "/containernetworking/plugins/releases/download/" + cni + "/" + name
	u.put(p, cniTar)
	u.put(p+".sha256", fmt.Appendf(nil, "%s  %s\n", digest(cniTar), name))

	crictl := v["crictl"]
	crictlTar := u.tarball(crictl+arch, map[string]string{"crictl": "bin/crictl"})
	p = "/kubernetes-sigs/cri-tools/releases/download/" + crictl + "/crictl-" + crictl + "-linux-" + arch + ".tar.gz"
	u.put(p, crictlTar)
	u.put(p+".sha256", []byte(digest(crictlTar)+"\n"))

	// The network plugins publish no checksum file.
	flanneld := payload("flanneld "+v["flannel"]+" "+arch, 128)
	u.put("/flannel-io/flannel/releases/download/"+v["flannel"]+"/flanneld-"+arch, flanneld)
	u.want["bin/flanneld"] = flanneld

	kr := v["kube_router"]
	krTar := u.tarball(kr+arch, map[string]string{"kube-router": "bin/kube-router"}, "LICENSE", "README.md")
	u.put("/cloudnativelabs/kube-router/releases/download/"+kr+"/kube-router_"+strings.TrimPrefix(kr, "v")+"_linux_"+arch+".tar.gz", krTar)
}

// Paths of the network plugins' files on the fake hosts, at the default versions for amd64.
const (
	flanneldPath   = "/flannel-io/flannel/releases/download/v0.28.11/flanneld-amd64"
	kubeRouterPath = "/cloudnativelabs/kube-router/releases/download/v2.1.0/kube-router_2.1.0_linux_amd64.tar.gz"
)

// tarball makes a .tar.gz (its contents told apart by tag) with the members that end in the set (member → set path) and others, ending in "/" for
// directories, that are left out.
func (u *upstream) tarball(tag string, members map[string]string, others ...string) []byte {
	var buf bytes.Buffer
	gz := gzip.NewWriter(&buf)
	tw := tar.NewWriter(gz)
	add := func(name string, data []byte) {
		hdr := &tar.Header{Name: name, Mode: 0o755, Size: int64(len(data)), Typeflag: tar.TypeReg}
		if strings.HasSuffix(name, "/") {
			hdr.Typeflag, hdr.Size = tar.TypeDir, 0
		}
		if err := tw.WriteHeader(hdr); err != nil {
			u.t.Fatal(err)
		}
		if _, err := tw.Write(data); err != nil {
			u.t.Fatal(err)
		}
	}
	for _, name := range others {
		if strings.HasSuffix(name, "/") {
			add(name, nil)
		}
	}
	for member, dest := range members {
		data := payload(tag+" "+member, 80)
		add(member, data)
		u.want[dest] = data
	}
	for _, name := range others {
		if !strings.HasSuffix(name, "/") {
			add(name, payload(name, 40))
		}
	}
	if err := tw.Close(); err != nil {
		u.t.Fatal(err)
	}
	if err := gz.Close(); err != nil {
		u.t.Fatal(err)
	}
	return buf.Bytes()
}

func payload(seed string, size int) []byte {
	return bytes.Repeat([]byte(seed+"\n"), size/(len(seed)+1)+1)[:size]
}

func digest(data []byte) string {
	sum := sha256.Sum256(data)
	return hex.EncodeToString(sum[:])
}
