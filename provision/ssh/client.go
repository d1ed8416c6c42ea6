package ssh

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pkg/sftp"
	"golang.org/x/crypto/ssh"

	"github.com/kforge/kforge/config"
	"github.com/kforge/kforge/provision/remote"
)

// Dialer holds what every connection shares: where the agent and the known_hosts files are, and the limits.
type Dialer struct {
	// AgentSocket is ssh-agent's socket (SSH_AUTH_SOCK); empty means no agent.
	AgentSocket string
	// Home holds the user's default keys (~/.ssh/id_*); empty means none.
	Home string
	// KnownHostsFile is kforge's own known_hosts (in the state directory): read, and where accept-new records.
	KnownHostsFile string
	// UserKnownHostsFile is the user's ~/.ssh/known_hosts: read only.
	UserKnownHostsFile string
	// Warn receives warnings that must reach the user on every run (insecure host keys, an unusable agent).
	Warn func(host, msg string)
	// MaxSessions bounds the channels open at once on one connection; it must stay below the server's
	// MaxSessions (OpenSSH's default is 10). Default 8.
	MaxSessions int
	// Keepalive is the interval of keepalive requests; a connection that misses three is closed. Default 15 s.
	Keepalive time.Duration
	// ConnectAttempts is how often a refused or timed-out connection is tried, with backoff. Default 4.
	ConnectAttempts int
}

func (d *Dialer) warn(host, msg string) {
	if d.Warn != nil {
		d.Warn(host, msg)
	}
}

// Client is one SSH connection to a host, shared by every command and transfer; it implements remote.Runner.
type Client struct {
	target   Target
	conn     *ssh.Client
	closers  []func()
	sessions chan struct{} // one token per channel open at once
	useSudo  bool          // privileged work goes through sudo -n

	sftpMu      sync.Mutex
	sftp        *sftp.Client
	sftpRelease func()

	idsMu sync.Mutex
	ids   map[string]int // user and group names → numeric ids, for chown

	// maxStdout and maxStderr are what Run keeps of a command's output: remote.MaxStdout and MaxStderr, lower
	// in tests.
	maxStdout, maxStderr int

	opened atomic.Int64 // sessions opened: the round trips this client made
	done   chan struct{}
	closed sync.Once
}

var _ remote.Runner = (*Client)(nil)

// Dial connects to the target, through its bastion if it has one, retrying refused and timed-out connections
// with backoff. Host-key and authentication failures are not retried.
func (d *Dialer) Dial(ctx context.Context, t Target) (*Client, error) {
	if t.HostKeyPolicy == config.HostKeyInsecure {
		d.warn(t.Name, "host key checking is disabled (host_key_policy = \"insecure\")")
	}
	var closers []func()
	closeAll := func() {
		for i := len(closers) - 1; i >= 0; i-- {
			closers[i]()
		}
	}
	var via *ssh.Client
	if t.Bastion != nil {
		b, err := d.Dial(ctx, *t.Bastion)
		if err != nil {
			return nil, fmt.Errorf("bastion %s: %w", t.Bastion.Addr(), err)
		}
		via = b.conn
		closers = append(closers, func() { b.Close() })
	}
	conn, closeAuth, err := d.connect(ctx, t, via)
	if err != nil {
		closeAll()
		return nil, err
	}
	closers = append(closers, closeAuth)
	maxSessions := d.MaxSessions
	if maxSessions <= 0 {
		maxSessions = 8
	}
	c := &Client{target: t, conn: conn, closers: closers, sessions: make(chan struct{}, maxSessions),
		useSudo: t.Sudo && t.User != "root", ids: map[string]int{"u:root": 0, "g:root": 0}, done: make(chan struct{}),
		maxStdout: remote.MaxStdout, maxStderr: remote.MaxStderr}
	go c.keepalive(d.keepaliveInterval())
	return c, nil
}

func (d *Dialer) keepaliveInterval() time.Duration {
	if d.Keepalive > 0 {
		return d.Keepalive
	}
	return 15 * time.Second
}

