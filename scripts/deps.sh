#!/usr/bin/env bash
# Installs what building and testing kforge needs on a Debian 12 machine (run as root), then the Go modules.
# Safe to re-run: it installs only what is missing.
set -euo pipefail
cd "$(dirname "$0")/.."

# `deps.sh bench` adds what make bench compares kforge with: Debian's Ansible.
bench_pkgs=""
[ "${1:-}" = bench ] && bench_pkgs="ansible:ansible-core ansible-playbook:ansible-core"

# command:package pairs. openssh-server and sudo are for the SSH tests, which start their own sshd processes;
# debootstrap, systemd-container and zstd make the local lab hosts.
need_apt=()
for cmd_pkg in make:make git:git /usr/sbin/sshd:openssh-server sudo:sudo scp:openssh-client ssh-agent:openssh-client \
    debootstrap:debootstrap systemd-nspawn:systemd-container zstd:zstd ip:iproute2 $bench_pkgs; do
  cmd=${cmd_pkg%%:*}; pkg=${cmd_pkg#*:}
  command -v "$cmd" >/dev/null 2>&1 || need_apt+=("$pkg")
done
if [ ${#need_apt[@]} -gt 0 ]; then
  if [ "$(id -u)" != 0 ]; then
    echo "deps: missing ${need_apt[*]}; run as root or install them" >&2; exit 1
  fi
  # Installing openssh-server must not start a system-wide sshd: the tests start their own, on loopback.
  policy=/usr/sbin/policy-rc.d
  if [ ! -e "$policy" ]; then
    printf '#!/bin/sh\nexit 101\n' > "$policy"; chmod +x "$policy"
    trap 'rm -f "$policy"' EXIT
  fi
  apt-get update -q
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends $(printf '%s\n' "${need_apt[@]}" | sort -u)
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
