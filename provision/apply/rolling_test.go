package apply

import (
	"context"
	"reflect"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/kforge/kforge/provision/backend"
	"github.com/kforge/kforge/provision/plan"
	"github.com/kforge/kforge/provision/remote"
	"github.com/kforge/kforge/provision/resource"
	"github.com/kforge/kforge/provision/state"
)

// fakeHost records commands; restarts take a moment, and the health check fails twice before it passes.
type fakeHost struct {
	name      string
	inFlight  *atomic.Int32
	peak      *atomic.Int32
	mu        sync.Mutex
	commands  []string
	healthRun int
}

func (f *fakeHost) Host() string { return f.name }

func (f *fakeHost) Run(_ context.Context, c remote.Command) (remote.Result, error) {
	f.mu.Lock()
	f.commands = append(f.commands, c.Script)
	f.mu.Unlock()
	switch {
	case strings.HasPrefix(c.Script, "systemctl restart"):
		n := f.inFlight.Add(1)
		for p := f.peak.Load(); n > p && !f.peak.CompareAndSwap(p, n); p = f.peak.Load() {
		}
		time.Sleep(30 * time.Millisecond)
		f.inFlight.Add(-1)
	case c.Script == "check-health":
		f.mu.Lock()
		f.healthRun++
		n := f.healthRun
		f.mu.Unlock()
		if n%3 != 0 {
			return remote.Result{ExitStatus: 1}, &remote.ExitError{Command: c.Name, Status: 1, Stderr: "not yet"}
		}
	}
	return remote.Result{}, nil
}

func (f *fakeHost) Stat(context.Context, []string) ([]remote.FileInfo, error) { return nil, nil }
func (f *fakeHost) ReadFile(context.Context, string) ([]byte, error)          { return nil, nil }
func (f *fakeHost) Upload(context.Context, remote.File) (bool, error)         { return true, nil }
func (f *fakeHost) Close() error                                              { return nil }

func restartPlan(hosts []string) (*plan.Plan, map[string][]resource.Resource) {
	p := &plan.Plan{}
	want := map[string][]resource.Resource{}
	for _, h := range hosts {
		p.Hosts = append(p.Hosts, plan.HostPlan{Host: h, Changes: []plan.Change{
			{ID: "unit:kube-apiserver.service", Kind: "unit", Name: "kube-apiserver.service", Action: plan.Restart, Reasons: []string{"/etc/kubernetes/api.conf changed"}},
		}})
		want[h] = []resource.Resource{{Kind: resource.Unit, Name: "kube-apiserver.service", Enabled: true, Active: true, Health: "check-health"}}
	}
	return p, want
}

func TestRollingRestartsOneHostAtATimeAndWaitsForHealth(t *testing.T) {
	hosts := []string{"cp-1", "cp-2", "cp-3"}
	for _, rolling := range []bool{true, false} {
		var inFlight, peak atomic.Int32
		runners := map[string]remote.Runner{}
		fakes := map[string]*fakeHost{}
		for _, h := range hosts {
			fakes[h] = &fakeHost{name: h, inFlight: &inFlight, peak: &peak}
			runners[h] = fakes[h]
		}
		st, _ := state.Load(t.TempDir())
		e := &Engine{Runners: runners, State: st, Store: &backend.Local{Dir: t.TempDir()}, Phases: []Phase{{Hosts: hosts, Rolling: rolling}},
			HealthInterval: 5 * time.Millisecond}
		p, want := restartPlan(hosts)
		if err := e.Apply(context.Background(), p, want); err != nil {
			t.Fatal(err)
		}
		if rolling && peak.Load() != 1 {
			t.Errorf("rolling: %d restarts at once", peak.Load())
		}
		if !rolling && peak.Load() < 2 {
			t.Errorf("not rolling: restarts did not overlap (peak %d)", peak.Load())
		}
		for _, f := range fakes {
			if f.healthRun != 3 {
				t.Errorf("%s: health checked %d times, want 3 (two failures, then success)", f.name, f.healthRun)
			}
		}
	}
}

func TestUnhealthyUnitFailsWithTheHost(t *testing.T) {
	var inFlight, peak atomic.Int32
	f := &fakeHost{name: "cp-1", inFlight: &inFlight, peak: &peak}
	st, _ := state.Load(t.TempDir())
	e := &Engine{Runners: map[string]remote.Runner{"cp-1": f}, State: st, Store: &backend.Local{Dir: t.TempDir()}, HealthTimeout: 20 * time.Millisecond, HealthInterval: 5 * time.Millisecond}
	p, want := restartPlan([]string{"cp-1"})
	want["cp-1"][0].Health = "false-forever"
	f2 := &neverHealthy{fakeHost: f}
	e.Runners["cp-1"] = f2
	err := e.Apply(context.Background(), p, want)
	hes := remote.HostErrors(err)
	if len(hes) != 1 || hes[0].Host != "cp-1" || !strings.Contains(err.Error(), "kube-apiserver.service is not healthy") {
		t.Errorf("error = %v", err)
	}
}

type neverHealthy struct{ *fakeHost }

func (n *neverHealthy) Run(ctx context.Context, c remote.Command) (remote.Result, error) {
	if c.Script == "false-forever" {
		return remote.Result{ExitStatus: 1}, &remote.ExitError{Command: c.Name, Status: 1, Stderr: "connection refused"}
	}
	return n.fakeHost.Run(ctx, c)
}