// connect makes the SSH connection, directly or through via.
func (d *Dialer) connect(ctx context.Context, t Target, via *ssh.Client) (*ssh.Client, func(), error) {
	auth, tried, closeAuth, err := d.authMethod(t)
	if err != nil {
		return nil, nil, err
	}
	hk := d.hostKeysFor(t)
	callback, err := hk.callback()
	if err != nil {
		closeAuth()
		return nil, nil, err
	}
	timeout := t.ConnectTimeout
	if timeout <= 0 {
		timeout = 10 * time.Second
	}
	cfg := &ssh.ClientConfig{User: t.User, Auth: []ssh.AuthMethod{auth}, HostKeyCallback: callback,
		HostKeyAlgorithms: hk.algorithms(), Timeout: timeout}

	attempts := d.ConnectAttempts
	if attempts <= 0 {
		attempts = 4
	}
	backoff := 250 * time.Millisecond
	for i := 1; ; i++ {
		conn, err := dialOnce(ctx, t.Addr(), cfg, via, timeout)
		if err == nil {
			return conn, closeAuth, nil
		}
		if !retryable(err) || i >= attempts || ctx.Err() != nil {
			closeAuth()
			return nil, nil, explainConnectError(t, err, tried, i)
		}
		select {
		case <-time.After(backoff):
			backoff *= 2
		case <-ctx.Done():
			closeAuth()
			return nil, nil, ctx.Err()
		}
	}
}

func dialOnce(ctx context.Context, addr string, cfg *ssh.ClientConfig, via *ssh.Client, timeout time.Duration) (*ssh.Client, error) {
	dctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	var raw net.Conn
	var err error
	if via != nil {
		raw, err = via.DialContext(dctx, "tcp", addr)
	} else {
		var nd net.Dialer
		raw, err = nd.DialContext(dctx, "tcp", addr)
	}
	if err != nil {
		return nil, &netError{err}
	}
	// The handshake honours the same deadline, so a server that accepts and then stalls cannot hang us.
	deadline, _ := dctx.Deadline()
	_ = raw.SetDeadline(deadline)
	stop := context.AfterFunc(dctx, func() { raw.Close() })
	c, chans, reqs, err := ssh.NewClientConn(raw, addr, cfg)
	stop()
	if err != nil {
		raw.Close()
		if errors.Is(err, io.EOF) || dctx.Err() != nil {
			return nil, &netError{err} // the server hung up before authenticating (e.g. MaxStartups): try again
		}
		return nil, err
	}
	_ = raw.SetDeadline(time.Time{})
	return ssh.NewClient(c, chans, reqs), nil
}

// netError marks failures to reach the server at all, which are worth retrying.
type netError struct{ err error }

func (e *netError) Error() string { return e.err.Error() }
func (e *netError) Unwrap() error { return e.err }

func retryable(err error) bool {
	var ne *netError
	return errors.As(err, &ne)
}

func explainConnectError(t Target, err error, tried []string, attempts int) error {
	var unknown *UnknownHostError
	var changed *ChangedHostKeyError
	switch {
	case errors.As(err, &unknown), errors.As(err, &changed):
		return err
	case strings.Contains(err.Error(), "unable to authenticate"):
		return fmt.Errorf("ssh %s@%s: authentication failed (keys tried: %s): %w", t.User, t.Addr(), strings.Join(tried, ", "), err)
	case retryable(err):
		return fmt.Errorf("ssh %s: cannot connect after %d attempts: %w", t.Addr(), attempts, err)
	default:
		return fmt.Errorf("ssh %s: %w", t.Addr(), err)
	}
}

// keepalive notices a dead peer (a rebooted host, a dropped NAT entry) while the connection idles.
func (c *Client) keepalive(every time.Duration) {
	t := time.NewTicker(every)
	defer t.Stop()
	missed := 0
	for {
		select {
		case <-c.done:
			return
		case <-t.C:
		}
		reply := make(chan error, 1)
		go func() {
			_, _, err := c.conn.SendRequest("keepalive@openssh.com", true, nil)
			reply <- err
		}()
		select {
		case err := <-reply:
			if err != nil {
				c.conn.Close()
				return
			}
			missed = 0
		case <-time.After(every):
			if missed++; missed >= 3 {
				c.conn.Close()
				return
			}
		case <-c.done:
			return
		}
	}
}

// Host implements remote.Runner.
func (c *Client) Host() string { return c.target.Name }

// Sessions is how many SSH sessions (one per command, plus the SFTP channel) this client has opened.
func (c *Client) Sessions() int64 { return c.opened.Load() }

// Close ends the connection (and the bastion's).
func (c *Client) Close() error {
	var err error
	c.closed.Do(func() {
		close(c.done)
		if c.sftp != nil {
			c.sftp.Close()
			c.sftpRelease()
		}
		err = c.conn.Close()
		for i := len(c.closers) - 1; i >= 0; i-- {
			c.closers[i]()
		}
	})
	return err
}

