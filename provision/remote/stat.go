package remote

import (
	"bytes"
	"fmt"
	"io/fs"
	"strconv"
	"strings"
)

// StatScript describes every path listed on stdin (one per line) in one command: stat for all of them, then
// sha256sum for the regular files. Paths that do not exist produce no line.
const StatScript = `paths=$(cat)
printf '%s\n' "$paths" | tr '\n' '\0' | xargs -0 -r stat --printf 'S\t%f\t%a\t%U\t%G\t%s\t%n\n' -- 2>/dev/null
printf '%s\n' "$paths" | while IFS= read -r p; do
  if [ -f "$p" ] && [ ! -L "$p" ]; then printf '%s\0' "$p"; fi
done | xargs -0 -r sha256sum -- 2>/dev/null | sed 's/^/H\t/'
exit 0`

// CheckPaths refuses paths the stat script could not carry: relative ones, and ones with newlines, tabs or
// backslashes (sha256sum escapes those). kforge's own paths never have them.
func CheckPaths(paths []string) error {
	for _, p := range paths {
		if p == "" || strings.ContainsAny(p, "\n\t\\") || !strings.HasPrefix(p, "/") {
			return fmt.Errorf("path %q: must be absolute, without newlines, tabs or backslashes", p)
		}
	}
	return nil
}

// ParseStat fills in the FileInfo of each path from StatScript's output; paths it does not mention do not exist.
func ParseStat(stdout []byte, byPath map[string]*FileInfo) error {
	for _, line := range bytes.Split(stdout, []byte("\n")) {
		if len(line) == 0 {
			continue
		}
		kind, rest, _ := strings.Cut(string(line), "\t")
		switch kind {
		case "S":
			f := strings.SplitN(rest, "\t", 6)
			if len(f) != 6 {
				return fmt.Errorf("unexpected stat output %s", Excerpt(line))
			}
			fi, ok := byPath[f[5]]
			if !ok {
				return fmt.Errorf("stat output for a path not asked for: %s", Excerpt([]byte(f[5])))
			}
			raw, err1 := strconv.ParseUint(f[0], 16, 32)
			perm, err2 := strconv.ParseUint(f[1], 8, 32)
			size, err3 := strconv.ParseInt(f[4], 10, 64)
			if err1 != nil || err2 != nil || err3 != nil {
				return fmt.Errorf("unexpected stat output %s", Excerpt(line))
			}
			fi.Exists, fi.Mode, fi.Owner, fi.Group, fi.Size = true, fs.FileMode(perm), f[2], f[3], size
			fi.Type = fileType(raw)
		case "H":
			// sha256sum prints "<64 hex>  <path>".
			if len(rest) < 67 {
				return fmt.Errorf("unexpected sha256sum output %s", Excerpt(line))
			}
			if fi, ok := byPath[rest[66:]]; ok {
				fi.SHA256 = rest[:64]
			}
		default:
			return fmt.Errorf("unexpected output %s", Excerpt(line))
		}
	}
	return nil
}

// Excerpt quotes the start of a line a host printed, for an error: a host that answers with garbage may send
// megabytes on one line, and the error should show what it is, not all of it.
// The bound is on the quoted text: a byte that is not printable takes four characters (\x92) there.
func Excerpt(line []byte) string {
	const keep = 80
	quoted := func(b []byte) string { return fmt.Sprintf("%q", b) }
	if q := quoted(line); len(q) <= keep+2 {
		return q
	}
	n := min(len(line), keep)
	for n > 0 && len(quoted(line[:n])) > keep+2 {
		n--
	}
	return fmt.Sprintf("%s… (%d bytes)", quoted(line[:n]), len(line))
}

// fileType reads the S_IFMT bits of a raw st_mode.
func fileType(raw uint64) FileType {
	switch raw & 0o170000 {
	case 0o100000:
		return TypeFile
	case 0o040000:
		return TypeDir
	case 0o120000:
		return TypeSymlink
	default:
		return TypeOther
	}
}
