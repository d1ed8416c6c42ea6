// Package remote is how kforge talks to hosts, whatever carries the bytes: the Runner interface, its error
// types, and the one fan-out helper every multi-host step uses. provision/ssh implements Runner.
package remote

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"strings"
	"time"

	"github.com/kforge/kforge/internal/bytesize"
)

// Runner runs commands and moves files on one host. Implementations are safe for concurrent use.
type Runner interface {
	// Host is the host's name, for messages.
	Host() string
	// Run runs a command; a non-zero exit status is an *ExitError that carries stderr. It keeps at most
	// MaxStdout bytes of stdout (unless Command.Stdout takes it) and MaxStderr of stderr: a command that prints
	// more is stopped, and the error is an *OutputLimitError.
	Run(ctx context.Context, cmd Command) (Result, error)
	// Stat describes many paths in one round trip, as root.
	Stat(ctx context.Context, paths []string) ([]FileInfo, error)
	// ReadFile returns a small file's content, read as root: at most MaxStdout bytes.
	ReadFile(ctx context.Context, path string) ([]byte, error)
	// Upload makes path hold the file's content, mode and owner, atomically; it reports whether anything changed.
	Upload(ctx context.Context, f File) (changed bool, err error)
	Close() error
}

// Command is a POSIX sh script to run on a host.
type Command struct {
	Script string
	Stdin  io.Reader
	// Stdout, when set, receives the command's output as it comes (Result.Stdout is then empty): for output too
	// large to hold, such as a snapshot.
	Stdout io.Writer
	// Sudo runs the script as root: through `sudo -n` when the login user is not root.
	Sudo bool
	// Timeout bounds this command on top of the context; 0 means no extra bound.
	Timeout time.Duration
	// Name says what the command is for, in errors ("read os-release"); the script's first line otherwise.
	Name string
}

// Label is the name errors use for the command.
func (c Command) Label() string {
	if c.Name != "" {
		return c.Name
	}
	first, _, _ := strings.Cut(strings.TrimSpace(c.Script), "\n")
	if len(first) > 60 {
		first = first[:57] + "..."
	}
	return first
}

// Result is what a command printed and how it ended.
type Result struct {
	Stdout, Stderr []byte
	ExitStatus     int
}

// What Run keeps of a command's output, so that a host cannot fill kforge's memory: a stream that goes beyond
// is not read further. The most a command of kforge prints is the content of the drifted files a plan shows
// as diffs (at most 64 KiB each, sent in base64), a couple of MiB even if every such file on a host drifted;
// the stdout limit leaves room for many times that. What is larger (an etcd snapshot) streams through
// Command.Stdout, which has no limit. Of stderr, errors show the last 2000 bytes.
const (
	MaxStdout = 16 << 20
	MaxStderr = 1 << 20
)

// OutputLimitError is a command that printed more than Run keeps on one of its streams; it was stopped.
type OutputLimitError struct {
	Stream string // "stdout" or "stderr"
	Limit  int
}

func (e *OutputLimitError) Error() string {
	return fmt.Sprintf("its %s exceeded the limit of %s that kforge keeps of a command's output; the command was stopped",
		e.Stream, bytesize.String(int64(e.Limit)))
}

// File is content to place at Path.
type File struct {
	Path string
	Mode fs.FileMode
	// Owner and Group are names; empty means root.
	Owner, Group string
	// SHA256 is the content's hex digest: when the host already has it, nothing is sent. Required.
	SHA256 string
	Size   int64
	// Open returns the content; it is called only when the content must be sent, and streamed.
	Open func() (io.ReadCloser, error)
}

// FileInfo is what Stat found at a path.
type FileInfo struct {
	Path         string
	Exists       bool
	Type         FileType
	Mode         fs.FileMode // permission bits
	Owner, Group string
	Size         int64
	SHA256       string // regular files only
}

// FileType is the kind of filesystem object at a path.
type FileType string

const (
	TypeFile    FileType = "file"
	TypeDir     FileType = "directory"
	TypeSymlink FileType = "symlink"
	TypeOther   FileType = "other"
)

// ExitError is a command that ran and failed.
type ExitError struct {
	Command string
	Status  int
	Stderr  string
}

func (e *ExitError) Error() string {
	msg := fmt.Sprintf("%s: exit status %d", e.Command, e.Status)
	if s := strings.TrimSpace(e.Stderr); s != "" {
		msg += ": " + tail(s, 2000)
	}
	return msg
}

// ErrSudoPassword means sudo wanted a password; kforge needs passwordless sudo (sudo -n).
var ErrSudoPassword = errors.New("sudo asks for a password: kforge needs passwordless sudo for the login user (a NOPASSWD rule in /etc/sudoers.d)")

// HostError says which host and which step failed.
type HostError struct {
	Host string
	Step string
	Err  error
}

func (e *HostError) Error() string {
	if e.Step == "" {
		return fmt.Sprintf("host %s: %v", e.Host, e.Err)
	}
	return fmt.Sprintf("host %s: %s: %v", e.Host, e.Step, e.Err)
}

func (e *HostError) Unwrap() error { return e.Err }

func tail(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return "…" + s[len(s)-n:]
}

// Journal returns a systemd unit's last lines of journal: where a failed unit says why.
func Journal(ctx context.Context, r Runner, unit string, lines int) (string, error) {
	res, err := r.Run(ctx, Command{Name: "journal of " + unit, Sudo: true,
		Script: fmt.Sprintf("journalctl -u %s -n %d --no-pager -o cat", ShellQuote(unit), lines)})
	if err != nil {
		return "", err
	}
	return strings.TrimRight(string(res.Stdout), "\n"), nil
}

// ShellQuote makes s one word for sh.
func ShellQuote(s string) string { return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'" }
