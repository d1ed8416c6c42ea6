package ssh

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/kforge/kforge/provision/remote"
	"github.com/kforge/kforge/provision/ssh/sshdtest"
)

func fileOf(path string, content []byte, mode fs.FileMode) remote.File {
	sum := sha256.Sum256(content)
	return remote.File{Path: path, Mode: mode, SHA256: hex.EncodeToString(sum[:]), Size: int64(len(content)),
		Open: func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(content)), nil }}
}

// remoteDir is a directory on "the host": the servers run on this machine, so the test can look at it directly.
func remoteDir(t *testing.T) string {
	t.Helper()
	dir, err := os.MkdirTemp("/var/tmp", "kforge-ssh-test-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	return dir
}

func TestStatManyPathsInOneRoundTrip(t *testing.T) {
	root := sshdtest.Root(t)
	srv := sshdtest.Start(t, sshdtest.Options{Users: []*sshdtest.User{root}})
	d, _ := testDialer(t, srv)
	c := dial(t, d, targetOf("stat", srv, root))
	dir := remoteDir(t)

	var paths []string
	want := map[string]string{}
	for i := 0; i < 200; i++ {
		p := filepath.Join(dir, fmt.Sprintf("f %03d.conf", i)) // a space, to prove quoting
		content := []byte(strings.Repeat("x", i))
		if err := os.WriteFile(p, content, 0o640); err != nil {
			t.Fatal(err)
		}
		sum := sha256.Sum256(content)
		want[p] = hex.EncodeToString(sum[:])
		paths = append(paths, p)
	}
	if err := os.Symlink("f 001.conf", filepath.Join(dir, "link")); err != nil {
		t.Fatal(err)
	}
	paths = append(paths, dir, filepath.Join(dir, "link"), filepath.Join(dir, "missing"))

	before := c.Sessions()
	infos, err := c.Stat(context.Background(), paths)
	if err != nil {
		t.Fatal(err)
	}
	if n := c.Sessions() - before; n != 1 {
		t.Errorf("stat of %d paths took %d round trips, want 1", len(paths), n)
	}
	for i, fi := range infos[:200] {
		if !fi.Exists || fi.Type != remote.TypeFile || fi.Mode != 0o640 || fi.Owner != "root" || fi.Group != "root" ||
			fi.Size != int64(i) || fi.SHA256 != want[fi.Path] {
			t.Errorf("%+v", fi)
		}
	}
	if d := infos[200]; d.Type != remote.TypeDir || d.SHA256 != "" {
		t.Errorf("dir: %+v", d)
	}
	if l := infos[201]; l.Type != remote.TypeSymlink || l.SHA256 != "" {
		t.Errorf("symlink: %+v", l)
	}
	if m := infos[202]; m.Exists {
		t.Errorf("missing: %+v", m)
	}
	if _, err := c.Stat(context.Background(), []string{"relative/path"}); err == nil {
		t.Error("a relative path was accepted")
	}

	data, err := c.ReadFile(context.Background(), paths[5])
	if err != nil || string(data) != "xxxxx" {
		t.Errorf("read: %q %v", data, err)
	}
	_, err = c.ReadFile(context.Background(), filepath.Join(dir, "missing"))
	var exit *remote.ExitError
	if !errors.As(err, &exit) || !strings.Contains(exit.Stderr, "No such file") {
		t.Errorf("read missing: %v", err)
	}
}

func TestUploadIsSkippedFixedOrReplaced(t *testing.T) {
	user := sshdtest.SystemUser(t, sshdtest.SudoNoPassword)
	srv := sshdtest.Start(t, sshdtest.Options{Users: []*sshdtest.User{user}})
	d, _ := testDialer(t, srv)
	c := dial(t, d, targetOf("files", srv, user)) // non-root: everything goes through sudo
	dir := remoteDir(t)
	path := filepath.Join(dir, "etc", "kubernetes", "pki", "ca.key") // parents do not exist yet
	ctx := context.Background()

	changed, err := c.Upload(ctx, fileOf(path, []byte("secret-1"), 0o600))
	if err != nil || !changed {
		t.Fatalf("first upload: %v %v", changed, err)
	}
	checkFile(t, path, "secret-1", 0o600, 0)

	// Same content: nothing sent, one round trip (the stat).
	before := c.Sessions()
	changed, err = c.Upload(ctx, fileOf(path, []byte("secret-1"), 0o600))
	if err != nil || changed || c.Sessions()-before != 1 {
		t.Errorf("unchanged upload: changed %v, err %v, round trips %d", changed, err, c.Sessions()-before)
	}

	// Someone loosened the mode: fixed without resending.
	if err := os.Chmod(path, 0o644); err != nil {
		t.Fatal(err)
	}
	opened := false
	f := fileOf(path, []byte("secret-1"), 0o600)
	open := f.Open
	f.Open = func() (io.ReadCloser, error) { opened = true; return open() }
	if changed, err := c.Upload(ctx, f); err != nil || !changed || opened {
		t.Errorf("mode fix: changed %v, err %v, content sent %v", changed, err, opened)
	}
	checkFile(t, path, "secret-1", 0o600, 0)

	// New content, owned by the login user.
	f = fileOf(path, []byte("secret-2"), 0o640)
	f.Owner, f.Group = user.Name, user.Name
	if changed, err := c.Upload(ctx, f); err != nil || !changed {
		t.Fatalf("replace: %v %v", changed, err)
	}
	uid := lookupUID(t, user.Name)
	checkFile(t, path, "secret-2", 0o640, uid)
	if leftovers, _ := filepath.Glob(filepath.Join(filepath.Dir(path), ".*kforge-upload")); len(leftovers) != 0 {
		t.Errorf("temporary files left: %v", leftovers)
	}

	// Content that does not match its declared sha256 never reaches the target.
	bad := fileOf(path, []byte("secret-3"), 0o600)
	bad.SHA256 = strings.Repeat("0", 64)
	if _, err := c.Upload(ctx, bad); err == nil || !strings.Contains(err.Error(), "changed while uploading") {
		t.Errorf("bad sha: %v", err)
	}
	checkFile(t, path, "secret-2", 0o640, uid)

	// A directory in the way is an error, not a silent replacement.
	if _, err := c.Upload(ctx, fileOf(dir, []byte("x"), 0o644)); err == nil || !strings.Contains(err.Error(), "is a directory") {
		t.Errorf("directory: %v", err)
	}
}

func lookupUID(t *testing.T, name string) int {
	t.Helper()
	data, err := os.ReadFile("/etc/passwd")
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(data), "\n") {
		f := strings.Split(line, ":")
		if len(f) > 2 && f[0] == name {
			var uid int
			fmt.Sscan(f[2], &uid)
			return uid
		}
	}
	t.Fatalf("no user %s", name)
	return -1
}

