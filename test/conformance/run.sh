#!/usr/bin/env bash
# The upstream Kubernetes conformance suite against a 3-node kforge cluster on lab hosts, from nothing: the
# build dependencies, kforge, the artifact set, e2e.test and ginkgo, the suite's images (all cached by version),
# an artifact set with those images added, a lab, kforge apply, then ginkgo. Results in test/conformance/results/
# (RESULTS=DIR elsewhere; emptied first): junit.xml, summary.md, e2e.log, versions.txt, the apply and destroy logs,
# registry.log (what the nodes pulled through the registry mirror), report/ (the e2e framework's own files). The cluster and the lab are removed on every way out, an interrupt
# included. Exit status: the suite's (non-zero when a spec failed), or the failing step's.
# Run as root (make conformance).
#   FOCUS=REGEX         specs to run instead of every [Conformance] one (a smoke run: FOCUS='Secrets should …')
#   E2E_PARALLEL=N      ginkgo processes (default 4); [Serial] specs run last, alone, on one of them
#   E2E_TIMEOUT=DUR     the suite's time limit (default 6h)
#   LAB=NAME            the lab's name (default conform: lab names have at most 8 characters)
set -euo pipefail
export PATH=/usr/local/go/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/../.." && pwd)
FOCUS=${FOCUS:-'\[Conformance\]'}
E2E_PARALLEL=${E2E_PARALLEL:-4}
E2E_TIMEOUT=${E2E_TIMEOUT:-6h}
LAB=${LAB:-conform}
RESULTS=${RESULTS:-$here/results}
ROOT=${KFORGE_CONFORMANCE:-/var/cache/kforge/conformance}
kforge=$repo/bin/kforge
log() { printf '%s conformance: %s\n' "$(date +%H:%M:%S)" "$*"; }
die() { log "$*" >&2; exit 1; }
[ "$(id -u)" = 0 ] || die "run as root (lab hosts, the image build)"
[[ $E2E_PARALLEL =~ ^[1-9][0-9]*$ ]] || die "E2E_PARALLEL=$E2E_PARALLEL: want a number of processes"
# jq reads the artifact set's manifest here and in artifact-set.sh.
if ! command -v jq > /dev/null; then
  log "installing jq"
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq jq > /dev/null
fi

# skip_regex FILE: the lines of FILE that are neither comments nor blank, as one alternation.
skip_regex() { grep -v -e '^[[:space:]]*#' -e '^[[:space:]]*$' "$1" | paste -sd '|' || true; }
SKIP=$(skip_regex "$here/skip.txt")

start=$(date +%s) started_at=$(date -u +%Y-%m-%dT%H:%M:%SZ)
work="" lab_made=0 applied=0 suite_ran=0 suite_rc=0 t_lab=0 t_apply=0 t_suite=0 tally="" registry_pid=""
cfg() { "$kforge" -c "$work/cluster" --var lab="$LAB" --var artifacts="$artifact_set" "$@"; }

# write_results: the summary and the run's facts, from whatever the suite left (also after an interrupt).
write_results() {
  [ $suite_ran = 1 ] || return 0
  if [ -f "$RESULTS/junit.xml" ]; then
    tally=$("$work/summary" -junit "$RESULTS/junit.xml" -o "$RESULTS/summary.md") || tally="the summarizer failed"
  else
    tally="no junit.xml: the suite stopped before writing its report (see e2e.log)"
  fi
  {
    echo "date: $started_at"
    echo "focus: $FOCUS"
    echo "skip: ${SKIP:-(none)}"
    echo "parallelism: $E2E_PARALLEL (ginkgo --nodes)"
    echo "result: $tally"
    echo "suite exit status: $suite_rc"
    echo "durations: lab up ${t_lab}s, kforge apply ${t_apply}s, suite ${t_suite}s, start to results $(( $(date +%s) - start ))s (teardown follows)"
    echo "kforge: $("$kforge" version 2>/dev/null | head -n1)"
    echo "cluster: $(jq -r '"Kubernetes \(.kubernetes), etcd \(.etcd), containerd \(.containerd)"' "$artifact_set/manifest.json")"
    echo "server: $("$kubectl" --kubeconfig "$work/kubeconfig" version -o json 2>/dev/null | jq -r '.serverVersion.gitVersion // "unknown"')"
    echo "e2e.test: $e2e/e2e.test ($("$e2e/e2e.test" --version 2>/dev/null | head -n1 || echo '?')), $("$e2e/ginkgo" version)"
    echo "artifact set: $artifact_set"
    echo "images: $images_tar"
    echo "nodes:"
    sed 's/^/  /' "$RESULTS/nodes.txt" 2>/dev/null || true
    echo "image versions ($(dirname "$images_tar")/versions.txt):"
    sed 's/^/  /' "$(dirname "$images_tar")/versions.txt"
  } > "$RESULTS/versions.txt"
  log "results: $RESULTS ($tally)"
}

