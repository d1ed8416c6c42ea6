package download

import (
	"fmt"
	"os"
	"path/filepath"

	"github.com/kforge/kforge/config"
)

// FromConfig makes the request for a cluster's artifacts block; the caller adds the lock file, the architecture,
// the client and progress.
func FromConfig(a config.Artifacts, kubernetes string) (Request, error) {
	req := Request{Kubernetes: kubernetes, Versions: a.Versions, SHA256: a.SHA256, CacheDir: a.CacheDir}
	switch a.Source {
	case config.SourceDownload:
	case config.SourceMirror:
		req.Mirror = a.URL
	default:
		return Request{}, fmt.Errorf("download: artifact source %q is not downloaded", a.Source)
	}
	if req.CacheDir == "" {
		dir, err := os.UserCacheDir()
		if err != nil {
			return Request{}, fmt.Errorf("download: no cache directory: %w", err)
		}
		req.CacheDir = filepath.Join(dir, "kforge", "artifacts")
	}
	return req, nil
}
