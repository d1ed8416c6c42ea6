package lab_test

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hclsyntax"

	"github.com/kforge/kforge/config"
	"github.com/kforge/kforge/providers"
	"github.com/kforge/kforge/providers/lab"
	"github.com/kforge/kforge/providers/lab/labtest"
)

var fixture = labtest.New("tlab", 3)

func TestMain(m *testing.M) { os.Exit(fixture.Main(m)) }

// sshRun runs a command on a lab host with OpenSSH itself, checking the host key strictly against the lab's
// known_hosts, as a user would.
func sshRun(t testing.TB, l *lab.Lab, h lab.Host, command string) string {
	t.Helper()
	out, err := exec.Command("ssh", "-i", l.KeyFile, "-o", "UserKnownHostsFile="+l.KnownHostsFile, "-o", "StrictHostKeyChecking=yes",
		"-o", "BatchMode=yes", "-o", "ConnectTimeout=10", "root@"+h.Address.String(), command).CombinedOutput()
	if err != nil {
		t.Fatalf("ssh %s %q: %v\n%s", h.Name, command, err, out)
	}
	return strings.TrimSpace(string(out))
}

func TestHostsAreRealMachines(t *testing.T) {
	l := fixture.Get(t)
	if len(l.Hosts) != 3 {
		t.Fatalf("hosts: %+v", l.Hosts)
	}
	ids := map[string]string{}
	for _, h := range l.Hosts {
		got := sshRun(t, l, h, "systemctl is-system-running --wait; hostname; cat /etc/machine-id; ps -p 1 -o comm=; ip -4 -o addr show host0")
		lines := strings.Split(got, "\n")
		if len(lines) != 5 || lines[0] != "running" || lines[1] != h.Name || lines[3] != "systemd" || !strings.Contains(lines[4], h.Address.String()+"/24") {
			t.Errorf("%s: %q", h.Name, got)
			continue
		}
		if other, dup := ids[lines[2]]; dup {
			t.Errorf("%s and %s share machine-id %s", h.Name, other, lines[2])
		}
		ids[lines[2]] = h.Name
	}
	// Hosts reach each other over the bridge, and nothing beyond it: no forwarding from the lab's bridge.
	a, b := l.Hosts[0], l.Hosts[1]
	sshRun(t, l, a, fmt.Sprintf("timeout 5 bash -c 'exec 3<>/dev/tcp/%s/22'", b.Address))
	if fwd, err := os.ReadFile("/proc/sys/net/ipv4/conf/" + l.Bridge + "/forwarding"); err != nil || strings.TrimSpace(string(fwd)) != "0" {
		t.Errorf("forwarding on %s: %q %v", l.Bridge, fwd, err)
	}
	// Each host has its own cgroup, which systemd in the host can write (cgroup v1 made writable).
	out := sshRun(t, l, a, "mkdir /sys/fs/cgroup/memory/kforge-probe && rmdir /sys/fs/cgroup/memory/kforge-probe && echo ok")
	if out != "ok" {
		t.Errorf("cgroup write: %q", out)
	}
}

// TestRebootKeepsTheRootFilesystem: a rebooted host has a new init (its PID 1 started anew: hosts share the
// machine's kernel, and so its boot id), what is on its root file system, and not
// what lived in its tmpfs; it runs systemd again and answers SSH with the same host key.
func TestRebootKeepsTheRootFilesystem(t *testing.T) {
	l := fixture.Get(t)
	h := l.Hosts[2]
	before := sshRun(t, l, h, "systemctl is-system-running --wait >/dev/null; echo kept > /root/kforge-reboot; echo gone > /run/kforge-reboot; cut -d' ' -f22 /proc/1/stat")
	fixture.Reboot(t, h.Name)
	after := sshRun(t, l, h, "systemctl is-system-running --wait; cut -d' ' -f22 /proc/1/stat; cat /root/kforge-reboot; cat /run/kforge-reboot 2>&1 || true; rm -f /root/kforge-reboot")
	lines := strings.Split(after, "\n")
	if len(lines) != 4 || lines[0] != "running" || lines[1] == before || lines[2] != "kept" || !strings.Contains(lines[3], "No such file") {
		t.Errorf("after the reboot (init started at tick %s before):\n%s", before, after)
	}
	if _, statuses, err := fixture.Manager().Status(l.Name); err != nil || !statuses[2].Running || statuses[2].PID != l.Hosts[2].PID {
		t.Errorf("status after the reboot: %+v %v", statuses, err)
	}
}

