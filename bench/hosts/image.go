package hosts

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"

	"github.com/kforge/kforge/providers/lab"
)

// lowerCache holds the lab image unpacked, once per image, as the shared lower layer of every host's overlay.
const lowerCache = "/var/cache/kforge/bench/lower"

// Prepare builds the lab image if this machine has none for the current recipe (about a minute, once) and
// unpacks it for bench hosts (a few seconds, once per image), and returns the unpacked directory. Up does the
// same; a benchmark calls it first so that neither is part of what it measures.
func Prepare(ctx context.Context) (string, error) {
	image, err := (&lab.Manager{Paths: lab.DefaultPaths()}).EnsureImage(ctx)
	if err != nil {
		return "", fmt.Errorf("lab image: %w", err)
	}
	lower := filepath.Join(lowerCache, strings.TrimSuffix(filepath.Base(image), ".tar.zst"))
	if _, err := os.Stat(lower); err == nil {
		return lower, nil
	}
	if err := os.MkdirAll(lowerCache, 0o755); err != nil {
		return "", err
	}
	// Unpacked beside its final place and renamed into it: a directory that exists is complete, and
	// processes that unpack at the same time need no lock (the first rename wins, the others drop theirs).
	tmp, err := os.MkdirTemp(lowerCache, ".unpack-")
	if err != nil {
		return "", err
	}
	defer os.RemoveAll(tmp)
	out, err := exec.CommandContext(ctx, "tar", "-C", tmp, "--numeric-owner", "--xattrs", "--xattrs-include=*",
		"-I", "zstd", "-xf", image).CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("unpack %s: %w: %s", image, err, strings.TrimSpace(string(out)))
	}
	if err := os.Chmod(tmp, 0o755); err != nil {
		return "", err
	}
	if err := os.Rename(tmp, lower); err != nil {
		if _, serr := os.Stat(lower); serr == nil {
			return lower, nil
		}
		return "", err
	}
	return lower, nil
}