cleanup() {
  local rc=$?
  set +e
  trap - INT TERM
  write_results
  if [ -n "$registry_pid" ]; then
    kill "$registry_pid" 2>/dev/null
    wait "$registry_pid" 2>/dev/null
  fi
  if [ $applied = 1 ]; then
    log "kforge destroy"
    cfg destroy --auto-approve --purge-data > "$RESULTS/destroy.log" 2>&1 || log "kforge destroy failed (see $RESULTS/destroy.log)"
  fi
  if [ $lab_made = 1 ]; then
    log "lab down $LAB"
    "$kforge" lab down --name "$LAB" > /dev/null || log "kforge lab down --name $LAB failed"
  fi
  [ -z "$work" ] || rm -rf "$work"
  log "exit $rc after $(( $(date +%s) - start ))s"
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

log "dependencies, kforge, the artifact set"
make -C "$repo" --no-print-directory deps build artifacts
"$here/build-e2e.sh"
bash "$here/images.sh" # (not executable in git)
base=$("$repo/scripts/build-artifacts.sh" --print-set)
e2e=$("$here/build-e2e.sh" --print-dir)
images_tar=$(bash "$here/images.sh" --print)
kubectl=$base/bin/kubectl
artifact_set=$ROOT/sets/$(basename "$base")+$(basename "$(dirname "$images_tar")")
"$here/artifact-set.sh" "$base" "$images_tar" "$artifact_set"

work=$(mktemp -d /tmp/kforge-conformance.XXXXXX)
# The summarizer is built before the cluster, so that a broken one does not surface after hours of suite; the
# registry that serves the suite's images to the nodes too.
(cd "$repo" && go build -o "$work/summary" ./test/conformance/summary && go build -o "$work/ociserve" ./cmd/ociserve)
mkdir -p "$work/cluster"
# The lab cluster make demo builds (examples/lab: what lab hosts, containers on a cgroup v1 machine, need), its
# lab and artifact set given as variables.
cp "$repo/examples/lab/cluster.hcl" "$work/cluster/cluster.hcl"
sed -i "s/kubernetes_version = \".*\"/kubernetes_version = \"$(jq -r .kubernetes "$artifact_set/manifest.json")\"/" "$work/cluster/cluster.hcl"
rm -rf "$RESULTS"
mkdir -p "$RESULTS"

# A lab of this name is left over from a run that could not clean up (killed): nothing else uses the name.
if "$kforge" lab status --name "$LAB" > /dev/null 2>&1; then
  log "removing the lab $LAB of an earlier run"
  "$kforge" lab down --name "$LAB" > /dev/null
fi
log "lab up $LAB (3 hosts)"
t=$(date +%s)
lab_made=1
"$kforge" lab up --name "$LAB" --hosts 3
t_lab=$(( $(date +%s) - t ))

# The suite's images are on every node (the artifact set imports them), but some specs pull with
# imagePullPolicy Always, which asks a registry even for an image the node has. A registry on this machine's lab
# address serves the same images, and every node's containerd has it as registry.k8s.io's mirror (the lab
# reaches no other registry): such a pull resolves the same digest and downloads nothing.
registry_at=$("$kforge" --json lab status --name "$LAB" | jq -r .machine_address)
"$work/ociserve" -listen "$registry_at:0" -log "$images_tar" > "$RESULTS/registry.log" 2>&1 &
registry_pid=$!
mirror=""
for _ in $(seq 120); do
  mirror=$(sed -n 's/^listening on //p' "$RESULTS/registry.log")
  [ -n "$mirror" ] && break
  kill -0 "$registry_pid" 2>/dev/null || { cat "$RESULTS/registry.log" >&2; die "the registry did not start"; }
  sleep 0.5
done
[ -n "$mirror" ] || die "the registry did not say where it listens (see $RESULTS/registry.log)"
log "registry mirror of registry.k8s.io: http://$mirror ($(grep -c '^serving ' "$RESULTS/registry.log") images)"
grep -q 'restrict_oom_score_adj = true' "$work/cluster/cluster.hcl" || die "examples/lab has no containerd block to add the mirror to"
sed -i "s|^\( *\)restrict_oom_score_adj = true|&\n\1registry_mirrors = { \"registry.k8s.io\" = [\"http://$mirror\"] }|" "$work/cluster/cluster.hcl"

log "kforge apply"
t=$(date +%s)
applied=1
cfg apply --auto-approve 2>&1 | tee "$RESULTS/apply.log"
t_apply=$(( $(date +%s) - t ))
cfg kubeconfig -o "$work/kubeconfig" > /dev/null
"$kubectl" --kubeconfig "$work/kubeconfig" get nodes -o wide | tee "$RESULTS/nodes.txt"

# Every node must have every image of the suite: kforge-images.service's health check looks for one name only.
log "waiting for the suite's images on every node"
missing=""
for _ in $(seq 60); do
  missing=""
  for node in $("$kubectl" --kubeconfig "$work/kubeconfig" get nodes -o name); do
    have=$("$kubectl" --kubeconfig "$work/kubeconfig" get "$node" -o jsonpath='{range .status.images[*]}{range .names[*]}{@}{"\n"}{end}{end}')
    while read -r img; do
      grep -qxF "$img" <<< "$have" || missing="$missing ${node#node/}:$img"
    done < "$(dirname "$images_tar")/images.txt"
  done
  [ -z "$missing" ] && break
  sleep 5
done
[ -z "$missing" ] || die "images missing on nodes:$missing"

log "suite: focus $FOCUS, ${SKIP:+skip $SKIP, }$E2E_PARALLEL processes, timeout $E2E_TIMEOUT"
# -v: e2e.log has every spec's steps, as a conformance log does. --disable-log-dump: the framework's node log dump
# runs cluster/log-dump/log-dump.sh from a Kubernetes checkout, which is not here.
args=(--nodes="$E2E_PARALLEL" --focus="$FOCUS" --timeout="$E2E_TIMEOUT" --no-color -v --silence-skips
  --output-dir="$RESULTS" --junit-report=junit.xml)
[ -z "$SKIP" ] || args+=(--skip="$SKIP")
# ginkgo runs in a session of its own, so that an interrupt reaches it once, from here (a second one would make
# it skip its cleanup and reports), and tee ignores interrupts, so that the log has ginkgo's last words.
exec 3> >(trap '' INT TERM; exec tee "$RESULTS/e2e.log")
tee_pid=$!
t=$(date +%s)
suite_ran=1
setsid "$e2e/ginkgo" "${args[@]}" "$e2e/e2e.test" -- --kubeconfig="$work/kubeconfig" --provider=skeleton \
  --kubectl-path="$kubectl" --report-dir="$RESULTS/report" --disable-log-dump >&3 2>&3 &
ginkgo_pid=$! stop_rc=""
exec 3>&-
stop() { stop_rc=$1; log "interrupted: stopping the suite (ginkgo writes its reports)"; kill -INT -- "-$ginkgo_pid" 2>/dev/null || true; }
trap 'stop 130' INT
trap 'stop 143' TERM
while :; do
  suite_rc=0
  wait "$ginkgo_pid" || suite_rc=$?
  kill -0 "$ginkgo_pid" 2>/dev/null || break # else the wait was cut short by a signal
done
wait "$tee_pid" || true
trap 'exit 130' INT
trap 'exit 143' TERM
t_suite=$(( $(date +%s) - t ))
rmdir "$RESULTS/report" 2>/dev/null || true
log "suite exited $suite_rc after ${t_suite}s"
exit "${stop_rc:-$suite_rc}"
