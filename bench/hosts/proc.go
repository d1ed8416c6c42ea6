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

// procStat reads a process's state letter, parent and start time; ok is false when it does not exist.
func procStat(pid int) (state byte, ppid int, start uint64, ok bool) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0, 0, 0, false
	}
	// The command name may hold spaces and parentheses; it ends at the last ')'.
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0, 0, 0, false
	}
	f := strings.Fields(string(b[i+1:]))
	// f[0] is field 3 of proc(5) (state), f[1] field 4 (ppid), f[19] field 22 (starttime).
	if len(f) < 20 || len(f[0]) != 1 {
		return 0, 0, 0, false
	}
	ppid, err1 := strconv.Atoi(f[1])
	start, err2 := strconv.ParseUint(f[19], 10, 64)
	if err1 != nil || err2 != nil {
		return 0, 0, 0, false
	}
	return f[0][0], ppid, start, true
}

func identify(pid int) (proc, bool) {
	_, _, start, ok := procStat(pid)
	return proc{PID: pid, Start: start}, ok
}

// alive reports whether p still runs: the same process (not a reused PID), and not a zombie.
func (p proc) alive() bool {
	state, _, start, ok := procStat(p.PID)
	return ok && start == p.Start && state != 'Z' && state != 'X'
}

// gone reports whether p has left the process table, or is a zombie that this process will not reap (its
// parent died and another reaps it, or never does: either way it holds no namespace or mount any more).
func (p proc) gone() bool {
	state, ppid, start, ok := procStat(p.PID)
	if !ok || start != p.Start {
		return true
	}
	return (state == 'Z' || state == 'X') && ppid != os.Getpid()
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

// killAll SIGKILLs the processes and waits until they are gone. Killing a host's sshd, PID 1 of its PID
// namespace, makes the kernel kill everything else in that namespace too.
func killAll(procs []proc, timeout time.Duration) []int {
	for _, p := range procs {
		if p.alive() {
			_ = syscall.Kill(p.PID, syscall.SIGKILL)
		}
	}
	deadline := time.Now().Add(timeout)
	for {
		var left []int
		for _, p := range procs {
			if !p.gone() {
				left = append(left, p.PID)
			}
		}
		if len(left) == 0 || time.Now().After(deadline) {
			return left
		}
		time.Sleep(5 * time.Millisecond)
	}
}
