package lab

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/knownhosts"
)

// UpOptions say what lab to make.
type UpOptions struct {
	Name  string
	Hosts int
	// Subnet is the lab's /24; the zero value picks a free one in 198.18.100.0–198.18.199.255.
	Subnet netip.Prefix
	// TmpfsSize bounds the RAM the hosts' root filesystems may use; default 8g.
	TmpfsSize string
}

// UpResult is what Up did.
type UpResult struct {
	Lab *Lab
	// Sysctls lists the machine settings changed for the kubelet (restored by the last Down).
	Sysctls []Change
	// Image is the image the hosts started from, and whether this Up had to build it.
	Image      string
	ImageBuilt bool
}

// Up makes a lab: builds the image if needed, sets the machine up, and boots the hosts. It returns once every
// host's sshd listens; on any failure it takes down what it made.
func (m *Manager) Up(ctx context.Context, opts UpOptions) (*UpResult, error) {
	if err := checkName(opts.Name); err != nil {
		return nil, err
	}
	if opts.Hosts < 1 || opts.Hosts > maxHosts {
		return nil, fmt.Errorf("a lab has 1 to %d hosts, not %d", maxHosts, opts.Hosts)
	}
	if err := Preflight(); err != nil {
		return nil, err
	}
	if l, err := m.Load(opts.Name); err == nil {
		for _, h := range l.Hosts {
			if running(h.PID, h.Name) {
				return nil, fmt.Errorf("lab %s is already up (%d hosts); run kforge lab down --name %s first", opts.Name, len(l.Hosts), opts.Name)
			}
		}
	}
	// Whatever an earlier run left (killed before it could clean up) goes first, so Up always starts clean.
	if _, err := m.Down(ctx, opts.Name); err != nil {
		return nil, fmt.Errorf("clearing what an earlier lab %s left: %w", opts.Name, err)
	}
	built := false
	if _, err := os.Stat(m.imagePath()); err != nil {
		built = true
	}
	image, err := m.EnsureImage(ctx)
	if err != nil {
		return nil, err
	}
	res := &UpResult{Image: image, ImageBuilt: built}
	lab, err := m.up(ctx, opts, image, res)
	if err != nil {
		if _, derr := m.Down(context.Background(), opts.Name); derr != nil {
			err = errors.Join(err, fmt.Errorf("cleaning up: %w", derr))
		}
		return nil, err
	}
	res.Lab = lab
	return res, nil
}

