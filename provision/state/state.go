// Package state keeps kforge's local record of what it manages on each host, so that what leaves the
// configuration is removed, and the lock that keeps two applies apart. Current state always comes from the hosts.
package state

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"net/netip"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"slices"
	"strings"

	"github.com/kforge/kforge/internal/atomicfile"
	"github.com/kforge/kforge/internal/jsonerr"
	"github.com/kforge/kforge/provision/plan"
	"github.com/kforge/kforge/provision/resource"
)

// Version is the state file's format.
const Version = 1

// State is the record.
type State struct {
	Version int `json:"version"`
	// Lineage names this cluster's history; Serial counts its writes. A saved plan records both.
	Lineage string `json:"lineage"`
	Serial  int    `json:"serial"`
	// Hosts lists, per host, the resources kforge placed there, in the order it placed them.
	Hosts map[string][]plan.Managed `json:"hosts"`
	// Versions remembers what each binary kforge placed is ("kubelet v1.37.2"), by host and path.
	Versions map[string]map[string]string `json:"versions,omitempty"`
	// Connections records how each host was reached, so that a host removed from the configuration can still be
	// cleaned up by the next apply.
	Connections map[string]Connection `json:"connections,omitempty"`
	// PodCIDRs is each node's slice of the pod CIDR, as kforge assigned it: a node keeps its slice for life.
	PodCIDRs map[string]string `json:"pod_cidrs,omitempty"`
	// Drained lists the nodes an apply drained and has not uncordoned yet: the next apply uncordons them, also
	// when the one that drained them was killed.
	Drained map[string]bool `json:"drained,omitempty"`
}

// Connection is how to reach a host (no bastion: a host behind one must stay in the configuration until its
// removal has been applied).
type Connection struct {
	Address        string `json:"address"`
	Port           int    `json:"port"`
	User           string `json:"user"`
	PrivateKeyFile string `json:"private_key_file,omitempty"`
	KnownHostsFile string `json:"known_hosts_file,omitempty"`
	HostKeyPolicy  string `json:"host_key_policy"`
	Sudo           bool   `json:"sudo"`
}

// FileName is the state's file in a state directory.
const FileName = "state.json"

// Load reads the state in dir; a directory without one gives an empty state, without a lineage until it is
// first saved (so that a plan made before any state can tell that none has been written since).
// A state that cannot be read is never rewritten: Load only reads, and the error says what is wrong and where.
func Load(dir string) (*State, error) {
	path := filepath.Join(dir, FileName)
	data, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return &State{Version: Version, Hosts: map[string][]plan.Managed{}}, nil
	}
	if err != nil {
		return nil, err
	}
	return Parse(data, path)
}

// Parse reads a state document; where names it in errors (a file, or a key in a backend).
func Parse(data []byte, path string) (*State, error) {
	var s State
	if err := json.Unmarshal(data, &s); err != nil {
		return nil, fmt.Errorf("state %s cannot be read: %w; %s", path, jsonerr.Explain(data, err), damaged)
	}
	if s.Version != Version {
		if s.Version == 0 {
			return nil, fmt.Errorf("state %s cannot be read: it has no version, so it is not a kforge state; %s", path, damaged)
		}
		return nil, fmt.Errorf("state %s has format %d; this kforge reads %d", path, s.Version, Version)
	}
	if err := s.check(); err != nil {
		return nil, fmt.Errorf("state %s cannot be read: %w; %s", path, err, damaged)
	}
	if s.Hosts == nil {
		s.Hosts = map[string][]plan.Managed{}
	}
	return &s, nil
}

// damaged is what to do about a state that cannot be read: kforge writes it whole or not at all (a temporary
// file renamed over it), so the damage came from elsewhere, and kforge leaves the file as it is.
const damaged = "kforge leaves it as it is: restore it from a backup (moving it aside starts a new state, which forgets what kforge placed on the hosts)"

// check refuses values kforge never writes. The resources matter most: refresh reads what they name as root
// and an apply removes what is no longer configured, so an entry must be one kforge could have recorded.
func (s *State) check() error {
	if s.Serial < 0 {
		return fmt.Errorf("serial %d is negative", s.Serial)
	}
	for _, host := range slices.Sorted(maps.Keys(s.Hosts)) {
		seen := map[string]bool{}
		for i, m := range s.Hosts[host] {
			if m.ID == "" || m.Kind == "" || m.Name == "" {
				return fmt.Errorf("host %q: resource %d has no id, kind or name", host, i+1)
			}
			if err := checkEntry(m); err != nil {
				return fmt.Errorf("host %q: resource %d (%s %q): %w", host, i+1, m.Kind, m.Name, err)
			}
			if seen[m.ID] {
				return fmt.Errorf("host %q: resource %d (%s %q) is listed twice", host, i+1, m.Kind, m.Name)
			}
			seen[m.ID] = true
		}
	}
	for _, host := range slices.Sorted(maps.Keys(s.Versions)) {
		for _, p := range slices.Sorted(maps.Keys(s.Versions[host])) {
			if err := checkPath(p); err != nil {
				return fmt.Errorf("host %q: the version of binary %q: %w", host, p, err)
			}
		}
	}
	for _, host := range slices.Sorted(maps.Keys(s.PodCIDRs)) {
		if cidr := s.PodCIDRs[host]; !validPrefix(cidr) {
			return fmt.Errorf("host %q: pod CIDR %q is not a CIDR", host, cidr)
		}
	}
	return nil
}

