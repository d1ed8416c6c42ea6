package hosts

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
)

// BaseDir holds one directory per set: its state, keys, known_hosts and the hosts' overlay directories. It is
// machine-wide because bridges, namespaces and addresses are.
const BaseDir = "/var/lib/kforge/bench"

// MaxHosts is what a set's /24 holds: host n is at .(10+n).
const MaxHosts = 254 - 10

// Options say what set to make.
type Options struct {
	// Name (1 to 6 lower-case letters and digits, starting with a letter) names the bridge kfb-NAME, the
	// namespaces and veths kfb-NAME-N, the hosts NAME-N and the directory BaseDir/NAME; it must fit the
	// 15 characters of an interface name.
	Name  string
	Count int
}

// Host is one bench host.
type Host struct {
	Name    string     `json:"name"`
	Address netip.Addr `json:"address"`
	// Root is the host's root filesystem as the machine sees it (its overlay, mounted while the set is up):
	// files put there before a benchmark are on the host without going through SSH.
	Root string `json:"root"`
	// PID is the host's sshd as the machine sees it; it is PID 1 of the host's PID namespace, so when it
	// ends every process of the host ends.
	PID int `json:"pid"`
}

// Set is a running set of hosts.
type Set struct {
	Name   string       `json:"name"`
	Bridge string       `json:"bridge"`
	Subnet netip.Prefix `json:"subnet"`
	Hosts  []Host       `json:"hosts"`
	// KeyFile logs in as root on every host; KnownHostsFile has every host's key, by address.
	KeyFile        string `json:"key_file"`
	KnownHostsFile string `json:"known_hosts_file"`
	Dir            string `json:"dir"`

	mu sync.Mutex
	// procs are the processes this set started, by host name: what Down may kill.
	procs map[string]proc
	// reaped is closed when a host's process has been waited for, so it leaves no zombie behind.
	reaped map[string]chan struct{}
}

// state is what the set's directory records, so that Down finds the set's processes after a crash.
type state struct {
	Set   *Set            `json:"set"`
	Procs map[string]proc `json:"procs"`
}

var nameRe = regexp.MustCompile(`^[a-z][a-z0-9]{0,5}$`)

func checkName(name string) error {
	if !nameRe.MatchString(name) {
		return fmt.Errorf("bench host set name %q: use 1 to 6 lower-case letters and digits, starting with a letter", name)
	}
	return nil
}

func (o Options) check() error {
	if err := checkName(o.Name); err != nil {
		return err
	}
	if o.Count < 1 || o.Count > MaxHosts {
		return fmt.Errorf("bench host set %s: a set has 1 to %d hosts, not %d", o.Name, MaxHosts, o.Count)
	}
	return nil
}

func setDir(name string) string          { return filepath.Join(BaseDir, name) }
func statePath(name string) string       { return filepath.Join(setDir(name), "set.json") }
func bridgeName(name string) string      { return "kfb-" + name }
func netnsName(set string, n int) string { return fmt.Sprintf("kfb-%s-%d", set, n) }

func newSet(opts Options) *Set {
	dir := setDir(opts.Name)
	s := &Set{Name: opts.Name, Bridge: bridgeName(opts.Name), Dir: dir,
		KeyFile: filepath.Join(dir, "id_ed25519"), KnownHostsFile: filepath.Join(dir, "known_hosts"),
		procs: map[string]proc{}, reaped: map[string]chan struct{}{}}
	for n := 1; n <= opts.Count; n++ {
		name := fmt.Sprintf("%s-%d", opts.Name, n)
		s.Hosts = append(s.Hosts, Host{Name: name, Root: filepath.Join(dir, "hosts", name, "root")})
	}
	return s
}

// save records the set; the caller holds s.mu or is the only one using s.
func (s *Set) save() error {
	data, err := json.MarshalIndent(state{Set: s, Procs: s.procs}, "", "  ")
	if err != nil {
		return err
	}
	// Written whole and renamed into place, but not synced: the state is for after a crash of the process
	// (whose writes the kernel still has); after a crash of the machine there is nothing left to find.
	tmp := statePath(s.Name) + ".tmp"
	if err := os.WriteFile(tmp, append(data, '\n'), 0o600); err != nil {
		return err
	}
	return os.Rename(tmp, statePath(s.Name))
}

// load reads what a set's directory records; os.ErrNotExist when there is nothing.
func load(name string) (*state, error) {
	data, err := os.ReadFile(statePath(name))
	if err != nil {
		return nil, err
	}
	var st state
	if err := json.Unmarshal(data, &st); err != nil {
		return nil, fmt.Errorf("bench host set %s: state %s: %w", name, statePath(name), err)
	}
	if st.Set == nil {
		return nil, fmt.Errorf("bench host set %s: state %s has no set", name, statePath(name))
	}
	return &st, nil
}

// Preflight refuses what cannot work, with what to do about it.
func Preflight() error {
	if os.Geteuid() != 0 {
		return errors.New("bench hosts need root (namespaces, mounts, bridges): run as root")
	}
	for _, tool := range []string{"ip", "nsenter", "mount", "pivot_root", "tar", "zstd"} {
		if _, err := exec.LookPath(tool); err != nil {
			return fmt.Errorf("%s is missing: apt-get install iproute2 util-linux mount tar zstd", tool)
		}
	}
	fs, err := os.ReadFile("/proc/filesystems")
	if err != nil {
		return err
	}
	if !strings.Contains(string(fs), "\toverlay\n") {
		return errors.New("this kernel has no overlayfs, which bench hosts use for their root filesystems")
	}
	return nil
}
