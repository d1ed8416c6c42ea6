package lab

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// kubeletSysctls are the kernel settings the kubelet insists on at start. kernel.* and vm.* are not namespaced:
// inside a lab host they are read-only and show the machine's values, so the lab sets them on the machine, and
// puts the old values back when the last lab goes down.
var kubeletSysctls = []struct{ key, value string }{
	{"vm.overcommit_memory", "1"},
	{"vm.panic_on_oom", "0"},
	{"kernel.panic", "10"},
	{"kernel.panic_on_oops", "1"},
	{"kernel.keys.root_maxkeys", "1000000"},
	{"kernel.keys.root_maxbytes", "25000000"},
}

// Change is one machine setting a lab changed, for the user to see.
type Change struct {
	Key, From, To string
}

func (c Change) String() string { return fmt.Sprintf("%s: %s -> %s", c.Key, c.From, c.To) }

func sysctlPath(key string) string { return "/proc/sys/" + strings.ReplaceAll(key, ".", "/") }

func readSysctl(key string) (string, error) {
	b, err := os.ReadFile(sysctlPath(key))
	return strings.TrimSpace(string(b)), err
}

func (m *Manager) savedSysctlsPath() string {
	return filepath.Join(m.Paths.Root, "machine-sysctls.json")
}

// applySysctls sets what the kubelet needs and records what was there before, once (a second lab finds the
// record and keeps it, so the original values survive).
func (m *Manager) applySysctls() ([]Change, error) {
	saved := map[string]string{}
	if data, err := os.ReadFile(m.savedSysctlsPath()); err == nil {
		if err := json.Unmarshal(data, &saved); err != nil {
			return nil, fmt.Errorf("%s: %w", m.savedSysctlsPath(), err)
		}
	}
	var changes []Change
	for _, s := range kubeletSysctls {
		cur, err := readSysctl(s.key)
		if err != nil {
			return changes, fmt.Errorf("read %s: %w", s.key, err)
		}
		if cur == s.value {
			continue
		}
		if _, ok := saved[s.key]; !ok {
			saved[s.key] = cur
		}
		data, _ := json.MarshalIndent(saved, "", "  ")
		if err := writeFileAtomic(m.savedSysctlsPath(), data, 0o600); err != nil {
			return changes, err
		}
		if err := os.WriteFile(sysctlPath(s.key), []byte(s.value), 0o644); err != nil {
			return changes, fmt.Errorf("set %s = %s on this machine: %w", s.key, s.value, err)
		}
		changes = append(changes, Change{Key: s.key, From: cur, To: s.value})
	}
	return changes, nil
}

// restoreSysctls puts back what applySysctls changed, if the value is still the one the lab set.
func (m *Manager) restoreSysctls() ([]Change, error) {
	data, err := os.ReadFile(m.savedSysctlsPath())
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	saved := map[string]string{}
	if err := json.Unmarshal(data, &saved); err != nil {
		return nil, fmt.Errorf("%s: %w", m.savedSysctlsPath(), err)
	}
	var changes []Change
	for _, s := range kubeletSysctls {
		old, ok := saved[s.key]
		if !ok {
			continue
		}
		cur, err := readSysctl(s.key)
		if err != nil || cur != s.value {
			continue // changed by someone else since: theirs now
		}
		if err := os.WriteFile(sysctlPath(s.key), []byte(old), 0o644); err != nil {
			return changes, fmt.Errorf("restore %s = %s: %w", s.key, old, err)
		}
		changes = append(changes, Change{Key: s.key, From: cur, To: old})
	}
	return changes, os.Remove(m.savedSysctlsPath())
}
