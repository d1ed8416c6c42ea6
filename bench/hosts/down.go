package hosts

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// Down removes the set: its processes, mounts, namespaces, interfaces and directory. It is Down(s.Name) that
// also knows the processes this Set started when its state file is gone.
func (s *Set) Down() error {
	s.mu.Lock()
	var procs []proc
	for _, p := range s.procs {
		procs = append(procs, p)
	}
	s.mu.Unlock()
	return down(s.Name, procs)
}

// Down removes what is left of the named set, typically by a run that was killed before its own Down: the
// processes its state file records, and whatever carries the set's names (namespaces and what runs in them,
// interfaces, mounts under its directory, the directory). Nothing left is not an error.
func Down(name string) error {
	if err := checkName(name); err != nil {
		return err
	}
	var procs []proc
	// An unreadable state loses only the PIDs: the hosts' processes are also found by their namespaces.
	if st, err := load(name); err == nil {
		for _, p := range st.Procs {
			procs = append(procs, p)
		}
	}
	return down(name, procs)
}

func down(name string, procs []proc) error {
	var errs []error
	var nsFiles []string
	for _, ns := range setNetns(name) {
		nsFiles = append(nsFiles, filepath.Join("/run/netns", ns))
	}
	procs = append(procs, processesInNetns(nsFiles)...)
	if left := killAll(procs, 10*time.Second); len(left) > 0 {
		errs = append(errs, fmt.Errorf("bench host set %s: processes %v would not end", name, left))
	}
	if err := unmountUnder(setDir(name)); err != nil {
		errs = append(errs, err)
	}
	if err := unplug(name); err != nil {
		errs = append(errs, err)
	}
	// The directory goes last, and only when nothing is mounted in it: with a host's overlay still mounted,
	// removing it would delete through the overlay, and the state is what the next Down needs.
	if len(errs) == 0 {
		if err := os.RemoveAll(setDir(name)); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// unmountUnder unmounts everything mounted at or below dir, deepest first.
func unmountUnder(dir string) error {
	var errs []error
	for attempt := 0; ; attempt++ {
		mounts, err := mountsUnder(dir)
		if err != nil || len(mounts) == 0 {
			return err
		}
		if attempt == 50 {
			return fmt.Errorf("still mounted: %s: %w", strings.Join(mounts, ", "), errors.Join(errs...))
		}
		errs = errs[:0]
		for _, m := range mounts {
			if err := syscall.Unmount(m, 0); err != nil && !errors.Is(err, syscall.EINVAL) {
				errs = append(errs, fmt.Errorf("unmount %s: %w", m, err))
			}
		}
		if len(errs) > 0 {
			time.Sleep(100 * time.Millisecond) // busy: a process that was just killed may still hold it
		}
	}
}

// mountsUnder lists the mount points at or below dir from this process's mountinfo, deepest first.
func mountsUnder(dir string) ([]string, error) {
	data, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		return nil, err
	}
	var out []string
	for _, line := range strings.Split(string(data), "\n") {
		f := strings.Fields(line)
		if len(f) < 5 {
			continue
		}
		mp := unescapeMountPath(f[4])
		if mp == dir || strings.HasPrefix(mp, dir+"/") {
			out = append(out, mp)
		}
	}
	slices.SortFunc(out, func(a, b string) int { return len(b) - len(a) })
	return out, nil
}

// unescapeMountPath undoes mountinfo's octal escapes (\040 for a space, and so on).
func unescapeMountPath(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+3 < len(s) {
			if n, err := strconv.ParseUint(s[i+1:i+4], 8, 8); err == nil {
				b.WriteByte(byte(n))
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}
