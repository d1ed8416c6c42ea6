package ssh

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"strconv"
	"strings"

	"github.com/pkg/sftp"

	"github.com/kforge/kforge/provision/remote"
)

// sftpServerScript starts the host's sftp-server binary (its place differs between distributions) so that
// SFTP runs as root through sudo.
const sftpServerScript = `for p in /usr/lib/openssh/sftp-server /usr/libexec/openssh/sftp-server /usr/lib/ssh/sftp-server /usr/libexec/sftp-server; do
  if [ -x "$p" ]; then exec "$p"; fi
done
echo "kforge: no sftp-server binary found on this host" >&2
exit 127`

// sftpClient returns the connection's SFTP channel, opened on first use: the sftp subsystem when the login user
// is root (or sudo is off), sftp-server through sudo otherwise, so that files land as root either way. It keeps
// one session slot for as long as the connection lives.
func (c *Client) sftpClient(ctx context.Context) (*sftp.Client, error) {
	c.sftpMu.Lock()
	defer c.sftpMu.Unlock()
	if c.sftp != nil {
		return c.sftp, nil
	}
	s, release, err := c.session(ctx)
	if err != nil {
		return nil, err
	}
	fail := func(err error) (*sftp.Client, error) {
		release()
		return nil, err
	}
	stdin, err := s.StdinPipe()
	if err != nil {
		return fail(err)
	}
	stdout, err := s.StdoutPipe()
	if err != nil {
		return fail(err)
	}
	var stderr bytes.Buffer
	s.Stderr = &stderr
	if c.useSudo {
		err = s.Start(c.commandLine(sftpServerScript, true))
	} else {
		err = s.RequestSubsystem("sftp")
	}
	if err != nil {
		return fail(fmt.Errorf("start sftp: %w", err))
	}
	sc, err := sftp.NewClientPipe(stdout, stdin, sftp.UseConcurrentWrites(true), sftp.MaxConcurrentRequestsPerFile(64))
	if err != nil {
		_ = s.Wait()
		if strings.Contains(stderr.String(), "sudo: a password is required") {
			return fail(remote.ErrSudoPassword)
		}
		return fail(fmt.Errorf("start sftp: %w: %s", err, strings.TrimSpace(stderr.String())))
	}
	c.sftp, c.sftpRelease = sc, release
	return sc, nil
}

// Upload implements remote.Runner. The content goes to a temporary file beside the target (always the same
// name, so an interrupted upload leaves at most one, which the next upload reuses), is synced to disk, given
// its mode and owner, and renamed over the target: readers see the old file or the new one, never a part.
func (c *Client) Upload(ctx context.Context, f remote.File) (bool, error) {
	step := "upload " + f.Path
	if f.SHA256 == "" || f.Open == nil || !path.IsAbs(f.Path) {
		return false, c.hostError(step, errors.New("an upload needs an absolute path, the content's sha256 and a way to open it"))
	}
	owner, group := orRoot(f.Owner), orRoot(f.Group)
	infos, err := c.Stat(ctx, []string{f.Path})
	if err != nil {
		return false, err
	}
	cur := infos[0]
	if cur.Exists && cur.Type != remote.TypeFile {
		return false, c.hostError(step, fmt.Errorf("%s is a %s, not a file", f.Path, cur.Type))
	}
	sc, err := c.sftpClient(ctx)
	if err != nil {
		return false, c.hostError(step, err)
	}
	uid, gid, err := c.ownerIDs(ctx, owner, group)
	if err != nil {
		return false, c.hostError(step, err)
	}
	if cur.Exists && cur.SHA256 == f.SHA256 {
		if cur.Mode == f.Mode.Perm() && cur.Owner == owner && cur.Group == group {
			return false, nil
		}
		if err := sc.Chmod(f.Path, f.Mode.Perm()); err != nil {
			return false, c.hostError(step, err)
		}
		if err := sc.Chown(f.Path, uid, gid); err != nil {
			return false, c.hostError(step, err)
		}
		return true, nil
	}
	if err := c.send(ctx, sc, f, uid, gid); err != nil {
		return false, c.hostError(step, err)
	}
	return true, nil
}

