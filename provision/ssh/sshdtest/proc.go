package sshdtest

import (
	"bytes"
	"fmt"
	"os"
	"strconv"
	"strings"
	"syscall"
	"time"
)

type procStat struct {
	ppid  int
	state byte
}

// gone means the process can no longer run: it exited or is a zombie.
func (p procStat) gone() bool { return p.state == 'Z' || p.state == 'X' }

func (p procStat) stopped() bool { return p.state == 'T' || p.state == 't' }

func readStat(pid int) (procStat, bool) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return procStat{}, false
	}
	// The command name may contain spaces and parentheses; it ends at the
	// last ')'.
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return procStat{}, false
	}
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 2 || len(f[0]) != 1 {
		return procStat{}, false
	}
	ppid, err := strconv.Atoi(f[1])
	if err != nil {
		return procStat{}, false
	}
	return procStat{ppid: ppid, state: f[0][0]}, true
}

func allPIDs() ([]int, error) {
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return nil, fmt.Errorf("list processes: %w", err)
	}
	var pids []int
	for _, e := range entries {
		if pid, err := strconv.Atoi(e.Name()); err == nil {
			pids = append(pids, pid)
		}
	}
	return pids, nil
}

// descendants returns the live processes below root.
func descendants(root int) ([]int, error) {
	pids, err := allPIDs()
	if err != nil {
		return nil, err
	}
	children := map[int][]int{}
	for _, pid := range pids {
		if st, ok := readStat(pid); ok && !st.gone() {
			children[st.ppid] = append(children[st.ppid], pid)
		}
	}
	var out []int
	queue := []int{root}
	for len(queue) > 0 {
		p := queue[0]
		queue = queue[1:]
		for _, c := range children[p] {
			out = append(out, c)
			queue = append(queue, c)
		}
	}
	return out, nil
}

// killDescendants SIGKILLs the tree below root, which the caller has
// stopped. Each process is stopped as soon as it is found, so none can fork
// behind the scan or be reparented out of reach before the final kill.
func killDescendants(root int) (int, error) {
	waitFor([]int{root}, 2*time.Second, func(st procStat) bool { return st.stopped() })
	frozen := map[int]bool{}
	var order []int
	for round := 0; ; round++ {
		if round == 100 {
			return 0, fmt.Errorf("process tree of %d keeps growing", root)
		}
		pids, err := descendants(root)
		if err != nil {
			return 0, err
		}
		var fresh []int
		for _, pid := range pids {
			if !frozen[pid] {
				fresh = append(fresh, pid)
			}
		}
		if len(fresh) == 0 {
			break
		}
		for _, pid := range fresh {
			frozen[pid] = true
			order = append(order, pid)
			_ = syscall.Kill(pid, syscall.SIGSTOP)
		}
		waitFor(fresh, 2*time.Second, func(st procStat) bool { return st.stopped() })
	}
	for _, pid := range order {
		_ = syscall.Kill(pid, syscall.SIGKILL)
	}
	if left := waitFor(order, 3*time.Second, func(procStat) bool { return false }); len(left) > 0 {
		return len(order), fmt.Errorf("processes %v survive SIGKILL", left)
	}
	return len(order), nil
}

// waitFor polls until every pid is gone or satisfies ok, and returns those
// that did not by the deadline.
func waitFor(pids []int, timeout time.Duration, ok func(procStat) bool) []int {
	deadline := time.Now().Add(timeout)
	for {
		var left []int
		for _, pid := range pids {
			if st, exists := readStat(pid); exists && !st.gone() && !ok(st) {
				left = append(left, pid)
			}
		}
		if len(left) == 0 || time.Now().After(deadline) {
			return left
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// pidsOfUID lists live processes whose real or effective UID is uid.
func pidsOfUID(uid int) ([]int, error) {
	pids, err := allPIDs()
	if err != nil {
		return nil, err
	}
	want := strconv.Itoa(uid)
	var out []int
	for _, pid := range pids {
		b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
		if err != nil {
			continue
		}
		for _, line := range strings.Split(string(b), "\n") {
			f := strings.Fields(line)
			if len(f) >= 3 && f[0] == "Uid:" && (f[1] == want || f[2] == want) {
				if st, ok := readStat(pid); ok && !st.gone() {
					out = append(out, pid)
				}
				break
			}
		}
	}
	return out, nil
}

// listening reports whether process pid holds a listening TCP socket on
// port. /proc/PID/net shows the sockets of pid's network namespace.
func listening(pid, port int) bool {
	inodes := map[string]bool{}
	wantPort := fmt.Sprintf(":%04X", port)
	for _, table := range []string{"tcp", "tcp6"} {
		b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/net/" + table)
		if err != nil {
			continue
		}
		for _, line := range strings.Split(string(b), "\n")[1:] {
			// sl local_address rem_address st ... inode
			f := strings.Fields(line)
			if len(f) >= 10 && strings.HasSuffix(f[1], wantPort) && f[3] == "0A" {
				inodes["socket:["+f[9]+"]"] = true
			}
		}
	}
	if len(inodes) == 0 {
		return false
	}
	fdDir := "/proc/" + strconv.Itoa(pid) + "/fd"
	entries, err := os.ReadDir(fdDir)
	if err != nil {
		return false
	}
	for _, e := range entries {
		if target, err := os.Readlink(fdDir + "/" + e.Name()); err == nil && inodes[target] {
			return true
		}
	}
	return false
}
