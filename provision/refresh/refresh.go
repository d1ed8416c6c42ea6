// Package refresh reads what a host has for every resource kforge cares about there, in one SSH command, so
// that plans start from the hosts' real state and never from a file that may have drifted.
package refresh

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"io/fs"
	"sort"
	"strings"
	"time"

	"github.com/kforge/kforge/provision/remote"
	"github.com/kforge/kforge/provision/resource"
)

// script reads "KIND NAME" lines on stdin. Paths go through remote.StatScript (in a subshell, whose exit ends
// only it); then symlink targets, units (systemd's enabled and active states), sysctls, modules and users (their
// home directories); last, the
// end line, without which the output is not taken for a whole refresh (a host that answers with nothing must
// not read as one where nothing exists).
var script = `input=$(cat)
printf '%s\n' "$input" | sed -n 's/^P //p' | (` + remote.StatScript + `
)
printf '%s\n' "$input" | sed -n 's/^P //p' | while IFS= read -r p; do
  if [ -L "$p" ]; then printf 'L\t%s\t%s\n' "$p" "$(readlink -- "$p")"; fi
done
printf '%s\n' "$input" | sed -n 's/^U //p' | while IFS= read -r u; do
  [ -n "$u" ] || continue
  printf 'U\t%s\t%s\t%s\n' "$u" "$(systemctl is-enabled -- "$u" 2>/dev/null)" "$(systemctl is-active -- "$u" 2>/dev/null)"
done
printf '%s\n' "$input" | sed -n 's/^C //p' | while IFS= read -r k; do
  [ -n "$k" ] || continue
  f=/proc/sys/$(printf '%s' "$k" | tr . /)
  if [ -r "$f" ]; then printf 'C\t%s\t%s\n' "$k" "$(cat "$f")"; fi
done
printf '%s\n' "$input" | sed -n 's/^M //p' | while IFS= read -r m; do
  [ -n "$m" ] || continue
  if [ -d "/sys/module/$m" ]; then printf 'M\t%s\n' "$m"; fi
done
printf '%s\n' "$input" | sed -n 's/^W //p' | while IFS= read -r w; do
  [ -n "$w" ] || continue
  if e=$(getent passwd -- "$w"); then printf 'W\t%s\t%s\n' "$w" "$(printf '%s' "$e" | cut -d: -f6)"; fi
done
printf '%s\n' "` + endLine + `"
exit 0`

// endLine ends the refresh's output.
const endLine = "E\tkforge-refresh"

// Want names one resource to read.
type Want struct {
	Kind resource.Kind
	Name string
}

// Result is what one host has.
type Result struct {
	Observed map[string]resource.Observed // by resource ID
	// Digest sums up everything read; a saved plan keeps it, and apply refuses the plan if it changed.
	Digest string
}

// Host reads every wanted resource in one command, as root.
func Host(ctx context.Context, r remote.Runner, wants []Want) (Result, error) {
	var in strings.Builder
	var paths []string
	for _, w := range wants {
		switch w.Kind {
		case resource.File, resource.Directory, resource.Binary, resource.Symlink:
			paths = append(paths, w.Name)
			fmt.Fprintf(&in, "P %s\n", w.Name)
		case resource.Unit:
			fmt.Fprintf(&in, "U %s\n", w.Name)
		case resource.Sysctl:
			fmt.Fprintf(&in, "C %s\n", w.Name)
		case resource.Module:
			fmt.Fprintf(&in, "M %s\n", w.Name)
		case resource.User:
			fmt.Fprintf(&in, "W %s\n", w.Name)
		}
	}
	if err := remote.CheckPaths(paths); err != nil {
		return Result{}, &remote.HostError{Host: r.Host(), Step: "refresh", Err: err}
	}
	res, err := r.Run(ctx, remote.Command{Name: "refresh", Script: script, Sudo: true, Stdin: strings.NewReader(in.String()),
		Timeout: 2 * time.Minute})
	if err != nil {
		return Result{}, err
	}
	out, err := parse(res.Stdout, wants)
	if err != nil {
		return Result{}, &remote.HostError{Host: r.Host(), Step: "refresh", Err: err}
	}
	return out, nil
}

