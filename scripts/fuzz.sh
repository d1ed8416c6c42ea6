#!/usr/bin/env bash
# Runs every fuzz target of the module (each `func FuzzX` in a _test.go file) for FUZZTIME each, one after the
# other: go test fuzzes one target of one package per run. A target that fails stops the run and shows its
# output (go test saves the failing input under the package's testdata/fuzz/). Usage: scripts/fuzz.sh [FUZZTIME]
set -euo pipefail
fuzztime=${1:-30s}
cd "$(dirname "$0")/.."
targets=$(grep -rHo --include='*_test.go' --exclude-dir=testdata '^func Fuzz[A-Za-z0-9_]*' . |
  sed -E 's|^(.*)/[^/]*:func (Fuzz[A-Za-z0-9_]*)$|\1 \2|' | sort)
if [ -z "$targets" ]; then
  echo "fuzz: no fuzz targets found" >&2
  exit 1
fi
out=$(mktemp)
trap 'rm -f "$out"' EXIT
# engine_hiccup: go's fuzzing engine can end a run whose time is up with "context deadline exceeded" and no
# input of ours (a busy machine's workers answer late); that is tried once more, and a real failure always
# names its input.
engine_hiccup() { grep -q 'context deadline exceeded' "$out" && ! grep -q 'Failing input written' "$out"; }
fuzz() { go test "$pkg" -run '^$' -fuzz "^$target\$" -fuzztime "$fuzztime" >"$out" 2>&1; }
while read -r pkg target; do
  if ! fuzz && ! { engine_hiccup && echo "fuzz: $pkg $target: the fuzzing engine's deadline hiccup; once more" && fuzz; }; then
    cat "$out"
    echo "fuzz: $pkg $target FAILED"
    exit 1
  fi
  execs=$(grep -o 'execs: [0-9]*' "$out" | tail -n 1 || true)
  echo "fuzz: $pkg $target: ok for $fuzztime (${execs:-no executions})"
done <<<"$targets"
