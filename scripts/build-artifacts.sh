#!/usr/bin/env bash
# Builds the artifacts that lab clusters and the end-to-end test install, since these machines reach no download
# site: Kubernetes, etcd, containerd and two pod-network plugins (flanneld, kube-router) from the Go module proxy,
# runc and the CNI plugins from Debian's packages, a pause image, a test image and CoreDNS. Output:
# $KFORGE_ARTIFACTS/<set>/ with every file and a manifest of sha256 sums. Each part is cached by version (a second
# run takes seconds) and an interrupted run resumes where it stopped.
set -euo pipefail
export PATH=/usr/local/go/bin:$PATH CGO_ENABLED=0 GOFLAGS=-mod=mod
K8S=${K8S_VERSION:-v1.37.2}
ETCD=${ETCD_VERSION:-v3.7.3}
CONTAINERD=${CONTAINERD_VERSION:-v2.4.2}
FLANNEL=${FLANNEL_VERSION:-v0.28.11}
# kube-router: v2.1.0 is the only version the Go module proxy serves here (later ones give 403).
KUBE_ROUTER=${KUBE_ROUTER_VERSION:-v2.1.0}
# CoreDNS: the version kubeadm v1.37.2 deploys (CoreDNSVersion in cmd/kubeadm/app/constants/constants.go).
COREDNS=${COREDNS_VERSION:-v1.14.6}
COREDNS_NAME=kforge.local/coredns:$COREDNS
ROOT=${KFORGE_ARTIFACTS:-/var/cache/kforge/artifacts}
LAYOUT=7 # bumped when a set gains files, so an older set is not taken for a complete one
SET=$ROOT/k8s-$K8S-etcd-$ETCD-containerd-$CONTAINERD-$LAYOUT
PARTS=$ROOT/parts
BUILD=$ROOT/build
. "$(dirname "$0")/lib/kubernetes-module.sh"
log() { printf '%s artifacts: %s\n' "$(date +%H:%M:%S)" "$*"; }

# --print-set: say where the set is (or will be), for configurations and the Makefile.
if [ "${1:-}" = --print-set ]; then echo "$SET"; exit 0; fi
if [ -f "$SET/manifest.json" ]; then log "cached: $SET"; exit 0; fi
mkdir -p "$PARTS" "$BUILD"

build_kubernetes() {
  local out=$PARTS/kubernetes-$K8S
  [ -f "$out/.done" ] && return
  log "building Kubernetes $K8S (about 8 minutes the first time)"
  local src=$BUILD/kubernetes-$K8S c tools=()
  mkdir -p "$out"
  for c in kube-apiserver kube-controller-manager kube-scheduler kubelet kube-proxy kubectl; do tools+=("k8s.io/kubernetes/cmd/$c"); done
  kubernetes_module "$src" "$K8S" "${tools[@]}"
  (cd "$src" && go mod tidy >/dev/null 2>&1 || go mod tidy)
  (cd "$src" && go build -trimpath -ldflags "$(k8s_ldflags "$K8S")" -o "$out/" \
    k8s.io/kubernetes/cmd/kube-apiserver k8s.io/kubernetes/cmd/kube-controller-manager k8s.io/kubernetes/cmd/kube-scheduler \
    k8s.io/kubernetes/cmd/kubelet k8s.io/kubernetes/cmd/kube-proxy k8s.io/kubernetes/cmd/kubectl)
  "$out/kube-apiserver" --version | grep -qx "Kubernetes $K8S"
  touch "$out/.done"
}

build_etcd() {
  local out=$PARTS/etcd-$ETCD
  [ -f "$out/.done" ] && return
  log "building etcd $ETCD"
  local src=$BUILD/etcd-$ETCD
  mkdir -p "$src" "$out"
  cat > "$src/main.go" <<'GO'
// Command etcd is etcd's own server main, built from the Go module proxy.
package main

import (
	"os"

	"go.etcd.io/etcd/server/v3/etcdmain"
)

func main() { etcdmain.Main(os.Args) }
GO
  printf 'module kforge.local/etcd-build\n\ngo 1.26.0\n\nrequire (\n\tgo.etcd.io/etcd/server/v3 %s\n\tgo.etcd.io/etcd/etcdctl/v3 %s\n)\n\ntool go.etcd.io/etcd/etcdctl/v3\n' "$ETCD" "$ETCD" > "$src/go.mod"
  (cd "$src" && go mod tidy >/dev/null 2>&1 || go mod tidy)
  (cd "$src" && go build -trimpath -ldflags "-s -w" -o "$out/etcd" . && go build -trimpath -ldflags "-s -w" -o "$out/etcdctl" go.etcd.io/etcd/etcdctl/v3)
  "$out/etcd" --version | grep -q "etcd Version: ${ETCD#v}"
  touch "$out/.done"
}

