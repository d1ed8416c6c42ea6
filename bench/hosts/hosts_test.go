package hosts_test

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/kforge/kforge/bench/hosts"
)

// needHosts skips the test, saying why, on a machine that cannot have bench hosts.
func needHosts(t *testing.T) {
	t.Helper()
	if err := hosts.Preflight(); err != nil {
		t.Skip("no bench hosts here: " + err.Error())
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	if _, err := hosts.Prepare(ctx); err != nil {
		t.Skip("no bench hosts here: the lab image cannot be built: " + err.Error())
	}
}

func up(t *testing.T, name string, count int) *hosts.Set {
	t.Helper()
	// Down after the test whatever happens in it; what a run killed outright leaves, the next Up removes.
	t.Cleanup(func() {
		if err := hosts.Down(name); err != nil {
			t.Errorf("down %s: %v", name, err)
		}
	})
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	start := time.Now()
	s, err := hosts.Up(ctx, hosts.Options{Name: name, Count: count})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("Up of %d hosts: %v", count, time.Since(start).Round(time.Millisecond))
	return s
}

// sshRun runs a command on a host with OpenSSH, checking its key strictly against the set's known_hosts.
func sshRun(s *hosts.Set, h hosts.Host, command string) (string, error) {
	out, err := exec.Command("ssh", "-F", "/dev/null", "-i", s.KeyFile, "-o", "IdentitiesOnly=yes",
		"-o", "UserKnownHostsFile="+s.KnownHostsFile, "-o", "StrictHostKeyChecking=yes", "-o", "BatchMode=yes",
		"-o", "ConnectTimeout=10", "root@"+h.Address.String(), command).CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("ssh %s %q: %w: %s", h.Name, command, err, out)
	}
	return strings.TrimSpace(string(out)), nil
}

// trace is what a set leaves on the machine, taken while it is up so that it can be looked for afterwards
// without the set's help.
type trace struct {
	name, dir string
	pids      []int
}

func traceOf(s *hosts.Set) trace {
	tr := trace{name: s.Name, dir: s.Dir}
	for _, h := range s.Hosts {
		tr.pids = append(tr.pids, h.PID)
	}
	return tr
}

// leftovers lists what of the set is still on the machine: processes, mounts, namespaces, interfaces and
// the directory.
func (tr trace) leftovers() []string {
	var left []string
	for _, pid := range tr.pids {
		if _, err := os.Stat(fmt.Sprintf("/proc/%d", pid)); err == nil {
			left = append(left, fmt.Sprintf("process %d", pid))
		}
	}
	if mounts, _ := os.ReadFile("/proc/self/mountinfo"); strings.Contains(string(mounts), tr.dir) {
		left = append(left, "mounts under "+tr.dir)
	}
	for _, pattern := range []string{"/run/netns/kfb-" + tr.name + "-*", "/sys/class/net/kfb-" + tr.name + "-*", "/sys/class/net/kfb-" + tr.name} {
		found, _ := filepath.Glob(pattern)
		left = append(left, found...)
	}
	if _, err := os.Stat(tr.dir); err == nil {
		left = append(left, "directory "+tr.dir)
	}
	return left
}

func TestHostsAreSeparateSSHHosts(t *testing.T) {
	needHosts(t)
	s := up(t, "tbh", 3)
	tr := traceOf(s)
	if len(s.Hosts) != 3 || s.Bridge != "kfb-tbh" || s.Dir != "/var/lib/kforge/bench/tbh" {
		t.Fatalf("set: %+v", s)
	}
	for i, h := range s.Hosts {
		if want := fmt.Sprintf("tbh-%d", i+1); h.Name != want || !s.Subnet.Contains(h.Address) || h.Address.As4()[3] != byte(11+i) {
			t.Errorf("host %d: %+v in %s", i+1, h, s.Subnet)
		}
	}
	if fwd, err := os.ReadFile("/proc/sys/net/ipv4/conf/" + s.Bridge + "/forwarding"); err != nil || strings.TrimSpace(string(fwd)) != "0" {
		t.Errorf("forwarding on %s: %q %v", s.Bridge, fwd, err)
	}
	for _, h := range s.Hosts {
		// sshd is the host's first process, and the host has only its own mounts, none of the machine's.
		out, err := sshRun(s, h, "hostname; python3 --version; cat /proc/1/comm; awk '{print $5}' /proc/self/mountinfo | sort | tr '\\n' ' '")
		if err != nil {
			t.Fatal(err)
		}
		lines := strings.Split(out, "\n")
		if len(lines) != 4 || lines[0] != h.Name || !strings.HasPrefix(lines[1], "Python 3.") || lines[2] != "sshd" ||
			lines[3] != "/ /dev/pts /dev/shm /proc /run /sys" {
			t.Errorf("%s: %q", h.Name, out)
		}
	}

	// Each host has its own root: what one writes, another does not see; the machine sees it in the host's Root.
	h1, h2 := s.Hosts[0], s.Hosts[1]
	if _, err := sshRun(s, h1, "echo written on 1 > /root/mine"); err != nil {
		t.Fatal(err)
	}
	if out, err := sshRun(s, h2, "ls /root/mine 2>&1 || true"); err != nil || !strings.Contains(out, "No such file") {
		t.Errorf("host 2 sees host 1's file: %q %v", out, err)
	}
	if data, err := os.ReadFile(filepath.Join(h1.Root, "root/mine")); err != nil || string(data) != "written on 1\n" {
		t.Errorf("host 1's file from the machine: %q %v", data, err)
	}
	// Hosts reach each other over the bridge.
	if out, err := sshRun(s, h1, fmt.Sprintf("python3 -c 'import socket; print(socket.create_connection((\"%s\", 22), 5).recv(8).decode())'", h2.Address)); err != nil || out != "SSH-2.0-" {
		t.Errorf("host 1 to host 2: %q %v", out, err)
	}

	start := time.Now()
	if err := s.Down(); err != nil {
		t.Fatal(err)
	}
	t.Logf("Down of 3 hosts: %v", time.Since(start).Round(time.Millisecond))
	if left := tr.leftovers(); len(left) > 0 {
		t.Errorf("left after Down: %v", left)
	}
}

