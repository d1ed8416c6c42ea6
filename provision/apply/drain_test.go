package apply

import (
	"context"
	"errors"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/kforge/kforge/provision/backend"
	"github.com/kforge/kforge/provision/plan"
	"github.com/kforge/kforge/provision/remote"
	"github.com/kforge/kforge/provision/state"
)

// fakeDrainer records drains and uncordons in one log with the hosts' restarts, and how many nodes were drained
// at once at most.
type fakeDrainer struct {
	mu           sync.Mutex
	log          []string
	out, peak    int
	failUncordon map[string]bool
}

func (d *fakeDrainer) Drain(_ context.Context, node string) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.log = append(d.log, "drain "+node)
	d.out++
	d.peak = max(d.peak, d.out)
	return nil
}

func (d *fakeDrainer) Uncordon(_ context.Context, node string) error {
	time.Sleep(10 * time.Millisecond) // long enough for a second drain to overlap, were it allowed to
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.failUncordon[node] {
		return errors.New("node " + node + " is not Ready after 3m0s")
	}
	d.log = append(d.log, "uncordon "+node)
	d.out--
	return nil
}

// TestDisruptiveChangesDrainOneNodeAtATime: nodes whose changes disrupt their pods are drained first and
// uncordoned after, one node at a time, even in a phase that otherwise runs hosts in parallel; others are not.
func TestDisruptiveChangesDrainOneNodeAtATime(t *testing.T) {
	hosts := []string{"worker-1", "worker-2", "worker-3"}
	var inFlight, peak atomic.Int32
	runners := map[string]remote.Runner{}
	for _, h := range hosts {
		runners[h] = &fakeHost{name: h, inFlight: &inFlight, peak: &peak}
	}
	st, _ := state.Load(t.TempDir())
	d := &fakeDrainer{}
	e := &Engine{Runners: runners, State: st, Store: &backend.Local{Dir: t.TempDir()}, Parallelism: 10, HealthInterval: time.Millisecond,
		Drainer: d, Disrupts: func(hp plan.HostPlan) bool { return hp.Host != "worker-3" }}
	p, want := restartPlan(hosts)
	if err := e.Apply(context.Background(), p, want); err != nil {
		t.Fatal(err)
	}
	if d.peak != 1 {
		t.Errorf("%d nodes drained at once, want 1", d.peak)
	}
	for _, n := range []string{"worker-1", "worker-2"} {
		i, j := slices.Index(d.log, "drain "+n), slices.Index(d.log, "uncordon "+n)
		if i < 0 || j != i+1 {
			t.Errorf("%s: want its drain then its uncordon, next to each other: %q", n, d.log)
		}
	}
	if slices.Contains(d.log, "drain worker-3") || len(st.Drained) != 0 {
		t.Errorf("log %q, drained left %v", d.log, st.Drained)
	}
}

// TestADrainedNodeIsUncordonedByTheNextApply: an apply that drained a node and failed before its uncordon leaves
// the node recorded as drained; the next apply's plan has an uncordon for it, which the engine carries out.
func TestADrainedNodeIsUncordonedByTheNextApply(t *testing.T) {
	var inFlight, peak atomic.Int32
	runners := map[string]remote.Runner{"worker-1": &fakeHost{name: "worker-1", inFlight: &inFlight, peak: &peak}}
	dir := t.TempDir()
	st, _ := state.Load(dir)
	d := &fakeDrainer{failUncordon: map[string]bool{"worker-1": true}}
	e := &Engine{Runners: runners, State: st, Store: &backend.Local{Dir: dir}, HealthInterval: time.Millisecond,
		Drainer: d, Disrupts: func(plan.HostPlan) bool { return true }}
	p, want := restartPlan([]string{"worker-1"})
	if err := e.Apply(context.Background(), p, want); err == nil || !strings.Contains(err.Error(), "not Ready") {
		t.Fatalf("first apply: %v", err)
	}
	saved, _ := state.Load(dir)
	if !saved.Drained["worker-1"] {
		t.Fatalf("the saved state does not record worker-1 as drained: %v", saved.Drained)
	}
	// The next run: nothing else to change on the host, only the uncordon (as the planner adds it).
	d.failUncordon = nil
	e2 := &Engine{Runners: runners, State: saved, Store: &backend.Local{Dir: dir}, Drainer: d, Disrupts: func(plan.HostPlan) bool { return false }}
	p2 := &plan.Plan{Hosts: []plan.HostPlan{{Host: "worker-1", Changes: []plan.Change{{ID: "node:worker-1", Kind: NodeKind, Name: "worker-1",
		Action: plan.Update, Reasons: []string{"uncordon"}}}}}}
	if err := e2.Apply(context.Background(), p2, want); err != nil {
		t.Fatal(err)
	}
	final, _ := state.Load(dir)
	if strings.Join(d.log, ",") != "drain worker-1,uncordon worker-1" || len(final.Drained) != 0 {
		t.Errorf("log %q, drained %v", d.log, final.Drained)
	}
}
