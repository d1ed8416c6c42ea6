#!/usr/bin/env bash
# Builds, on this machine and from nothing but the Go module proxy and Debian's packages, stand-ins for the
# container images the upstream conformance suite of a Kubernetes version pulls, under the exact names it pulls
# (IMAGES.md says what each one is and how it differs from the official one). Output: one OCI image-layout
# tarball that `ctr -n k8s.io images import` takes whole, layers shared between images stored once:
#   $KFORGE_CONFORMANCE/images-<recipe>/e2e-images.tar, with images.txt (the names) and versions.txt.
# <recipe> hashes this script, the versions below, the image writer's sources and the Debian mirror.
# Each part (the Debian base, each image's layer, each Go program) is cached by its own recipe under
# $KFORGE_CONFORMANCE/image-parts/, so a change rebuilds only what it touches. Run as root (debootstrap, chroot,
# overlay mounts). --print prints the tarball's path (present only once complete) and builds nothing.
set -euo pipefail
export PATH=/usr/local/go/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin CGO_ENABLED=0 GOFLAGS=-mod=mod
umask 022
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
self=$here/$(basename "${BASH_SOURCE[0]}")
repo=$(cd "$here/../.." && pwd)
. "$repo/scripts/lib/kubernetes-module.sh"

K8S=${K8S_VERSION:-v1.37.2}
# CoreDNS for /coredns in agnhost and glibc-dns-testing: the version kubeadm $K8S deploys.
COREDNS=${COREDNS_VERSION:-v1.14.6}
# etcd for registry.k8s.io/etcd:3.7.0-0 (the name's version, built from go.etcd.io at that tag).
ETCD=${ETCD_IMAGE_VERSION:-v3.7.0}
# k8s.io/sample-apiserver: the release that goes with $K8S.
SAMPLE_APISERVER=${SAMPLE_APISERVER_VERSION:-v0.${K8S#v1.}}
SUITE=bookworm
# BusyBox for the busybox images: the upstream release the suite's image is, built from Debian's source package
# of it in the Debian suite that has it (see busybox_source).
BUSYBOX=${BUSYBOX_VERSION:-1.37.0}
BUSYBOX_SUITE=${BUSYBOX_SUITE:-trixie}
ROOT=${KFORGE_CONFORMANCE:-/var/cache/kforge/conformance}
PARTS=$ROOT/image-parts
BUILD=$ROOT/build/images
IMAGE_PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
log() { printf '%s images: %s\n' "$(date +%H:%M:%S)" "$*"; }
die() { log "$*" >&2; exit 1; }

# The names the suite of $K8S asks for (test/utils/image/manifest.go; busybox:1.36.1-1 is spelled out in
# test/e2e_node), checked against the source below so that another K8S_VERSION cannot silently get old names.
E2E=registry.k8s.io/e2e-test-images
AGNHOST_NAMES="$E2E/agnhost:2.66.1 $E2E/agnhost:2.55"
BUSYBOX_NAMES="$E2E/busybox:1.37.0-2 $E2E/busybox:1.36.1-1"
NGINX_NAMES="$E2E/nginx:1.27.0-2 $E2E/nginx:1.28.0-2"
PAUSE_NAME=registry.k8s.io/pause:3.10.2
GLIBC_DNS_NAME=$E2E/glibc-dns-testing:2.1.1
KITTEN_NAME=$E2E/kitten:1.8
NAUTILUS_NAME=$E2E/nautilus:1.8
NONROOT_NAME=$E2E/nonroot:1.5
NONEWPRIVS_NAME=$E2E/nonewprivs:1.4
ETCD_NAME=registry.k8s.io/etcd:3.7.0-0
SAMPLE_APISERVER_NAME=$E2E/sample-apiserver:1.29.2
ALL_NAMES="$AGNHOST_NAMES $BUSYBOX_NAMES $NGINX_NAMES $PAUSE_NAME $GLIBC_DNS_NAME $KITTEN_NAME $NAUTILUS_NAME
  $NONROOT_NAME $NONEWPRIVS_NAME $ETCD_NAME $SAMPLE_APISERVER_NAME"

# debian_mirror: the mirror this machine's apt uses (as the lab's image build reads it), empty for debootstrap's.
debian_mirror() {
  sed -n 's/^URIs:[[:space:]]*\([^[:space:]]*\).*/\1/p' /etc/apt/sources.list.d/debian.sources 2>/dev/null | head -n1
}
MIRROR=$(debian_mirror)

recipe() {
  {
    cat "$self" "$repo/scripts/lib/kubernetes-module.sh"
    cat "$repo"/cmd/mkoci/*.go "$repo"/internal/ociimage/*.go "$repo"/internal/atomicfile/*.go
    printf '%s\n' "$K8S" "$COREDNS" "$ETCD" "$SAMPLE_APISERVER" "$SUITE" "$MIRROR" "$BUSYBOX" "$BUSYBOX_SUITE" "$(go env GOVERSION GOARCH)"
  } | sha256sum | cut -c1-16
}
OUT=$ROOT/images-$(recipe)
if [ "${1:-}" = --print ]; then echo "$OUT/e2e-images.tar"; exit 0; fi
[ $# -eq 0 ] || { echo "usage: $0 [--print]" >&2; exit 2; }
if [ -f "$OUT/.done" ]; then log "cached: $OUT/e2e-images.tar"; exit 0; fi
[ "$(id -u)" = 0 ] || die "must run as root (debootstrap, chroot and overlay mounts)"

mkdir -p "$ROOT" "$PARTS" "$BUILD"
exec 9>"$ROOT/.images.lock"
flock 9 # one build at a time: parts are renamed into place and work directories are reused
if [ -f "$OUT/.done" ]; then log "cached: $OUT/e2e-images.tar"; exit 0; fi

# Mounts live only under $BUILD (overlays) and the parts being built (debootstrap's /proc and /dev binds): an
# interrupted run unmounts them all, and nothing is deleted across a mount point (rm --one-file-system).
unmount_under() {
  local dir
  for dir in "$@"; do
    awk -v d="$dir" '$2 == d || index($2, d "/") == 1 {print $2}' /proc/self/mounts | sort -r | while read -r m; do
      umount "$m" 2>/dev/null || umount -l "$m"
    done
  done
}
safe_rm() {
  unmount_under "$@"
  rm -rf --one-file-system "$@"
}
cleanup() { unmount_under "$BUILD" "$PARTS"; }
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

gomod_dir() { go mod download -json "$1" | sed -n 's/.*"Dir": "\(.*\)".*/\1/p'; }
KSRC=$(gomod_dir "k8s.io/kubernetes@$K8S")
[ -d "$KSRC/test/images" ] || die "no source for k8s.io/kubernetes@$K8S"

check_names() {
  local name img tag bad=0
  for name in $ALL_NAMES; do
    img=${name%:*}; img=${img##*/}; tag=${name##*:}
    grep -q "\"$img\", \"$tag\"" "$KSRC/test/utils/image/manifest.go" || grep -rqF "\"$name\"" "$KSRC/test/e2e_node" ||
      { log "$name is not an image that Kubernetes $K8S's tests use"; bad=1; }
  done
  [ $bad = 0 ] || die "the image names in $self are not those of $K8S"
}

# part VAR NAME "BUILDER [HELPER…]" [ARG…]: the directory of a part, built once per recipe (the definitions of
# BUILDER and its HELPERs, and the ARGs) by `BUILDER DIR ARG…` into DIR.tmp, marked done, then renamed.
part() {
  local var=$1 name=$2 fns=$3; shift 3
  local builder=${fns%% *} key dir
  # shellcheck disable=SC2086
  key=$({ declare -f $fns; printf '%s\n' "$@"; } | sha256sum | cut -c1-12)
  dir=$PARTS/$name-$key
  printf -v "$var" %s "$dir"
  USED+=("$name-$key")
  [ -f "$dir/.done" ] && return
  safe_rm "$dir" "$dir.tmp"
  mkdir -p "$dir.tmp"
  log "building $name"
  "$builder" "$dir.tmp" "$@"
  touch "$dir.tmp/.done"
  mv -T "$dir.tmp" "$dir"
}

apt_ready=0
# apt_lists: the host's package lists, read once per run (a fresh machine has none).
apt_lists() {
  [ $apt_ready = 1 ] && return
  log "apt-get update"
  apt-get update -qq
  apt_ready=1
}

prerequisites() {
  local missing=() tool pkg
  for tool in debootstrap:debootstrap gcc:gcc getfattr:attr make:make bzip2:bzip2; do
    command -v "${tool%%:*}" >/dev/null || missing+=("${tool#*:}")
  done
  [ -f /usr/include/stdio.h ] && [ -f "$(gcc -print-file-name=libc.a 2>/dev/null || echo /nonexistent)" ] || missing+=(libc6-dev)
  [ ${#missing[@]} = 0 ] && return
  apt_lists
  log "installing ${missing[*]}"
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
  for pkg in "${missing[@]}"; do dpkg -s "$pkg" >/dev/null; done
}

### Go programs

# go_wrapper DIR MODULE VERSION PACKAGE…: a main module in DIR requiring MODULE VERSION, with a tool line
# per PACKAGE so that go mod tidy records what they need.
go_wrapper() {
  local dir=$1 mod=$2 version=$3; shift 3
  mkdir -p "$dir"
  { printf 'module kforge.local/image-build\n\ngo 1.26.0\n\nrequire %s %s\n\ntool (\n' "$mod" "$version"
    printf '\t%s\n' "$@"; printf ')\n'; } > "$dir/go.mod"
  (cd "$dir" && { go mod tidy >/dev/null 2>&1 || go mod tidy; })
}

# agnhost (stamped with its VERSION, as its Makefile does) and nonewprivs' nnp, from k8s.io/kubernetes.
build_agnhost() {
  local out=$1 k8s=$2 src=$BUILD/go-kubernetes-$2 ksrc
  ksrc=$(gomod_dir "k8s.io/kubernetes@$k8s")
  kubernetes_module "$src" "$k8s" k8s.io/kubernetes/test/images/agnhost k8s.io/kubernetes/test/images/nonewprivs
  (cd "$src" && { go mod tidy >/dev/null 2>&1 || go mod tidy; })
  (cd "$src" && go build -trimpath -ldflags "-s -w -X main.Version=$(cat "$ksrc/test/images/agnhost/VERSION")" \
    -o "$out/agnhost" k8s.io/kubernetes/test/images/agnhost)
  (cd "$src" && go build -trimpath -ldflags "-s -w" -o "$out/nnp" k8s.io/kubernetes/test/images/nonewprivs)
  "$out/agnhost" --version
}

build_coredns() {
  local out=$1 v=$2 src=$BUILD/go-coredns-$2
  go_wrapper "$src" github.com/coredns/coredns "$v" github.com/coredns/coredns
  (cd "$src" && go build -trimpath -ldflags "-s -w" -o "$out/coredns" github.com/coredns/coredns)
  "$out/coredns" -version | grep -q "CoreDNS-${v#v}"
}

# etcd's server main is etcdmain.Main, as scripts/build-artifacts.sh builds it; etcdctl is its own module.
build_etcd() {
  local out=$1 v=$2 src=$BUILD/go-etcd-$2
  mkdir -p "$src"
  printf '// Command etcd is etcd'\''s own server main.\npackage main\n\nimport (\n\t"os"\n\n\t"go.etcd.io/etcd/server/v3/etcdmain"\n)\n\nfunc main() { etcdmain.Main(os.Args) }\n' > "$src/main.go"
  printf 'module kforge.local/etcd-build\n\ngo 1.26.0\n\nrequire (\n\tgo.etcd.io/etcd/server/v3 %s\n\tgo.etcd.io/etcd/etcdctl/v3 %s\n)\n\ntool go.etcd.io/etcd/etcdctl/v3\n' "$v" "$v" > "$src/go.mod"
  (cd "$src" && { go mod tidy >/dev/null 2>&1 || go mod tidy; })
  (cd "$src" && go build -trimpath -ldflags "-s -w" -o "$out/etcd" . &&
    go build -trimpath -ldflags "-s -w" -o "$out/etcdctl" go.etcd.io/etcd/etcdctl/v3)
  "$out/etcd" --version | grep -q "etcd Version: ${v#v}"
}

build_sample_apiserver() {
  local out=$1 v=$2 src=$BUILD/go-sample-apiserver-$2
  go_wrapper "$src" k8s.io/sample-apiserver "$v" k8s.io/sample-apiserver
  (cd "$src" && go build -trimpath -ldflags "-s -w" -o "$out/sample-apiserver" k8s.io/sample-apiserver)
  "$out/sample-apiserver" --help >/dev/null
}

# The pause program: build/pause/linux/pause.c with its Makefile's flags (VERSION without the git revision).
build_pause() {
  local out=$1 ksrc=$2 tag
  tag=$(sed -n 's/^TAG ?= *//p' "$ksrc/build/pause/Makefile")
  [ "registry.k8s.io/pause:$tag" = "$PAUSE_NAME" ] || die "build/pause/Makefile says pause:$tag, not $PAUSE_NAME"
  gcc -Os -Wall -Werror -static -DVERSION="v$tag" -o "$out/pause" "$ksrc/build/pause/linux/pause.c"
  strip "$out/pause"
  "$out/pause" -v
}

### Debian

# slim ROOTFS: drops what a container does not use and a rebuild would change for nothing (apt's lists and
# caches, logs, docs but their copyright files, man pages, locales). Run on the base and on each layer's
# rootfs, so a layer deletes only files it added itself.
slim() {
  local r=$1
  rm -rf "$r"/var/lib/apt/lists/* "$r"/var/cache/apt/*.bin "$r"/var/cache/apt/archives/*.deb \
    "$r"/var/cache/apt/archives/partial/* "$r"/var/cache/debconf/*-old "$r"/var/lib/dpkg/*-old \
    "$r"/var/cache/ldconfig/aux-cache "$r"/var/log/*.log "$r"/var/log/apt/* "$r"/usr/share/man/* \
    "$r"/usr/share/info/* "$r"/usr/share/lintian/* "$r"/tmp/* "$r"/root/.cache
  find "$r"/usr/share/doc -mindepth 1 ! -type d ! -name copyright -delete
  find "$r"/usr/share/doc -mindepth 1 -type d -empty -delete
  find "$r"/usr/share/locale -mindepth 1 -maxdepth 1 ! -name locale.alias -exec rm -rf {} +
}

# The base every Debian image shares: debootstrap minbase, with dpkg told to skip docs, man pages and locales
# from now on, no services started by package scripts, and the host's name and DNS settings (which debootstrap
# copies in) replaced by neutral ones (the runtime mounts its own).
build_base() {
  local out=$1 suite=$2 mirror=$3
  local args=(--variant=minbase "$suite" "$out/rootfs")
  [ -n "$mirror" ] && args+=("$mirror")
  debootstrap "${args[@]}" > "$out/debootstrap.log" 2>&1 || { tail -n 20 "$out/debootstrap.log"; return 1; }
  unmount_under "$out/rootfs"
  local r=$out/rootfs
  cat > "$r/etc/dpkg/dpkg.cfg.d/kforge-slim" <<'EOF'
# Images are small: no docs (copyright files kept), man pages or translations.
path-exclude=/usr/share/doc/*
path-include=/usr/share/doc/*/copyright
path-exclude=/usr/share/man/*
path-exclude=/usr/share/info/*
path-exclude=/usr/share/lintian/*
path-exclude=/usr/share/locale/*
path-include=/usr/share/locale/locale.alias
EOF
  printf '#!/bin/sh\n# A container image starts no services when a package is installed.\nexit 101\n' > "$r/usr/sbin/policy-rc.d"
  chmod 755 "$r/usr/sbin/policy-rc.d"
  printf '127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n' > "$r/etc/hosts"
  : > "$r/etc/resolv.conf"
  rm -f "$r/etc/hostname"
  slim "$r"
  mv "$out/debootstrap.log" "$out/build.log"
}

# derive LAYER LOWER "PACKAGES" SCRIPT: LAYER/ gets what installing PACKAGES (Debian's, no recommends) and then
# running SCRIPT (sh in a chroot) changes in the rootfs LOWER: an overlay's upper directory, its deletions turned
# into OCI whiteouts. The host's apt downloads (it has the network set up; the chroot has none), the chroot's
# apt installs, so the image's dpkg database is right.
derive() {
  local layer=$1 lower=$2 pkgs=$3 script=$4
  local w=$BUILD/derive
  safe_rm "$w"
  mkdir -p "$w/upper" "$w/work" "$w/merged" "$w/debs/partial"
  mount -t overlay overlay -o "lowerdir=$lower,upperdir=$w/upper,workdir=$w/work" "$w/merged"
  local m=$w/merged
  if [ -n "$pkgs" ]; then
    apt_lists
    # shellcheck disable=SC2086
    apt-get -qq -o Dir::State::status="$m/var/lib/dpkg/status" -o Dir::Cache::archives="$w/debs" \
      -o Debug::NoLocking=1 -o APT::Sandbox::User=root install -y --download-only --no-install-recommends $pkgs >/dev/null
    mkdir -p "$m/tmp/debs"
    cp "$w"/debs/*.deb "$m/tmp/debs/" 2>/dev/null || die "derive: nothing to install for $pkgs"
    chroot "$m" /usr/bin/env -i PATH="$IMAGE_PATH" DEBIAN_FRONTEND=noninteractive \
      sh -c 'apt-get install -y -qq --no-install-recommends /tmp/debs/*.deb' > "$layer.log" 2>&1 ||
      { tail -n 30 "$layer.log"; return 1; }
  fi
  chroot "$m" /usr/bin/env -i PATH="$IMAGE_PATH" HOME=/root sh -euc "$script" >> "$layer.log" 2>&1 ||
    { tail -n 30 "$layer.log"; return 1; }
  slim "$m"
  umount "$m"
  local f n
  while read -r f; do
    [ "$(stat -c %t:%T "$f")" = 0:0 ] || die "derive: a device in the layer: $f"
    n=$(basename "$f"); rm "$f"; : > "$(dirname "$f")/.wh.$n"
  done < <(find "$w/upper" -type c)
  # The kernel marks directories it creates opaque; only over a directory of LOWER does that hide anything.
  while read -r f; do
    [ -d "$lower/${f#"$w/upper"}" ] && [ ! -L "$lower/${f#"$w/upper"}" ] &&
      [ "$(getfattr --absolute-names -n trusted.overlay.opaque --only-values "$f" 2>/dev/null)" = y ] &&
      : > "$f/.wh..wh..opq"
  done < <(find "$w/upper" -mindepth 1 -type d)
  mv -T "$w/upper" "$layer"
  safe_rm "$w"
}

# package_versions ROOTFS_OR_LAYER PACKAGE…: "package version" as the image's dpkg database records them.
package_versions() {
  local db=$1; shift
  dpkg-query --admindir="$db/var/lib/dpkg" -W -f '${Package} ${Version}\n' "$@"
}

# agnhost's layer: the tools its Dockerfile installs from Alpine, as Debian packages; Alpine's busybox applets
# for every command Debian does not otherwise provide (tests run wget, ps, … in agnhost pods; wget is busybox's
# as on Alpine: GNU wget retries a timeout 20 times); the user and group a test expects in the image.
AGNHOST_PACKAGES="bash bind9-dnsutils curl netcat-openbsd iproute2 iperf util-linux socat busybox-static"
AGNHOST_SCRIPT='
ln -s /usr/bin/iperf /usr/local/bin/iperf
for p in $(busybox --list-full); do
  case $p in */*) ;; *) continue ;; esac
  n=${p##*/}
  which "$n" >/dev/null 2>&1 || { mkdir -p "/${p%/*}"; ln -s /bin/busybox "/$p"; }
done
groupadd -g 50000 group-defined-in-image
useradd -u 1000 -U -m -s /bin/sh -G group-defined-in-image user-defined-in-image
'
build_agnhost_packages() {
  derive "$1/layer" "$2/rootfs" "$AGNHOST_PACKAGES" "$AGNHOST_SCRIPT"
  wget_wrapper "$1/layer/usr/bin/wget"
}

# nginx: Debian's nginx-light, logging to the container's stdout and stderr, with a page of its own; the
# entrypoint drops the IPv6 listener where the pod has no IPv6 (as the official image's entrypoint does).
NGINX_PACKAGES=nginx-light
NGINX_SCRIPT='
nginx -t
ln -sf /dev/stdout /var/log/nginx/access.log
ln -sf /dev/stderr /var/log/nginx/error.log
cat > /var/www/html/index.html <<EOF
<!DOCTYPE html>
<html><head><title>Welcome to nginx!</title></head>
<body><h1>Welcome to nginx!</h1><p>nginx from Debian, serving a conformance test.</p></body></html>
EOF
cat > /usr/local/bin/nginx-entrypoint <<EOF
#!/bin/sh
# Without IPv6 in the pod, listening on [::]:80 would stop nginx.
if [ ! -e /proc/net/if_inet6 ]; then sed -i "/listen \\\\[::\\\\]/d" /etc/nginx/sites-available/default; fi
exec "\$@"
EOF
chmod 755 /usr/local/bin/nginx-entrypoint
'
build_nginx_packages() { derive "$1/layer" "$2/rootfs" "$NGINX_PACKAGES" "$NGINX_SCRIPT"; }

# glibc-dns-testing: dnsutils (its Dockerfile's apt-get install).
build_dnsutils_packages() { derive "$1/layer" "$2/rootfs" dnsutils 'dig -v'; }

### Layers of files

# wget_wrapper FILE: replaces busybox's wget applet link FILE with a script that takes -T itself. Debian's
# busybox before 1.36.1-5 is built without wget's timeout support and crashes on -T, which the suite's
# exec pods pass (test/e2e/network/service.go: wget -T 1 …); busybox's timeout applet enforces it instead
# (a limit on the whole transfer rather than per read, which is what those probes need).
wget_wrapper() {
  [ -L "$1" ] || die "wget_wrapper: $1 is not busybox's wget"
  rm "$1"
  cat > "$1" <<'EOF'
#!/bin/sh
# busybox wget with -T SECONDS (this build of busybox has no wget timeout): see test/conformance/IMAGES.md.
t=
n=$#
while [ "$n" -gt 0 ]; do
  a=$1; shift; n=$((n - 1))
  case $a in
    -T | --timeout) t=$1; shift; n=$((n - 1)) ;;
    -T*) t=${a#-T} ;;
    --timeout=*) t=${a#--timeout=} ;;
    *) set -- "$@" "$a" ;;
  esac
done
[ -n "$t" ] && exec /bin/busybox timeout "$t" /bin/busybox wget "$@"
exec /bin/busybox wget "$@"
EOF
  chmod 755 "$1"
}

# busybox_source OUT VERSION SUITE MIRROR: BusyBox VERSION built as its own defconfig makes it (what the official
# busybox image is), static, from Debian SUITE's source package of that upstream version: apt fetches it with
# its own lists and checks the signed Sources index (the .orig tarball is upstream's release). Debian's binary
# packages of busybox are configured otherwise: their sh drops variables whose names are not shell names
# (data-1) from the environment of what it runs, which the suite's env specs run `sh -c env` to see.
busybox_source() {
  local out=$1 v=$2 suite=$3 mirror=${4:-http://deb.debian.org/debian} a=$1/apt
  mkdir -p "$a/lists/partial" "$a/cache/archives/partial" "$out/src"
  printf 'deb-src [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] %s %s main\n' "$mirror" "$suite" > "$a/sources.list"
  local opts=(-o "Dir::Etc::sourcelist=$a/sources.list" -o Dir::Etc::sourceparts=- -o "Dir::State::Lists=$a/lists"
    -o "Dir::Cache=$a/cache" -o Dir::State::status=/dev/null -o APT::Sandbox::User=root)
  apt-get -qq "${opts[@]}" update
  (cd "$out/src" && apt-get -qq "${opts[@]}" source --download-only busybox >/dev/null)
  local orig
  orig=$(ls "$out"/src/busybox_"$v".orig.tar.* 2>/dev/null | head -n1)
  [ -n "$orig" ] || die "Debian $suite's busybox source is not upstream $v: $(ls "$out/src")"
  tar -xf "$orig" -C "$out/src"
  local b=$out/src/busybox-$v
  [ -f "$b/Makefile" ] || die "no busybox-$v in $orig"
  # The build's date is the release tarball's, so that the banner does not change from one build to the next.
  local epoch
  epoch=$(stat -c %Y "$b/Makefile")
  (cd "$b" && SOURCE_DATE_EPOCH=$epoch make -s defconfig >/dev/null &&
    sed -i 's/^# CONFIG_STATIC is not set$/CONFIG_STATIC=y/' .config && grep -qx CONFIG_STATIC=y .config &&
    SOURCE_DATE_EPOCH=$epoch make -s -j"$(nproc)" busybox > "$out/make.log" 2>&1) || { tail -n 30 "$out/make.log"; return 1; }
  install -m 755 "$b/busybox" "$out/busybox"
  local banner # sed reads the whole usage text: head would make busybox die of SIGPIPE, failing the pipe
  banner=$("$out/busybox" 2>&1 | sed -n 1p)
  [[ $banner == "BusyBox v$v "* ]] || die "busybox $v says: $banner"
  # The env specs' case: a variable whose name is no shell name reaches what sh runs.
  [ "$(env 'data-1=value-1' "$out/busybox" sh -c env | grep -c '^data-1=value-1$')" = 1 ] || die "busybox $v's sh drops data-1 from the environment"
  printf '%s %s (Debian %s source %s, %s sha256 %s)\n' "busybox" "$v" "$suite" \
    "$(sed -n 's/^Version: //p' "$out"/src/busybox_*.dsc)" "$(basename "$orig")" "$(sha256sum "$orig" | cut -d' ' -f1)" > "$out/version"
  rm -rf "$out/src" "$a"
}

# busybox: BusyBox built here (busybox_source), every applet linked by busybox itself and in /bin, root and nobody.
build_busybox() {
  local out=$1 src=$2 r=$1/rootfs
  mkdir -p "$r/bin" "$r/sbin" "$r/usr/bin" "$r/usr/sbin" "$r/etc" "$r/root" "$r/tmp" "$r/proc" "$r/sys" "$r/dev"
  cp "$src/busybox" "$r/bin/busybox"
  chroot "$r" /bin/busybox --install -s
  # and in /bin as well, as in the upstream busybox image: the suite runs /bin/sysctl, which --install puts in /sbin.
  for a in $(chroot "$r" /bin/busybox --list); do [ -e "$r/bin/$a" ] || [ -L "$r/bin/$a" ] || ln -s busybox "$r/bin/$a"; done
  printf 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n' > "$r/etc/passwd"
  printf 'root:x:0:\nnobody:x:65534:\n' > "$r/etc/group"
  chmod 1777 "$r/tmp"; chmod 700 "$r/root"
  cp "$src/version" "$out/version"
  [ "$(readlink "$r/bin/sh")" = /bin/busybox ] || die "busybox --install did not link /bin/sh"
}

# agnhost's files: the binary, the entrypoint-tester's second name, netexec's upload directory, porter's
# certificate and key.
build_agnhost_files() {
  local out=$1/layer go=$2 ksrc=$3
  mkdir -p "$out/uploads"
  install -m 755 "$go/agnhost" "$out/agnhost"
  ln -s agnhost "$out/agnhost-2"
  install -m 644 "$ksrc/test/images/agnhost/porter/localhost.crt" "$ksrc/test/images/agnhost/porter/localhost.key" "$out/"
}
build_coredns_layer() { mkdir -p "$1/layer"; install -m 755 "$2/coredns" "$1/layer/coredns"; }
# kitten and nautilus: their html/ files where their Dockerfiles COPY them (/, agnhost has no WORKDIR).
build_html() {
  mkdir -p "$1/layer"
  install -m 644 "$2/test/images/$3/html/$3.jpg" "$2/test/images/$3/html/data.json" "$1/layer/"
}
build_nnp() { mkdir -p "$1/layer/usr/local/bin"; install -m 4755 -o root -g root "$2/nnp" "$1/layer/usr/local/bin/nnp"; }
build_pause_layer() { mkdir -p "$1/layer"; install -m 755 "$2/pause" "$1/layer/pause"; }
# etcd at the path the sample-apiserver test runs (test/e2e/apimachinery/aggregator.go), etcdctl beside it.
build_etcd_layer() {
  mkdir -p "$1/layer/usr/local/bin" "$1/layer/var/lib/etcd"
  install -m 755 "$2/etcd" "$2/etcdctl" "$1/layer/usr/local/bin/"
  chmod 700 "$1/layer/var/lib/etcd"
}
build_sample_apiserver_layer() { mkdir -p "$1/layer"; install -m 755 "$2/sample-apiserver" "$1/layer/sample-apiserver"; }

# prune: removes what this build superseded: other recipes of the parts it used (a part's name carries the
# versions, so those of other versions stay) and other layouts (rebuilt from the parts in seconds).
prune() {
  local d base name used
  local -A current=() # part name → its directory's name in this build
  for used in "${USED[@]}"; do current[${used%-*}]=$used; done
  for d in "$PARTS"/*; do
    base=${d##*/}; base=${base%.tmp}
    [[ ${base##*-} =~ ^[0-9a-f]{12}$ ]] || continue
    name=${base%-*}
    [ -n "${current[$name]:-}" ] && [ "$d" != "$PARTS/${current[$name]}" ] || continue
    log "removing superseded ${d#"$ROOT"/}"
    safe_rm "$d"
  done
  for d in "$ROOT"/images-*; do
    [ "$d" = "$OUT" ] && continue
    log "removing superseded ${d#"$ROOT"/}"
    safe_rm "$d"
  done
}

### The layout

# spec_image NAME "LAYER…" CONFIG_JSON: one image of mkoci's spec (internal/ociimage.Spec), its layers the
# directories named, lowest first.
spec_image() {
  local layers="" l
  for l in $2; do layers="$layers${layers:+, }\"$l\""; done
  printf '{"name": "%s", "layers": [%s], %s}' "$1" "$layers" "$3"
}

start=$(date +%s)
check_names
prerequisites
GOV=$(go env GOVERSION)

USED=()
part go_agnhost go-agnhost-$K8S "build_agnhost gomod_dir kubernetes_module" "$K8S" "$GOV"
part go_coredns go-coredns-$COREDNS "build_coredns go_wrapper" "$COREDNS" "$GOV"
part go_etcd go-etcd-$ETCD build_etcd "$ETCD" "$GOV"
part go_sample go-sample-apiserver-$SAMPLE_APISERVER "build_sample_apiserver go_wrapper" "$SAMPLE_APISERVER" "$GOV"
part pause pause-$K8S build_pause "$KSRC" "$(sha256sum "$KSRC/build/pause/linux/pause.c" "$KSRC/build/pause/Makefile")" "$(gcc --version | head -n1)"

part base debian-$SUITE "build_base slim unmount_under" "$SUITE" "$MIRROR"
DERIVE="derive slim apt_lists safe_rm unmount_under"
part agnhost_pkgs layer-agnhost-packages "build_agnhost_packages wget_wrapper $DERIVE" "$base" "$AGNHOST_PACKAGES" "$AGNHOST_SCRIPT"
part nginx_pkgs layer-nginx-packages "build_nginx_packages $DERIVE" "$base" "$NGINX_PACKAGES" "$NGINX_SCRIPT"
part dnsutils_pkgs layer-dnsutils-packages "build_dnsutils_packages $DERIVE" "$base"
part busybox_src busybox-$BUSYBOX busybox_source "$BUSYBOX" "$BUSYBOX_SUITE" "$MIRROR"
part busybox busybox build_busybox "$busybox_src"
part agnhost_files layer-agnhost "build_agnhost_files" "$go_agnhost" "$KSRC"
part coredns_layer layer-coredns build_coredns_layer "$go_coredns"
part kitten_layer layer-kitten build_html "$KSRC" kitten
part nautilus_layer layer-nautilus build_html "$KSRC" nautilus
part nnp_layer layer-nonewprivs build_nnp "$go_agnhost"
part pause_layer layer-pause build_pause_layer "$pause"
part etcd_layer layer-etcd build_etcd_layer "$go_etcd"
part sample_layer layer-sample-apiserver build_sample_apiserver_layer "$go_sample"

log "writing the layout"
tmp=$OUT.tmp
safe_rm "$tmp"
mkdir -p "$tmp"
B=$base/rootfs
ENV="\"env\": [\"PATH=$IMAGE_PATH\"]"
AGNHOST_LAYERS="$B $agnhost_pkgs/layer $coredns_layer/layer $agnhost_files/layer"
AGNHOST_CONFIG="\"entrypoint\": [\"/agnhost\"], $ENV, \"ports\": [\"80/tcp\", \"8080/tcp\", \"8081/tcp\", \"9376/tcp\", \"5000/tcp\"]"
images=()
for n in $AGNHOST_NAMES; do images+=("$(spec_image "$n" "$AGNHOST_LAYERS" "$AGNHOST_CONFIG, \"cmd\": [\"pause\"]")"); done
images+=("$(spec_image "$KITTEN_NAME" "$AGNHOST_LAYERS $kitten_layer/layer" "$AGNHOST_CONFIG, \"cmd\": [\"test-webserver\"]")")
images+=("$(spec_image "$NAUTILUS_NAME" "$AGNHOST_LAYERS $nautilus_layer/layer" "$AGNHOST_CONFIG, \"cmd\": [\"test-webserver\"]")")
for n in $BUSYBOX_NAMES; do images+=("$(spec_image "$n" "$busybox/rootfs" "$ENV, \"cmd\": [\"sh\"]")"); done
for n in $NGINX_NAMES; do
  images+=("$(spec_image "$n" "$B $nginx_pkgs/layer" "$ENV, \"entrypoint\": [\"/usr/local/bin/nginx-entrypoint\"], \"cmd\": [\"nginx\", \"-g\", \"daemon off;\"], \"ports\": [\"80/tcp\"]")")
done
images+=("$(spec_image "$PAUSE_NAME" "$pause_layer/layer" '"entrypoint": ["/pause"], "user": "65535:65535"')")
images+=("$(spec_image "$GLIBC_DNS_NAME" "$B $dnsutils_pkgs/layer $coredns_layer/layer" "$ENV, \"cmd\": [\"bash\"]")")
images+=("$(spec_image "$NONROOT_NAME" "$B" "$ENV, \"cmd\": [\"bash\"], \"user\": \"1234\"")")
images+=("$(spec_image "$NONEWPRIVS_NAME" "$B $nnp_layer/layer" "$ENV, \"cmd\": [\"nnp\"]")")
images+=("$(spec_image "$ETCD_NAME" "$B $etcd_layer/layer" "$ENV, \"cmd\": [\"/usr/local/bin/etcd\"]")")
images+=("$(spec_image "$SAMPLE_APISERVER_NAME" "$B $sample_layer/layer" "$ENV, \"entrypoint\": [\"/sample-apiserver\"]")")
{
  printf '{\n  "architecture": "%s",\n  "images": [\n' "$(go env GOARCH)"
  for i in "${!images[@]}"; do printf '    %s%s\n' "${images[$i]}" "$([ "$i" -lt $((${#images[@]} - 1)) ] && echo ,)"; done
  printf '  ]\n}\n'
} > "$tmp/spec.json"
(cd "$repo" && GOFLAGS=-mod=readonly go build -trimpath -o "$tmp/mkoci" ./cmd/mkoci)
"$tmp/mkoci" -o "$tmp/e2e-images.tar" "$tmp/spec.json"
rm "$tmp/mkoci"
printf '%s\n' $ALL_NAMES | sort > "$tmp/images.txt"

# versions.txt: what each part was built from, read from the build (IMAGES.md quotes it).
{
  echo "# Debian base ($SUITE minbase)"
  package_versions "$B" base-files libc6 bash coreutils dpkg apt
  echo "# agnhost, kitten, nautilus: the packages of agnhost's layer (bash and util-linux come with the base)"
  package_versions "$agnhost_pkgs/layer" $AGNHOST_PACKAGES
  echo "# nginx: the packages of its layer"
  package_versions "$nginx_pkgs/layer" $NGINX_PACKAGES nginx-common
  echo "# glibc-dns-testing: the packages of its layer"
  package_versions "$dnsutils_pkgs/layer" dnsutils bind9-dnsutils
  echo "# busybox"
  cat "$busybox/version"
  echo "# Go programs ($GOV)"
  for b in "$go_agnhost/agnhost" "$go_agnhost/nnp" "$go_coredns/coredns" "$go_etcd/etcd" "$go_etcd/etcdctl" "$go_sample/sample-apiserver"; do
    go version -m "$b" | awk -v b="$(basename "$b")" '$1 == "path" {p = $2} $1 == "mod" || $1 == "dep" {
      if ($2 == "k8s.io/kubernetes" || $2 ~ /^github.com\/coredns\/coredns/ || $2 ~ /^go.etcd.io\/etcd\/(server|etcdctl)\/v3$/ || $2 == "k8s.io/sample-apiserver")
        print b, p, $2, $3 }'
  done
  echo "# pause"
  echo "pause $("$pause/pause" -v 2>&1) $(gcc --version | head -n1)"
} > "$tmp/versions.txt"
touch "$tmp/.done"
mv -T "$tmp" "$OUT"
prune
log "done in $(( $(date +%s) - start ))s: $OUT/e2e-images.tar ($(du -h "$OUT/e2e-images.tar" | cut -f1))"
