package apply

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"os"
	"strings"
	"testing"

	"github.com/kforge/kforge/providers/lab/labtest"
	"github.com/kforge/kforge/provision/backend"
	"github.com/kforge/kforge/provision/plan"
	"github.com/kforge/kforge/provision/planner"
	"github.com/kforge/kforge/provision/remote"
	"github.com/kforge/kforge/provision/resource"
	"github.com/kforge/kforge/provision/ssh"
	"github.com/kforge/kforge/provision/state"
)

var fixture = labtest.New("tapply", 2)

func TestMain(m *testing.M) { os.Exit(fixture.Main(m)) }

func file(path, content string, mode os.FileMode) resource.Resource {
	s := sha256.Sum256([]byte(content))
	return resource.Resource{Kind: resource.File, Name: path, Content: []byte(content), SHA256: hex.EncodeToString(s[:]),
		Size: int64(len(content)), Mode: mode}
}

const unit = "unit:kforge-test.service"

// wanted is a small service with a config, a secret, a symlink and a sysctl: what Kubernetes components are,
// without waiting for them.
func wanted(greeting string, withExtras bool) []resource.Resource {
	conf := file("/etc/kforge/test/app.conf", "greeting="+greeting+"\nport=8080\n", 0o644)
	conf.Diffable, conf.Restarts = true, []string{unit}
	unitFile := file("/etc/systemd/system/kforge-test.service",
		"[Unit]\nDescription=kforge test service\n[Service]\nExecStart=/bin/sleep infinity\n[Install]\nWantedBy=multi-user.target\n", 0o644)
	unitFile.Diffable, unitFile.Restarts = true, []string{unit}
	rs := []resource.Resource{
		{Kind: resource.Directory, Name: "/etc/kforge/test", Mode: 0o755},
		conf,
	}
	if withExtras {
		key := file("/etc/kforge/test/secret.key", "not really a key\n", 0o600)
		key.Secret = true
		rs = append(rs, key, resource.Resource{Kind: resource.Symlink, Name: "/etc/kforge/test/current", Target: "app.conf"})
	}
	return append(rs, unitFile,
		resource.Resource{Kind: resource.Sysctl, Name: "net.ipv4.ip_forward", Value: "1"},
		resource.Resource{Kind: resource.Unit, Name: "kforge-test.service", Enabled: true, Active: true})
}

type harness struct {
	t        *testing.T
	runners  map[string]remote.Runner
	clients  map[string]*ssh.Client
	hosts    []string
	state    *state.State
	stateDir string
}

func newHarness(t *testing.T) *harness {
	l := fixture.Get(t)
	h := &harness{t: t, runners: map[string]remote.Runner{}, clients: map[string]*ssh.Client{}, stateDir: t.TempDir()}
	for _, lh := range l.Hosts {
		c, err := (&ssh.Dialer{}).Dial(context.Background(), ssh.TargetFor(l.ConfigHost(lh)))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		h.runners[lh.Name], h.clients[lh.Name] = c, c
		h.hosts = append(h.hosts, lh.Name)
		// Start from a host without the test service.
		c.Run(context.Background(), remote.Command{Script: "systemctl disable --now kforge-test.service 2>/dev/null; rm -rf /etc/kforge/test /etc/systemd/system/kforge-test.service; systemctl daemon-reload"})
	}
	st, err := state.Load(h.stateDir)
	if err != nil {
		t.Fatal(err)
	}
	h.state = st
	return h
}

func (h *harness) plan(desired map[string][]resource.Resource) *plan.Plan {
	h.t.Helper()
	p, err := planner.Make(context.Background(), planner.Input{Cluster: "test", Hosts: h.hosts, Desired: desired, Runners: h.runners, State: h.state})
	if err != nil {
		h.t.Fatal(err)
	}
	return p
}

func (h *harness) apply(p *plan.Plan, desired map[string][]resource.Resource) {
	h.t.Helper()
	e := &Engine{Runners: h.runners, State: h.state, Store: &backend.Local{Dir: h.stateDir}}
	if err := e.Apply(context.Background(), p, desired); err != nil {
		h.t.Fatal(err)
	}
}

