#!/usr/bin/env bash
# Builds the upstream conformance suite for a Kubernetes version from the Go module proxy: the e2e.test binary
# (`go test -c k8s.io/kubernetes/test/e2e`, as upstream's `make WHAT=test/e2e/e2e.test` does) and the ginkgo
# CLI that runs it in parallel, in a wrapper module like the artifacts' build. Cached by version in
# $KFORGE_CONFORMANCE/e2e-<version>/ (cold: the issue estimates 30–45 minutes on 2 cores, not timed here yet; seconds when cached).
# --print-dir says where it is (or will be).
set -euo pipefail
export PATH=/usr/local/go/bin:$PATH CGO_ENABLED=0 GOFLAGS=-mod=mod
here=$(cd "$(dirname "$0")" && pwd)
. "$here/../../scripts/lib/kubernetes-module.sh"
K8S=${K8S_VERSION:-v1.37.2}
ROOT=${KFORGE_CONFORMANCE:-/var/cache/kforge/conformance}
OUT=$ROOT/e2e-$K8S
log() { printf '%s conformance: %s\n' "$(date +%H:%M:%S)" "$*"; }

if [ "${1:-}" = --print-dir ]; then echo "$OUT"; exit 0; fi
if [ -f "$OUT/.done" ]; then log "cached: $OUT"; exit 0; fi
log "building e2e.test $K8S (the first time: tens of minutes)"
start=$(date +%s)
src=$ROOT/build/e2e-$K8S
mkdir -p "$OUT"
kubernetes_module "$src" "$K8S" github.com/onsi/ginkgo/v2/ginkgo
# The suite's test files import the whole of test/e2e; a package of the wrapper module that imports what they
# import lets go mod tidy record every module and sum the test binary needs.
gomodsrc=$(go mod download -json "k8s.io/kubernetes@$K8S" | sed -n 's/.*"Dir": "\(.*\)".*/\1/p')
{
  echo "// Package deps makes go mod tidy resolve what k8s.io/kubernetes/test/e2e's test binary needs."
  echo "package deps"
  echo
  echo "import ("
  sed -n '/^import (/,/^)/p' "$gomodsrc"/test/e2e/*_test.go | grep -o '"[a-z][^"]*\.[^"]*/[^"]*"' | sort -u | sed 's/^/\t_ /'
  echo ")"
} > "$src/deps.go"
(cd "$src" && go mod tidy >/dev/null 2>&1 || go mod tidy)
(cd "$src" && go test -c -trimpath -ldflags "$(k8s_ldflags "$K8S")" -o "$OUT/e2e.test.tmp" k8s.io/kubernetes/test/e2e)
(cd "$src" && go build -trimpath -ldflags "-s -w" -o "$OUT/ginkgo" github.com/onsi/ginkgo/v2/ginkgo)
mv "$OUT/e2e.test.tmp" "$OUT/e2e.test"
"$OUT/e2e.test" --help >/dev/null 2>&1 || { log "e2e.test does not run"; exit 1; }
touch "$OUT/.done"
log "done in $(( $(date +%s) - start ))s: $OUT"
