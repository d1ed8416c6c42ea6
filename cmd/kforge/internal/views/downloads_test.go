package views

import (
	"strings"
	"testing"
)

// TestDownloads: elsewhere than a terminal one line per file; on a terminal one line redrawn in place, ended when
// the file is complete.
func TestDownloads(t *testing.T) {
	var log strings.Builder
	v := &Downloads{Out: &log}
	for _, done := range []int64{0, 1 << 20, 2 << 20} {
		v.Progress("kubelet", done, 2<<20)
	}
	v.Progress("etcd", 0, -1)
	if got := log.String(); got != "Downloading kubelet (2.0 MiB)\nDownloading etcd (size unknown)\n" {
		t.Errorf("log output:\n%q", got)
	}
	var term strings.Builder
	v = &Downloads{Out: &term, Term: Terminal{Live: true}}
	v.Progress("kubelet", 1<<20, 2<<20)
	v.Progress("kubelet", 2<<20, 2<<20)
	want := "\r\x1b[KDownloading kubelet  1.0 MiB / 2.0 MiB   50%" + "\r\x1b[KDownloading kubelet  2.0 MiB / 2.0 MiB  100%\n"
	if got := term.String(); got != want {
		t.Errorf("terminal output:\n%q\nwant\n%q", got, want)
	}
}