func (h *harness) run(host, script string) string {
	h.t.Helper()
	res, err := h.runners[host].Run(context.Background(), remote.Command{Script: script})
	if err != nil {
		h.t.Fatalf("%s: %v", host, err)
	}
	return strings.TrimSpace(string(res.Stdout))
}

func (h *harness) all(rs []resource.Resource) map[string][]resource.Resource {
	out := map[string][]resource.Resource{}
	for _, host := range h.hosts {
		out[host] = rs
	}
	return out
}

// TestApplyThenNoChanges is the promise: after an apply, a plan is empty, and a no-op plan costs one SSH
// command per host. Drift (a hand-edited file, a stopped unit) shows up and is repaired; what leaves the
// configuration is removed.
func TestApplyThenNoChanges(t *testing.T) {
	h := newHarness(t)
	desired := h.all(wanted("hello", true))
	first := h.plan(desired)
	if s := first.Summary(); s.Add != 2*5 || first.Empty() {
		t.Fatalf("first plan: %+v\n%s", s, plan.Text(first, false))
	}
	h.apply(first, desired)
	if got := h.run(h.hosts[0], "systemctl is-active kforge-test.service; cat /etc/kforge/test/current; stat -c %a /etc/kforge/test/secret.key; cat /proc/sys/net/ipv4/ip_forward"); got != "active\ngreeting=hello\nport=8080\n600\n1" {
		t.Errorf("host after apply:\n%s", got)
	}

	before := map[string]int64{}
	for n, c := range h.clients {
		before[n] = c.Sessions()
	}
	again := h.plan(desired)
	if !again.Empty() {
		t.Fatalf("plan after apply is not empty:\n%s", plan.Text(again, false))
	}
	for n, c := range h.clients {
		if d := c.Sessions() - before[n]; d != 1 {
			t.Errorf("%s: a no-op plan took %d SSH commands, want 1", n, d)
		}
	}

	// Drift on the first host: an edited config (restarts the service) and nothing else.
	pid := h.run(h.hosts[0], "systemctl show -p MainPID --value kforge-test.service")
	h.run(h.hosts[0], "sed -i 's/hello/HACKED/' /etc/kforge/test/app.conf")
	drift := h.plan(desired)
	text := plan.Text(drift, false)
	if s := drift.Summary(); s != (plan.Summary{Change: 1, Restart: 1}) || !strings.Contains(text, "-greeting=HACKED") || !strings.Contains(text, "+greeting=hello") {
		t.Fatalf("drift plan %+v:\n%s", s, text)
	}
	h.apply(drift, desired)
	if newPID := h.run(h.hosts[0], "systemctl show -p MainPID --value kforge-test.service"); newPID == pid || newPID == "0" {
		t.Errorf("the service was not restarted (MainPID %s -> %s)", pid, newPID)
	}

	// A stopped unit is started again.
	h.run(h.hosts[1], "systemctl stop kforge-test.service")
	stopped := h.plan(desired)
	if s := stopped.Summary(); s != (plan.Summary{Change: 1}) {
		t.Fatalf("stopped unit %+v:\n%s", s, plan.Text(stopped, false))
	}
	h.apply(stopped, desired)

	// The secret and the symlink leave the configuration: they are removed, and the state forgets them.
	smaller := h.all(wanted("hello", false))
	removal := h.plan(smaller)
	if s := removal.Summary(); s != (plan.Summary{Destroy: 4}) {
		t.Fatalf("removal %+v:\n%s", s, plan.Text(removal, false))
	}
	h.apply(removal, smaller)
	if got := h.run(h.hosts[0], "ls /etc/kforge/test"); got != "app.conf" {
		t.Errorf("left on the host: %s", got)
	}
	for _, host := range h.hosts {
		for _, m := range h.state.Hosts[host] {
			if strings.Contains(m.Name, "secret") || strings.Contains(m.Name, "current") {
				t.Errorf("state still lists %s", m.ID)
			}
		}
	}
	if final := h.plan(smaller); !final.Empty() {
		t.Errorf("final plan:\n%s", plan.Text(final, false))
	}
	saved, err := state.Load(h.stateDir)
	if err != nil || saved.Serial < 10 || len(saved.Hosts) != 2 {
		t.Errorf("state on disk: serial %d, hosts %d, %v", saved.Serial, len(saved.Hosts), err)
	}
}
