package download

import (
	"fmt"
	"path"
	"strings"
)

// parseSums finds file's digest in a published checksum file. Projects write two formats: a bare digest (dl.k8s.io's
// .sha256) and sha256sum lines "<hex>  <name>", with "*" before the name in binary mode, where etcd's SHA256SUMS and
// runc.sha256sum list every file of a release, so the line is chosen by name.
func parseSums(data []byte, file string) (string, error) {
	var named []string
	for line := range strings.Lines(string(data)) {
		fields := strings.Fields(line)
		switch {
		case len(fields) == 0:
		case len(fields) == 1 && len(named) == 0 && isDigest(fields[0]):
			return strings.ToLower(fields[0]), nil
		case len(fields) == 2 && isDigest(fields[0]):
			name := path.Base(strings.TrimPrefix(fields[1], "*"))
			if name == file {
				return strings.ToLower(fields[0]), nil
			}
			named = append(named, name)
		default:
			return "", fmt.Errorf("line %q is neither a sha256 digest nor \"<sha256>  <file>\"", strings.TrimSpace(line))
		}
	}
	if len(named) == 0 {
		return "", fmt.Errorf("no sha256 in it")
	}
	return "", fmt.Errorf("no line for %s (it lists %s)", file, strings.Join(named, ", "))
}

func isDigest(s string) bool {
	return len(s) == 64 && strings.Trim(strings.ToLower(s), "0123456789abcdef") == ""
}