# etcdutl, etcd's offline tool (snapshot restore), is a module of its own at the same version.
build_etcdutl() {
  local out=$PARTS/etcdutl-$ETCD
  [ -f "$out/.done" ] && return
  log "building etcdutl $ETCD"
  local src=$BUILD/etcdutl-$ETCD
  mkdir -p "$src" "$out"
  printf 'module kforge.local/etcdutl-build\n\ngo 1.26.0\n\nrequire go.etcd.io/etcd/etcdutl/v3 %s\n\ntool go.etcd.io/etcd/etcdutl/v3\n' "$ETCD" > "$src/go.mod"
  (cd "$src" && go mod tidy >/dev/null 2>&1 || go mod tidy)
  (cd "$src" && go build -trimpath -ldflags "-s -w" -o "$out/etcdutl" go.etcd.io/etcd/etcdutl/v3)
  "$out/etcdutl" version | grep -q "etcdutl version: ${ETCD#v}"
  touch "$out/.done"
}

build_containerd() {
  local out=$PARTS/containerd-$CONTAINERD
  [ -f "$out/.done" ] && return
  log "building containerd $CONTAINERD"
  local src=$BUILD/containerd-$CONTAINERD
  mkdir -p "$src" "$out"
  printf 'module kforge.local/containerd-build\n\ngo 1.26.0\n\nrequire github.com/containerd/containerd/v2 %s\n\ntool (\n\tgithub.com/containerd/containerd/v2/cmd/containerd\n\tgithub.com/containerd/containerd/v2/cmd/containerd-shim-runc-v2\n\tgithub.com/containerd/containerd/v2/cmd/ctr\n)\n' "$CONTAINERD" > "$src/go.mod"
  (cd "$src" && go mod tidy >/dev/null 2>&1 || go mod tidy)
  local v=github.com/containerd/containerd/v2/version
  (cd "$src" && go build -trimpath -tags "no_btrfs no_devmapper no_zfs" -ldflags "-s -w -X $v.Version=$CONTAINERD" -o "$out/" \
    github.com/containerd/containerd/v2/cmd/containerd github.com/containerd/containerd/v2/cmd/containerd-shim-runc-v2 \
    github.com/containerd/containerd/v2/cmd/ctr)
  touch "$out/.done"
}

# flanneld, the pod network's routing (vxlan or host-gw), is built from a copy of its module rather than with
# go install or a tool line: main.go imports every backend for its side effects, and two of them cannot be built
# here. tencentvpc needs the Tencent Cloud SDK, which the proxy refuses (403), and udp needs cgo (this script builds
# with CGO_ENABLED=0). Their two import lines are deleted from the copy; no other file changes. No go mod tidy:
# tidy would still want the SDK for the tencentvpc package left in the tree, while the build needs only flannel's
# own go.mod and go.sum as they are.
build_flannel() {
  local out=$PARTS/flannel-$FLANNEL
  [ -f "$out/.done" ] && return
  log "building flanneld $FLANNEL"
  local work=$BUILD/flannel-$FLANNEL info
  local src=$work/src
  if [ -d "$src" ]; then chmod -R u+w "$src"; fi # the copy of a run that stopped before its chmod
  rm -rf "$src"; mkdir -p "$work/download" "$out"
  printf 'module kforge.local/flannel-download\n\ngo 1.26.0\n' > "$work/download/go.mod"
  # -json reports a failure (a version the proxy refuses) on stdout, so it is shown here.
  info=$(cd "$work/download" && go mod download -json "github.com/flannel-io/flannel@$FLANNEL") || { echo "$info" >&2; exit 1; }
  cp -r "$(sed -n 's/.*"Dir": "\(.*\)".*/\1/p' <<< "$info")" "$src"
  chmod -R u+w "$src" # the module cache is read-only
  sed -i -e '\#^[[:space:]]*_ "github.com/flannel-io/flannel/pkg/backend/tencentvpc"$#d' \
    -e '\#^[[:space:]]*_ "github.com/flannel-io/flannel/pkg/backend/udp"$#d' "$src/main.go"
  if grep -q 'flannel/pkg/backend/\(tencentvpc\|udp\)"' "$src/main.go"; then
    log "flannel $FLANNEL: the tencentvpc and udp imports of main.go are not in the expected form"; exit 1
  fi
  (cd "$src" && go build -trimpath -ldflags "-s -w -X github.com/flannel-io/flannel/pkg/version.Version=$FLANNEL" -o "$out/flanneld" .)
  "$out/flanneld" --version 2>&1 | grep -qx "$FLANNEL"
  touch "$out/.done"
}

