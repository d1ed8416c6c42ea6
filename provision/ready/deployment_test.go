package ready

import (
	"context"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/kforge/kforge/provision/remote"
)

// rollouts answers the deployment's status with the next of its outputs (the last one for ever), and the
// description of its pods with a listing and an event.
type rollouts struct {
	listing
	statuses []string
	asked    atomic.Int64
}

func (r *rollouts) Run(_ context.Context, c remote.Command) (remote.Result, error) {
	if strings.Contains(c.Script, "get pods -o wide") {
		if !strings.Contains(c.Script, "-l 'k8s-app=kube-dns'") || !strings.Contains(c.Script, "grep -F ' coredns-'") {
			return remote.Result{}, nil
		}
		return remote.Result{Stdout: []byte("its pods:\n  coredns-7d9f-abcde   0/1   ErrImagePull   w-1\n" +
			"their latest events:\n  2026-12-04T10:00:00Z   coredns-7d9f-abcde   Warning   Failed   failed to pull image\n")}, nil
	}
	i := min(int(r.asked.Add(1))-1, len(r.statuses)-1)
	return remote.Result{Stdout: []byte(r.statuses[i])}, nil
}

var coredns = Deployment{Namespace: "kube-system", Name: "coredns", Selector: "k8s-app=kube-dns"}

func TestWaitAvailableUntilTheRolloutIsComplete(t *testing.T) {
	cp := &rollouts{listing: listing{name: "cp-1"}, statuses: []string{
		"", // not created yet
		"1\t\t2\t\t\t",
		"2\t1\t2\t2\t2\t2", // a new spec the controller has not seen
		"2\t2\t2\t3\t2\t2", // an old replica is still there
		"2\t2\t2\t2\t2\t",  // none available yet
		"2\t2\t2\t2\t2\t2",
	}}
	n, err := WaitAvailable(context.Background(), cp, coredns, 10*time.Second, time.Millisecond)
	if err != nil || n != 2 {
		t.Fatalf("%d replicas, %v", n, err)
	}
	if got := cp.asked.Load(); got != 6 {
		t.Errorf("asked %d times, want 6", got)
	}
}

func TestWaitAvailableShowsThePodsAndTheirEvents(t *testing.T) {
	cp := &rollouts{listing: listing{name: "cp-1"}, statuses: []string{"3\t3\t2\t2\t2\t1"}}
	_, err := WaitAvailable(context.Background(), cp, coredns, 30*time.Millisecond, 5*time.Millisecond)
	if err == nil {
		t.Fatal("no error")
	}
	for _, want := range []string{"host cp-1: deployment kube-system/coredns is not available after 30ms: 1 of 2 replicas available, 2 up to date",
		"coredns-7d9f-abcde   0/1   ErrImagePull   w-1", "Warning   Failed   failed to pull image"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error lacks %q:\n%s", want, err)
		}
	}
}
