package ssh

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/kforge/kforge/config"
	"github.com/kforge/kforge/provision/remote"
	"github.com/kforge/kforge/provision/ssh/sshdtest"
)

func TestRunAsRoot(t *testing.T) {
	root := sshdtest.Root(t)
	srv := sshdtest.Start(t, sshdtest.Options{Users: []*sshdtest.User{root}})
	d, _ := testDialer(t, srv)
	c := dial(t, d, targetOf("node-1", srv, root))

	if got := run(t, c, "id -un", false); got != "root" {
		t.Errorf("id -un = %q", got)
	}
	// The script runs under sh with quotes and newlines intact, and stdin reaches it.
	res, err := c.Run(context.Background(), remote.Command{Script: "read x; printf '%s|%s\\n' \"$x\" 'it'\\''s'", Stdin: strings.NewReader("hello\n")})
	if err != nil || string(res.Stdout) != "hello|it's\n" {
		t.Errorf("stdin/quoting: %q, %v", res.Stdout, err)
	}

	// Stdout given: the output streams there (8 MiB, more than any buffer on the way), not into the result.
	var streamed bytes.Buffer
	res, err = c.Run(context.Background(), remote.Command{Script: "head -c 8388608 /dev/zero | tr '\\0' x", Stdout: &streamed})
	if err != nil || streamed.Len() != 8<<20 || strings.Trim(streamed.String(), "x") != "" || len(res.Stdout) != 0 {
		t.Errorf("streamed stdout: %d bytes, result %d bytes, %v", streamed.Len(), len(res.Stdout), err)
	}

	res, err = c.Run(context.Background(), remote.Command{Name: "fail on purpose", Script: "echo out; echo 'bad thing' >&2; exit 3"})
	var exit *remote.ExitError
	var he *remote.HostError
	if !errors.As(err, &exit) || !errors.As(err, &he) {
		t.Fatalf("error = %v (%T)", err, err)
	}
	if exit.Status != 3 || res.ExitStatus != 3 || string(res.Stdout) != "out\n" || he.Host != "node-1" {
		t.Errorf("exit %+v, res %+v, host %q", exit, res, he.Host)
	}
	if want := "host node-1: fail on purpose: exit status 3: bad thing"; err.Error() != want {
		t.Errorf("message %q, want %q", err.Error(), want)
	}
}

func TestSudo(t *testing.T) {
	withSudo := sshdtest.SystemUser(t, sshdtest.SudoNoPassword)
	withPassword := sshdtest.SystemUser(t, sshdtest.SudoPassword)
	srv := sshdtest.Start(t, sshdtest.Options{Users: []*sshdtest.User{withSudo, withPassword}})
	d, _ := testDialer(t, srv)

	c := dial(t, d, targetOf("sudoer", srv, withSudo))
	if got := run(t, c, "id -un", false); got != withSudo.Name {
		t.Errorf("unprivileged command ran as %q", got)
	}
	if got := run(t, c, "id -u", true); got != "0" {
		t.Errorf("privileged command ran as uid %q", got)
	}
	timesOutAndStops(t, c, true)

	p := dial(t, d, targetOf("asks-password", srv, withPassword))
	_, err := p.Run(context.Background(), remote.Command{Name: "install", Script: "true", Sudo: true})
	var he *remote.HostError
	if !errors.Is(err, remote.ErrSudoPassword) || !errors.As(err, &he) || he.Host != "asks-password" {
		t.Errorf("error = %v", err)
	}
	// Uploads need root too: the same clear error, not an SFTP protocol failure.
	_, err = p.Upload(context.Background(), fileOf("/etc/kforge-never", []byte("x"), 0o644))
	if !errors.Is(err, remote.ErrSudoPassword) {
		t.Errorf("upload error = %v", err)
	}
}