func (c *Client) send(ctx context.Context, sc *sftp.Client, f remote.File, uid, gid int) error {
	dir := path.Dir(f.Path)
	if err := sc.MkdirAll(dir); err != nil {
		return fmt.Errorf("create %s: %w", dir, err)
	}
	tmp := path.Join(dir, "."+path.Base(f.Path)+".kforge-upload")
	src, err := f.Open()
	if err != nil {
		return err
	}
	defer src.Close()
	dst, err := sc.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC)
	if err != nil {
		return fmt.Errorf("create %s: %w", tmp, err)
	}
	ok := false
	defer func() {
		if !ok {
			dst.Close()
			_ = sc.Remove(tmp) // best effort: a dead connection leaves it for the next upload to reuse
		}
	}()
	// Nobody else may read a secret while it is being written.
	if err := dst.Chmod(0o600); err != nil {
		return fmt.Errorf("chmod %s: %w", tmp, err)
	}
	stop := context.AfterFunc(ctx, func() { dst.Close() })
	defer stop()
	sum := sha256.New()
	n, err := dst.ReadFrom(sizedReader{io.TeeReader(src, sum), f.Size})
	if err != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		return fmt.Errorf("write %s: %w", tmp, err)
	}
	if got := hex.EncodeToString(sum.Sum(nil)); got != f.SHA256 {
		return fmt.Errorf("content of %s changed while uploading: sha256 %s, expected %s (%d bytes sent)", f.Path, got, f.SHA256, n)
	}
	if err := dst.Sync(); err != nil {
		return fmt.Errorf("sync %s: %w", tmp, err)
	}
	if err := dst.Chown(uid, gid); err != nil {
		return fmt.Errorf("chown %s: %w", tmp, err)
	}
	if err := dst.Chmod(f.Mode.Perm()); err != nil {
		return fmt.Errorf("chmod %s: %w", tmp, err)
	}
	if err := dst.Close(); err != nil {
		return fmt.Errorf("close %s: %w", tmp, err)
	}
	if err := sc.PosixRename(tmp, f.Path); err != nil {
		return fmt.Errorf("rename %s to %s: %w", tmp, f.Path, err)
	}
	ok = true
	return nil
}

// sizedReader tells pkg/sftp how much is coming (-1: unknown), which is what makes it pipeline many writes
// at once instead of waiting for each; without it the upload runs at a fraction of the link's speed.
type sizedReader struct {
	io.Reader
	size int64
}

func (r sizedReader) Size() int64 {
	if r.size <= 0 {
		return -1
	}
	return r.size
}

func orRoot(name string) string {
	if name == "" {
		return "root"
	}
	return name
}

// ownerIDs resolves user and group names on the host (SFTP's chown takes numbers), once per name.
func (c *Client) ownerIDs(ctx context.Context, owner, group string) (int, int, error) {
	uid, err := c.lookupID(ctx, "u:"+owner, "id -u -- "+remote.ShellQuote(owner))
	if err != nil {
		return 0, 0, fmt.Errorf("user %q: %w", owner, err)
	}
	gid, err := c.lookupID(ctx, "g:"+group, "getent group -- "+remote.ShellQuote(group)+" | cut -d: -f3")
	if err != nil {
		return 0, 0, fmt.Errorf("group %q: %w", group, err)
	}
	return uid, gid, nil
}

func (c *Client) lookupID(ctx context.Context, key, script string) (int, error) {
	c.idsMu.Lock()
	id, ok := c.ids[key]
	c.idsMu.Unlock()
	if ok {
		return id, nil
	}
	res, err := c.Run(ctx, remote.Command{Name: "look up " + key[2:], Script: script})
	if err != nil {
		return 0, err
	}
	id, err = strconv.Atoi(strings.TrimSpace(string(res.Stdout)))
	if err != nil {
		return 0, errors.New("no such name on the host")
	}
	c.idsMu.Lock()
	c.ids[key] = id
	c.idsMu.Unlock()
	return id, nil
}