// TestStages: the order a plan shows is the order Apply follows. Members restart one at a time, a phase with
// nothing to restart goes together, nodes whose kubelet is replaced are drained MaxUnavailable at a time, and a
// host without changes is in no stage.
func TestStages(t *testing.T) {
	restart := plan.Change{ID: "unit:etcd.service", Kind: "unit", Name: "etcd.service", Action: plan.Restart}
	kubelet := plan.Change{ID: "binary:/usr/local/bin/kubelet", Kind: "binary", Name: "/usr/local/bin/kubelet", Action: plan.Update}
	file := plan.Change{ID: "file:/etc/motd", Kind: "file", Name: "/etc/motd", Action: plan.Update}
	p := &plan.Plan{Hosts: []plan.HostPlan{
		{Host: "cp-1", Changes: []plan.Change{restart}}, {Host: "cp-2", Changes: []plan.Change{restart}}, {Host: "cp-3"},
		{Host: "lb-1", Changes: []plan.Change{file}}, {Host: "lb-2", Changes: []plan.Change{file}},
		{Host: "w-1", Changes: []plan.Change{kubelet}}, {Host: "w-2", Changes: []plan.Change{file}}, {Host: "w-3", Changes: []plan.Change{kubelet}},
	}}
	e := &Engine{Phases: []Phase{{Name: "etcd hosts", Hosts: []string{"cp-1", "cp-2", "cp-3"}, Rolling: true},
		{Name: "balancers", Hosts: []string{"lb-1", "lb-2"}, Rolling: true}},
		Drainer: &fakeDrainer{}, Disrupts: func(h plan.HostPlan) bool { return h.Changes[0].Name == "/usr/local/bin/kubelet" }}
	want := []plan.Stage{
		{Name: "etcd hosts", Hosts: []string{"cp-1", "cp-2"}, AtATime: 1},
		{Name: "balancers", Hosts: []string{"lb-1", "lb-2"}, AtATime: 2},
		{Name: "other hosts", Hosts: []string{"w-1", "w-2", "w-3"}, AtATime: 1, Drain: []string{"w-1", "w-3"}},
	}
	if got := e.Stages(p); !reflect.DeepEqual(got, want) {
		t.Errorf("stages:\n got %+v\nwant %+v", got, want)
	}
	e.MaxUnavailable, e.Parallelism = 2, 1
	if got := e.Stages(p)[2].AtATime; got != 1 {
		t.Errorf("parallelism 1 with 2 nodes drainable at once: %d at a time", got)
	}
	e.MaxUnavailable, e.Parallelism = 5, 0
	if got := e.Stages(p)[2].AtATime; got != 3 {
		t.Errorf("five drainable at once, three hosts: %d at a time", got)
	}
	e.Drainer = nil // nothing drains without a drainer: a destroy, or no control plane to drain through
	if got := e.Stages(p)[2]; got.Drain != nil || got.AtATime != 3 {
		t.Errorf("without a drainer: %+v", got)
	}
}

// TestApplyRemovesOnlyWhatKforgeMakes: a plan (a crafted saved plan, say) that would remove a host's own file,
// unit, user or data is refused whole: no command runs on any host, and the error names each refused change.
func TestApplyRemovesOnlyWhatKforgeMakes(t *testing.T) {
	var inFlight, peak atomic.Int32
	cp, worker := &fakeHost{name: "cp-1", inFlight: &inFlight, peak: &peak}, &fakeHost{name: "worker-1", inFlight: &inFlight, peak: &peak}
	dir := t.TempDir()
	st, err := state.Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	e := &Engine{Runners: map[string]remote.Runner{"cp-1": cp, "worker-1": worker}, State: st, Store: &backend.Local{Dir: dir}}
	del := func(kind, name string) plan.Change {
		return plan.Change{ID: kind + ":" + name, Kind: kind, Name: name, Action: plan.Delete}
	}
	p := &plan.Plan{Hosts: []plan.HostPlan{
		{Host: "cp-1", Changes: []plan.Change{del("file", "/etc/kubernetes/old.conf"), del("file", "/etc/passwd"), del("unit", "ssh.service")}},
		{Host: "worker-1", Changes: []plan.Change{del("user", "admin"), del(string(DataKind), "/home"), del(string(LinkKind), "eth0"),
			del("binary", "/usr/local/bin/kubelet")}},
	}}
	err = e.Apply(context.Background(), p, nil)
	if err == nil {
		t.Fatal("a plan removing the host's own files was applied")
	}
	for _, want := range []string{"nothing applied", "host cp-1: the plan removes file /etc/passwd", "host cp-1: the plan removes unit ssh.service",
		"host worker-1: the plan removes user admin", "host worker-1: the plan removes data /home", "host worker-1: the plan removes link eth0"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("the error lacks %q:\n%v", want, err)
		}
	}
	if strings.Contains(err.Error(), "old.conf") || strings.Contains(err.Error(), "/usr/local/bin/kubelet") {
		t.Errorf("kforge's own files are refused too:\n%v", err)
	}
	if len(cp.commands)+len(worker.commands) != 0 {
		t.Errorf("commands ran: %q %q", cp.commands, worker.commands)
	}
	for _, c := range []plan.Change{del(string(DataKind), "/var/lib/etcd"), del(string(LinkKind), "cni0"), del(string(LinkKind), "flannel.1"), del("unit", "kforge-etcd-snapshot.timer"),
		del("file", "/etc/systemd/system/kube-apiserver.service"), del("directory", "/srv/backups"), {Kind: "file", Name: "/etc/passwd", Action: plan.Update}} {
		if err := Removable(c); err != nil {
			t.Errorf("%s %s %s: %v", c.Action, c.Kind, c.Name, err)
		}
	}
}
