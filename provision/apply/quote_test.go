package apply

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/kforge/kforge/config"
	"github.com/kforge/kforge/provision/plan"
	"github.com/kforge/kforge/provision/remote"
	"github.com/kforge/kforge/provision/resource"
	"github.com/kforge/kforge/provision/ssh"
	"github.com/kforge/kforge/provision/ssh/sshdtest"
)

// hostileNames are names (paths, units, targets, values) that try to run CANARY: the state may hold any name
// (it is a file on the operator's machine), and a symlink's target or a sysctl's value may hold anything.
var hostileNames = []string{
	"$(touch CANARY)",
	"`touch CANARY`",
	"x'; touch CANARY; echo '",
	`x"; touch CANARY; echo "`,
	`x'\''; touch CANARY; '\''`,
	"x; touch CANARY",
	"x && touch CANARY #",
	"x\ntouch CANARY",
	"${IFS}touch${IFS}CANARY",
	"-rf $(touch CANARY)",
	"* ? [a] {a,b} ~root !!",
}

// TestQuotedNamesNeverRun: every command apply runs on a host, given names made to break out of their quotes,
// goes through a real OpenSSH server as a user with sudo (so the script is quoted twice: sh -c under sudo -n
// under the login shell), acts on exactly the name given and never runs the canary.
func TestQuotedNamesNeverRun(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root: starts sshd and creates a user with sudo rights")
	}
	u := sshdtest.SystemUser(t, sshdtest.SudoNoPassword)
	srv := sshdtest.Start(t, sshdtest.Options{Users: []*sshdtest.User{u}})
	d := &ssh.Dialer{KnownHostsFile: filepath.Join(t.TempDir(), "known_hosts"), UserKnownHostsFile: srv.WriteKnownHosts(t), ConnectAttempts: 2}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	c, err := d.Dial(ctx, ssh.Target{Name: "quoted-1", Address: srv.Host, Port: srv.Port, User: u.Name, PrivateKeyFile: u.KeyFile,
		HostKeyPolicy: config.HostKeyStrict, Sudo: true, ConnectTimeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()

	dir := t.TempDir() // the sshd runs here, so the host's paths are this machine's
	canary := filepath.Join(dir, "CANARY")
	for i, raw := range hostileNames {
		name := strings.ReplaceAll(raw, "CANARY", canary)
		t.Run(fmt.Sprint(i), func(t *testing.T) {
			base := filepath.Join(dir, fmt.Sprint(i))
			p := filepath.Join(base, name) // a path whose last components are the hostile name
			run := func(what string, ch plan.Change, res resource.Resource) error {
				t.Helper()
				err := execute(ctx, c, ch, res)
				if _, serr := os.Stat(canary); serr == nil {
					t.Fatalf("%s of %q ran the canary", what, name)
				}
				return err
			}

			// A directory, made where the name says.
			if err := run("create directory", plan.Change{Action: plan.Create, Kind: string(resource.Directory), Name: p},
				resource.Resource{Kind: resource.Directory, Name: p, Mode: 0o750}); err != nil {
				t.Fatalf("create directory %q: %v", p, err)
			}
			if st, err := os.Stat(p); err != nil || !st.IsDir() || st.Mode().Perm() != 0o750 {
				t.Fatalf("directory %q: %v %v", p, st, err)
			}

			// A file in it: read back, replaced by an upload, deleted.
			f := filepath.Join(p, "file.conf")
			if err := os.WriteFile(f, []byte(name), 0o600); err != nil {
				t.Fatal(err)
			}
			if !strings.ContainsAny(f, "\n\t\\") { // paths the stat script cannot carry are refused before any command
				got, err := c.ReadFile(ctx, f)
				if err != nil || string(got) != name {
					t.Errorf("read %q: %q %v", f, got, err)
				}
				content := "uploaded " + name
				sum := sha256.Sum256([]byte(content))
				if _, err := c.Upload(ctx, remote.File{Path: f, Mode: 0o640, SHA256: hex.EncodeToString(sum[:]), Size: int64(len(content)),
					Open: func() (io.ReadCloser, error) { return io.NopCloser(strings.NewReader(content)), nil }}); err != nil {
					t.Errorf("upload %q: %v", f, err)
				}
				if got, _ := os.ReadFile(f); string(got) != content {
					t.Errorf("upload %q: the file holds %q", f, got)
				}
			}
			if err := run("delete file", plan.Change{Action: plan.Delete, Kind: string(resource.File), Name: f}, resource.Resource{}); err != nil {
				t.Errorf("delete %q: %v", f, err)
			}
			if _, err := os.Lstat(f); !os.IsNotExist(err) {
				t.Errorf("%q is still there: %v", f, err)
			}

			// A symlink whose target is the name, and one whose path is.
			link := filepath.Join(base, "link")
			if err := run("link", plan.Change{Action: plan.Create, Kind: string(resource.Symlink), Name: link},
				resource.Resource{Kind: resource.Symlink, Name: link, Target: name}); err != nil {
				t.Errorf("link to %q: %v", name, err)
			}
			if got, err := os.Readlink(link); err != nil || got != name {
				t.Errorf("link %s -> %q, want %q (%v)", link, got, name, err)
			}
			link = filepath.Join(p, "link")
			if err := run("link", plan.Change{Action: plan.Create, Kind: string(resource.Symlink), Name: link},
				resource.Resource{Kind: resource.Symlink, Name: link, Target: "/etc/hostname"}); err != nil {
				t.Errorf("link %q: %v", link, err)
			}
			if got, err := os.Readlink(link); err != nil || got != "/etc/hostname" {
				t.Errorf("link %q -> %q (%v)", link, got, err)
			}

			// Units, modules, links and sysctls of that name do not exist: the commands fail, quoted.
			_ = run("restart unit", plan.Change{Action: plan.Restart, Kind: string(resource.Unit), Name: name}, resource.Resource{})
			_ = run("stop unit", plan.Change{Action: plan.Delete, Kind: string(resource.Unit), Name: name}, resource.Resource{})
			_ = run("load module", plan.Change{Action: plan.Create, Kind: string(resource.Module), Name: name},
				resource.Resource{Kind: resource.Module, Name: name})
			_ = run("delete link", plan.Change{Action: plan.Delete, Kind: string(LinkKind), Name: name}, resource.Resource{})
			_ = run("set sysctl", plan.Change{Action: plan.Create, Kind: string(resource.Sysctl), Name: "kernel.kforge-" + name},
				resource.Resource{Kind: resource.Sysctl, Name: "kernel.kforge-" + name, Value: name})
			if _, err := remote.Journal(ctx, c, name, 5); err != nil && !strings.Contains(err.Error(), "exit status") {
				t.Errorf("journal of %q: %v", name, err)
			}
			if _, err := os.Stat(canary); err == nil {
				t.Fatalf("a command about %q ran the canary", name)
			}

			// The data directory goes whole, under its exact name.
			if err := run("purge", plan.Change{Action: plan.Delete, Kind: string(DataKind), Name: p}, resource.Resource{}); err != nil {
				t.Errorf("purge %q: %v", p, err)
			}
			if _, err := os.Lstat(p); !os.IsNotExist(err) {
				t.Errorf("%q survived the purge: %v", p, err)
			}
			if _, err := os.Stat(base); err != nil {
				t.Errorf("the purge of %q took %s with it: %v", p, base, err)
			}
		})
	}
}
