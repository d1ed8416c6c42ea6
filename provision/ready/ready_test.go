package ready

import (
	"context"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/kforge/kforge/provision/remote"
)

// listing answers the node list with the next of its outputs (the last one for ever), and the journal with a line.
type listing struct {
	name    string
	outputs []string
	calls   atomic.Int64
}

func (l *listing) Host() string { return l.name }
func (l *listing) Run(_ context.Context, c remote.Command) (remote.Result, error) {
	if strings.HasPrefix(c.Script, "journalctl") {
		return remote.Result{Stdout: []byte("E1128 failed to get sandbox image\n")}, nil
	}
	i := min(int(l.calls.Add(1))-1, len(l.outputs)-1)
	return remote.Result{Stdout: []byte(l.outputs[i])}, nil
}
func (l *listing) Stat(context.Context, []string) ([]remote.FileInfo, error) { return nil, nil }
func (l *listing) ReadFile(context.Context, string) ([]byte, error)          { return nil, nil }
func (l *listing) Upload(context.Context, remote.File) (bool, error)         { return false, nil }
func (l *listing) Close() error                                              { return nil }

func TestWaitUntilEveryNodeIsReady(t *testing.T) {
	cp := &listing{name: "cp-1", outputs: []string{
		"cp-1\tTrue\tkubelet is posting ready status\n",
		"cp-1\tTrue\tok\nw-1\tFalse\tcontainer runtime network not ready\n",
		"cp-1\tTrue\tok\nw-1\tTrue\tok\nw-2\tTrue\tok\n",
	}}
	if err := Wait(context.Background(), cp, nil, []string{"cp-1", "w-1", "w-2"}, 10*time.Second, time.Millisecond); err != nil {
		t.Fatal(err)
	}
	if n := cp.calls.Load(); n != 3 {
		t.Errorf("asked %d times, want 3", n)
	}
}

func TestWaitNamesTheNodesThatAreNotReady(t *testing.T) {
	cp := &listing{name: "cp-1", outputs: []string{"cp-1\tTrue\tok\nw-1\tFalse\tcontainer runtime network not ready\nother\tFalse\t\n"}}
	w2 := &listing{name: "w-2"}
	err := Wait(context.Background(), cp, map[string]remote.Runner{"w-2": w2}, []string{"cp-1", "w-1", "w-2"}, 50*time.Millisecond, 5*time.Millisecond)
	if err == nil {
		t.Fatal("no error")
	}
	msg := err.Error()
	for _, want := range []string{"node w-1 is not Ready: container runtime network not ready after 50ms",
		"node w-2 is not registered (no Node object) after 50ms; the kubelet's last journal lines on w-2:\n    E1128 failed to get sandbox image"} {
		if !strings.Contains(msg, want) {
			t.Errorf("error lacks %q:\n%s", want, msg)
		}
	}
	if strings.Contains(msg, "cp-1 is") || strings.Contains(msg, "other") {
		t.Errorf("error names nodes that are fine or not wanted:\n%s", msg)
	}
}
