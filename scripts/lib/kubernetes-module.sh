# Sourced by the scripts that build from k8s.io/kubernetes (the artifacts, the conformance suite): a main module
# that can build its commands and tests from the Go module proxy alone, and the ldflags that stamp the version.

# kubernetes_module DIR VERSION [PACKAGE…]: writes DIR/go.mod requiring k8s.io/kubernetes VERSION, with a tool
# line per PACKAGE. k8s.io/kubernetes replaces its staging modules with directories a module download does not
# have: each one it requires is replaced with its published version (v0.MINOR.PATCH) instead; the staging modules
# it replaces without requiring them are left out (the proxy refuses some of them).
kubernetes_module() {
  local dir=$1 version=$2; shift 2
  local gomod staging="v0.${version#v1.}"
  gomod=$(go mod download -json "k8s.io/kubernetes@$version" | sed -n 's/.*"GoMod": "\(.*\)".*/\1/p')
  mkdir -p "$dir"
  {
    echo "module kforge.local/kubernetes-build"
    echo
    echo "go 1.26.0"
    echo
    echo "require k8s.io/kubernetes $version"
    echo
    echo "replace ("
    # The require blocks are read once into a variable: a pipe into grep -q would end sed with SIGPIPE at the
    # first match, which pipefail turns into "not found", and a module would go unreplaced now and then.
    local requires
    requires=$(sed -n '/^require (/,/^)/p' "$gomod")
    sed -n '/^replace (/,/^)/s|^[[:space:]]*\(k8s\.io/[^ ]*\) => \./staging/.*|\1|p' "$gomod" | while read -r m; do
      if grep -q "^[[:space:]]*$m " <<< "$requires"; then echo "	$m => $m $staging"; fi
    done
    echo ")"
    if [ $# -gt 0 ]; then
      echo
      echo "tool ("
      for p in "$@"; do echo "	$p"; done
      echo ")"
    fi
  } > "$dir/go.mod"
}

# k8s_ldflags VERSION: the ldflags that make `--version` print the release, as the official builds do.
k8s_ldflags() {
  local v=$1 minor=${1#v1.}; minor=${minor%%.*}
  local date; date=$(date -u +%Y-%m-%dT%H:%M:%SZ)
  local flags="-s -w"
  for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
    flags="$flags -X $pkg.gitVersion=$v -X $pkg.gitMajor=1 -X $pkg.gitMinor=$minor -X $pkg.gitTreeState=clean -X $pkg.buildDate=$date"
  done
  echo "$flags"
}
