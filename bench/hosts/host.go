package hosts

import (
	"bufio"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"golang.org/x/crypto/ssh"
)

// hostInit runs as PID 1 of the host's new mount, PID, UTS and IPC namespaces, already in its network
// namespace and still with the machine's tools, and ends as the host's sshd. It gives the host its address and
// a default route through the machine (which forwards nothing from the bridge, so the route leads nowhere
// beyond it, as on lab hosts), and its own /proc, /sys, /dev/pts, /dev/shm and /run.
const hostInit = `set -eu
root=$1 host=$2 addr=$3 gateway=$4
printf 'addr add %s dev eth0\nlink set lo up\nlink set eth0 up\nroute add default via %s\n' "$addr" "$gateway" | ip -batch -
# Nothing mounted from here on may show on the machine.
mount --make-rprivate /
cd "$root"
mount -t proc -o nosuid,nodev,noexec proc proc
mount -t sysfs -o ro,nosuid,nodev,noexec sysfs sys
mount -t devpts -o newinstance,ptmxmode=0666,mode=0620,gid=5 devpts dev/pts
mount -t tmpfs -o nosuid,nodev,mode=1777,size=64m tmpfs dev/shm
mount -t tmpfs -o nosuid,nodev,mode=755,size=64m tmpfs run
mkdir -m 755 run/sshd
echo "$host" > proc/sys/kernel/hostname
# No IPv6, as on the lab's bridge: a host has one address, its IPv4 one.
for f in all default; do
  f=proc/sys/net/ipv6/conf/$f/disable_ipv6
  [ ! -e "$f" ] || echo 1 > "$f"
done
# The host's root becomes / and the machine's mounts (other hosts' roots among them) leave the namespace, so
# the host lists only its own mounts, as a machine would.
pivot_root . mnt
umount -l /mnt
exec /usr/sbin/sshd -D -e
`

// sshdConfig comes before Debian's own settings (its sshd_config includes sshd_config.d first, and sshd keeps
// the first value it reads). PAM is off because its session modules expect systemd, which these hosts lack,
// and cost time at every login; MaxStartups and MaxSessions let a benchmark open 100 connections at once.
// VERBOSE logs "Starting session" for every command and file transfer: a benchmark counts round trips there.
const sshdConfig = `# kforge bench host
ListenAddress %s:22
HostKey /etc/ssh/ssh_host_ed25519_key
PermitRootLogin prohibit-password
PubkeyAuthentication yes
PasswordAuthentication no
KbdInteractiveAuthentication no
UsePAM no
UseDNS no
MaxStartups 200
MaxSessions 200
LogLevel VERBOSE
`

// startHost makes host i's root filesystem and keys and starts its sshd; it returns the host's key.
func (s *Set) startHost(i int, lower string, login ssh.PublicKey) (ssh.PublicKey, error) {
	h := s.Hosts[i]
	hostKey, err := makeRoot(lower, h, login)
	if err != nil {
		return nil, err
	}
	log, err := os.Create(filepath.Join(filepath.Dir(h.Root), "sshd.log"))
	if err != nil {
		return nil, err
	}
	defer log.Close()
	cmd := exec.Command("nsenter", "--net="+filepath.Join("/run/netns", netnsName(s.Name, i+1)), "--",
		"/bin/sh", "-c", hostInit, "kforge-bench-host", h.Root, h.Name,
		netip.PrefixFrom(h.Address, s.Subnet.Bits()).String(), gateway(s.Subnet).String())
	cmd.Env = []string{"PATH=/usr/sbin:/usr/bin:/sbin:/bin"}
	cmd.Stdout, cmd.Stderr = log, log
	// Its own session, so that a terminal's ^C reaches the benchmark and not the hosts: they go with Down.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true,
		Cloneflags: syscall.CLONE_NEWNS | syscall.CLONE_NEWPID | syscall.CLONE_NEWUTS | syscall.CLONE_NEWIPC}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start sshd: %w", err)
	}
	p, _ := identify(cmd.Process.Pid) // still there, even if it exited: only the goroutine below reaps it
	reaped := make(chan struct{})
	go func() {
		_ = cmd.Wait()
		close(reaped)
	}()
	s.mu.Lock()
	defer s.mu.Unlock()
	s.Hosts[i].PID = p.PID
	s.procs[h.Name] = p
	s.reaped[h.Name] = reaped
	return hostKey, s.save()
}

