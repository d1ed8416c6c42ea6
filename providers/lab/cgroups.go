package lab

import (
	"bufio"
	"bytes"
	"os"
	"path/filepath"
	"sort"
	"strings"
)

// Each lab host lives in its own cgroup, …/kforge-lab/<lab>/<host>, in every cgroup v1 hierarchy (and the
// unified one): nspawn's --keep-unit would otherwise put all hosts in one cgroup, and stopping one host would
// need to tell their processes apart.
const cgroupDir = "kforge-lab"

// hostCgroups finds the host's cgroup directories wherever they were made (under whichever cgroup the process
// that started the lab was in).
func hostCgroups(lab, host string) []string {
	return findCgroups(filepath.Join(cgroupDir, lab, host))
}

// labCgroups finds the lab's cgroup directories.
func labCgroups(lab string) []string { return findCgroups(filepath.Join(cgroupDir, lab)) }

func findCgroups(suffix string) []string {
	var out []string
	hierarchies, _ := os.ReadDir("/sys/fs/cgroup")
	for _, h := range hierarchies {
		root := filepath.Join("/sys/fs/cgroup", h.Name())
		_ = filepath.WalkDir(root, func(p string, d os.DirEntry, err error) error {
			if err != nil || !d.IsDir() {
				return nil
			}
			if strings.HasSuffix(p, "/"+suffix) {
				out = append(out, p)
				return filepath.SkipDir
			}
			return nil
		})
	}
	return out
}

// cgroupProcs lists every process in the cgroup directories and below.
func cgroupProcs(dirs []string) []int {
	seen := map[int]bool{}
	for _, d := range dirs {
		_ = filepath.WalkDir(d, func(p string, e os.DirEntry, err error) error {
			if err != nil || e.IsDir() || e.Name() != "cgroup.procs" {
				return nil
			}
			data, _ := os.ReadFile(p)
			sc := bufio.NewScanner(bytes.NewReader(data))
			for sc.Scan() {
				var pid int
				for _, c := range sc.Text() {
					pid = pid*10 + int(c-'0')
				}
				if pid > 0 {
					seen[pid] = true
				}
			}
			return nil
		})
	}
	out := make([]int, 0, len(seen))
	for p := range seen {
		out = append(out, p)
	}
	sort.Ints(out)
	return out
}

// removeCgroups removes the directories deepest first; a cgroup with processes left is reported.
func removeCgroups(dirs []string) []string {
	var busy []string
	for _, d := range dirs {
		var all []string
		_ = filepath.WalkDir(d, func(p string, e os.DirEntry, err error) error {
			if err == nil && e.IsDir() {
				all = append(all, p)
			}
			return nil
		})
		sort.Slice(all, func(i, j int) bool { return len(all[i]) > len(all[j]) })
		for _, p := range all {
			if err := os.Remove(p); err != nil && !os.IsNotExist(err) {
				busy = append(busy, p)
			}
		}
	}
	return busy
}
