package vagrant

import (
	"bufio"
	"bytes"
	"fmt"
	"strconv"
	"strings"
)

// sshEntry is what one `Host` section of `vagrant ssh-config` says about a machine: only the settings kforge
// can honour or must refuse.
type sshEntry struct {
	Name          string
	HostName      string
	User          string
	Port          int
	IdentityFiles []string // in order; ssh tries them in turn, so kforge takes the first that exists
	ProxyCommand  string
	Line          int // of the Host keyword, for messages
}

// parseSSHConfig reads the OpenSSH client configuration that `vagrant ssh-config` prints, one Host section per
// machine. Keywords are case-insensitive and may be followed by spaces or '='; like ssh, the first value of a
// setting wins and keywords kforge has no use for are skipped, so new ones in a later Vagrant do no harm. Lines
// before the first Host are skipped too: Vagrant and its plugins may print notices there.
func parseSSHConfig(out []byte) ([]sshEntry, error) {
	var entries []sshEntry
	cur := -1 // index into entries: a pointer would go stale when append moves them
	seen := map[string]int{}
	sc := bufio.NewScanner(bytes.NewReader(out))
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		written, rest := splitKeyword(line)
		keyword := strings.ToLower(written)
		if !knownKeyword(keyword) || (keyword != "host" && cur < 0) {
			continue
		}
		args, err := splitArgs(rest)
		if err != nil {
			return nil, fmt.Errorf("line %d: %w", n, err)
		}
		if len(args) == 0 {
			return nil, fmt.Errorf("line %d: %s without a value", n, written)
		}
		if keyword == "host" {
			if len(args) != 1 {
				return nil, fmt.Errorf("line %d: Host with %d names, where Vagrant prints one machine name", n, len(args))
			}
			if first, ok := seen[args[0]]; ok {
				return nil, fmt.Errorf("line %d: machine %q was already described at line %d", n, args[0], first)
			}
			seen[args[0]] = n
			entries = append(entries, sshEntry{Name: args[0], Line: n})
			cur = len(entries) - 1
			continue
		}
		e := &entries[cur]
		switch keyword {
		case "hostname":
			setOnce(&e.HostName, args[0])
		case "user":
			setOnce(&e.User, args[0])
		case "port":
			if e.Port != 0 {
				continue
			}
			p, err := strconv.Atoi(args[0])
			if err != nil || p < 1 || p > 65535 {
				return nil, fmt.Errorf("line %d: port %q is not a number from 1 to 65535", n, args[0])
			}
			e.Port = p
		case "identityfile":
			e.IdentityFiles = append(e.IdentityFiles, args[0])
		case "proxycommand":
			// The command is the rest of the line as written: ssh hands it to a shell, quotes and all.
			setOnce(&e.ProxyCommand, rest)
		}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("read ssh-config output: %w", err)
	}
	return entries, nil
}

// knownKeyword reports whether kforge reads the (lower-cased) keyword.
func knownKeyword(k string) bool {
	switch k {
	case "host", "hostname", "user", "port", "identityfile", "proxycommand":
		return true
	}
	return false
}

func setOnce(field *string, v string) {
	if *field == "" {
		*field = v
	}
}

// splitKeyword separates a line's keyword from its arguments; ssh_config allows "Key value", "Key=value" and
// "Key = value".
func splitKeyword(line string) (keyword, rest string) {
	i := strings.IndexAny(line, " \t=")
	if i < 0 {
		return line, ""
	}
	keyword, rest = line[:i], strings.TrimLeft(line[i:], " \t")
	if strings.HasPrefix(rest, "=") {
		rest = strings.TrimLeft(rest[1:], " \t")
	}
	return keyword, rest
}

// splitArgs splits arguments at blanks; a double-quoted argument keeps its blanks, which is how Vagrant writes an
// IdentityFile under a directory whose name has a space.
func splitArgs(s string) ([]string, error) {
	var args []string
	var b strings.Builder
	inArg, quoted := false, false
	for _, r := range s {
		switch {
		case r == '"':
			quoted = !quoted
			inArg = true
		case (r == ' ' || r == '\t') && !quoted:
			if inArg {
				args = append(args, b.String())
				b.Reset()
				inArg = false
			}
		default:
			b.WriteRune(r)
			inArg = true
		}
	}
	if quoted {
		return nil, fmt.Errorf("unterminated quote in %q", s)
	}
	if inArg {
		args = append(args, b.String())
	}
	return args, nil
}