func (m *Manager) up(ctx context.Context, opts UpOptions, image string, res *UpResult) (*Lab, error) {
	dir := m.dir(opts.Name)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	// From choosing a subnet to having a bridge on it, and the sysctls: one lab at a time.
	unlock, err := m.LockMachine()
	if err != nil {
		return nil, err
	}
	defer unlock()
	subnet, err := m.ChooseSubnet(opts.Name, opts.Subnet)
	if err != nil {
		return nil, err
	}
	lab := &Lab{Name: opts.Name, Bridge: bridgeName(opts.Name), Subnet: subnet, Dir: dir,
		KeyFile: filepath.Join(dir, "id_ed25519"), KnownHostsFile: filepath.Join(dir, "known_hosts"),
		HostsFile: filepath.Join(dir, "hosts.hcl")}
	for i := 1; i <= opts.Hosts; i++ {
		lab.Hosts = append(lab.Hosts, Host{Name: fmt.Sprintf("%s-%d", opts.Name, i), Address: hostAddress(subnet, i)})
	}
	// Saved before anything exists on the machine, so that Down can find all of it even after a crash.
	if err := m.save(lab); err != nil {
		return nil, err
	}
	if res.Sysctls, err = m.applySysctls(); err != nil {
		return nil, err
	}
	m.progress("bridge %s with %s", lab.Bridge, subnet)
	if err := CreateBridge(lab.Bridge, subnet); err != nil {
		return nil, err
	}
	unlock()
	size := opts.TmpfsSize
	if size == "" {
		size = "8g"
	}
	if err := checkMemory(len(lab.Hosts)); err != nil {
		return nil, err
	}
	hostsDir := filepath.Join(dir, "hosts")
	if err := os.MkdirAll(hostsDir, 0o755); err != nil {
		return nil, err
	}
	if err := mount("tmpfs", "kforge-lab-"+opts.Name, hostsDir, "size="+size+",mode=755"); err != nil {
		return nil, err
	}
	signer, err := newEd25519()
	if err != nil {
		return nil, err
	}
	loginKey, err := writeKeyPair(lab.KeyFile, signer, "kforge-lab-"+opts.Name)
	if err != nil {
		return nil, err
	}

	m.progress("unpacking %d host root filesystems", len(lab.Hosts))
	keys := make([][]ssh.PublicKey, len(lab.Hosts))
	errs := make([]error, len(lab.Hosts))
	var wg sync.WaitGroup
	for i := range lab.Hosts {
		wg.Add(1)
		go func() {
			defer wg.Done()
			keys[i], errs[i] = makeRoot(ctx, image, filepath.Join(hostsDir, lab.Hosts[i].Name), lab.Hosts[i], subnet, loginKey)
		}()
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	var known []string
	for i, h := range lab.Hosts {
		for _, k := range keys[i] {
			known = append(known, knownhosts.Line([]string{knownhosts.Normalize(net.JoinHostPort(h.Address.String(), "22"))}, k))
		}
	}
	if err := writeFileAtomic(lab.KnownHostsFile, []byte(strings.Join(known, "\n")+"\n"), 0o600); err != nil {
		return nil, err
	}

	m.progress("booting %d hosts", len(lab.Hosts))
	for i := range lab.Hosts {
		pid, err := boot(lab, lab.Hosts[i].Name, filepath.Join(hostsDir, lab.Hosts[i].Name))
		if err != nil {
			return nil, err
		}
		lab.Hosts[i].PID = pid
		if err := m.save(lab); err != nil {
			return nil, err
		}
	}
	for _, h := range lab.Hosts {
		if err := waitSSH(ctx, h, filepath.Join(dir, "logs", h.Name+".log"), 60*time.Second); err != nil {
			return nil, err
		}
	}
	if err := writeFileAtomic(lab.HostsFile, []byte(HostsHCL(lab)), 0o644); err != nil {
		return nil, err
	}
	return lab, m.save(lab)
}

// makeRoot unpacks the image for one host and makes it that host: name, machine-id, SSH keys, address, and
// the lab's login key.
func makeRoot(ctx context.Context, image, root string, h Host, subnet netip.Prefix, login ssh.PublicKey) ([]ssh.PublicKey, error) {
	if err := os.MkdirAll(root, 0o755); err != nil {
		return nil, err
	}
	out, err := exec.CommandContext(ctx, "tar", "-C", root, "--numeric-owner", "--xattrs", "--xattrs-include=*", "-I", "zstd", "-xf", image).CombinedOutput()
	if err != nil {
		return nil, fmt.Errorf("unpack %s for %s: %w: %s", image, h.Name, err, out)
	}
	id := make([]byte, 16)
	if _, err := rand.Read(id); err != nil {
		return nil, err
	}
	network := fmt.Sprintf("[Match]\nName=host0\n[Network]\nAddress=%s/%d\nGateway=%s\nLinkLocalAddressing=no\nIPv6AcceptRA=no\n",
		h.Address, subnet.Bits(), bridgeAddress(subnet))
	files := []struct {
		path, content string
		mode          os.FileMode
	}{
		{"etc/hostname", h.Name + "\n", 0o644},
		{"etc/hosts", "127.0.0.1 localhost\n" + h.Address.String() + " " + h.Name + "\n", 0o644},
		{"etc/machine-id", hex.EncodeToString(id) + "\n", 0o444},
		{"etc/systemd/network/10-kforge-lab.network", network, 0o644},
		{"root/.ssh/authorized_keys", string(ssh.MarshalAuthorizedKey(login)), 0o600},
	}
	for _, f := range files {
		p := filepath.Join(root, f.path)
		if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
			return nil, err
		}
		if err := os.WriteFile(p, []byte(f.content), f.mode); err != nil {
			return nil, err
		}
	}
	return hostKeys(root, h.Name)
}

