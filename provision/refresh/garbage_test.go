package refresh

import (
	"context"
	"errors"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/kforge/kforge/config"
	"github.com/kforge/kforge/provision/remote"
	"github.com/kforge/kforge/provision/resource"
	"github.com/kforge/kforge/provision/ssh"
	"github.com/kforge/kforge/provision/ssh/sshdtest"
)

// TestRefreshThroughARealShell runs the real refresh over a real OpenSSH server on this machine: its output ends
// with the end line, so that a host which answers is told from one that printed nothing.
func TestRefreshThroughARealShell(t *testing.T) {
	c := sshHost(t, "loopback-1", "")
	dir := t.TempDir()
	file := filepath.Join(dir, "present")
	if err := os.WriteFile(file, []byte("hello\n"), 0o640); err != nil {
		t.Fatal(err)
	}
	res, err := Host(context.Background(), c, []Want{{resource.File, file}, {resource.File, filepath.Join(dir, "absent")},
		{resource.Directory, dir}, {resource.Sysctl, "kernel.kforge-absent"}})
	if err != nil {
		t.Fatal(err)
	}
	o := res.Observed
	if f := o["file:"+file]; !f.Exists || f.Size != 6 || f.Mode != 0o640 || f.Type != "file" {
		t.Errorf("present: %+v", f)
	}
	if o["file:"+filepath.Join(dir, "absent")].Exists || !o["directory:"+dir].Exists || o["sysctl:kernel.kforge-absent"].Exists {
		t.Errorf("observed %+v", o)
	}
}

