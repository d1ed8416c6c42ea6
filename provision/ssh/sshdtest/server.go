// Package sshdtest runs real OpenSSH servers, users, agents and network namespaces for
// tests of kforge's SSH client; everything it creates is removed by t.Cleanup.
package sshdtest

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/knownhosts"
)

const (
	sshdPath       = "/usr/sbin/sshd"
	sftpServerPath = "/usr/lib/openssh/sftp-server"
	privsepDir     = "/run/sshd"

	startAttempts = 5
	readyTimeout  = 10 * time.Second
	termGrace     = 3 * time.Second
)

// Options configures a server started by Start.
type Options struct {
	// Listen is host:port; port 0 picks a free port. Default "127.0.0.1:0".
	Listen string
	// NetNS, if set, runs sshd inside this network namespace.
	NetNS string
	// MaxSessions is sshd's MaxSessions; 0 keeps sshd's default (10).
	MaxSessions int
	// HostKeys are reused (copied into the server's directory) so that a
	// new server presents itself as the same host; nil generates a fresh
	// ed25519 and ecdsa-p256 pair.
	HostKeys []*HostKey
	// Users may log in with their keys.
	Users []*User
	// Extra holds additional sshd_config lines. sshd keeps the first value
	// it sees for most keywords, so Extra's global lines are written before
	// the defaults (and win); anything from the first Match line on is
	// written at the end, where Match blocks must be.
	Extra string
}

// HostKey is one of a server's host keys.
type HostKey struct {
	Type        string // "ed25519" or "ecdsa"
	PrivateFile string
	Public      ssh.PublicKey
}

// Server is a running sshd.
type Server struct {
	Host     string
	Port     int
	Addr     string // net.JoinHostPort(Host, Port)
	NetNS    string // the network namespace sshd runs in, "" for the test's own
	HostKeys []*HostKey
	PID      int
	Dir      string // config, host keys, authorized keys and log
	LogFile  string

	opts     Options
	cmd      *exec.Cmd
	done     chan struct{} // closed once sshd has been reaped
	stopOnce sync.Once

	mu         sync.Mutex
	authorized map[string][]ssh.PublicKey
}

// Start launches `sshd -D -e -f <generated config>` and waits until it
// accepts TCP connections; t.Cleanup stops it and kills its connections.
func Start(t testing.TB, opts Options) *Server {
	t.Helper()
	began := time.Now()
	s, err := start(t, opts, nil)
	if err != nil {
		t.Fatalf("sshdtest: %v", err)
	}
	t.Logf("sshdtest: sshd pid %d listening on %s%s after %v", s.PID, s.Addr, nsSuffix(s.NetNS), time.Since(began).Round(time.Millisecond))
	return s
}

// Restart stops the server, killing its connections as a reboot would, and
// starts a new one on the same address and namespace with opts. Nil
// opts.Users keeps every authorized key of the old server; nil
// opts.HostKeys means new host keys, i.e. a changed host.
func (s *Server) Restart(t testing.TB, opts Options) *Server {
	t.Helper()
	s.stop()
	opts.Listen = s.Addr
	if opts.NetNS == "" {
		opts.NetNS = s.NetNS
	}
	var carry map[string][]ssh.PublicKey
	if opts.Users == nil {
		carry = s.authorizedKeys()
	}
	began := time.Now()
	ns, err := start(t, opts, carry)
	if err != nil {
		t.Fatalf("sshdtest: restart: %v", err)
	}
	t.Logf("sshdtest: sshd restarted as pid %d on %s%s after %v", ns.PID, ns.Addr, nsSuffix(ns.NetNS), time.Since(began).Round(time.Millisecond))
	return ns
}

func nsSuffix(ns string) string {
	if ns == "" {
		return ""
	}
	return " in netns " + ns
}