// Names as kforge gives them to each kind of resource.
var (
	// systemd's unit names: a name of its characters and a unit type's suffix (kforge makes services and a timer).
	unitName = regexp.MustCompile(`^[A-Za-z0-9:_][A-Za-z0-9:_.@-]*\.(service|socket|target|timer|path|mount|automount|swap|slice|scope|device)$`)
	// A kernel module as modprobe names it.
	moduleName = regexp.MustCompile(`^[A-Za-z0-9_-]+$`)
	// sysctl's parts between dots.
	sysctlPart = regexp.MustCompile(`^[a-z0-9_-]+$`)
	// A system account as useradd accepts it by default, without the trailing '$' of machine accounts.
	userName = regexp.MustCompile(`^[a-z_][a-z0-9_-]{0,31}$`)
)

// checkEntry refuses a resource kforge would not have recorded: an id that is not its kind and name, a kind
// that is not a resource's, or a name that kind never has.
func checkEntry(m plan.Managed) error {
	if want := resource.ID(resource.Kind(m.Kind), m.Name); m.ID != want {
		return fmt.Errorf("its id %q is not %q", m.ID, want)
	}
	switch resource.Kind(m.Kind) {
	case resource.File, resource.Directory, resource.Binary, resource.Symlink:
		if err := checkPath(m.Name); err != nil {
			return err
		}
	case resource.Sysctl:
		for _, part := range strings.Split(m.Name, ".") {
			if part == "" {
				return errors.New(`a sysctl name has no empty part (no "..", no dot at either end)`)
			}
			if !sysctlPart.MatchString(part) {
				return fmt.Errorf("a sysctl name is parts of a-z, 0-9, '_' and '-' between dots, not %q", part)
			}
		}
	case resource.Module:
		if !moduleName.MatchString(m.Name) {
			return errors.New("a kernel module's name is A-Z, a-z, 0-9, '_' and '-'")
		}
	case resource.Unit:
		if len(m.Name) > 255 || !unitName.MatchString(m.Name) {
			return errors.New("not a systemd unit name (A-Z, a-z, 0-9, ':', '_', '.', '@' and '-', ending in a unit type such as .service or .timer)")
		}
	case resource.User:
		if !userName.MatchString(m.Name) {
			return errors.New("a system user's name is a-z, 0-9, '_' and '-', starting with a letter or '_', at most 32 long")
		}
		if m.Name == "root" {
			return errors.New("root is never a user kforge made (and an apply removes the users it made that are no longer configured)")
		}
	default:
		return fmt.Errorf("kind %q is not one kforge manages", m.Kind)
	}
	return resource.Owned(resource.Kind(m.Kind), m.Name)
}

// checkPath accepts a path as kforge names what it places: absolute and clean, not the root, and without
// control characters or the backslashes and tabs refresh cannot carry.
func checkPath(p string) error {
	switch {
	case !strings.HasPrefix(p, "/"):
		return errors.New("the path is not absolute")
	case p == "/":
		return errors.New("the path is the root directory")
	case path.Clean(p) != p:
		return fmt.Errorf("the path is not clean (cleaned, it is %q)", path.Clean(p))
	case strings.ContainsFunc(p, func(r rune) bool { return r < 0x20 || r == 0x7f }):
		return errors.New("the path holds a control character (a NUL, a newline, a tab, …)")
	case strings.ContainsRune(p, '\\'):
		return errors.New("the path holds a backslash")
	}
	return nil
}

func validPrefix(s string) bool {
	_, err := netip.ParsePrefix(s)
	return err == nil
}

// Save writes the state atomically to dir with the next serial.
func (s *State) Save(dir string) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	data, err := s.Next()
	if err != nil {
		return err
	}
	if err := atomicfile.Write(filepath.Join(dir, FileName), data, 0o600); err != nil {
		return err
	}
	return s.Advance(data)
}

// Next is the document that saving s writes: s with the next serial (and a new lineage for a first save). s is
// unchanged until Advance says that it was written.
func (s *State) Next() ([]byte, error) {
	next := *s
	if next.Lineage == "" {
		next.Lineage = newLineage()
	}
	next.Serial++
	data, err := json.MarshalIndent(next, "", "  ")
	if err != nil {
		return nil, err
	}
	return append(data, '\n'), nil
}

// Advance gives s the lineage and serial of written, a document of Next's that was stored.
func (s *State) Advance(written []byte) error {
	var ref struct {
		Lineage string `json:"lineage"`
		Serial  int    `json:"serial"`
	}
	if err := json.Unmarshal(written, &ref); err != nil {
		return err
	}
	s.Lineage, s.Serial = ref.Lineage, ref.Serial
	return nil
}

// Ref is what a plan records of the state it was made against.
func (s *State) Ref() plan.StateRef { return plan.StateRef{Lineage: s.Lineage, Serial: s.Serial} }

// Record notes that a resource is in place on a host (once, keeping placement order).
func (s *State) Record(host string, m plan.Managed) {
	for _, x := range s.Hosts[host] {
		if x.ID == m.ID {
			return
		}
	}
	s.Hosts[host] = append(s.Hosts[host], m)
}

// Forget notes that a resource was removed from a host.
func (s *State) Forget(host, id string) {
	list := s.Hosts[host]
	for i, x := range list {
		if x.ID == id {
			s.Hosts[host] = append(list[:i:i], list[i+1:]...)
			break
		}
	}
	if len(s.Hosts[host]) == 0 {
		delete(s.Hosts, host)
		delete(s.Connections, host)
	}
}

func newLineage() string {
	b := make([]byte, 16)
	if _, err := rand.Read(b); err != nil {
		panic(err) // the kernel's random source does not fail
	}
	return hex.EncodeToString(b)
}