// timesOutAndStops runs a long sleep with a short timeout and checks that the remote process is gone after.
func timesOutAndStops(t *testing.T, c *Client, sudo bool) {
	t.Helper()
	marker := fmt.Sprintf("%d.%d", 3000+os.Getpid()%1000, time.Now().Nanosecond()%100000)
	start := time.Now()
	_, err := c.Run(context.Background(), remote.Command{Name: "wait", Script: "sleep " + marker + "; echo done", Sudo: sudo,
		Timeout: 500 * time.Millisecond})
	if !errors.Is(err, context.DeadlineExceeded) || !strings.Contains(err.Error(), "host "+c.Host()+": wait") {
		t.Fatalf("error = %v", err)
	}
	if took := time.Since(start); took > 10*time.Second {
		t.Errorf("timeout took %s", took)
	}
	// The remote sleep must be gone, not left running on the host.
	deadline := time.Now().Add(5 * time.Second)
	for {
		out, _ := exec.Command("pgrep", "-f", "sleep "+marker).Output()
		if len(strings.TrimSpace(string(out))) == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("remote command still running: pids %s", out)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func TestAgentAndEncryptedKeys(t *testing.T) {
	root := sshdtest.Root(t)
	srv := sshdtest.Start(t, sshdtest.Options{Users: []*sshdtest.User{root}})
	d, _ := testDialer(t, srv)

	// A passphrase-protected copy of the authorised key: unusable alone, usable once the agent holds the key.
	encrypted := t.TempDir() + "/id_encrypted"
	copyFile(t, root.KeyFile, encrypted)
	if out, err := exec.Command("ssh-keygen", "-q", "-p", "-N", "secret", "-f", encrypted).CombinedOutput(); err != nil {
		t.Fatalf("ssh-keygen -p: %v %s", err, out)
	}
	target := targetOf("enc", srv, root)
	target.PrivateKeyFile, target.UseAgent = encrypted, true
	_, err := d.Dial(context.Background(), target)
	if err == nil || !strings.Contains(err.Error(), "protected by a passphrase") || !strings.Contains(err.Error(), "ssh-add "+encrypted) {
		t.Fatalf("dial with a locked key: %v", err)
	}

	d.AgentSocket = sshdtest.StartAgent(t, root.KeyFile)
	c := dial(t, d, target)
	if got := run(t, c, "echo via-agent", false); got != "via-agent" {
		t.Errorf("got %q", got)
	}
	// No key file at all: the agent alone.
	target.PrivateKeyFile = ""
	c = dial(t, d, target)
	if got := run(t, c, "id -un", false); got != "root" {
		t.Errorf("agent only: %q", got)
	}
	// A key the server does not accept: the error says who, where and what was tried.
	stranger := sshdtest.Root(t)
	target.PrivateKeyFile, target.UseAgent = stranger.KeyFile, false
	_, err = d.Dial(context.Background(), target)
	if err == nil || !strings.Contains(err.Error(), "authentication failed") || !strings.Contains(err.Error(), stranger.KeyFile) {
		t.Errorf("wrong key: %v", err)
	}
}

func copyFile(t *testing.T, from, to string) {
	t.Helper()
	b, err := os.ReadFile(from)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(to, b, 0o600); err != nil {
		t.Fatal(err)
	}
}

func TestTimeoutStopsTheRemoteCommand(t *testing.T) {
	// Not root: killing root's shell mid-start can leave this machine's root dotfiles locked (see sshdtest.Root).
	user := sshdtest.SystemUser(t, sshdtest.SudoNone)
	srv := sshdtest.Start(t, sshdtest.Options{Users: []*sshdtest.User{user}})
	d, _ := testDialer(t, srv)
	target := targetOf("slow", srv, user)
	target.Sudo = false
	c := dial(t, d, target)

	timesOutAndStops(t, c, false)

	ctx, cancel := context.WithCancel(context.Background())
	go func() { time.Sleep(200 * time.Millisecond); cancel() }()
	if _, err := c.Run(ctx, remote.Command{Script: "sleep 30"}); !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled: %v", err)
	}
	// The connection is still usable afterwards.
	if got := run(t, c, "echo alive", false); got != "alive" {
		t.Errorf("after cancel: %q", got)
	}
}

// TestManySessionsStayBelowMaxSessions runs more commands at once than the server allows channels.
func TestManySessionsStayBelowMaxSessions(t *testing.T) {
	root := sshdtest.Root(t)
	srv := sshdtest.Start(t, sshdtest.Options{Users: []*sshdtest.User{root}, MaxSessions: 3})
	d, _ := testDialer(t, srv)
	d.MaxSessions = 2
	c := dial(t, d, targetOf("busy", srv, root))
	var wg sync.WaitGroup
	errs := make(chan error, 24)
	for i := 0; i < 24; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			res, err := c.Run(context.Background(), remote.Command{Script: "sleep 0.05; echo " + strconv.Itoa(i)})
			if err == nil && strings.TrimSpace(string(res.Stdout)) != strconv.Itoa(i) {
				err = fmt.Errorf("command %d printed %q", i, res.Stdout)
			}
			if err != nil {
				errs <- err
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if n := c.Sessions(); n != 24 {
		t.Errorf("sessions = %d, want 24 on one connection", n)
	}
}

func TestConnectRetriesUntilTheServerListens(t *testing.T) {
	root := sshdtest.Root(t)
	// Find a free port, then start the server on it only after the first attempt has failed.
	addr := &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: freePort(t)}
	d, _ := testDialer(t)
	d.ConnectAttempts = 6
	d.UserKnownHostsFile = ""
	target := Target{Name: "late", Address: "127.0.0.1", Port: addr.Port, User: "root", PrivateKeyFile: root.KeyFile,
		HostKeyPolicy: config.HostKeyAcceptNew, ConnectTimeout: 2 * time.Second}
	done := make(chan error, 1)
	go func() {
		c, err := d.Dial(context.Background(), target)
		if err == nil {
			c.Close()
		}
		done <- err
	}()
	time.Sleep(400 * time.Millisecond)
	sshdtest.Start(t, sshdtest.Options{Listen: addr.String(), Users: []*sshdtest.User{root}})
	if err := <-done; err != nil {
		t.Fatalf("dial with retries: %v", err)
	}

	// Nothing listening at all: a bounded number of attempts and an error that says so.
	target.Port = freePort(t)
	target.ConnectTimeout = 500 * time.Millisecond
	d.ConnectAttempts = 2
	_, err := d.Dial(context.Background(), target)
	if err == nil || !strings.Contains(err.Error(), "cannot connect after 2 attempts") {
		t.Errorf("error = %v", err)
	}
}

func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// TestKeyTypes logs in with ecdsa and rsa keys as well as ed25519 (the harness's default).
func TestKeyTypes(t *testing.T) {
	root := sshdtest.Root(t)
	srv := sshdtest.Start(t, sshdtest.Options{Users: []*sshdtest.User{root}})
	d, _ := testDialer(t, srv)
	for _, kt := range [][]string{{"ecdsa", "-b", "256"}, {"rsa", "-b", "3072"}} {
		file := filepath.Join(t.TempDir(), "id_"+kt[0])
		args := append([]string{"-q", "-N", "", "-f", file, "-t"}, kt...)
		if out, err := exec.Command("ssh-keygen", args...).CombinedOutput(); err != nil {
			t.Fatalf("ssh-keygen %v: %v %s", kt, err, out)
		}
		pubText, err := os.ReadFile(file + ".pub")
		if err != nil {
			t.Fatal(err)
		}
		pub, _, _, _, err := ssh.ParseAuthorizedKey(pubText)
		if err != nil {
			t.Fatal(err)
		}
		srv.Authorize(t, "root", pub)
		target := targetOf(kt[0], srv, root)
		target.PrivateKeyFile = file
		if got := run(t, dial(t, d, target), "echo "+kt[0], false); got != kt[0] {
			t.Errorf("%s: %q", kt[0], got)
		}
	}
}

// TestKeepaliveClosesAHungConnection: a host that stops answering is noticed within a few keepalive intervals,
// and the command waiting on it fails instead of hanging.
func TestKeepaliveClosesAHungConnection(t *testing.T) {
	user := sshdtest.SystemUser(t, sshdtest.SudoNone)
	srv := sshdtest.Start(t, sshdtest.Options{Users: []*sshdtest.User{user}})
	d, _ := testDialer(t, srv)
	d.Keepalive = 100 * time.Millisecond
	target := targetOf("frozen", srv, user)
	target.Sudo = false
	c := dial(t, d, target)
	run(t, c, "true", false)
	errc := make(chan error, 1)
	go func() {
		_, err := c.Run(context.Background(), remote.Command{Name: "long", Script: "sleep 20"})
		errc <- err
	}()
	time.Sleep(200 * time.Millisecond)
	srv.FreezeConnections(t)
	select {
	case err := <-errc:
		var he *remote.HostError
		if !errors.As(err, &he) || he.Host != "frozen" || !strings.Contains(err.Error(), "connection lost") {
			t.Errorf("error = %v", err)
		}
	case <-time.After(15 * time.Second):
		t.Fatal("a hung host hung the command too")
	}
}
