// Package download builds a local artifact set from the official Kubernetes, etcd, containerd, runc, CNI and crictl
// releases (and the flannel or kube-router release when the cluster's pod network uses it) or a mirror of them,
// checking every file against published checksums, the user's pins and a lock file.
package download

import (
	"cmp"
	"fmt"
	"maps"
	"net/http"
	"slices"
	"strings"

	"github.com/kforge/kforge/config"
)

// DefaultVersions are the versions taken when the request names none. Kubernetes, etcd and containerd are the
// releases this repository builds locally (scripts/build-artifacts.sh). runc, cni_plugins and crictl were chosen from
// the Go module proxy's tag lists on 2026-11-28, since a tag the proxy serves is a release that exists: runc v1.5.3
// is the newest 1.x release (v1.6.0-rc.1 is a candidate), and v1.10.0 and v1.37.0 are the newest versions of
// containernetworking/plugins and sigs.k8s.io/cri-tools the proxy served. flannel and kube_router, fetched only for
// the network plugin that runs them, are the versions scripts/build-artifacts.sh builds.
func DefaultVersions() map[string]string {
	return map[string]string{
		"kubernetes":  "v1.37.2",
		"etcd":        "v3.7.3",
		"containerd":  "v2.4.2",
		"runc":        "v1.5.3",
		"cni_plugins": "v1.10.0",
		"crictl":      "v1.37.0",
		"flannel":     "v0.28.11",
		"kube_router": "v2.1.0",
	}
}

// LockFileName is the lock file's conventional name, kept beside the cluster's configuration and committed with it.
const LockFileName = ".kforge.lock.hcl"

// Request says which releases to fetch, from where, and what to check them against.
type Request struct {
	// Kubernetes is the version of the Kubernetes binaries; empty takes the default.
	Kubernetes string
	// Versions overrides the other components' versions: etcd, containerd, runc, cni_plugins, crictl, flannel,
	// kube_router.
	Versions map[string]string
	// NetworkPlugin is the cluster's pod-network plugin (config.Network.Plugin): "flannel" adds bin/flanneld to the
	// set, "kube-router" bin/kube-router; "" and "routes" need neither.
	NetworkPlugin string
	// Arch is amd64 (the default) or arm64.
	Arch string
	// Mirror is a base URL that replaces the official hosts; empty downloads from them. A mirror keeps each file's
	// path after its official host, so https://dl.k8s.io/release/v1.37.2/bin/linux/amd64/kubelet is served as
	// <mirror>/release/v1.37.2/bin/linux/amd64/kubelet and https://github.com/etcd-io/etcd/releases/download/v3.7.3/SHA256SUMS
	// as <mirror>/etcd-io/etcd/releases/download/v3.7.3/SHA256SUMS. Resolve lists every file and checksum file to copy.
	Mirror string
	// CacheDir holds downloads (sha256/<hex>) and the sets built from them (sets/<key>/).
	CacheDir string
	// LockFile is the lock file's path; empty keeps no lock.
	LockFile string
	// SHA256 pins artifacts by name (kubelet, etcd, cni_plugins, flannel, …) to a digest of the downloaded file.
	// flannel and kube_router need a pin (or the lock file's entry) since their projects publish no checksum file.
	SHA256 map[string]string
	// Upgrade ignores the lock file's digests and records the ones fetched now: the deliberate way to accept a
	// changed upstream file. Not for flannel and kube_router: with no published checksum to accept, their locked
	// digest stays until a new pin replaces it.
	Upgrade bool
	// Client makes the requests; nil takes http.DefaultClient.
	Client *http.Client
	// Progress, when set, is called as bytes of a file arrive (total is -1 when the server does not say).
	Progress func(name string, done, total int64)
}

// Artifact is one file to fetch, resolved for a version, an architecture and a host.
type Artifact struct {
	Name    string // as in the SHA256 pins, the lock file and errors
	Version string
	Path    string // the path after the host: the same on the official host and on a mirror
	URL     string
	SumsURL string // the checksum file its project publishes beside it; empty when it publishes none
	// Files maps where each file taken from it goes in the set: for a tarball, from the member's path; for a plain
	// binary, from "".
	Files map[string]string
}

// component is one upstream release file. Its paths are templates: {v} is the version ("v3.7.3"), {n} the version
// without its "v" ("2.4.2", as containerd names its tarballs) and {arch} amd64 or arm64.
type component struct {
	name    string
	version string // the key of its version
	plugin  string // the network plugin that runs it; empty for the components every set has
	base    string // the official scheme://host, which a mirror replaces
	path    string
	sums    string // empty: the project publishes no checksum file, so a pin or the lock file must vouch for it
	files   map[string]string
}

const (
	k8sHost    = "https://dl.k8s.io"
	githubHost = "https://github.com"
)

