#!/usr/bin/env bash
# The whole test suite (make test's last step): each package's result as it finishes, then the end-to-end
# scenario's own log (kubectl get nodes with every node Ready, the pod checks), then the test runner's summary,
# which stays the last line. Arguments go to go test (default: -race -count=1 -timeout 60m ./...).
set -uo pipefail
scenario=${KFORGE_SCENARIO_TEST:-TestComponentsOnALab}
json=$(mktemp) out=$(mktemp)
trap 'rm -f "$json" "$out"' EXIT
[ $# -gt 0 ] || set -- -race -count=1 -timeout 60m ./...
go tool gotestsum --format pkgname-and-test-fails --jsonfile "$json" -- "$@" | tee "$out" | grep --line-buffered -v '^DONE [0-9]'
rc=${PIPESTATUS[0]}
if grep -q "\"Test\":\"$scenario\"" "$json"; then
  printf '\n=== The end-to-end scenario (%s), as it logged:\n' "$scenario"
  go tool gotestsum --format standard-verbose --raw-command -- grep "\"Test\":\"$scenario\"" "$json" | sed -n '/^=== RUN/,/^--- \(PASS\|FAIL\|SKIP\)/p'
  echo
fi
grep '^DONE [0-9]' "$out"
exit "$rc"
