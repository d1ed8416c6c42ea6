package hosts

import (
	"bytes"
	"os"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// proc names one process for good: a PID alone may be reused by an unrelated process after a crash, the PID
// with its start time (clock ticks after boot) cannot.
type proc struct {
	PID   int    `json:"pid"`
	Start uint64 `json:"start"`
}

// procStat reads a process's state letter and start time; ok is false when it does not exist.
func procStat(pid int) (state byte, start uint64, ok bool) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0, 0, false
	}
	// The command name may hold spaces and parentheses; it ends at the last ')'.
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0, 0, false
	}
	f := strings.Fields(string(b[i+1:]))
	// f[0] is field 3 of proc(5) (state), f[19] field 22 (starttime).
	if len(f) < 20 || len(f[0]) != 1 {
		return 0, 0, false
	}
	start, err = strconv.ParseUint(f[19], 10, 64)
	if err != nil {
		return 0, 0, false
	}
	return f[0][0], start, true
}

func identify(pid int) (proc, bool) {
	_, start, ok := procStat(pid)
	return proc{PID: pid, Start: start}, ok
}

// alive reports whether p still runs: the same process (not a reused PID), and not a zombie.
func (p proc) alive() bool {
	state, start, ok := procStat(p.PID)
	return ok && start == p.Start && state != 'Z' && state != 'X'
}

// present reports whether p is still in the process table: alive, or dead and waiting for its parent to reap
// it. A host whose run was killed has the machine's init for a parent, which may take a while (2 s here).
func (p proc) present() bool {
	_, start, ok := procStat(p.PID)
	return ok && start == p.Start
}

// processesInNetns lists every process whose network namespace is one of nsFiles (the /run/netns bind
// mounts): what is left of a host whose process was never recorded, or was entered from outside.
func processesInNetns(nsFiles []string) []proc {
	want := map[[2]uint64]bool{}
	for _, f := range nsFiles {
		var st syscall.Stat_t
		if syscall.Stat(f, &st) == nil {
			want[[2]uint64{st.Dev, st.Ino}] = true
		}
	}
	if len(want) == 0 {
		return nil
	}
	entries, _ := os.ReadDir("/proc")
	var out []proc
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		var st syscall.Stat_t
		if syscall.Stat("/proc/"+e.Name()+"/ns/net", &st) == nil && want[[2]uint64{st.Dev, st.Ino}] {
			if p, ok := identify(pid); ok {
				out = append(out, p)
			}
		}
	}
	return out
}

// killAll SIGKILLs the processes and waits until they have left the process table; it returns those still
// alive at the deadline. Killing a host's sshd, PID 1 of its PID namespace, makes the kernel kill everything
// else in that namespace too. A dead process that nobody reaps by the deadline holds no namespace or mount any
// more, so it does not count.
func killAll(procs []proc, timeout time.Duration) []int {
	for _, p := range procs {
		if p.alive() {
			_ = syscall.Kill(p.PID, syscall.SIGKILL)
		}
	}
	deadline := time.Now().Add(timeout)
	for {
		var present, alive []int
		for _, p := range procs {
			if p.present() {
				present = append(present, p.PID)
				if p.alive() {
					alive = append(alive, p.PID)
				}
			}
		}
		if len(present) == 0 || time.Now().After(deadline) {
			return alive
		}
		time.Sleep(5 * time.Millisecond)
	}
}
