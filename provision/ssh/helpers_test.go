package ssh

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/kforge/kforge/config"
	"github.com/kforge/kforge/provision/remote"
	"github.com/kforge/kforge/provision/ssh/sshdtest"
)

// warnings collects what the Dialer tells the user.
type warnings struct {
	mu   sync.Mutex
	msgs []string
}

func (w *warnings) add(host, msg string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.msgs = append(w.msgs, host+": "+msg)
}

func (w *warnings) all() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return strings.Join(w.msgs, "\n")
}

// testDialer trusts the servers' keys through the user's known_hosts file and keeps kforge's own in a temp dir.
func testDialer(t *testing.T, servers ...*sshdtest.Server) (*Dialer, *warnings) {
	t.Helper()
	dir := t.TempDir()
	var lines []string
	for _, s := range servers {
		for _, k := range s.HostKeys {
			lines = append(lines, s.KnownHostsLine(k))
		}
	}
	userKnown := filepath.Join(dir, "user_known_hosts")
	if err := os.WriteFile(userKnown, []byte(strings.Join(lines, "\n")+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	w := &warnings{}
	return &Dialer{KnownHostsFile: filepath.Join(dir, "state", "known_hosts"), UserKnownHostsFile: userKnown,
		Warn: w.add, ConnectAttempts: 2}, w
}

func targetOf(name string, s *sshdtest.Server, u *sshdtest.User) Target {
	return Target{Name: name, Address: s.Host, Port: s.Port, User: u.Name, PrivateKeyFile: u.KeyFile,
		HostKeyPolicy: config.HostKeyStrict, Sudo: u.Name != "root", ConnectTimeout: 5 * time.Second}
}

func dial(t *testing.T, d *Dialer, target Target) *Client {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c, err := d.Dial(ctx, target)
	if err != nil {
		t.Fatalf("dial %s: %v", target.Addr(), err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func run(t *testing.T, c *Client, script string, sudo bool) string {
	t.Helper()
	res, err := c.Run(context.Background(), remote.Command{Script: script, Sudo: sudo})
	if err != nil {
		t.Fatalf("run %q: %v", script, err)
	}
	return strings.TrimSpace(string(res.Stdout))
}