func start(t testing.TB, opts Options, carry map[string][]ssh.PublicKey) (*Server, error) {
	if opts.Listen == "" {
		opts.Listen = "127.0.0.1:0"
	}
	host, portStr, err := net.SplitHostPort(opts.Listen)
	if err != nil {
		return nil, fmt.Errorf("listen address %q: %w", opts.Listen, err)
	}
	port, err := strconv.Atoi(portStr)
	if err != nil {
		return nil, fmt.Errorf("listen port %q: %w", portStr, err)
	}
	if err := os.MkdirAll(privsepDir, 0o755); err != nil {
		return nil, fmt.Errorf("privilege separation directory: %w", err)
	}

	// Not t.TempDir: sshd opens authorized_keys as the logging-in user, so
	// every directory on the way must be traversable by that user.
	dir, err := os.MkdirTemp("", "sshdtest-")
	if err != nil {
		return nil, fmt.Errorf("server directory: %w", err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	if err := os.Chmod(dir, 0o755); err != nil {
		return nil, fmt.Errorf("server directory: %w", err)
	}

	s := &Server{
		Host:       host,
		NetNS:      opts.NetNS,
		Dir:        dir,
		LogFile:    filepath.Join(dir, "sshd.log"),
		opts:       opts,
		authorized: map[string][]ssh.PublicKey{},
	}
	if opts.HostKeys == nil {
		s.HostKeys, err = generateHostKeys(dir)
	} else {
		s.HostKeys, err = copyHostKeys(dir, opts.HostKeys)
	}
	if err != nil {
		return nil, err
	}

	if err := os.Mkdir(s.authorizedDir(), 0o755); err != nil {
		return nil, fmt.Errorf("authorized keys directory: %w", err)
	}
	for name, keys := range carry {
		if err := s.authorize(name, keys...); err != nil {
			return nil, err
		}
	}
	for _, u := range opts.Users {
		if err := s.authorize(u.Name, u.Signer.PublicKey()); err != nil {
			return nil, err
		}
	}

	// Registered before sshd exists so that a failing start still cleans up.
	t.Cleanup(func() {
		s.stop()
		if t.Failed() && s.cmd != nil {
			t.Logf("sshdtest: sshd %s log tail:\n%s", s.Addr, logTail(s.LogFile, 0, 40))
		}
	})

	var lastErr error
	for attempt := 1; attempt <= startAttempts; attempt++ {
		p := port
		if p == 0 {
			if p, err = freePort(opts.NetNS, host); err != nil {
				return nil, err
			}
		}
		inUse, err := s.launch(p)
		if err == nil {
			return s, nil
		}
		lastErr = err
		if !inUse {
			break
		}
		if port != 0 {
			// A fixed port may still be held by something shutting down.
			time.Sleep(200 * time.Millisecond)
		}
	}
	return nil, lastErr
}

// launch starts sshd on port and waits for it; inUse reports that it failed
// only because the port was taken.
func (s *Server) launch(port int) (inUse bool, err error) {
	s.Port = port
	s.Addr = net.JoinHostPort(s.Host, strconv.Itoa(port))
	config := filepath.Join(s.Dir, "sshd_config")
	if err := os.WriteFile(config, []byte(s.config()), 0o600); err != nil {
		return false, fmt.Errorf("write sshd_config: %w", err)
	}

	logf, err := os.OpenFile(s.LogFile, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600)
	if err != nil {
		return false, fmt.Errorf("open sshd log: %w", err)
	}
	defer logf.Close()
	offset, err := logf.Seek(0, 2)
	if err != nil {
		return false, fmt.Errorf("open sshd log: %w", err)
	}

	args := []string{sshdPath, "-D", "-e", "-f", config, "-E", s.LogFile}
	if s.NetNS != "" {
		// ip execs sshd in place, so the PID we get is sshd's.
		args = append([]string{"/usr/sbin/ip", "netns", "exec", s.NetNS}, args...)
	}
	cmd := exec.Command(args[0], args[1:]...)
	// Messages from before sshd opens its -E file (and from ip) land there too.
	cmd.Stdout = logf
	cmd.Stderr = logf
	cmd.Env = []string{"PATH=/usr/sbin:/usr/bin:/sbin:/bin"}
	if err := cmd.Start(); err != nil {
		return false, fmt.Errorf("start sshd: %w", err)
	}
	done := make(chan struct{})
	go func() {
		_ = cmd.Wait()
		close(done)
	}()
	s.cmd, s.done, s.PID = cmd, done, cmd.Process.Pid

	deadline := time.Now().Add(readyTimeout)
	for {
		select {
		case <-done:
			tail := logTail(s.LogFile, offset, 30)
			inUse := strings.Contains(tail, "Address already in use")
			return inUse, fmt.Errorf("sshd on %s exited during startup (%v); log %s:\n%s", s.Addr, cmd.ProcessState, s.LogFile, tail)
		default:
		}
		// Owning the listening socket rules out answering for someone
		// else who grabbed the port; the dial proves it accepts.
		if listening(s.PID, port) && probe(s.NetNS, s.Addr) == nil {
			return false, nil
		}
		if time.Now().After(deadline) {
			s.stop()
			return false, fmt.Errorf("sshd on %s did not accept connections within %v; log %s:\n%s", s.Addr, readyTimeout, s.LogFile, logTail(s.LogFile, offset, 30))
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func probe(netns, addr string) error {
	return inNetNS(netns, func() error {
		c, err := net.DialTimeout("tcp", addr, 200*time.Millisecond)
		if err != nil {
			return err
		}
		return c.Close()
	})
}

func freePort(netns, host string) (int, error) {
	var port int
	err := inNetNS(netns, func() error {
		l, err := net.Listen("tcp", net.JoinHostPort(host, "0"))
		if err != nil {
			return err
		}
		port = l.Addr().(*net.TCPAddr).Port
		return l.Close()
	})
	if err != nil {
		return 0, fmt.Errorf("pick a free port on %s: %w", host, err)
	}
	return port, nil
}

func (s *Server) config() string {
	global, match := splitExtra(s.opts.Extra)
	var b strings.Builder
	line := func(format string, args ...any) { fmt.Fprintf(&b, format+"\n", args...) }
	if global != "" {
		line("%s", global)
	}
	line("Port %d", s.Port)
	line("ListenAddress %s", s.Host)
	for _, k := range s.HostKeys {
		line("HostKey %s", k.PrivateFile)
	}
	line("PidFile none")
	line("AuthorizedKeysFile %s/%%u", s.authorizedDir())
	line("StrictModes no")
	line("UsePAM no")
	line("PubkeyAuthentication yes")
	line("PasswordAuthentication no")
	line("KbdInteractiveAuthentication no")
	line("PermitRootLogin prohibit-password")
	line("PrintMotd no")
	line("PrintLastLog no")
	if !hasSubsystem(global, "sftp") {
		line("Subsystem sftp %s", sftpServerPath)
	}
	if s.opts.MaxSessions > 0 {
		line("MaxSessions %d", s.opts.MaxSessions)
	}
	line("MaxStartups 100:30:200")
	line("LogLevel VERBOSE")
	if match != "" {
		line("%s", match)
	}
	return b.String()
}

// splitExtra separates global lines from the Match section, which has to
// come last because a Match block extends to the end of the file.
func splitExtra(extra string) (global, match string) {
	lines := strings.Split(strings.TrimSpace(extra), "\n")
	for i, l := range lines {
		if f := strings.Fields(l); len(f) > 0 && strings.EqualFold(f[0], "Match") {
			return strings.Join(lines[:i], "\n"), strings.Join(lines[i:], "\n")
		}
	}
	return strings.TrimSpace(extra), ""
}

// hasSubsystem reports whether config defines the named subsystem; sshd
// refuses a second definition.
func hasSubsystem(config, name string) bool {
	for _, l := range strings.Split(config, "\n") {
		f := strings.Fields(l)
		if len(f) >= 2 && strings.EqualFold(f[0], "Subsystem") && f[1] == name {
			return true
		}
	}
	return false
}

func (s *Server) authorizedDir() string { return filepath.Join(s.Dir, "authorized_keys") }

// Authorize lets user log in to this server with keys, in addition to the
// keys already authorized. sshd rereads the file on every attempt.
func (s *Server) Authorize(t testing.TB, user string, keys ...ssh.PublicKey) {
	t.Helper()
	if err := s.authorize(user, keys...); err != nil {
		t.Fatalf("sshdtest: %v", err)
	}
}

func (s *Server) authorize(user string, keys ...ssh.PublicKey) error {
	if user == "" || strings.ContainsAny(user, "/\x00") {
		return fmt.Errorf("authorize: bad user name %q", user)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	var b bytes.Buffer
	for _, k := range keys {
		b.Write(ssh.MarshalAuthorizedKey(k))
	}
	// World-readable because sshd reads it with the user's privileges.
	f, err := os.OpenFile(filepath.Join(s.authorizedDir(), user), os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o644)
	if err != nil {
		return fmt.Errorf("authorize %s: %w", user, err)
	}
	if _, err := f.Write(b.Bytes()); err != nil {
		f.Close()
		return fmt.Errorf("authorize %s: %w", user, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("authorize %s: %w", user, err)
	}
	s.authorized[user] = append(s.authorized[user], keys...)
	return nil
}

func (s *Server) authorizedKeys() map[string][]ssh.PublicKey {
	s.mu.Lock()
	defer s.mu.Unlock()
	m := make(map[string][]ssh.PublicKey, len(s.authorized))
	for u, ks := range s.authorized {
		m[u] = append([]ssh.PublicKey(nil), ks...)
	}
	return m
}

// KnownHostsLine returns a known_hosts line for the server's address and k.
func (s *Server) KnownHostsLine(k *HostKey) string {
	return knownhosts.Line([]string{knownhosts.Normalize(s.Addr)}, k.Public)
}

// WriteKnownHosts writes a known_hosts file with all of the server's host
// keys and returns its path.
func (s *Server) WriteKnownHosts(t testing.TB) string {
	t.Helper()
	var b strings.Builder
	for _, k := range s.HostKeys {
		b.WriteString(s.KnownHostsLine(k))
		b.WriteByte('\n')
	}
	path := filepath.Join(t.TempDir(), "known_hosts")
	if err := os.WriteFile(path, []byte(b.String()), 0o600); err != nil {
		t.Fatalf("sshdtest: write known_hosts: %v", err)
	}
	return path
}

// KillConnections SIGKILLs every process descending from the listening
// sshd (per-connection sshds and the commands they run) but not the
// listener itself, and returns how many it killed.
func (s *Server) KillConnections() (int, error) {
	if s.exited() {
		return 0, errors.New("kill connections: sshd is not running")
	}
	// A stopped listener cannot fork new connection handlers while the
	// tree is being collected.
	if err := s.cmd.Process.Signal(syscall.SIGSTOP); err != nil {
		return 0, fmt.Errorf("kill connections: stop sshd: %w", err)
	}
	n, err := killDescendants(s.PID)
	if cerr := s.cmd.Process.Signal(syscall.SIGCONT); cerr != nil && err == nil {
		err = fmt.Errorf("kill connections: continue sshd: %w", cerr)
	}
	return n, err
}

func (s *Server) exited() bool {
	if s.done == nil {
		return true
	}
	select {
	case <-s.done:
		return true
	default:
		return false
	}
}

// stop kills the connections first: once the listener is gone they would
// be reparented and could no longer be found.
func (s *Server) stop() {
	s.stopOnce.Do(func() {
		if s.exited() {
			return
		}
		// Signals go through os.Process, which uses a pidfd, so they
		// cannot hit a recycled PID.
		p := s.cmd.Process
		if err := p.Signal(syscall.SIGSTOP); err == nil {
			_, _ = killDescendants(s.PID)
		}
		_ = p.Signal(syscall.SIGTERM)
		_ = p.Signal(syscall.SIGCONT)
		select {
		case <-s.done:
			return
		case <-time.After(termGrace):
		}
		_ = p.Signal(syscall.SIGKILL)
		<-s.done
	})
}

// logTail returns the last n lines of path from offset on.
func logTail(path string, offset int64, n int) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return fmt.Sprintf("(cannot read log: %v)", err)
	}
	if offset > 0 && offset <= int64(len(b)) {
		b = b[offset:]
	}
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// FreezeConnections stops (SIGSTOP) the processes serving the current connections, as a host that hangs
// would; the listener keeps running. The returned func resumes them; t.Cleanup resumes them too.
func (s *Server) FreezeConnections(t testing.TB) (resume func()) {
	t.Helper()
	pids, err := descendants(s.PID)
	if err != nil {
		t.Fatalf("sshdtest: freeze: %v", err)
	}
	for _, pid := range pids {
		_ = syscall.Kill(pid, syscall.SIGSTOP)
	}
	var once sync.Once
	resume = func() {
		once.Do(func() {
			for _, pid := range pids {
				_ = syscall.Kill(pid, syscall.SIGCONT)
			}
		})
	}
	t.Cleanup(resume)
	return resume
}
