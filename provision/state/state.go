// Package state keeps kforge's local record of what it manages on each host, so that what leaves the
// configuration is removed, and the lock that keeps two applies apart. Current state always comes from the hosts.
package state

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/kforge/kforge/internal/atomicfile"
	"github.com/kforge/kforge/provision/plan"
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

const fileName = "state.json"

// Load reads the state in dir; a directory without one gives an empty state, without a lineage until it is
// first saved (so that a plan made before any state can tell that none has been written since).
func Load(dir string) (*State, error) {
	data, err := os.ReadFile(filepath.Join(dir, fileName))
	if errors.Is(err, os.ErrNotExist) {
		return &State{Version: Version, Hosts: map[string][]plan.Managed{}}, nil
	}
	if err != nil {
		return nil, err
	}
	var s State
	if err := json.Unmarshal(data, &s); err != nil {
		return nil, fmt.Errorf("state %s: %w", filepath.Join(dir, fileName), err)
	}
	if s.Version != Version {
		return nil, fmt.Errorf("state %s has format %d; this kforge reads %d", filepath.Join(dir, fileName), s.Version, Version)
	}
	if s.Hosts == nil {
		s.Hosts = map[string][]plan.Managed{}
	}
	return &s, nil
}

// Save writes the state atomically with the next serial.
func (s *State) Save(dir string) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	if s.Lineage == "" {
		s.Lineage = newLineage()
	}
	s.Serial++
	data, err := json.MarshalIndent(s, "", "  ")
	if err != nil {
		return err
	}
	return atomicfile.Write(filepath.Join(dir, fileName), append(data, '\n'), 0o600)
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
