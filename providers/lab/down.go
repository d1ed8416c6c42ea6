package lab

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"time"
)

// DownResult says what Down removed.
type DownResult struct {
	Hosts   []string
	Sysctls []Change // restored on the machine, when this was the last lab
}

// Down stops a lab's hosts and removes everything the lab made on the machine: processes, cgroups, veths,
// the bridge, mounts and its directory. It works from the lab's state and, for what the state does not list
// (a run killed mid-way), from the names Up gives things; running it again finds nothing to do.
func (m *Manager) Down(ctx context.Context, name string) (*DownResult, error) {
	if err := checkName(name); err != nil {
		return nil, err
	}
	res := &DownResult{}
	hosts := map[string]int{}
	if l, err := m.Load(name); err == nil {
		for _, h := range l.Hosts {
			hosts[h.Name] = h.PID
		}
	}
	// Hosts the state may not list: their cgroups and root filesystems carry their names.
	for _, d := range labCgroups(name) {
		entries, _ := os.ReadDir(d)
		for _, e := range entries {
			if e.IsDir() {
				if _, ok := hosts[e.Name()]; !ok {
					hosts[e.Name()] = 0
				}
			}
		}
	}
	hostsDir := filepath.Join(m.dir(name), "hosts")
	if entries, err := os.ReadDir(hostsDir); err == nil {
		for _, e := range entries {
			if _, ok := hosts[e.Name()]; !ok && e.IsDir() {
				hosts[e.Name()] = 0
			}
		}
	}

	var errs []error
	done := make(chan error, len(hosts))
	for host, pid := range hosts {
		res.Hosts = append(res.Hosts, host)
		go func() { done <- stopHost(name, host, pid) }()
	}
	for range hosts {
		if err := <-done; err != nil {
			errs = append(errs, err)
		}
	}
	if busy := removeCgroups(labCgroups(name)); len(busy) > 0 {
		errs = append(errs, fmt.Errorf("cgroups still in use: %s", strings.Join(busy, ", ")))
	}
	removeCgroups(emptyParents())
	if err := deleteLink(bridgeName(name)); err != nil {
		errs = append(errs, err)
	}
	if isMountPoint(hostsDir) {
		if err := syscall.Unmount(hostsDir, 0); err != nil {
			errs = append(errs, fmt.Errorf("unmount %s: %w", hostsDir, err))
		}
	}
	if len(errs) == 0 {
		unlock, err := m.LockMachine()
		if err != nil {
			return res, err
		}
		defer unlock()
		if err := os.RemoveAll(m.dir(name)); err != nil {
			errs = append(errs, err)
		}
		if others, _ := m.List(); len(others) == 0 {
			changes, err := m.restoreSysctls()
			res.Sysctls = changes
			if err != nil && !errors.Is(err, os.ErrNotExist) {
				errs = append(errs, err)
			}
		}
	}
	return res, errors.Join(errs...)
}

// emptyParents lists the kforge-lab directories, which removeCgroups removes once no lab is left in them.
func emptyParents() []string {
	var out []string
	for _, d := range findCgroups(cgroupDir) {
		if entries, _ := os.ReadDir(d); !hasSubdir(entries) {
			out = append(out, d)
		}
	}
	return out
}

func hasSubdir(entries []os.DirEntry) bool {
	for _, e := range entries {
		if e.IsDir() {
			return true
		}
	}
	return false
}

// stopHost powers a host off: SIGTERM to nspawn is a clean shutdown. If nspawn is gone but the host's systemd
// still runs (nspawn was SIGKILLed), its init gets SIGRTMIN+3 (systemd's "power off"); whatever is left in the
// host's cgroups is killed.
func stopHost(lab, host string, pid int) error {
	if starting(pid, host) {
		_ = syscall.Kill(pid, syscall.SIGTERM)
		if !waitGone(func() bool { return starting(pid, host) }, 20*time.Second) {
			_ = syscall.Kill(pid, syscall.SIGKILL)
			waitGone(func() bool { return starting(pid, host) }, 5*time.Second)
		}
	}
	cgs := hostCgroups(lab, host)
	if procs := cgroupProcs(cgs); len(procs) > 0 {
		const sigRTMIN3 = syscall.Signal(34 + 3)
		for _, d := range cgs {
			for _, p := range cgroupProcs([]string{filepath.Join(d, "payload", "init.scope")}) {
				_ = syscall.Kill(p, sigRTMIN3)
			}
		}
		if !waitGone(func() bool { return len(cgroupProcs(cgs)) > 0 }, 10*time.Second) {
			for _, p := range cgroupProcs(cgs) {
				_ = syscall.Kill(p, syscall.SIGKILL)
			}
			waitGone(func() bool { return len(cgroupProcs(cgs)) > 0 }, 5*time.Second)
		}
	}
	var errs []error
	if left := cgroupProcs(cgs); len(left) > 0 {
		errs = append(errs, fmt.Errorf("host %s: processes %v would not stop", host, left))
	}
	if busy := removeCgroups(cgs); len(busy) > 0 {
		errs = append(errs, fmt.Errorf("host %s: cgroups still in use: %s", host, strings.Join(busy, ", ")))
	}
	// nspawn removes its veth when it exits; not when it was killed.
	if err := deleteLink(vethName(host)); err != nil {
		errs = append(errs, err)
	}
	_ = os.RemoveAll(filepath.Join("/run/systemd/nspawn/propagate", host))
	return errors.Join(errs...)
}

// vethName is the machine-side interface nspawn makes for --network-bridge.
func vethName(host string) string { return "vb-" + host }

func waitGone(alive func() bool, timeout time.Duration) bool {
	deadline := time.Now().Add(timeout)
	for alive() {
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(50 * time.Millisecond)
	}
	return true
}

// isMountPoint compares the directory's device with its parent's.
func isMountPoint(dir string) bool {
	var a, b syscall.Stat_t
	if syscall.Stat(dir, &a) != nil || syscall.Stat(filepath.Dir(dir), &b) != nil {
		return false
	}
	return a.Dev != b.Dev
}