func TestDownAfterAKilledRun(t *testing.T) {
	needHosts(t)
	tr := traceOf(up(t, "tbk", 2))
	// The run that made the set is gone: only the name is known.
	if err := hosts.Down("tbk"); err != nil {
		t.Fatal(err)
	}
	if left := tr.leftovers(); len(left) > 0 {
		t.Errorf("left after Down: %v", left)
	}
	if err := hosts.Down("tbk"); err != nil {
		t.Errorf("second Down: %v", err)
	}
}

// TestAnsibleGathersFacts runs Ansible's fact gathering, what every playbook starts with, on bench hosts: it
// needs Python there, and finds the host's name and its address from the default route.
func TestAnsibleGathersFacts(t *testing.T) {
	if _, err := exec.LookPath("ansible"); err != nil {
		t.Skip("ansible is not installed")
	}
	needHosts(t)
	s := up(t, "tba", 2)
	dir := t.TempDir()
	inventory := "[bench]\n"
	for _, h := range s.Hosts {
		inventory += fmt.Sprintf("%s ansible_host=%s\n", h.Name, h.Address)
	}
	inventory += fmt.Sprintf("[bench:vars]\nansible_user=root\nansible_ssh_private_key_file=%s\n"+
		"ansible_ssh_common_args='-F /dev/null -o UserKnownHostsFile=%s -o StrictHostKeyChecking=yes'\n"+
		"ansible_python_interpreter=/usr/bin/python3\n", s.KeyFile, s.KnownHostsFile)
	if err := os.WriteFile(filepath.Join(dir, "inventory"), []byte(inventory), 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("ansible", "all", "-i", filepath.Join(dir, "inventory"), "-m", "setup", "--tree", filepath.Join(dir, "facts"))
	cmd.Env = append(os.Environ(), "ANSIBLE_LOCAL_TEMP="+filepath.Join(dir, "tmp"), "ANSIBLE_NOCOLOR=1", "ANSIBLE_HOST_KEY_CHECKING=True")
	start := time.Now()
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("ansible setup: %v\n%s", err, out)
	}
	t.Logf("ansible setup on %d hosts: %v", len(s.Hosts), time.Since(start).Round(time.Millisecond))
	for _, h := range s.Hosts {
		var facts struct {
			Facts struct {
				Hostname string `json:"ansible_hostname"`
				Address  struct {
					Address string `json:"address"`
				} `json:"ansible_default_ipv4"`
			} `json:"ansible_facts"`
		}
		data, err := os.ReadFile(filepath.Join(dir, "facts", h.Name))
		if err == nil {
			err = json.Unmarshal(data, &facts)
		}
		if err != nil {
			t.Fatalf("%s: facts: %v", h.Name, err)
		}
		if f := facts.Facts; f.Hostname != h.Name || f.Address.Address != h.Address.String() {
			t.Errorf("%s: hostname %q, default address %q", h.Name, f.Hostname, f.Address.Address)
		}
	}
}

