package artifacts

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestLoadRefusesHostileImages: image names and tarball paths of a manifest end up in a unit's command line and
// in a health check that runs as root on every node; a set whose manifest has quotes, blanks or line breaks
// there is refused when it is loaded, naming the manifest.
func TestLoadRefusesHostileImages(t *testing.T) {
	for _, tc := range []struct{ manifest, want string }{
		{`{"images": [{"name": "kforge.local/pause:3.10.2", "path": "images/pause.tar"}], "pause_image": "kforge.local/pause:3.10.2"}`, ""},
		{`{"images": [{"name": "x'; touch /tmp/kforge-canary; '", "path": "images/pause.tar"}]}`, `image name "x'; touch /tmp/kforge-canary; '" is not a container image reference`},
		{`{"images": [{"name": "kforge.local/pause:1", "path": "images/pause.tar\nExecStartPre=/bin/sh"}]}`, `path "images/pause.tar\nExecStartPre=/bin/sh" must be relative`},
		{`{"images": [{"name": "kforge.local/pause:1", "path": "images/$(touch x).tar"}]}`, `path "images/$(touch x).tar" must be relative`},
		{`{"images": [{"name": "kforge.local/pause:1", "path": "../../etc/shadow"}]}`, `path "../../etc/shadow" must be relative`},
		{`{"images": [{"name": "kforge.local/pause:1", "path": "/images/pause.tar"}]}`, `path "/images/pause.tar" must be relative`},
		{`{"dns_image": "coredns:$(id)"}`, `image name "coredns:$(id)" is not a container image reference`},
		{`{"pause_image": "pause:1 --all"}`, `image name "pause:1 --all" is not a container image reference`},
	} {
		dir := t.TempDir()
		if err := os.WriteFile(filepath.Join(dir, "manifest.json"), []byte(tc.manifest), 0o644); err != nil {
			t.Fatal(err)
		}
		_, err := Load(dir)
		switch {
		case tc.want == "" && err != nil:
			t.Errorf("%s: %v", tc.manifest, err)
		case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), filepath.Join(dir, "manifest.json"))):
			t.Errorf("%s:\n got %v\nwant %s", tc.manifest, err, tc.want)
		}
	}
}