# kube-router, for network policies (its firewall alone, on top of flannel). No go mod tidy here, unlike the other
# tool modules: tidy also resolves imports that only other platforms and tests of docker/docker (a module without a
# go.mod) need, at whatever version is latest on the proxy, which moves grpc, otel, golang.org/x/... years past
# kube-router's own go.mod. go build with -mod=mod takes kube-router's requirements as released. The version and
# build date are stamped as its Makefile does; the date is the release's, from the proxy, so a rebuild gives the
# same binary.
build_kube_router() {
  local out=$PARTS/kube-router-$KUBE_ROUTER
  [ -f "$out/.done" ] && return
  log "building kube-router $KUBE_ROUTER"
  local src=$BUILD/kube-router-$KUBE_ROUTER m=github.com/cloudnativelabs/kube-router/v2 date
  mkdir -p "$src" "$out"
  printf 'module kforge.local/kube-router-build\n\ngo 1.26.0\n\nrequire %s %s\n\ntool %s/cmd/kube-router\n' "$m" "$KUBE_ROUTER" "$m" > "$src/go.mod"
  date=$(cd "$src" && go list -m -f '{{.Time.UTC.Format "2006-01-02T15:04:05Z"}}' "$m")
  (cd "$src" && go build -trimpath -ldflags "-s -w -X $m/pkg/version.Version=$KUBE_ROUTER -X $m/pkg/version.BuildDate=$date" \
    -o "$out/kube-router" "$m/cmd/kube-router")
  "$out/kube-router" --version 2>&1 | grep -q "version $KUBE_ROUTER, "
  touch "$out/.done"
}

