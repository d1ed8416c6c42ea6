package facts

import (
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// runScript runs the probe here, without SSH, with the given shell and PATH line.
func runScript(t *testing.T, shell []string, path string) *Facts {
	t.Helper()
	if _, err := exec.LookPath(shell[0]); err != nil {
		t.Skipf("no %s here", shell[0])
	}
	script := Script()
	const pathLine = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin\n"
	if !strings.Contains(script, pathLine) {
		t.Fatal("the probe no longer sets systemd's PATH")
	}
	if path != "" {
		script = strings.Replace(script, pathLine, "PATH="+path+"\n", 1)
	}
	cmd := exec.Command(shell[0], append(shell[1:], "-c", script)...)
	cmd.Env = []string{"PATH=/usr/bin:/bin"}
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("%s: %v\n%s", shell, err, out)
	}
	f, err := Parse(out)
	if err != nil {
		t.Fatalf("%s: %v\n%s", shell, err, out)
	}
	return f
}

// TestScriptRunsInEveryPOSIXShell runs the probe with dash (Debian's sh) and bash in POSIX mode (the sh of
// the RHEL family); both must say the same.
func TestScriptRunsInEveryPOSIXShell(t *testing.T) {
	dash := runScript(t, []string{"dash"}, "")
	bash := runScript(t, []string{"bash", "--posix"}, "")
	for _, f := range []*Facts{dash, bash} {
		if f.KernelRelease == "" || f.Hostname == "" || f.Cgroups == nil || f.Namespaces == nil || f.Binaries == nil || f.Disk == nil || f.Kubernetes == nil {
			t.Errorf("%+v", f)
		}
		// As root, the overlay test ran; its directory is gone again.
		if os.Geteuid() == 0 {
			if f.Overlay == nil || f.Overlay.MountDir == "" {
				t.Errorf("overlay %+v", f.Overlay)
			} else if _, err := os.Lstat(f.Overlay.MountDir); err == nil {
				t.Errorf("left behind: %s", f.Overlay.MountDir)
			}
		}
	}
	if dash.Hostname != bash.Hostname || dash.MachineID != bash.MachineID || len(dash.Binaries) != len(bash.Binaries) ||
		dash.Sysctls["user.max_user_namespaces"] != bash.Sysctls["user.max_user_namespaces"] {
		t.Errorf("dash and bash disagree:\n%+v\n%+v", dash, bash)
	}
	// dash reads /proc/sys one byte at a time; a multi-digit value must still come back whole.
	want, _ := os.ReadFile("/proc/sys/user/max_user_namespaces")
	if got := dash.Sysctls["user.max_user_namespaces"].Value; got != strings.TrimSpace(string(want)) {
		t.Errorf("max_user_namespaces %q, want %q", got, want)
	}
}

// TestScriptWithoutTools runs the probe where no program but the shell can be found: every optional fact
// becomes unknown, and the probe still finishes.
func TestScriptWithoutTools(t *testing.T) {
	empty := t.TempDir()
	f := runScript(t, []string{"dash"}, empty)
	for _, section := range []string{"time", "uid", "arch", "nproc", "systemd-version", "cgroup-fstype", "disk"} {
		if !strings.HasPrefix(f.Unavailable[section], "no ") {
			t.Errorf("%s: %q, want \"no <tool>\"", section, f.Unavailable[section])
		}
	}
	if !f.Time.IsZero() || f.Root || f.Disk != nil {
		t.Errorf("time %v root %v disk %+v", f.Time, f.Root, f.Disk)
	}
	// What the shell can read by itself is still there.
	if f.KernelRelease == "" || f.Hostname == "" || f.CPUs == 0 || f.MemoryBytes == 0 || f.Swap == nil || f.Cgroups == nil || f.Namespaces == nil {
		t.Errorf("%+v", f)
	}
	// Without ss, /proc/net still lists the sockets.
	if f.Listeners == nil || f.Listeners.Source != "proc" {
		t.Errorf("listeners %+v", f.Listeners)
	}
	if f.Overlay == nil || f.Overlay.NotRun == "" {
		t.Errorf("overlay %+v", f.Overlay)
	}
	for name, path := range f.Binaries {
		if path != "" {
			t.Errorf("%s found at %s with an empty PATH", name, path)
		}
	}
}

// TestScriptListsSocketsWithoutSS checks the /proc/net fallback on this machine's own sockets.
func TestScriptListsSocketsWithoutSS(t *testing.T) {
	// A PATH with every tool but ss.
	dir := t.TempDir()
	for _, name := range []string{"cat", "id", "date", "uname", "getconf", "stat", "df", "readlink", "mktemp", "mount", "umount", "unshare", "mkdir", "rm", "zcat", "gzip", "systemctl"} {
		if p, err := exec.LookPath(name); err == nil {
			if err := os.Symlink(p, filepath.Join(dir, name)); err != nil {
				t.Fatal(err)
			}
		}
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	port := l.Addr().(*net.TCPAddr).Port
	f := runScript(t, []string{"dash"}, dir)
	if f.Listeners == nil || f.Listeners.Source != "proc" {
		t.Fatalf("listeners %+v", f.Listeners)
	}
	if !slices.Contains(f.Listeners.Sockets, Listener{Proto: "tcp", Address: "127.0.0.1", Port: port}) {
		t.Errorf("the test's own listener on 127.0.0.1:%d is missing: %+v", port, f.Listeners.Sockets)
	}
	for _, s := range f.Listeners.Sockets {
		if s.Process != "" || s.Port == 0 || (s.Proto != "tcp" && s.Proto != "udp") {
			t.Errorf("%+v", s)
		}
	}
}