func TestSecondUpIsRefused(t *testing.T) {
	l := fixture.Get(t)
	_, err := fixture.Manager().Up(context.Background(), lab.UpOptions{Name: l.Name, Hosts: 1})
	if err == nil || !strings.Contains(err.Error(), "already up") {
		t.Errorf("error = %v", err)
	}
	_, err = fixture.Manager().Up(context.Background(), lab.UpOptions{Name: "tother", Hosts: 1, Subnet: l.Subnet})
	if err == nil || !strings.Contains(err.Error(), "already in use") {
		t.Errorf("subnet in use: %v", err)
	}
	for _, bad := range []lab.UpOptions{{Name: "Bad_Name", Hosts: 1}, {Name: "toolongname", Hosts: 1}, {Name: "ok", Hosts: 0}} {
		if _, err := fixture.Manager().Up(context.Background(), bad); err == nil {
			t.Errorf("%+v accepted", bad)
		}
	}
}

// TestDownLeavesNothing brings up a second lab, breaks it the way a killed run would (nspawn SIGKILLed, so the
// host's systemd keeps running orphaned), and checks that down removes every trace, twice.
func TestDownLeavesNothing(t *testing.T) {
	fixture.Get(t) // skips here too when labs are impossible
	m := fixture.Manager()
	const name = "tdown"
	res, err := m.Up(context.Background(), lab.UpOptions{Name: name, Hosts: 2})
	if err != nil {
		t.Fatal(err)
	}
	l := res.Lab
	t.Cleanup(func() { m.Down(context.Background(), name) })
	if err := syscall.Kill(l.Hosts[0].PID, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	time.Sleep(300 * time.Millisecond)

	for i := 0; i < 2; i++ {
		if _, err := m.Down(context.Background(), name); err != nil {
			t.Fatalf("down #%d: %v", i+1, err)
		}
	}
	left := labtest.Leftovers(l)
	if len(left) > 0 {
		t.Errorf("left behind:\n%s", strings.Join(left, "\n"))
	}
}

func TestProviderTurnsTheLabIntoHosts(t *testing.T) {
	l := fixture.Get(t)
	p := lab.Provider{Manager: fixture.Manager()}
	block := providerBlock(t, fmt.Sprintf(`name = %q
host %q {
  roles = ["worker", "etcd", "control-plane"]
  labels = { tier = "a" }
}`, l.Name, l.Hosts[1].Name))
	if diags := p.Validate(block); diags.HasErrors() {
		t.Fatal(diags)
	}
	hosts, diags := p.Hosts(context.Background(), block, providers.Env{})
	if diags.HasErrors() || len(hosts) != 3 {
		t.Fatalf("hosts %+v, %v", hosts, diags)
	}
	if h := hosts[0]; h.Name != l.Hosts[0].Name || h.Address != l.Hosts[0].Address.String() || h.SSH.PrivateKeyFile != l.KeyFile ||
		h.SSH.KnownHostsFile != l.KnownHostsFile || h.SSH.HostKeyPolicy != config.HostKeyStrict || len(h.Roles) != 2 {
		t.Errorf("host 1: %+v", h)
	}
	if h := hosts[1]; len(h.Roles) != 3 || h.Labels["tier"] != "a" {
		t.Errorf("host 2: %+v", h)
	}
	_, diags = p.Hosts(context.Background(), providerBlock(t, `name = "nolab"`), providers.Env{})
	if !diags.HasErrors() || !strings.Contains(diags.Error(), "kforge lab up --name nolab") {
		t.Errorf("missing lab: %v", diags)
	}
	_, diags = p.Hosts(context.Background(), providerBlock(t, fmt.Sprintf("name = %q\nhost \"nope\" {\n  roles = [\"worker\"]\n}", l.Name)), providers.Env{})
	if !diags.HasErrors() || !strings.Contains(diags.Error(), `has no host "nope"`) {
		t.Errorf("unknown host: %v", diags)
	}
}

func providerBlock(t *testing.T, body string) config.Provider {
	t.Helper()
	f, diags := hclsyntax.ParseConfig([]byte(body), "lab.hcl", hcl.InitialPos)
	if diags.HasErrors() {
		t.Fatal(diags)
	}
	return config.Provider{Name: "lab", Body: f.Body, DeclRange: hcl.Range{Filename: "lab.hcl"}, EvalContext: &hcl.EvalContext{}}
}

func TestHostsFileIsAValidConfiguration(t *testing.T) {
	l := fixture.Get(t)
	dir := t.TempDir()
	data, err := os.ReadFile(l.HostsFile)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "hosts.hcl"), data, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "cluster.hcl"), []byte("cluster \"lab\" {\n  pod_cidr     = \"198.19.0.0/17\"\n  service_cidr = \"198.19.128.0/20\"\n}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	c, diags := config.NewLoader().Load(config.Options{Path: dir})
	if diags.HasErrors() {
		t.Fatalf("%s\n%v", data, diags)
	}
	if len(c.Hosts) != 3 || c.Hosts[0].SSH.KnownHostsFile != l.KnownHostsFile || c.Hosts[0].SSH.HostKeyPolicy != config.HostKeyStrict {
		t.Errorf("hosts: %+v", c.Hosts)
	}
}