# runc and the CNI plugins: Debian's packages, unpacked (no hosts install them with apt: lab hosts have no route).
debian_parts() {
  local out=$PARTS/debian-$(dpkg --print-architecture)
  [ -f "$out/.done" ] && return
  log "taking runc and the CNI plugins from Debian's packages"
  local dl=$BUILD/debian
  rm -rf "$dl"; mkdir -p "$dl/x" "$out"
  (cd "$dl" && apt-get -o APT::Sandbox::User=root download runc containernetworking-plugins >/dev/null)
  for deb in "$dl"/*.deb; do dpkg-deb -x "$deb" "$dl/x"; done
  cp "$dl/x/usr/sbin/runc" "$out/runc"
  mkdir -p "$out/cni"
  for p in bridge host-local loopback portmap; do cp "$dl/x/usr/lib/cni/$p" "$out/cni/$p"; done
  (cd "$dl" && ls *.deb) > "$out/packages.txt"
  touch "$out/.done"
}

# mkoci: kforge's own OCI image writer (cmd/mkoci), built once per run.
MKOCI=$BUILD/mkoci
build_mkoci() { (cd "$(dirname "$0")/.." && go build -trimpath -o "$MKOCI" ./cmd/mkoci); }

# oci_image NAME OUT ROOTFS ENTRYPOINT_JSON: a single-layer OCI image (a tarball containerd imports) of the
# directory ROOTFS. Reproducible: the same files give the same digest.
oci_image() {
  local name=$1 out=$2 rootfs=$3 entry=$4
  mkdir -p "$out"
  printf '{"architecture": "%s", "images": [{"name": "%s", "layers": ["%s"], "env": ["PATH=/bin"], "entrypoint": %s}]}\n' \
    "$(go env GOARCH)" "$name" "$rootfs" "$entry" > "$out/spec.json"
  "$MKOCI" -o "$out/image.tar" "$out/spec.json"
  touch "$out/.done"
}

# busybox_image NAME OUT APPLETS ENTRYPOINT: an image of Debian's busybox-static with the given applets linked in
# /bin, running ENTRYPOINT with /bin/sh -c.
busybox_image() {
  local name=$1 out=$2 applets=$3 entry=$4
  [ -f "$out/.done" ] && return
  log "building the image $name from busybox-static"
  local w=$BUILD/image-$(basename "$out")
  rm -rf "$w"; mkdir -p "$w/deb" "$w/rootfs/bin"
  (cd "$w" && apt-get -o APT::Sandbox::User=root download busybox-static >/dev/null)
  dpkg-deb -x "$w"/busybox-static_*.deb "$w/deb"
  cp "$w/deb/bin/busybox" "$w/rootfs/bin/busybox"
  for a in $applets; do ln -s busybox "$w/rootfs/bin/$a"; done
  mkdir -p "$w/rootfs/proc" "$w/rootfs/sys" "$w/rootfs/dev" "$w/rootfs/etc" "$w/rootfs/tmp"
  oci_image "$name" "$out" "$w/rootfs" "$(printf '["/bin/sh", "-c", "%s"]' "$entry")"
}

# build_coredns: cluster DNS, CoreDNS built from the Go module proxy, as an image whose only file is the binary.
build_coredns() {
  local out=$PARTS/coredns-$COREDNS
  [ -f "$out/.done" ] && return
  log "building CoreDNS $COREDNS"
  local src=$BUILD/coredns-$COREDNS
  rm -rf "$src/rootfs"; mkdir -p "$src/rootfs" "$out"
  printf 'module kforge.local/coredns-build\n\ngo 1.26.0\n\nrequire github.com/coredns/coredns %s\n\ntool github.com/coredns/coredns\n' "$COREDNS" > "$src/go.mod"
  (cd "$src" && go mod tidy >/dev/null 2>&1 || go mod tidy)
  (cd "$src" && go build -trimpath -ldflags "-s -w" -o "$src/rootfs/coredns" github.com/coredns/coredns)
  "$src/rootfs/coredns" -version | grep -q "CoreDNS-${COREDNS#v}"
  oci_image "$COREDNS_NAME" "$out" "$src/rootfs" '["/coredns"]'
}

# The sandbox ("pause") image: a shell that waits and exits on SIGTERM, as the real pause binary does (a sandbox
# that ignores SIGTERM delays every host shutdown). Only sh and sleep: workloads get the test image.
PAUSE_NAME=kforge.local/pause:busybox
# The test image the end-to-end test runs: an HTTP server on port 8080 answering with the pod's hostname, with
# the applets a test needs to look around from inside a pod (nc, wget, nslookup, ip).
TESTBOX_NAME=kforge.local/testbox:busybox
TESTBOX_APPLETS="sh sleep echo cat printf hostname mkdir httpd nc wget nslookup ip ls ps"
TESTBOX_ENTRY="mkdir -p /tmp/www && hostname > /tmp/www/index.html && exec httpd -f -p 8080 -h /tmp/www"

build_kubernetes
build_etcd
build_etcdutl
build_containerd
build_flannel
build_kube_router
debian_parts
build_mkoci
busybox_image "$PAUSE_NAME" "$PARTS/image-pause" "sh sleep" "trap 'exit 0' TERM INT; sleep 2147483647 & wait"
busybox_image "$TESTBOX_NAME" "$PARTS/image-testbox" "$TESTBOX_APPLETS" "$TESTBOX_ENTRY"
build_coredns

log "assembling $SET"
tmp=$SET.tmp
rm -rf "$tmp"; mkdir -p "$tmp/bin" "$tmp/cni" "$tmp/images"
cp "$PARTS/image-pause/image.tar" "$tmp/images/pause.tar"
cp "$PARTS/image-testbox/image.tar" "$tmp/images/testbox.tar"
cp "$PARTS/coredns-$COREDNS/image.tar" "$tmp/images/coredns.tar"
cp "$PARTS/kubernetes-$K8S"/kube* "$tmp/bin/"
cp "$PARTS/etcd-$ETCD"/etcd* "$tmp/bin/"
cp "$PARTS/etcdutl-$ETCD/etcdutl" "$tmp/bin/"
cp "$PARTS/containerd-$CONTAINERD"/{containerd,containerd-shim-runc-v2,ctr} "$tmp/bin/"
cp "$PARTS/flannel-$FLANNEL/flanneld" "$PARTS/kube-router-$KUBE_ROUTER/kube-router" "$tmp/bin/"
debian=$PARTS/debian-$(dpkg --print-architecture)
cp "$debian/runc" "$tmp/bin/"
cp "$debian"/cni/* "$tmp/cni/"
{
  printf '{\n  "kubernetes": "%s", "etcd": "%s", "containerd": "%s", "flannel": "%s", "kube_router": "%s",\n' "$K8S" "$ETCD" "$CONTAINERD" "$FLANNEL" "$KUBE_ROUTER"
  printf '  "pause_image": "%s", "dns_image": "%s",\n' "$PAUSE_NAME" "$COREDNS_NAME"
  printf '  "images": [\n    {"name": "%s", "path": "images/pause.tar"},\n    {"name": "%s", "path": "images/testbox.tar"},\n    {"name": "%s", "path": "images/coredns.tar"}\n  ],\n  "files": [\n' "$PAUSE_NAME" "$TESTBOX_NAME" "$COREDNS_NAME"
  first=1
  for f in $(cd "$tmp" && find bin cni images -type f | sort); do
    [ $first = 1 ] || printf ',\n'; first=0
    printf '    {"path": "%s", "sha256": "%s", "size": %s}' "$f" "$(sha256sum "$tmp/$f" | cut -d' ' -f1)" "$(stat -c %s "$tmp/$f")"
  done
  printf '\n  ]\n}\n'
} > "$tmp/manifest.json"
mv "$tmp" "$SET"
log "done: $SET"
