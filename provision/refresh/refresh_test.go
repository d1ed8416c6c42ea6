package refresh

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"os"
	"testing"

	"github.com/kforge/kforge/providers/lab/labtest"
	"github.com/kforge/kforge/provision/remote"
	"github.com/kforge/kforge/provision/resource"
	"github.com/kforge/kforge/provision/ssh"
)

var fixture = labtest.New("trefresh", 1)

func TestMain(m *testing.M) { os.Exit(fixture.Main(m)) }

func labClient(t *testing.T) *ssh.Client {
	t.Helper()
	l := fixture.Get(t)
	h := l.Hosts[0]
	c, err := (&ssh.Dialer{}).Dial(context.Background(), ssh.TargetFor(l.ConfigHost(h)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// TestRefreshReadsEverythingInOneCommand runs against a real lab host (systemd, sshd): files, a directory, a
// symlink, units, a sysctl, a module and users, present and absent, in one SSH session.
func TestRefreshReadsEverythingInOneCommand(t *testing.T) {
	c := labClient(t)
	ctx := context.Background()
	if _, err := c.Run(ctx, remote.Command{Script: `set -e
rm -rf /tmp/kforge-refresh; mkdir -p /tmp/kforge-refresh/dir
printf 'hello\n' > /tmp/kforge-refresh/file; chmod 0640 /tmp/kforge-refresh/file
ln -s file /tmp/kforge-refresh/link`}); err != nil {
		t.Fatal(err)
	}
	wants := []Want{
		{resource.File, "/tmp/kforge-refresh/file"},
		{resource.File, "/tmp/kforge-refresh/missing"},
		{resource.Directory, "/tmp/kforge-refresh/dir"},
		{resource.Symlink, "/tmp/kforge-refresh/link"},
		{resource.Unit, "ssh.service"},
		{resource.Unit, "kforge-nonexistent.service"},
		{resource.Sysctl, "net.ipv4.ip_forward"},
		{resource.Sysctl, "net.kforge.nonexistent"},
		{resource.Module, "kforge_nonexistent"},
		{resource.User, "root"},
		{resource.User, "kforge-nonexistent"},
	}
	before := c.Sessions()
	res, err := Host(ctx, c, wants)
	if err != nil {
		t.Fatal(err)
	}
	if n := c.Sessions() - before; n != 1 {
		t.Errorf("refresh took %d SSH commands, want 1", n)
	}
	sum := sha256.Sum256([]byte("hello\n"))
	o := res.Observed
	if f := o["file:/tmp/kforge-refresh/file"]; !f.Exists || f.Type != "file" || f.SHA256 != hex.EncodeToString(sum[:]) || f.Mode != 0o640 || f.Owner != "root" || f.Size != 6 {
		t.Errorf("file: %+v", f)
	}
	if f := o["file:/tmp/kforge-refresh/missing"]; f.Exists {
		t.Errorf("missing: %+v", f)
	}
	if d := o["directory:/tmp/kforge-refresh/dir"]; !d.Exists || d.Type != "directory" {
		t.Errorf("dir: %+v", d)
	}
	if l := o["symlink:/tmp/kforge-refresh/link"]; l.Type != "symlink" || l.Target != "file" {
		t.Errorf("link: %+v", l)
	}
	if u := o["unit:ssh.service"]; !u.Exists || !u.Enabled || !u.Active {
		t.Errorf("ssh.service: %+v", u)
	}
	if u := o["unit:kforge-nonexistent.service"]; u.Exists || u.Enabled || u.Active {
		t.Errorf("missing unit: %+v", u)
	}
	if s := o["sysctl:net.ipv4.ip_forward"]; !s.Exists || (s.Value != "0" && s.Value != "1") {
		t.Errorf("sysctl: %+v", s)
	}
	if s := o["sysctl:net.kforge.nonexistent"]; s.Exists {
		t.Errorf("missing sysctl: %+v", s)
	}
	if m := o["module:kforge_nonexistent"]; m.Exists {
		t.Errorf("module: %+v", m)
	}
	if u := o["user:root"]; !u.Exists || u.Value != "/root" {
		t.Errorf("user root: %+v", u)
	}
	if u := o["user:kforge-nonexistent"]; u.Exists {
		t.Errorf("missing user: %+v", u)
	}

	// The digest changes with the host, not with nothing.
	again, _ := Host(ctx, c, wants)
	if again.Digest != res.Digest {
		t.Error("digest changed without a change on the host")
	}
	c.Run(ctx, remote.Command{Script: "printf 'edited\\n' > /tmp/kforge-refresh/file"})
	edited, _ := Host(ctx, c, wants)
	if edited.Digest == res.Digest {
		t.Error("digest did not change after an edit")
	}

	contents, err := Contents(ctx, c, []string{"/tmp/kforge-refresh/file", "/tmp/kforge-refresh/missing"}, 1024)
	if err != nil || string(contents["/tmp/kforge-refresh/file"]) != "edited\n" || len(contents) != 1 {
		t.Errorf("contents: %q %v", contents, err)
	}
}