// answeringHost is a real OpenSSH server whose every session, whatever kforge asks, reads its input and prints
// the file answer names, exiting 0: the ForceCommand of a host that answers with something else than it was
// asked (a wrapper, a restricted shell, a broken login script).
func answeringHost(t *testing.T, name string) (c *ssh.Client, answer func(string)) {
	t.Helper()
	file := filepath.Join(t.TempDir(), "answer")
	answer = func(s string) {
		if err := os.WriteFile(file, []byte(s), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	answer("")
	return sshHost(t, name, "ForceCommand cat >/dev/null; exec cat -- "+file), answer
}

// sshHost connects as root to a real OpenSSH server on this machine, started with the extra sshd_config lines.
func sshHost(t *testing.T, name, extra string) *ssh.Client {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root: starts sshd")
	}
	u := sshdtest.Root(t)
	srv := sshdtest.Start(t, sshdtest.Options{Users: []*sshdtest.User{u}, Extra: extra})
	d := &ssh.Dialer{KnownHostsFile: filepath.Join(t.TempDir(), "known_hosts"), UserKnownHostsFile: srv.WriteKnownHosts(t), ConnectAttempts: 2}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c, err := d.Dial(ctx, ssh.Target{Name: name, Address: srv.Host, Port: srv.Port, User: u.Name, PrivateKeyFile: u.KeyFile,
		HostKeyPolicy: config.HostKeyStrict, ConnectTimeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// TestGarbageFromTheRefresh: a host that answers the refresh with nothing, random bytes, a cut-short answer, a
// line of megabytes, bytes that are not UTF-8 or lines about paths it was not asked for (and exit status 0) fails
// with one error that names the host and the step, says what is wrong, and stays short. Nothing of it is taken
// for "the resources are absent".
func TestGarbageFromTheRefresh(t *testing.T) {
	c, answer := answeringHost(t, "garbage-1")
	wants := []Want{{resource.File, "/etc/hostname"}, {resource.Unit, "ssh.service"}, {resource.Sysctl, "net.ipv4.ip_forward"},
		{resource.Module, "overlay"}}
	end := endLine + "\n"
	random := make([]byte, 64<<10)
	rng := rand.New(rand.NewPCG(15, 15))
	for i := range random {
		random[i] = byte(rng.Uint32())
	}
	const hostname = "S\t81a4\t644\troot\troot\t9\t/etc/hostname\n"
	for _, tc := range []struct{ name, answer, want string }{
		{"nothing", "", "the output ends early (0 bytes, without the end line)"},
		{"random bytes", string(random), "the output ends early (65536 bytes, without the end line)"},
		{"cut short", hostname + "H\t3f1c", "the output ends early (43 bytes, without the end line)"},
		{"end line not on a line of its own", "U\tssh.service\tenabled\tactive" + end, "the output ends early"},
		{"huge line", strings.Repeat("Z", 8<<20) + "\n" + end, `unexpected refresh output "ZZZZZZZZZZ`},
		{"huge stat line", "S\t81a4\t644\troot\troot\t9\t" + strings.Repeat("/x", 4<<20) + "\n" + end, "stat output for a path not asked for"},
		{"not UTF-8", "\xff\xfe\xfd\n" + end, `unexpected refresh output "\xff\xfe\xfd"`},
		{"a path not asked for", "S\t81a4\t640\troot\tshadow\t900\t/etc/shadow\n" + end, `stat output for a path not asked for: "/etc/shadow"`},
		{"not numbers", "S\tzzzz\t644\troot\troot\t9\t/etc/hostname\n" + end, `unexpected stat output "S\tzzzz\t644`},
		{"a short hash", hostname + "H\tabc  /etc/hostname\n" + end, `unexpected sha256sum output "H\tabc  /etc/hostname"`},
		{"a line too many", hostname + "U\tssh.service\tenabled\tactive\textra\n" + end, `unexpected refresh output "U\tssh.service`},
		{"the end line only", end, ""},
		{"a real answer", hostname + "H\t" + strings.Repeat("ab", 32) + "  /etc/hostname\nU\tssh.service\tenabled\tactive\nC\tnet.ipv4.ip_forward\t1\nM\toverlay\n" + end, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			answer(tc.answer)
			res, err := Host(context.Background(), c, wants)
			if tc.want == "" {
				if err != nil {
					t.Fatalf("a well-formed answer was refused: %v", err)
				}
				if got := res.Observed["file:/etc/hostname"].Exists; got != strings.Contains(tc.answer, hostname) {
					t.Errorf("/etc/hostname exists: %v", got)
				}
				return
			}
			var he *remote.HostError
			if !errors.As(err, &he) || he.Host != "garbage-1" || he.Step != "refresh" {
				t.Fatalf("want an error of host garbage-1, step refresh: %#v", err)
			}
			msg := err.Error()
			if !strings.HasPrefix(msg, "host garbage-1: refresh: ") || !strings.Contains(msg, tc.want) {
				t.Errorf("error %q\nwant it to contain %q", msg, tc.want)
			}
			if len(msg) > 300 {
				t.Errorf("the error is %d bytes long: %.300q…", len(msg), msg)
			}
			if res.Observed != nil {
				t.Errorf("observed %v from garbage", res.Observed)
			}
		})
	}
}

// FuzzParse: whatever a host answers the refresh with is read or refused, never a panic; a refusal is short
// whatever the size of the answer.
func FuzzParse(f *testing.F) {
	wants := []Want{{resource.File, "/etc/hostname"}, {resource.Symlink, "/etc/localtime"}, {resource.Unit, "ssh.service"},
		{resource.Sysctl, "net.ipv4.ip_forward"}, {resource.Module, "overlay"}}
	end := endLine + "\n"
	f.Add([]byte("S\t81a4\t644\troot\troot\t9\t/etc/hostname\nH\t" + strings.Repeat("ab", 32) + "  /etc/hostname\n" +
		"S\ta1ff\t777\troot\troot\t33\t/etc/localtime\nL\t/etc/localtime\t/usr/share/zoneinfo/Etc/UTC\n" +
		"U\tssh.service\tenabled\tactive\nC\tnet.ipv4.ip_forward\t1\nM\toverlay\n" + end))
	f.Add([]byte(end))
	f.Add([]byte(""))
	f.Add([]byte("S\t81a4\t644\troot\n" + end))
	f.Add([]byte("\xff\n" + end))
	f.Fuzz(func(t *testing.T, stdout []byte) {
		res, err := parse(stdout, wants)
		if err != nil {
			if len(err.Error()) > 300 {
				t.Fatalf("a %d-byte error", len(err.Error()))
			}
			return
		}
		if len(res.Observed) != len(wants) || len(res.Digest) != 64 {
			t.Fatalf("a read without every resource: %+v", res)
		}
	})
}
