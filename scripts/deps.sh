#!/usr/bin/env bash
# Installs what building and testing kforge needs on a Debian 12 machine (run as root), then the Go modules.
# Safe to re-run: it installs only what is missing.
set -euo pipefail
cd "$(dirname "$0")/.."

need_apt=()
for pkg_cmd in make:make git:git; do
  cmd=${pkg_cmd#*:}; pkg=${pkg_cmd%%:*}
  command -v "$cmd" >/dev/null 2>&1 || need_apt+=("$pkg")
done
if [ ${#need_apt[@]} -gt 0 ]; then
  if [ "$(id -u)" != 0 ]; then
    echo "deps: missing ${need_apt[*]}; run as root or install them" >&2; exit 1
  fi
  apt-get update -q
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q "${need_apt[@]}"
fi

if ! command -v go >/dev/null 2>&1; then
  for d in /usr/local/go/bin /usr/lib/go/bin; do [ -x "$d/go" ] && export PATH="$d:$PATH" && break; done
fi
command -v go >/dev/null 2>&1 || { echo "deps: Go is not installed (kforge needs Go >= 1.26 at /usr/local/go)" >&2; exit 1; }
# Fetch every module the build, the tests and the tools need now, so that no download message lands after the
# test runner's summary.
go mod download
go list -deps -test ./... >/dev/null
go build tool