// makeRoot mounts the host's overlay and makes the image this host: its name, machine-id, SSH host key,
// sshd settings and the set's login key. They are written through the overlay, so they land in the host's
// own upper directory and the shared image stays as it was.
func makeRoot(lower string, h Host, login ssh.PublicKey) (ssh.PublicKey, error) {
	dir := filepath.Dir(h.Root)
	upper, work := filepath.Join(dir, "upper"), filepath.Join(dir, "work")
	for _, d := range []string{upper, work, h.Root} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return nil, err
		}
	}
	// The upper directory's mode is the host's / mode.
	if err := os.Chmod(upper, 0o755); err != nil {
		return nil, err
	}
	opts := fmt.Sprintf("lowerdir=%s,upperdir=%s,workdir=%s", lower, upper, work)
	if err := syscall.Mount("overlay", h.Root, "overlay", 0, opts); err != nil {
		return nil, fmt.Errorf("mount overlay on %s: %w", h.Root, err)
	}
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return nil, err
	}
	block, err := ssh.MarshalPrivateKey(priv, "root@"+h.Name)
	if err != nil {
		return nil, err
	}
	hostKey, err := ssh.NewPublicKey(pub)
	if err != nil {
		return nil, err
	}
	id := make([]byte, 16)
	if _, err := rand.Read(id); err != nil {
		return nil, err
	}
	files := []struct {
		path, content string
		mode          os.FileMode
	}{
		{"etc/hostname", h.Name + "\n", 0o644},
		{"etc/hosts", "127.0.0.1 localhost\n" + h.Address.String() + " " + h.Name + "\n", 0o644},
		{"etc/machine-id", hex.EncodeToString(id) + "\n", 0o444},
		{"etc/ssh/ssh_host_ed25519_key", string(pem.EncodeToMemory(block)), 0o600},
		{"etc/ssh/ssh_host_ed25519_key.pub", string(ssh.MarshalAuthorizedKey(hostKey)), 0o644},
		{"etc/ssh/sshd_config.d/kforge-bench.conf", fmt.Sprintf(sshdConfig, h.Address), 0o644},
		{"root/.ssh/authorized_keys", string(ssh.MarshalAuthorizedKey(login)), 0o600},
	}
	for _, f := range files {
		p := filepath.Join(h.Root, f.path)
		if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
			return nil, err
		}
		if err := os.WriteFile(p, []byte(f.content), f.mode); err != nil {
			return nil, err
		}
	}
	return hostKey, nil
}

// sshTimeout bounds the wait for one host's sshd; it answers in well under a second.
const sshTimeout = 30 * time.Second

// waitHost waits until host i's sshd sends its banner: the kernel completes a TCP handshake on a listening
// socket by itself, the banner takes sshd accepting and serving the connection.
func (s *Set) waitHost(ctx context.Context, i int) error {
	s.mu.Lock()
	h, reaped := s.Hosts[i], s.reaped[s.Hosts[i].Name]
	s.mu.Unlock()
	target := net.JoinHostPort(h.Address.String(), "22")
	deadline := time.Now().Add(sshTimeout)
	for {
		// Nothing is sent to the host before it has its address: a connection tried earlier would leave the
		// machine's ARP entry for it failed, and the next try waiting a second for a new one.
		err := errNotStarted
		if sshdStarted(h.PID) {
			if err = readBanner(ctx, target); err == nil {
				return nil
			}
		}
		select {
		case <-reaped:
			out, _ := os.ReadFile(filepath.Join(filepath.Dir(h.Root), "sshd.log"))
			return fmt.Errorf("sshd exited: %s", lastLines(string(out), 10))
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(5 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("no SSH banner from %s within %s: %w", target, sshTimeout, err)
		}
	}
}

var errNotStarted = errors.New("sshd has not started yet")

// sshdStarted reports whether process pid runs sshd: the host's init gives the host its address first and
// execs sshd last. (Whether something listens in its namespace would say more, but each read of
// /proc/PID/net/tcp walks the machine's whole TCP hash table: polling it took a tenth of Up's CPU.)
func sshdStarted(pid int) bool {
	comm, err := os.ReadFile(fmt.Sprintf("/proc/%d/comm", pid))
	return err == nil && string(comm) == "sshd\n"
}

func readBanner(ctx context.Context, target string) error {
	d := net.Dialer{Timeout: time.Second}
	conn, err := d.DialContext(ctx, "tcp", target)
	if err != nil {
		return err
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(2 * time.Second))
	line, err := bufio.NewReader(conn).ReadString('\n')
	if err != nil {
		return err
	}
	if !strings.HasPrefix(line, "SSH-2.0-") {
		return fmt.Errorf("%s answers %q, not SSH", target, strings.TrimSpace(line))
	}
	return nil
}

func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