// TestDownAfterItsRunWasKilled brings a set up in a child process (this test binary again) and kills that
// process outright: the hosts outlive it, and Down by name removes them from here.
func TestDownAfterItsRunWasKilled(t *testing.T) {
	const name = "tbx"
	if os.Getenv("KFORGE_BENCH_HOSTS_CHILD") == name {
		if _, err := hosts.Up(context.Background(), hosts.Options{Name: name, Count: 2}); err != nil {
			fmt.Println(err)
			os.Exit(1)
		}
		fmt.Println("up")
		select {} // until killed
	}
	needHosts(t)
	t.Cleanup(func() { _ = hosts.Down(name) })
	child := exec.Command(os.Args[0], "-test.run=^TestDownAfterItsRunWasKilled$")
	child.Env = append(os.Environ(), "KFORGE_BENCH_HOSTS_CHILD="+name)
	out, err := child.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := child.Start(); err != nil {
		t.Fatal(err)
	}
	line, _ := bufio.NewReader(out).ReadString('\n')
	if err := child.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	_ = child.Wait()
	if line != "up\n" {
		t.Fatalf("child: %q", line)
	}

	var st struct {
		Set struct {
			Hosts []hosts.Host `json:"hosts"`
		} `json:"set"`
	}
	data, err := os.ReadFile("/var/lib/kforge/bench/" + name + "/set.json")
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(data, &st); err != nil {
		t.Fatal(err)
	}
	tr := trace{name: name, dir: "/var/lib/kforge/bench/" + name}
	for _, h := range st.Set.Hosts {
		tr.pids = append(tr.pids, h.PID)
		conn, err := net.DialTimeout("tcp", net.JoinHostPort(h.Address.String(), "22"), 5*time.Second)
		if err != nil {
			t.Errorf("%s after its run was killed: %v", h.Name, err)
			continue
		}
		conn.Close()
	}
	if len(tr.pids) != 2 {
		t.Fatalf("state: %s", data)
	}
	if err := hosts.Down(name); err != nil {
		t.Fatal(err)
	}
	if left := tr.leftovers(); len(left) > 0 {
		t.Errorf("left after Down: %v", left)
	}
}

func TestCancelledUpLeavesNothing(t *testing.T) {
	needHosts(t)
	t.Cleanup(func() { _ = hosts.Down("tbc") })
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	// Cancelled once the first host runs, so that processes, mounts and namespaces all exist.
	go func() {
		for ctx.Err() == nil {
			if data, _ := os.ReadFile("/var/lib/kforge/bench/tbc/set.json"); strings.Contains(string(data), `"pid": `) {
				cancel()
			}
			time.Sleep(time.Millisecond)
		}
	}()
	s, err := hosts.Up(ctx, hosts.Options{Name: "tbc", Count: 30})
	if err == nil {
		_ = s.Down()
		t.Skip("Up finished before it could be cancelled")
	}
	if !errors.Is(err, context.Canceled) {
		t.Errorf("error = %v, want context.Canceled", err)
	}
	if left := (trace{name: "tbc", dir: "/var/lib/kforge/bench/tbc"}).leftovers(); len(left) > 0 {
		t.Errorf("left after a cancelled Up: %v", left)
	}
}

func TestOptionsAreChecked(t *testing.T) {
	for _, opts := range []hosts.Options{{Name: "", Count: 1}, {Name: "toolong", Count: 1}, {Name: "Upper", Count: 1},
		{Name: "a-b", Count: 1}, {Name: "ok", Count: 0}, {Name: "ok", Count: hosts.MaxHosts + 1}} {
		if _, err := hosts.Up(context.Background(), opts); err == nil || !strings.Contains(err.Error(), "bench host set") {
			t.Errorf("%+v: error = %v", opts, err)
		}
	}
}

// TestUp100 brings up 100 hosts and logs in to all of them at once. It takes a few seconds and 100 sshd, so
// it runs only when asked: KFORGE_BENCH_HOSTS=1 go test ./bench/hosts/.
func TestUp100(t *testing.T) {
	if testing.Short() || os.Getenv("KFORGE_BENCH_HOSTS") != "1" {
		t.Skip("100 hosts: set KFORGE_BENCH_HOSTS=1 (and no -short) to run")
	}
	needHosts(t)
	s := up(t, "tb100", 100)
	tr := traceOf(s)
	start := time.Now()
	var wg sync.WaitGroup
	for _, h := range s.Hosts {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if out, err := sshRun(s, h, "hostname"); err != nil || out != h.Name {
				t.Errorf("%s: %q %v", h.Name, out, err)
			}
		}()
	}
	wg.Wait()
	t.Logf("ssh hostname on 100 hosts at once: %v", time.Since(start).Round(time.Millisecond))
	start = time.Now()
	if err := s.Down(); err != nil {
		t.Fatal(err)
	}
	t.Logf("Down of 100 hosts: %v", time.Since(start).Round(time.Millisecond))
	if left := tr.leftovers(); len(left) > 0 {
		t.Errorf("left after Down: %v", left)
	}
}