// session opens a channel, waiting for a free slot so that the server's MaxSessions is never exceeded. The
// server frees a closed session slightly after our side does, so a refusal is retried briefly.
func (c *Client) session(ctx context.Context) (*ssh.Session, func(), error) {
	select {
	case c.sessions <- struct{}{}:
	case <-ctx.Done():
		return nil, nil, ctx.Err()
	}
	var s *ssh.Session
	var err error
	for wait := 20 * time.Millisecond; ; wait *= 2 {
		s, err = c.conn.NewSession()
		var refused *ssh.OpenChannelError
		if err == nil || !errors.As(err, &refused) || wait > 500*time.Millisecond {
			break
		}
		select {
		case <-time.After(wait):
		case <-ctx.Done():
			err = ctx.Err()
		}
		if ctx.Err() != nil {
			break
		}
	}
	if err != nil {
		<-c.sessions
		return nil, nil, fmt.Errorf("open session: %w", err)
	}
	c.opened.Add(1)
	var once sync.Once
	return s, func() { once.Do(func() { s.Close(); <-c.sessions }) }, nil
}

// Run implements remote.Runner.
func (c *Client) Run(ctx context.Context, cmd remote.Command) (remote.Result, error) {
	if cmd.Timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, cmd.Timeout)
		defer cancel()
	}
	s, release, err := c.session(ctx)
	if err != nil {
		return remote.Result{}, c.hostError(cmd.Label(), err)
	}
	defer release()
	full := &overflow{reached: make(chan struct{})}
	stdout := &cappedBuffer{stream: "stdout", limit: c.maxStdout, full: full}
	stderr := &stderrWriter{limit: c.maxStderr, full: full}
	s.Stdin, s.Stdout, s.Stderr = cmd.Stdin, stdout, stderr
	if cmd.Stdout != nil {
		s.Stdout = cmd.Stdout
	}
	if err := s.Start(c.commandLine(cmd.Script, cmd.Sudo)); err != nil {
		return remote.Result{}, c.hostError(cmd.Label(), err)
	}
	waited := make(chan error, 1)
	go func() { waited <- s.Wait() }()
	// stopped closes the session and kills the command, then returns what it printed with why it was stopped.
	stopped := func(why error) (remote.Result, error) {
		release()
		c.stop(stderr.PID())
		// Closing the session ends the copies into the buffers; wait for them before reading.
		select {
		case <-waited:
		case <-time.After(5 * time.Second):
			return remote.Result{ExitStatus: -1}, c.hostError(cmd.Label(), why)
		}
		return remote.Result{Stdout: stdout.Bytes(), Stderr: stderr.Bytes(), ExitStatus: -1}, c.hostError(cmd.Label(), why)
	}
	select {
	case err = <-waited:
	case <-ctx.Done():
		return stopped(fmt.Errorf("%w (command stopped)", ctx.Err()))
	case <-full.reached:
		// The writer that reached its limit stopped reading, so the channel's window fills and the command
		// blocks: stop it rather than wait for its timeout.
		return stopped(full.err)
	}
	select {
	case <-full.reached:
		// The command ended with output beyond the limit still in the channel's window.
		return remote.Result{Stdout: stdout.Bytes(), Stderr: stderr.Bytes(), ExitStatus: -1}, c.hostError(cmd.Label(), full.err)
	default:
	}
	res := remote.Result{Stdout: stdout.Bytes(), Stderr: stderr.Bytes()}
	var exit *ssh.ExitError
	switch {
	case err == nil:
		return res, nil
	case errors.As(err, &exit):
		res.ExitStatus = exit.ExitStatus()
		if cmd.Sudo && c.useSudo && bytes.Contains(res.Stderr, []byte("sudo: a password is required")) {
			return res, c.hostError(cmd.Label(), remote.ErrSudoPassword)
		}
		return res, c.hostError("", &remote.ExitError{Command: cmd.Label(), Status: res.ExitStatus, Stderr: string(res.Stderr)})
	default:
		return res, c.hostError(cmd.Label(), fmt.Errorf("connection lost: %w", err))
	}
}

