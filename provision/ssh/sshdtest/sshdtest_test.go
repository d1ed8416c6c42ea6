package sshdtest

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"os/user"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/agent"
	"golang.org/x/crypto/ssh/knownhosts"
)

func clientConfig(t testing.TB, knownHostsFile, name string, auth ...ssh.AuthMethod) *ssh.ClientConfig {
	t.Helper()
	cb, err := knownhosts.New(knownHostsFile)
	if err != nil {
		t.Fatalf("known_hosts: %v", err)
	}
	return &ssh.ClientConfig{User: name, Auth: auth, HostKeyCallback: cb, Timeout: 5 * time.Second}
}

func login(t testing.TB, s *Server, knownHostsFile string, u *User) *ssh.Client {
	t.Helper()
	c, err := ssh.Dial("tcp", s.Addr, clientConfig(t, knownHostsFile, u.Name, ssh.PublicKeys(u.Signer)))
	if err != nil {
		t.Fatalf("ssh %s@%s: %v", u.Name, s.Addr, err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func run(c *ssh.Client, cmd string) (stdout, stderr string, err error) {
	sess, err := c.NewSession()
	if err != nil {
		return "", "", err
	}
	defer sess.Close()
	var o, e bytes.Buffer
	sess.Stdout, sess.Stderr = &o, &e
	err = sess.Run(cmd)
	return strings.TrimSpace(o.String()), strings.TrimSpace(e.String()), err
}

func cmdlines(pids []int) string {
	var parts []string
	for _, pid := range pids {
		b, _ := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/cmdline")
		parts = append(parts, strconv.Itoa(pid)+"="+strings.TrimSpace(strings.ReplaceAll(string(b), "\x00", " ")))
	}
	return strings.Join(parts, ", ")
}

func alive(pid int) bool {
	st, ok := readStat(pid)
	return ok && !st.gone()
}

// assertGone checks processes the test started after its cleanups ran.
func assertGone(t *testing.T, what string, pids ...int) {
	t.Helper()
	if len(pids) == 0 {
		t.Fatalf("%s: no PIDs recorded", what)
	}
	for _, pid := range pids {
		if alive(pid) {
			t.Errorf("%s: pid %d still running", what, pid)
		}
	}
}

func netnsList(t *testing.T) string {
	t.Helper()
	out, err := exec.Command(ipPath, "netns", "list").CombinedOutput()
	if err != nil {
		t.Fatalf("ip netns list: %v: %s", err, out)
	}
	return string(out)
}

func TestLoginAndSudo(t *testing.T) {
	t.Parallel()
	var pids []int
	var names, homes []string
	t.Run("server", func(t *testing.T) {
		root := Root(t)
		nopw := SystemUser(t, SudoNoPassword)
		pw := SystemUser(t, SudoPassword)
		none := SystemUser(t, SudoNone)
		for _, u := range []*User{nopw, pw, none} {
			names = append(names, u.Name)
			homes = append(homes, u.Home)
			if len(u.Name) > 32 || !strings.HasPrefix(u.Name, "kft") {
				t.Errorf("user name %q", u.Name)
			}
			if fi, err := os.Stat(u.KeyFile); err != nil || fi.Mode().Perm() != 0o600 {
				t.Errorf("key file %s: %v %v", u.KeyFile, fi.Mode(), err)
			}
		}
		if nopw.Name == pw.Name {
			t.Fatalf("two users named %s", pw.Name)
		}

		s := Start(t, Options{Users: []*User{root, nopw, pw, none}})
		pids = append(pids, s.PID)
		if s.Addr != net.JoinHostPort("127.0.0.1", strconv.Itoa(s.Port)) {
			t.Errorf("Addr %q, Port %d", s.Addr, s.Port)
		}
		kh := s.WriteKnownHosts(t)
		if fi, err := os.Stat(kh); err != nil || fi.Mode().Perm() != 0o600 {
			t.Errorf("known_hosts %s: %v %v", kh, fi.Mode(), err)
		}
		if line := s.KnownHostsLine(s.HostKeys[0]); !strings.HasPrefix(line, "[127.0.0.1]:"+strconv.Itoa(s.Port)+" ssh-ed25519 AAAA") {
			t.Errorf("known_hosts line %q", line)
		}

		cases := []struct {
			u       *User
			sudoErr string
		}{
			{root, ""},
			{nopw, ""},
			{pw, "a password is required"},
			{none, "a password is required"},
		}
		for _, c := range cases {
			client := login(t, s, kh, c.u)
			who, stderr, err := run(client, "id -un")
			if err != nil || who != c.u.Name {
				t.Errorf("%s: id -un = %q, %v (%s)", c.u.Name, who, err, stderr)
			}
			home, _, err := run(client, "pwd")
			if err != nil || home != c.u.Home {
				t.Errorf("%s: pwd = %q, %v; want %s", c.u.Name, home, err, c.u.Home)
			}
			_, stderr, err = run(client, "sudo -n true")
			switch {
			case c.sudoErr == "" && err != nil:
				t.Errorf("%s (%v): sudo -n true: %v: %s", c.u.Name, c.u.Sudo, err, stderr)
			case c.sudoErr != "" && (err == nil || !strings.Contains(stderr, c.sudoErr)):
				t.Errorf("%s (%v): sudo -n true = %v, %q; want failure with %q", c.u.Name, c.u.Sudo, err, stderr, c.sudoErr)
			}
		}
		// The per-connection processes of the open clients must go too.
		d, err := descendants(s.PID)
		if err != nil {
			t.Fatal(err)
		}
		if len(d) < 4 {
			t.Errorf("%d processes below sshd with 4 clients connected", len(d))
		}
		pids = append(pids, d...)
		if _, err := os.Stat(sudoersFile(nopw.Name)); err != nil {
			t.Errorf("sudoers file: %v", err)
		}
	})
	assertGone(t, "sshd", pids...)
	for i, name := range names {
		if _, err := user.Lookup(name); !errors.As(err, new(user.UnknownUserError)) {
			t.Errorf("user %s still exists: %v", name, err)
		}
		if _, err := os.Stat(homes[i]); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("home %s still exists: %v", homes[i], err)
		}
		if _, err := os.Stat(sudoersFile(name)); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("sudoers file of %s still exists: %v", name, err)
		}
	}
}

func TestKillConnections(t *testing.T) {
	t.Parallel()
	var pids []int
	t.Run("server", func(t *testing.T) {
		// Not root: root's shell startup on a dev box may hold locks (pyenv
		// rehash) that a SIGKILL would leave behind.
		u := SystemUser(t, SudoNone)
		s := Start(t, Options{Users: []*User{u}})
		pids = append(pids, s.PID)
		kh := s.WriteKnownHosts(t)
		client := login(t, s, kh, u)
		sess, err := client.NewSession()
		if err != nil {
			t.Fatal(err)
		}
		if err := sess.Start("sleep 60"); err != nil {
			t.Fatal(err)
		}
		var d []int
		for deadline := time.Now().Add(5 * time.Second); !strings.Contains(cmdlines(d), "=sleep 60"); time.Sleep(10 * time.Millisecond) {
			if time.Now().After(deadline) {
				t.Fatalf("sleep 60 not running below sshd: %s", cmdlines(d))
			}
			if d, err = descendants(s.PID); err != nil {
				t.Fatal(err)
			}
		}
		t.Logf("below sshd: %s", cmdlines(d))
		n, err := s.KillConnections()
		if err != nil || n < 3 {
			t.Fatalf("KillConnections = %d, %v; want >= 3", n, err)
		}
		pids = append(pids, d...)
		for _, pid := range d {
			if alive(pid) {
				t.Errorf("pid %d survived KillConnections", pid)
			}
		}
		waited := make(chan error, 1)
		go func() { waited <- sess.Wait() }()
		select {
		case err := <-waited:
			if err == nil {
				t.Error("sleep 60 session ended without error")
			}
		case <-time.After(5 * time.Second):
			t.Error("sleep 60 session still running after KillConnections")
		}
		if !alive(s.PID) {
			t.Fatal("listener died")
		}
		again := login(t, s, kh, u)
		if out, _, err := run(again, "echo ok"); err != nil || out != "ok" {
			t.Errorf("after KillConnections: %q, %v", out, err)
		}
		// An idle connection: the privileged monitor and the user's child.
		if n, err := s.KillConnections(); err != nil || n != 2 {
			t.Errorf("second KillConnections = %d, %v; want 2", n, err)
		}
		if n, err := s.KillConnections(); err != nil || n != 0 {
			t.Errorf("third KillConnections = %d, %v; want 0", n, err)
		}
	})
	assertGone(t, "sshd", pids...)
}

func hostKeyError(err error) *knownhosts.KeyError {
	var ke *knownhosts.KeyError
	if errors.As(err, &ke) {
		return ke
	}
	return nil
}

func TestRestart(t *testing.T) {
	t.Parallel()
	var pids []int
	t.Run("server", func(t *testing.T) {
		root := Root(t)
		s1 := Start(t, Options{Users: []*User{root}})
		pids = append(pids, s1.PID)
		kh1 := s1.WriteKnownHosts(t)
		old := login(t, s1, kh1, root)

		s2 := s1.Restart(t, Options{})
		pids = append(pids, s2.PID)
		if alive(s1.PID) {
			t.Errorf("old sshd %d still running", s1.PID)
		}
		if s2.Addr != s1.Addr {
			t.Fatalf("restarted on %s, was %s", s2.Addr, s1.Addr)
		}
		if _, _, err := run(old, "true"); err == nil {
			t.Error("connection to the old server survived Restart")
		}
		_, err := ssh.Dial("tcp", s2.Addr, clientConfig(t, kh1, "root", ssh.PublicKeys(root.Signer)))
		if ke := hostKeyError(err); ke == nil || len(ke.Want) == 0 {
			t.Fatalf("dial with the old known_hosts: %v; want a key mismatch", err)
		}
		// Users carry over when Options.Users is nil.
		c2 := login(t, s2, s2.WriteKnownHosts(t), root)
		if _, _, err := run(c2, "true"); err != nil {
			t.Error(err)
		}

		s3 := s2.Restart(t, Options{HostKeys: s1.HostKeys, Users: []*User{root}})
		pids = append(pids, s3.PID)
		c3 := login(t, s3, kh1, root)
		if _, _, err := run(c3, "true"); err != nil {
			t.Error(err)
		}
	})
	assertGone(t, "sshd", pids...)
}

func TestMaxSessionsAndExtra(t *testing.T) {
	t.Parallel()
	root := Root(t)
	for _, opts := range []Options{
		{MaxSessions: 1},
		{MaxSessions: 5, Extra: "MaxSessions 1\nMatch User nobody\n  PermitTTY no"},
	} {
		opts.Users = []*User{root}
		s := Start(t, opts)
		c := login(t, s, s.WriteKnownHosts(t), root)
		first, err := c.NewSession()
		if err != nil {
			t.Fatal(err)
		}
		if second, err := c.NewSession(); err == nil {
			second.Close()
			t.Errorf("%+v: second session opened", opts)
		}
		first.Close()
	}
}

func TestEncryptedKey(t *testing.T) {
	t.Parallel()
	file, pub := EncryptedKey(t, "correct horse")
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	var missing *ssh.PassphraseMissingError
	if _, err := ssh.ParsePrivateKey(b); !errors.As(err, &missing) {
		t.Fatalf("ParsePrivateKey: %v; want PassphraseMissingError", err)
	}
	signer, err := ssh.ParsePrivateKeyWithPassphrase(b, []byte("correct horse"))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(signer.PublicKey().Marshal(), pub.Marshal()) {
		t.Fatal("public key does not match the private key")
	}

	s := Start(t, Options{})
	kh := s.WriteKnownHosts(t)
	if _, err := ssh.Dial("tcp", s.Addr, clientConfig(t, kh, "root", ssh.PublicKeys(signer))); err == nil {
		t.Fatal("login with a key that is not authorized")
	}
	s.Authorize(t, "root", pub)
	c, err := ssh.Dial("tcp", s.Addr, clientConfig(t, kh, "root", ssh.PublicKeys(signer)))
	if err != nil {
		t.Fatalf("login after Authorize: %v", err)
	}
	c.Close()
}

func peerPID(t *testing.T, c net.Conn) int {
	t.Helper()
	raw, err := c.(*net.UnixConn).SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	var cred *syscall.Ucred
	var cerr error
	if err := raw.Control(func(fd uintptr) {
		cred, cerr = syscall.GetsockoptUcred(int(fd), syscall.SOL_SOCKET, syscall.SO_PEERCRED)
	}); err != nil {
		t.Fatal(err)
	}
	if cerr != nil {
		t.Fatal(cerr)
	}
	return int(cred.Pid)
}

func TestAgent(t *testing.T) {
	t.Parallel()
	var pid int
	var sock string
	t.Run("agent", func(t *testing.T) {
		root := Root(t)
		sock = StartAgent(t, root.KeyFile)
		conn, err := net.Dial("unix", sock)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		pid = peerPID(t, conn)
		ag := agent.NewClient(conn)
		keys, err := ag.List()
		if err != nil {
			t.Fatal(err)
		}
		want := root.Signer.PublicKey().Marshal()
		if len(keys) != 1 || !bytes.Equal(keys[0].Marshal(), want) {
			t.Fatalf("agent lists %v", keys)
		}
		s := Start(t, Options{Users: []*User{root}})
		c, err := ssh.Dial("tcp", s.Addr, clientConfig(t, s.WriteKnownHosts(t), "root", ssh.PublicKeysCallback(ag.Signers)))
		if err != nil {
			t.Fatalf("login through the agent: %v", err)
		}
		c.Close()
	})
	assertGone(t, "ssh-agent", pid)
	if _, err := os.Stat(sock); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("agent socket still exists: %v", err)
	}
}