// catalog lists the official files. Where each layout was confirmed (as of 2026-11-28):
//   - file URLs: kubernetes-sigs/kubespray roles/kubespray_defaults/defaults/main/download.yml (*_download_url) and
//     kelseyhightower/kubernetes-the-hard-way downloads-amd64.txt (the six Kubernetes binaries, the rest too);
//   - checksum files: podplane/vmconfig scripts/deps/sources.go (HashURL of each) and PRO-Robotech/in-cloud-docs
//     assets/js/60c88869.bce18261.js (templateUrlBinCheckSum, with etcd's SHA256SUMS);
//   - tarball members: etcd under etcd-{v}-linux-{arch}/ (bondyra/k8s-vagrant hard-way/roles/k8s-master/files/setup_etcd.sh;
//     etcdutl beside etcdctl since v3.5: install scripts that extract etcd-{v}-linux-amd64/etcdutl, checked 2026-12-07),
//     containerd under bin/ and crictl at the root (Chever-John/dotfiles scripts/kubernetes/install.sh), the CNI
//     plugins at the root (WildVoidPointer/ShOpsTools KubernetesV1.30.3Installer/07_install_CNI.sh);
//   - flannel (checked 2026-12-07): flanneld-{arch}, a plain binary, in each release of flannel-io/flannel
//     (sysoperator/kubernetes-formula flannel/vars.jinja and pillar/flannel.sls: flanneld-<arch> under
//     https://github.com/flannel-io/flannel/releases/download/<version>/, amd64 and arm64). No checksum file: the
//     release workflow uploads what `make release` leaves in dist/ (flannel-io/flannel .github/workflows/release.yml,
//     gh release upload … dist/flannel*) and the Makefile's tar.gz target writes the binaries and tarballs and no sums
//     (flannel-io/flannel Makefile); the Salt formula above writes each release's sha256 by hand;
//   - kube-router (checked 2026-12-07): kube-router_{n}_linux_{arch}.tar.gz with kube-router at its root (archive
//     name_template {{ .Binary }}_{{.Version}}_{{ .Os }}_{{ .Arch }}, tar.gz, in cloudnativelabs/kube-router
//     .goreleaser.yml; the URL and the member in eskimo-sh/eskimo packages_dev/binary_k8s/packageK8s.sh). GoReleaser
//     writes a checksum file (cloudnativelabs/kube-router .github/workflows/ci-release.yml attests dist/checksums.txt),
//     but what it is called on the release page could not be confirmed: the stored .goreleaser.yml sets no name, and
//     GoReleaser's default, {{ .ProjectName }}_{{ .Version }}_checksums.txt (goreleaser.com/customization/checksum),
//     depends on a project name it guesses (goreleaser/goreleaser internal/pipe/project/project.go: the release's
//     name, else the last element of the module path, which for kube-router is "v2"). Until it is confirmed kforge
//     fetches none and treats kube-router as it treats flannel.
func catalog() []component {
	var cs []component
	for _, name := range []string{"kube-apiserver", "kube-controller-manager", "kube-scheduler", "kubelet", "kube-proxy", "kubectl"} {
		p := "/release/{v}/bin/linux/{arch}/" + name // .sha256 beside it: a bare digest
		cs = append(cs, component{name: name, version: "kubernetes", base: k8sHost, path: p, sums: p + ".sha256",
			files: map[string]string{"": "bin/" + name}})
	}
	const etcd = "/etcd-io/etcd/releases/download/{v}/"
	const containerd = "/containerd/containerd/releases/download/{v}/containerd-{n}-linux-{arch}.tar.gz"
	const runc = "/opencontainers/runc/releases/download/{v}/"
	const cni = "/containernetworking/plugins/releases/download/{v}/cni-plugins-linux-{arch}-{v}.tgz"
	const crictl = "/kubernetes-sigs/cri-tools/releases/download/{v}/crictl-{v}-linux-{arch}.tar.gz"
	const flannel = "/flannel-io/flannel/releases/download/{v}/flanneld-{arch}"
	const kubeRouter = "/cloudnativelabs/kube-router/releases/download/{v}/kube-router_{n}_linux_{arch}.tar.gz"
	return append(cs,
		// SHA256SUMS lists every file of the release.
		component{name: "etcd", version: "etcd", base: githubHost,
			path: etcd + "etcd-{v}-linux-{arch}.tar.gz", sums: etcd + "SHA256SUMS",
			files: map[string]string{"etcd-{v}-linux-{arch}/etcd": "bin/etcd", "etcd-{v}-linux-{arch}/etcdctl": "bin/etcdctl",
				"etcd-{v}-linux-{arch}/etcdutl": "bin/etcdutl"}},
		component{name: "containerd", version: "containerd", base: githubHost, path: containerd, sums: containerd + ".sha256sum",
			files: map[string]string{"bin/containerd": "bin/containerd", "bin/containerd-shim-runc-v2": "bin/containerd-shim-runc-v2", "bin/ctr": "bin/ctr"}},
		// runc.sha256sum lists every file of the release.
		component{name: "runc", version: "runc", base: githubHost, path: runc + "runc.{arch}", sums: runc + "runc.sha256sum",
			files: map[string]string{"": "bin/runc"}},
		component{name: "cni_plugins", version: "cni_plugins", base: githubHost, path: cni, sums: cni + ".sha256",
			files: map[string]string{"bridge": "cni/bridge", "host-local": "cni/host-local", "loopback": "cni/loopback", "portmap": "cni/portmap"}},
		component{name: "crictl", version: "crictl", base: githubHost, path: crictl, sums: crictl + ".sha256",
			files: map[string]string{"crictl": "bin/crictl"}},
		// The network plugins: no checksum file (see above).
		component{name: "flannel", version: "flannel", plugin: config.PluginFlannel, base: githubHost, path: flannel,
			files: map[string]string{"": "bin/flanneld"}},
		component{name: "kube_router", version: "kube_router", plugin: config.PluginKubeRouter, base: githubHost, path: kubeRouter,
			files: map[string]string{"kube-router": "bin/kube-router"}},
	)
}

