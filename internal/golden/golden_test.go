package golden

import (
	"path/filepath"
	"testing"
)

// recorder catches Errorf/Fatalf so that a mismatch can be asserted without failing this test.
type recorder struct {
	testing.TB
	failed bool
}

func (r *recorder) Helper()               {}
func (r *recorder) Errorf(string, ...any) { r.failed = true }
func (r *recorder) Fatalf(string, ...any) { r.failed = true }

func TestCheck(t *testing.T) {
	path := filepath.Join(t.TempDir(), "out.txt")
	r := &recorder{TB: t}
	Check(r, path, "x")
	if !r.failed {
		t.Error("a missing golden file passed")
	}
	*update = true
	Check(t, path, "same\n")
	*update = false
	r = &recorder{TB: t}
	Check(r, path, "same\n")
	if r.failed {
		t.Error("equal output failed")
	}
	Check(r, path, "other\n")
	if !r.failed {
		t.Error("different output passed")
	}
}