// TestAKilledRunIsCleanedUpByTheNext kills (SIGKILL, no cleanup possible) a test process that has a lab up,
// then checks that the next fixture of that name starts cleanly and leaves nothing.
func TestAKilledRunIsCleanedUpByTheNext(t *testing.T) {
	if os.Getenv("KFORGE_LABTEST_VICTIM") == "1" {
		victim := labtest.New("tkill", 1)
		victim.Get(t)
		fmt.Println("victim: lab up")
		time.Sleep(time.Minute) // killed long before this ends
		return
	}
	fixture.Get(t) // skips when labs are impossible here
	cmd := exec.Command(os.Args[0], "-test.run=^TestAKilledRunIsCleanedUpByTheNext$", "-test.count=1")
	cmd.Env = append(os.Environ(), "KFORGE_LABTEST_VICTIM=1")
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = cmd.Stdout
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	ready, lines := make(chan struct{}), make(chan string, 1000)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			if sc.Text() == "victim: lab up" {
				close(ready)
				io.Copy(io.Discard, stdout)
				return
			}
			lines <- sc.Text()
		}
		close(lines)
	}()
	select {
	case <-ready:
	case <-time.After(3 * time.Minute):
		cmd.Process.Kill()
		cmd.Wait()
		var out []string
		for l := range lines {
			out = append(out, l)
		}
		t.Fatalf("the victim never brought its lab up:\n%s", strings.Join(out, "\n"))
	}
	cmd.Process.Kill()
	cmd.Wait()
	m := fixture.Manager()
	stale, err := m.Load("tkill")
	if err != nil || !labHostRunning(stale) {
		t.Fatalf("the killed run should have left a running lab: %v", err)
	}

	next := labtest.New("tkill", 1)
	l := next.Get(t)
	if out := sshRun(t, l, l.Hosts[0], "systemctl is-system-running --wait"); out != "running" {
		t.Errorf("after recovery: %s", out)
	}
	if _, err := m.Down(context.Background(), "tkill"); err != nil {
		t.Fatal(err)
	}
	if left := labtest.Leftovers(l); len(left) > 0 {
		t.Errorf("left behind: %v", left)
	}
}

func labHostRunning(l *lab.Lab) bool {
	_, statuses, err := fixture.Manager().Status(l.Name)
	return err == nil && len(statuses) == 1 && statuses[0].Running
}
