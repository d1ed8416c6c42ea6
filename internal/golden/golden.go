// Package golden compares a test's output with a file under testdata/; `go test -update` rewrites the file.
// It is imported only by tests: its -update flag exists only in test binaries.
package golden

import (
	"flag"
	"os"
	"testing"
)

var update = flag.Bool("update", false, "rewrite golden files with the current output")

// Check fails t when got differs from the content of path, or writes got to path under -update.
func Check(t testing.TB, path, got string) {
	t.Helper()
	if *update {
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -update to create it)", err)
	}
	if got != string(want) {
		t.Errorf("%s differs from the output (run go test -update after checking it):\n--- got\n%s\n--- want\n%s", path, got, want)
	}
}