func TestBastionTopology(t *testing.T) {
	t.Parallel()
	var pids []int
	var nss []string
	var sl slot
	t.Run("topology", func(t *testing.T) {
		root := Root(t)
		u := SystemUser(t, SudoNone)
		bastion, target := BastionTopology(t, root, u)
		pids = append(pids, bastion.PID, target.PID)
		nss = append(nss, bastion.NetNS, target.NetNS)
		n, err := strconv.Atoi(strings.Split(bastion.NetNS, "-")[1])
		if err != nil {
			t.Fatal(err)
		}
		sl = newSlot(n)
		if bastion.Port != 22 || target.Port != 22 {
			t.Errorf("ports %d, %d", bastion.Port, target.Port)
		}
		for _, s := range []*Server{bastion, target} {
			if !testNet().Contains(netipAddr(t, s.Host)) {
				t.Errorf("%s is outside %s", s.Host, testNet())
			}
		}
		list := netnsList(t)
		for _, ns := range nss {
			if !strings.Contains(list, ns) {
				t.Errorf("ip netns list lacks %s:\n%s", ns, list)
			}
		}

		began := time.Now()
		if c, err := net.DialTimeout("tcp", target.Addr, 2*time.Second); err == nil {
			c.Close()
			t.Fatalf("target %s reachable from the test's namespace", target.Addr)
		} else if time.Since(began) > 2500*time.Millisecond {
			t.Errorf("dial to target took %v", time.Since(began))
		} else {
			t.Logf("dial to target: %v after %v", err, time.Since(began))
		}
		c, err := net.DialTimeout("tcp", bastion.Addr, 2*time.Second)
		if err != nil {
			t.Fatalf("bastion unreachable: %v", err)
		}
		c.Close()

		for _, who := range []*User{root, u} {
			bc := login(t, bastion, bastion.WriteKnownHosts(t), who)
			tunnel, err := bc.Dial("tcp", target.Addr)
			if err != nil {
				t.Fatalf("%s: dial target through bastion: %v", who.Name, err)
			}
			cfg := clientConfig(t, target.WriteKnownHosts(t), who.Name, ssh.PublicKeys(who.Signer))
			conn, chans, reqs, err := ssh.NewClientConn(tunnel, target.Addr, cfg)
			if err != nil {
				t.Fatalf("%s: ssh handshake with target: %v", who.Name, err)
			}
			tc := ssh.NewClient(conn, chans, reqs)
			out, _, err := run(tc, "id -un; ip -4 -o addr show dev up0")
			if err != nil || !strings.HasPrefix(out, who.Name+"\n") || !strings.Contains(out, target.Host+"/30") {
				t.Errorf("%s: on target: %q, %v", who.Name, out, err)
			}
			tc.Close()
		}
	})
	assertGone(t, "sshd", pids...)
	list := netnsList(t)
	for _, ns := range nss {
		if strings.Contains(list, ns) {
			t.Errorf("netns %s survived:\n%s", ns, list)
		}
	}
	if err := exec.Command(ipPath, "link", "show", sl.rootLink).Run(); err == nil {
		t.Errorf("link %s survived", sl.rootLink)
	}
	out, err := exec.Command(ipPath, "-4", "route", "show", "table", "all").CombinedOutput()
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(out), sl.targetNet.String()) || strings.Contains(string(out), sl.rootIP.String()) {
		t.Errorf("routes of %v survived:\n%s", sl.prefix(), out)
	}
}