// bootScript runs as the host's first process: it moves itself into the host's own cgroup in every hierarchy,
// then becomes systemd-nspawn. The cgroup must be set before nspawn starts, and nspawn must keep this PID.
const bootScript = `lab=$1 host=$2 root=$3 bridge=$4
cgs=$(cat /proc/self/cgroup)
printf '%s\n' "$cgs" | while IFS=: read -r _ ctrl path; do
  case "$ctrl" in
    "") dir=/sys/fs/cgroup/unified ;;
    name=systemd) dir=/sys/fs/cgroup/systemd ;;
    *) dir=/sys/fs/cgroup/$ctrl ;;
  esac
  [ -f "$dir/cgroup.procs" ] || continue
  base="$dir${path%/}"
  for d in "$base/kforge-lab" "$base/kforge-lab/$lab" "$base/kforge-lab/$lab/$host"; do
    mkdir -p "$d"
    if [ "$ctrl" = cpuset ]; then
      cat "$(dirname "$d")/cpuset.cpus" > "$d/cpuset.cpus"
      cat "$(dirname "$d")/cpuset.mems" > "$d/cpuset.mems"
    fi
  done
  echo $$ > "$base/kforge-lab/$lab/$host/cgroup.procs"
done
exec systemd-nspawn -q -D "$root" -M "$host" --boot --register=no --keep-unit --link-journal=no \
  --network-bridge="$bridge" --resolv-conf=off --timezone=off --bind=/dev/kmsg --system-call-filter=@keyring \
  --capability=CAP_SYSLOG,CAP_IPC_LOCK`

// boot starts a host in its own session, so that it outlives the command that started it.
func boot(lab *Lab, host, root string) (int, error) {
	logDir := filepath.Join(lab.Dir, "logs")
	if err := os.MkdirAll(logDir, 0o700); err != nil {
		return 0, err
	}
	log, err := os.Create(filepath.Join(logDir, host+".log"))
	if err != nil {
		return 0, err
	}
	defer log.Close()
	cmd := exec.Command("sh", "-c", bootScript, "sh", lab.Name, host, root, lab.Bridge)
	cmd.Stdout, cmd.Stderr = log, log
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := cmd.Start(); err != nil {
		return 0, fmt.Errorf("start %s: %w", host, err)
	}
	// Reaps the host if it stops while this process lives; otherwise the host is simply left running.
	go func() { _ = cmd.Wait() }()
	return cmd.Process.Pid, nil
}

// waitSSH waits until the host's sshd accepts connections.
func waitSSH(ctx context.Context, h Host, logFile string, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	addr := net.JoinHostPort(h.Address.String(), "22")
	for {
		conn, err := net.DialTimeout("tcp", addr, 500*time.Millisecond)
		if err == nil {
			conn.Close()
			return nil
		}
		if !starting(h.PID, h.Name) {
			data, _ := os.ReadFile(logFile)
			return fmt.Errorf("host %s stopped while booting: %s", h.Name, lastLines(string(data), 15))
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("host %s: sshd at %s did not answer within %s", h.Name, addr, timeout)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
}

func mount(fstype, source, target, data string) error {
	if err := syscall.Mount(source, target, fstype, 0, data); err != nil {
		return fmt.Errorf("mount %s on %s: %w", fstype, target, err)
	}
	return nil
}

// hostRootMiB is what one host's root filesystem takes in RAM (the unpacked image: 237 MiB measured with du),
// with room for what a node installs later.
const hostRootMiB = 300

// checkMemory refuses a lab whose root filesystems (tmpfs, so RAM) would not fit, before anything is unpacked.
func checkMemory(hosts int) error {
	data, err := os.ReadFile("/proc/meminfo")
	if err != nil {
		return nil // cannot tell; tar will say if it runs out
	}
	for _, line := range strings.Split(string(data), "\n") {
		var kb uint64
		if _, err := fmt.Sscanf(line, "MemAvailable: %d kB", &kb); err == nil {
			if need := uint64(hosts * hostRootMiB); kb/1024 < need {
				return fmt.Errorf("no space for %d lab hosts: their root filesystems live in RAM (tmpfs) and need about %d MiB; %d MiB are available", hosts, need, kb/1024)
			}
			return nil
		}
	}
	return nil
}