func checkFile(t *testing.T, path, content string, mode fs.FileMode, uid int) {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	st, _ := os.Stat(path)
	gotUID := int(st.Sys().(*syscall.Stat_t).Uid)
	if string(data) != content || st.Mode().Perm() != mode || gotUID != uid {
		t.Errorf("%s: content %q mode %#o uid %d; want %q %#o %d", path, data, st.Mode().Perm(), gotUID, content, mode, uid)
	}
}

// pattern is a deterministic stream of n pseudo-random bytes that is never held in memory whole.
type pattern struct {
	rng  *rand.ChaCha8
	left int64
	read atomic.Int64
}

func newPattern(n int64) *pattern {
	return &pattern{rng: rand.NewChaCha8([32]byte{1}), left: n}
}

func (p *pattern) Read(b []byte) (int, error) {
	if p.left <= 0 {
		return 0, io.EOF
	}
	if int64(len(b)) > p.left {
		b = b[:p.left]
	}
	n, _ := p.rng.Read(b)
	p.left -= int64(n)
	p.read.Add(int64(n))
	return n, nil
}

func patternSHA(t *testing.T, n int64) string {
	t.Helper()
	h := sha256.New()
	if _, err := io.Copy(h, newPattern(n)); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(h.Sum(nil))
}

// TestLargeUploadStreams sends 128 MiB without holding it in memory.
func TestLargeUploadStreams(t *testing.T) {
	root := sshdtest.Root(t)
	srv := sshdtest.Start(t, sshdtest.Options{Users: []*sshdtest.User{root}})
	d, _ := testDialer(t, srv)
	c := dial(t, d, targetOf("big", srv, root))
	const size = 128 << 20
	path := filepath.Join(remoteDir(t), "kube-apiserver")
	f := remote.File{Path: path, Mode: 0o755, SHA256: patternSHA(t, size), Size: size,
		Open: func() (io.ReadCloser, error) { return io.NopCloser(newPattern(size)), nil }}

	runtime.GC()
	var base runtime.MemStats
	runtime.ReadMemStats(&base)
	var peak atomic.Uint64
	stop := make(chan struct{})
	go func() {
		var m runtime.MemStats
		for {
			select {
			case <-stop:
				return
			case <-time.After(20 * time.Millisecond):
			}
			runtime.ReadMemStats(&m)
			if m.HeapInuse > peak.Load() {
				peak.Store(m.HeapInuse)
			}
		}
	}()
	changed, err := c.Upload(context.Background(), f)
	close(stop)
	if err != nil || !changed {
		t.Fatalf("upload: %v %v", changed, err)
	}
	if grew := int64(peak.Load()) - int64(base.HeapInuse); grew > 48<<20 {
		t.Errorf("heap grew by %d MiB while sending 128 MiB: the upload is not streamed", grew>>20)
	}
	h := sha256.New()
	file, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer file.Close()
	io.Copy(h, file)
	if hex.EncodeToString(h.Sum(nil)) != f.SHA256 {
		t.Error("uploaded content differs")
	}
}