// killTreeScript kills the process whose PID is on stdin and all its descendants, found through /proc so that
// it needs nothing but sh on the host.
const killTreeScript = `read -r root
tree=" $root "
grew=1
while [ "$grew" = 1 ]; do
  grew=0
  for s in /proc/[0-9]*/stat; do
    read -r line < "$s" 2>/dev/null || continue
    pid=${s#/proc/}; pid=${pid%/stat}
    set -- ${line##*) }
    case "$tree" in *" $2 "*) case "$tree" in *" $pid "*) ;; *) tree="$tree$pid "; grew=1 ;; esac ;; esac
  done
done
kill -KILL $tree 2>/dev/null
exit 0`

// stop kills what a cancelled command left running: closing an SSH channel does not end the processes behind
// it, and a signal request reaches only the first of them.
func (c *Client) stop(pid int) {
	if pid <= 1 {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_, _ = c.Run(ctx, remote.Command{Name: "stop a cancelled command", Script: killTreeScript, Sudo: true,
		Stdin: strings.NewReader(strconv.Itoa(pid) + "\n")})
}

// pidMarker is printed by the login shell, before it becomes the command, so that the command's process tree
// can be found and stopped if it is cancelled.
const pidMarker = "kforge-pid:"

// overflow is where the first writer of a command's output to reach its limit says so.
type overflow struct {
	once    sync.Once
	reached chan struct{} // closed once err is set
	err     *remote.OutputLimitError
}

// errOutputLimit fails the copy from the channel into a full writer, so that it reads no more.
var errOutputLimit = errors.New("output limit reached")

// limit takes the part of p that fits when n bytes are kept of at most limit, and signals once p does not fit.
func (o *overflow) limit(p []byte, n, limit int, stream string) ([]byte, error) {
	if room := limit - n; len(p) > room {
		o.once.Do(func() {
			o.err = &remote.OutputLimitError{Stream: stream, Limit: limit}
			close(o.reached)
		})
		return p[:max(room, 0)], errOutputLimit
	}
	return p, nil
}

// cappedBuffer keeps a command's stdout up to its limit.
type cappedBuffer struct {
	stream string
	limit  int
	full   *overflow
	buf    bytes.Buffer
}

func (b *cappedBuffer) Write(p []byte) (int, error) {
	p, err := b.full.limit(p, b.buf.Len(), b.limit, b.stream)
	n, _ := b.buf.Write(p)
	return n, err
}

// Bytes is what was kept.
func (b *cappedBuffer) Bytes() []byte { return b.buf.Bytes() }

// stderrWriter keeps a command's stderr up to its limit, taking out the pid marker line.
type stderrWriter struct {
	limit int
	full  *overflow

	mu     sync.Mutex
	kept   int // bytes written, the marker line included
	head   []byte
	headOK bool
	pid    int
	rest   bytes.Buffer
}

func (w *stderrWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	p, err := w.full.limit(p, w.kept, w.limit, "stderr")
	w.kept += len(p)
	n := len(p)
	if !w.headOK {
		i := bytes.IndexByte(p, '\n')
		if i < 0 {
			w.head = append(w.head, p...)
			return n, err
		}
		w.head, p, w.headOK = append(w.head, p[:i]...), p[i+1:], true
		if pid, perr := strconv.Atoi(strings.TrimPrefix(string(w.head), pidMarker)); perr == nil && bytes.HasPrefix(w.head, []byte(pidMarker)) {
			w.pid = pid
		} else {
			w.rest.Write(w.head)
			w.rest.WriteByte('\n')
		}
	}
	w.rest.Write(p)
	return n, err
}

// PID is the remote command's process id, once its marker has arrived.
func (w *stderrWriter) PID() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.pid
}

// Bytes is stderr without the marker.
func (w *stderrWriter) Bytes() []byte {
	w.mu.Lock()
	defer w.mu.Unlock()
	out := append([]byte(nil), w.rest.Bytes()...)
	if !w.headOK {
		out = append(out, w.head...)
	}
	return out
}

// commandLine runs the script with POSIX sh whatever the login shell is, as root when asked. The login shell
// first reports its PID (which the command keeps, through exec) for stop.
func (c *Client) commandLine(script string, sudo bool) string {
	line := "sh -c " + remote.ShellQuote(script)
	if sudo && c.useSudo {
		line = "sudo -n -- " + line
	}
	return "echo " + pidMarker + "$$ >&2; exec " + line
}

func (c *Client) hostError(step string, err error) error {
	return &remote.HostError{Host: c.target.Name, Step: step, Err: err}
}
