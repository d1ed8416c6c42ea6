package lab

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"sync"
	"syscall"

	"github.com/kforge/kforge/internal/atomicfile"
)

// Paths says where labs live on this machine.
type Paths struct {
	// Root holds one directory per lab: its state, keys, known_hosts, logs and the hosts' root filesystems.
	Root string
	// Cache holds the images, built once per recipe.
	Cache string
}

// DefaultPaths are machine-wide, like the labs themselves (bridges, cgroups and sysctls are machine-wide).
func DefaultPaths() Paths {
	return Paths{Root: "/var/lib/kforge/labs", Cache: "/var/cache/kforge/lab"}
}

// Manager brings labs up and down.
type Manager struct {
	Paths Paths
	// Mirror is the Debian mirror for building the image; empty means the one apt uses here.
	Mirror string
	// Progress receives one line per step, for the command to show; nil discards them.
	Progress func(msg string)
}

func (m *Manager) progress(format string, args ...any) {
	if m.Progress != nil {
		m.Progress(fmt.Sprintf(format, args...))
	}
}

// Lab is a lab's recorded state.
type Lab struct {
	Name   string       `json:"name"`
	Bridge string       `json:"bridge"`
	Subnet netip.Prefix `json:"subnet"`
	Hosts  []Host       `json:"hosts"`
	// Dir is the lab's directory; KeyFile logs in as root on every host; KnownHostsFile lists their keys.
	Dir            string `json:"dir"`
	KeyFile        string `json:"key_file"`
	KnownHostsFile string `json:"known_hosts_file"`
	HostsFile      string `json:"hosts_file"`
}

// MachineAddress is this machine's address on the lab's bridge: where lab hosts reach what runs here (a load
// balancer in front of API servers, a registry mirror).
func (l *Lab) MachineAddress() netip.Addr { return bridgeAddress(l.Subnet) }

// Host is one lab host.
type Host struct {
	Name    string     `json:"name"`
	Address netip.Addr `json:"address"`
	// PID is systemd-nspawn's process id; stopping it powers the host off.
	PID int `json:"pid"`
}

var labNameRe = regexp.MustCompile(`^[a-z][a-z0-9]{0,7}$`)

// checkName keeps names short: host names (<lab>-<n>) must fit the 15-character interface names nspawn makes.
func checkName(name string) error {
	if !labNameRe.MatchString(name) {
		return fmt.Errorf("lab name %q: use 1 to 8 lower-case letters and digits, starting with a letter", name)
	}
	return nil
}

func (m *Manager) dir(name string) string { return filepath.Join(m.Paths.Root, name) }

func (m *Manager) statePath(name string) string { return filepath.Join(m.dir(name), "lab.json") }

// Load reads a lab's state; os.ErrNotExist when there is no such lab.
func (m *Manager) Load(name string) (*Lab, error) {
	if err := checkName(name); err != nil {
		return nil, err
	}
	data, err := os.ReadFile(m.statePath(name))
	if err != nil {
		return nil, err
	}
	var l Lab
	if err := json.Unmarshal(data, &l); err != nil {
		return nil, fmt.Errorf("lab %s: state %s: %w", name, m.statePath(name), err)
	}
	return &l, nil
}

func (m *Manager) save(l *Lab) error {
	data, err := json.MarshalIndent(l, "", "  ")
	if err != nil {
		return err
	}
	return writeFileAtomic(m.statePath(l.Name), append(data, '\n'), 0o600)
}

// List names the labs that have a directory on this machine.
func (m *Manager) List() ([]string, error) {
	entries, err := os.ReadDir(m.Paths.Root)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var out []string
	for _, e := range entries {
		if e.IsDir() && labNameRe.MatchString(e.Name()) {
			out = append(out, e.Name())
		}
	}
	return out, nil
}

// running reports whether pid is a live systemd-nspawn of the named machine, so that a recycled PID is never
// mistaken for a lab host.
func running(pid int, machine string) bool {
	if pid <= 0 {
		return false
	}
	cmdline, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
	if err != nil {
		return false
	}
	args := splitNul(cmdline)
	if len(args) == 0 || filepath.Base(args[0]) != "systemd-nspawn" {
		return false
	}
	for i, a := range args {
		if a == "-M" && i+1 < len(args) && args[i+1] == machine {
			return syscall.Kill(pid, 0) == nil
		}
	}
	return false
}

// starting reports whether pid is the host's boot process, before or after it became systemd-nspawn: right
// after boot() it is still the shell that sets up the host's cgroups.
func starting(pid int, host string) bool {
	if running(pid, host) {
		return true
	}
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	if i := bytes.LastIndexByte(stat, ')'); i < 0 || i+2 >= len(stat) || stat[i+2] == 'Z' {
		return false // gone, or a zombie waiting to be reaped
	}
	cmdline, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
	return slices.Contains(splitNul(cmdline), host)
}

func splitNul(b []byte) []string {
	var out []string
	start := 0
	for i, c := range b {
		if c == 0 {
			out = append(out, string(b[start:i]))
			start = i + 1
		}
	}
	return out
}

// Preflight refuses what cannot work, with what to do about it.
func Preflight() error {
	if os.Geteuid() != 0 {
		return errors.New("lab hosts need root (bridges, cgroups, mounts and systemd-nspawn): run as root")
	}
	for _, tool := range []string{"systemd-nspawn", "ip", "tar", "zstd", "mount"} {
		if _, err := exec.LookPath(tool); err != nil {
			return fmt.Errorf("%s is missing: apt-get install systemd-container iproute2 zstd (or run make deps)", tool)
		}
	}
	if _, err := os.Stat("/sys/fs/cgroup/cgroup.controllers"); err == nil {
		return errors.New("this machine uses cgroup v2 only; kforge's lab hosts are made for machines with cgroup v1 controllers (as measured in the notes) and are untested here")
	}
	return nil
}

func writeFileAtomic(path string, data []byte, mode os.FileMode) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return err
	}
	return atomicfile.Write(path, data, mode)
}

func checkFreeSpace(dir string, need uint64, what string) error {
	var st syscall.Statfs_t
	if err := syscall.Statfs(dir, &st); err != nil {
		return err
	}
	if free := st.Bavail * uint64(st.Bsize); free < need {
		return fmt.Errorf("no space for %s: %s has %d MiB free, %d MiB needed", what, dir, free>>20, need>>20)
	}
	return nil
}

// lockFile takes an exclusive lock on path (made if missing) and returns its release. Labs are machine-wide:
// test packages bring theirs up from parallel processes, and the image, subnets, bridges and sysctls must be
// read and changed by one of them at a time.
func lockFile(path string) (func(), error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return nil, err
	}
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, err
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX); err != nil {
		f.Close()
		return nil, fmt.Errorf("lock %s: %w", path, err)
	}
	var once sync.Once
	return func() { once.Do(func() { f.Close() }) }, nil
}

// LockMachine takes the machine-wide lock under which address ranges are chosen and bridges made: whoever picks
// a subnet with ChooseSubnet (labs, bench host sets) holds it until the bridge exists, so no two pick the same.
func (m *Manager) LockMachine() (func(), error) {
	return lockFile(filepath.Join(m.Paths.Root, ".lock"))
}