// TestKilledConnectionLeavesNoPartialFile cuts the connection in the middle of an upload: the target keeps its
// old content, the error names the host, and the next upload converges.
func TestKilledConnectionLeavesNoPartialFile(t *testing.T) {
	user := sshdtest.SystemUser(t, sshdtest.SudoNoPassword) // not root: see sshdtest.Root on killing root's shells
	srv := sshdtest.Start(t, sshdtest.Options{Users: []*sshdtest.User{user}})
	d, _ := testDialer(t, srv)
	c := dial(t, d, targetOf("victim", srv, user))
	path := filepath.Join(remoteDir(t), "kubelet")
	if err := os.WriteFile(path, []byte("old binary"), 0o755); err != nil {
		t.Fatal(err)
	}
	const size = 256 << 20
	src := newPattern(size)
	f := remote.File{Path: path, Mode: 0o755, SHA256: patternSHA(t, size), Size: size,
		Open: func() (io.ReadCloser, error) { return io.NopCloser(src), nil }}
	go func() {
		for src.read.Load() < 16<<20 {
			time.Sleep(5 * time.Millisecond)
		}
		if _, err := srv.KillConnections(); err != nil {
			t.Error(err)
		}
	}()
	_, err := c.Upload(context.Background(), f)
	var he *remote.HostError
	if err == nil || !errors.As(err, &he) || he.Host != "victim" {
		t.Fatalf("upload over a killed connection: %v", err)
	}
	if src.read.Load() >= size {
		t.Fatal("the connection was killed too late to test anything")
	}
	checkFile(t, path, "old binary", 0o755, 0)

	// Re-run on a new connection: converges, and no temporary file is left.
	c2 := dial(t, d, targetOf("victim", srv, user))
	f.Open = func() (io.ReadCloser, error) { return io.NopCloser(newPattern(size)), nil }
	if changed, err := c2.Upload(context.Background(), f); err != nil || !changed {
		t.Fatalf("re-run: %v %v", changed, err)
	}
	if st, err := os.Stat(path); err != nil || st.Size() != size {
		t.Errorf("after re-run: %v %v", st, err)
	}
	if leftovers, _ := filepath.Glob(filepath.Join(filepath.Dir(path), ".*kforge-upload")); len(leftovers) != 0 {
		t.Errorf("temporary files left: %v", leftovers)
	}
}