func parse(stdout []byte, wants []Want) (Result, error) {
	files := map[string]*remote.FileInfo{}
	for _, w := range wants {
		switch w.Kind {
		case resource.File, resource.Directory, resource.Binary, resource.Symlink:
			files[w.Name] = &remote.FileInfo{Path: w.Name}
		}
	}
	body, ok := bytes.CutSuffix(stdout, []byte(endLine+"\n"))
	if !ok || !(len(body) == 0 || body[len(body)-1] == '\n') {
		return Result{}, fmt.Errorf("the output ends early (%d bytes, without the end line): the command was cut short, or the login shell ran something else", len(stdout))
	}
	var statLines, rest [][]byte
	for _, line := range bytes.Split(body, []byte("\n")) {
		if bytes.HasPrefix(line, []byte("S\t")) || bytes.HasPrefix(line, []byte("H\t")) {
			statLines = append(statLines, line)
		} else if len(line) > 0 {
			rest = append(rest, line)
		}
	}
	if err := remote.ParseStat(bytes.Join(statLines, []byte("\n")), files); err != nil {
		return Result{}, err
	}
	targets, units, sysctls, modules, users := map[string]string{}, map[string][2]string{}, map[string]string{}, map[string]bool{}, map[string]string{}
	for _, line := range rest {
		f := strings.Split(string(line), "\t")
		switch {
		case f[0] == "L" && len(f) == 3:
			targets[f[1]] = f[2]
		case f[0] == "U" && len(f) == 4:
			units[f[1]] = [2]string{f[2], f[3]}
		case f[0] == "C" && len(f) == 3:
			sysctls[f[1]] = f[2]
		case f[0] == "M" && len(f) == 2:
			modules[f[1]] = true
		case f[0] == "W" && len(f) == 3:
			users[f[1]] = f[2]
		default:
			return Result{}, fmt.Errorf("unexpected refresh output %s", remote.Excerpt(line))
		}
	}
	obs := map[string]resource.Observed{}
	for _, w := range wants {
		id := resource.ID(w.Kind, w.Name)
		switch w.Kind {
		case resource.File, resource.Directory, resource.Binary, resource.Symlink:
			fi := files[w.Name]
			obs[id] = resource.Observed{Exists: fi.Exists, Type: string(fi.Type), SHA256: fi.SHA256, Size: fi.Size,
				Mode: fs.FileMode(fi.Mode), Owner: fi.Owner, Group: fi.Group, Target: targets[w.Name]}
		case resource.Unit:
			u := units[w.Name]
			// "enabled-runtime", "static" and "alias" do not survive a reboot the way "enabled" does.
			obs[id] = resource.Observed{Exists: u[0] != "" && u[0] != "not-found", Enabled: u[0] == "enabled", Active: u[1] == "active"}
		case resource.Sysctl:
			v, ok := sysctls[w.Name]
			obs[id] = resource.Observed{Exists: ok, Value: strings.Join(strings.Fields(v), " ")}
		case resource.Module:
			obs[id] = resource.Observed{Exists: modules[w.Name], Value: map[bool]string{true: "loaded"}[modules[w.Name]]}
		case resource.User:
			home, ok := users[w.Name]
			obs[id] = resource.Observed{Exists: ok, Value: home}
		}
	}
	return Result{Observed: obs, Digest: digest(stdout)}, nil
}

// digest hashes the output with its lines sorted, so that only what was read matters, not its order.
func digest(stdout []byte) string {
	lines := strings.Split(string(stdout), "\n")
	sort.Strings(lines)
	sum := sha256.Sum256([]byte(strings.Join(lines, "\n")))
	return hex.EncodeToString(sum[:])
}

// Contents reads small files whose content a plan shows as a diff, in one command. A file larger than limit
// bytes is left out.
func Contents(ctx context.Context, r remote.Runner, paths []string, limit int64) (map[string][]byte, error) {
	if err := remote.CheckPaths(paths); err != nil {
		return nil, err
	}
	script := fmt.Sprintf(`while IFS= read -r p; do
  [ -f "$p" ] || continue
  [ "$(stat -c %%s -- "$p")" -le %d ] || continue
  printf 'F\t%%s\t' "$p"; base64 -w0 -- "$p"; printf '\n'
done`, limit)
	res, err := r.Run(ctx, remote.Command{Name: "read files to show their changes", Script: script, Sudo: true,
		Stdin: strings.NewReader(strings.Join(paths, "\n") + "\n")})
	if err != nil {
		return nil, err
	}
	out := map[string][]byte{}
	for _, line := range strings.Split(string(res.Stdout), "\n") {
		f := strings.SplitN(line, "\t", 3)
		if len(f) != 3 || f[0] != "F" {
			continue
		}
		b, err := base64.StdEncoding.DecodeString(f[2])
		if err != nil {
			return nil, &remote.HostError{Host: r.Host(), Step: "read " + f[1], Err: err}
		}
		out[f[1]] = b
	}
	return out, nil
}