func netipAddr(t *testing.T, s string) netip.Addr {
	t.Helper()
	a, err := netip.ParseAddr(s)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

func TestSlots(t *testing.T) {
	first, last := newSlot(0), newSlot(slotCount-1)
	if first.rootIP.String() != "198.18.0.1" || first.target.String() != "198.18.0.6" {
		t.Errorf("slot 0: %v %v", first.rootIP, first.target)
	}
	if last.target.String() != "198.19.255.246" || !testNet().Contains(last.target) {
		t.Errorf("last slot: %v", last.target)
	}
	if len(last.rootLink) > 15 {
		t.Errorf("link name %q too long", last.rootLink)
	}
	if !overlaps([]netip.Prefix{netip.MustParsePrefix("198.18.0.4/30")}, first.prefix()) {
		t.Error("overlap not detected")
	}
}

// fatalTB records Fatalf instead of failing the real test, so that the
// failure paths of Start can be checked; cleanups still go to the real t.
type fatalTB struct {
	testing.TB
	msg string
}

func (f *fatalTB) Fatalf(format string, args ...any) {
	f.msg = fmt.Sprintf(format, args...)
	runtime.Goexit()
}

func startFails(t *testing.T, opts Options) string {
	t.Helper()
	f := &fatalTB{TB: t}
	done := make(chan struct{})
	go func() {
		defer close(done)
		Start(f, opts)
	}()
	<-done
	if f.msg == "" {
		t.Fatalf("Start(%+v) succeeded", opts)
	}
	t.Logf("Start failed as expected: %s", f.msg)
	return f.msg
}

func TestStartFailures(t *testing.T) {
	t.Parallel()
	msg := startFails(t, Options{Extra: "NoSuchKeyword yes"})
	if !strings.Contains(msg, "NoSuchKeyword") || !strings.Contains(msg, "exited during startup") {
		t.Errorf("bad config: %s", msg)
	}

	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	msg = startFails(t, Options{Listen: l.Addr().String()})
	if !strings.Contains(msg, "Address already in use") {
		t.Errorf("port in use: %s", msg)
	}
}