// plugin is the network plugin whose components the request fetches: "" for routes, which runs no binary.
func (req Request) plugin() (string, error) {
	switch req.NetworkPlugin {
	case "", config.PluginRoutes:
		return "", nil
	case config.PluginFlannel, config.PluginKubeRouter:
		return req.NetworkPlugin, nil
	}
	return "", fmt.Errorf("download: network plugin %q is not %s", req.NetworkPlugin, strings.Join(config.NetworkPlugins, ", "))
}

// Resolve lists the files a request fetches, with their URLs, without fetching anything.
func Resolve(req Request) ([]Artifact, error) {
	versions, err := req.versions()
	if err != nil {
		return nil, err
	}
	arch := req.Arch
	if arch == "" {
		arch = "amd64"
	}
	if arch != "amd64" && arch != "arm64" {
		return nil, fmt.Errorf("download: architecture %q is not amd64 or arm64", arch)
	}
	plugin, err := req.plugin()
	if err != nil {
		return nil, err
	}
	var out []Artifact
	unused := map[string]string{} // the other plugins' components → their plugin
	for _, c := range catalog() {
		if c.plugin != "" && c.plugin != plugin {
			unused[c.name] = c.plugin
			continue
		}
		v := versions[c.version]
		expand := strings.NewReplacer("{v}", v, "{n}", strings.TrimPrefix(v, "v"), "{arch}", arch).Replace
		base := c.base
		if req.Mirror != "" {
			base = strings.TrimSuffix(req.Mirror, "/")
		}
		a := Artifact{Name: c.name, Version: v, Path: expand(c.path), Files: map[string]string{}}
		a.URL = base + a.Path
		if c.sums != "" {
			a.SumsURL = base + expand(c.sums)
		}
		for member, dest := range c.files {
			a.Files[expand(member)] = dest
		}
		out = append(out, a)
	}
	for name, pin := range req.SHA256 {
		if !slices.ContainsFunc(out, func(a Artifact) bool { return a.Name == name }) {
			if p, ok := unused[name]; ok {
				return nil, fmt.Errorf("download: sha256 pin for %q, which only the %s network plugin uses (this cluster's: %s)",
					name, p, cmp.Or(req.NetworkPlugin, config.PluginRoutes))
			}
			return nil, fmt.Errorf("download: sha256 pin for %q, which is no artifact (artifacts: %s)", name, names(out))
		}
		if !isDigest(pin) || strings.ToLower(pin) != pin {
			return nil, fmt.Errorf("download: sha256 pin for %s: %q is not 64 lower-case hex digits", name, pin)
		}
	}
	return out, nil
}

// versions merges the request's versions into the defaults; config files may write them without the "v".
func (req Request) versions() (map[string]string, error) {
	versions := DefaultVersions()
	given := maps.Clone(req.Versions)
	if req.Kubernetes != "" {
		if given == nil {
			given = map[string]string{}
		}
		given["kubernetes"] = req.Kubernetes
	}
	for k, v := range given {
		if _, ok := versions[k]; !ok {
			return nil, fmt.Errorf("download: no component %q (components: %s)", k, strings.Join(slices.Sorted(maps.Keys(versions)), ", "))
		}
		// The version goes into URL paths: nothing but a release's characters.
		if v == "" || strings.Trim(v, "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ.+-") != "" || strings.Contains(v, "..") {
			return nil, fmt.Errorf("download: %s version %q is not a release version", k, v)
		}
		versions[k] = "v" + strings.TrimPrefix(v, "v")
	}
	return versions, nil
}

func names(arts []Artifact) string {
	var ns []string
	for _, a := range arts {
		ns = append(ns, a.Name)
	}
	return strings.Join(ns, ", ")
}
