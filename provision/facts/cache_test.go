package facts

import (
	"context"
	"errors"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/kforge/kforge/provision/remote"
)

// fakeRunner answers the probe with a fixture, counting the commands it runs.
type fakeRunner struct {
	remote.Runner // nil: only Host and Run are used
	host          string
	out           []byte
	err           error
	delay         time.Duration
	runs          atomic.Int32
	mu            sync.Mutex
	cmds          []remote.Command
}

func (r *fakeRunner) Host() string { return r.host }

func (r *fakeRunner) Run(ctx context.Context, cmd remote.Command) (remote.Result, error) {
	r.runs.Add(1)
	r.mu.Lock()
	r.cmds = append(r.cmds, cmd)
	r.mu.Unlock()
	select {
	case <-time.After(r.delay):
	case <-ctx.Done():
		return remote.Result{}, ctx.Err()
	}
	if r.err != nil {
		return remote.Result{}, &remote.HostError{Host: r.host, Step: cmd.Label(), Err: r.err}
	}
	return remote.Result{Stdout: r.out}, nil
}

func fixture(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile("testdata/" + name)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestGatherIsOneRootCommandWithATimeout(t *testing.T) {
	r := &fakeRunner{host: "cp-1", out: fixture(t, "lab-host-1.txt")}
	f, err := Gather(context.Background(), r)
	if err != nil {
		t.Fatal(err)
	}
	if r.runs.Load() != 1 || !r.cmds[0].Sudo || r.cmds[0].Timeout != ProbeTimeout || r.cmds[0].Script != Script() {
		t.Errorf("commands %+v", r.cmds)
	}
	if f.Host != "cp-1" || f.ProbeStarted.IsZero() || f.ProbeDuration <= 0 || f.Hostname != "tfacts-1" {
		t.Errorf("%+v", f)
	}
	r = &fakeRunner{host: "cp-1", out: []byte("@kforge-facts\n|1\n")}
	if _, err := Gather(context.Background(), r); err == nil || !strings.Contains(err.Error(), "cut short") {
		t.Errorf("truncated output: %v", err)
	}
}

func TestCacheProbesEachHostOnce(t *testing.T) {
	a := &fakeRunner{host: "a", out: fixture(t, "lab-host-1.txt"), delay: 20 * time.Millisecond}
	b := &fakeRunner{host: "b", out: fixture(t, "lab-host-2.txt"), delay: 20 * time.Millisecond}
	var c Cache
	// Several steps ask at once, one of them listing a host twice.
	var wg sync.WaitGroup
	results := make([]map[string]*Facts, 5)
	for i := range results {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var err error
			results[i], err = c.GatherAll(context.Background(), []remote.Runner{a, b, a}, 2)
			if err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	if a.runs.Load() != 1 || b.runs.Load() != 1 {
		t.Errorf("probes: a %d, b %d", a.runs.Load(), b.runs.Load())
	}
	for _, m := range results {
		if len(m) != 2 || m["a"] != results[0]["a"] || m["b"] != results[0]["b"] || m["a"].Hostname != "tfacts-1" {
			t.Errorf("%v", m)
		}
	}
	if f, ok := c.Get("b"); !ok || f != results[0]["b"] {
		t.Errorf("Get(b) = %v %v", f, ok)
	}
	if _, ok := c.Get("nope"); ok {
		t.Error("Get of an unknown host")
	}
}

func TestCacheReportsEachFailedHostAndRetriesIt(t *testing.T) {
	good := &fakeRunner{host: "good", out: fixture(t, "lab-host-1.txt")}
	down := &fakeRunner{host: "down", err: errors.New("connection refused")}
	garbled := &fakeRunner{host: "garbled", out: []byte("no probe here")}
	var c Cache
	m, err := c.GatherAll(context.Background(), []remote.Runner{good, down, garbled}, 3)
	if len(m) != 1 || m["good"] == nil {
		t.Errorf("facts %v", m)
	}
	hes := remote.HostErrors(err)
	if len(hes) != 2 || hes[0].Host != "down" || hes[1].Host != "garbled" || hes[1].Step != "gather facts" ||
		!strings.Contains(hes[1].Error(), "@kforge-facts line is missing") {
		t.Fatalf("errors: %v", err)
	}
	// A failure is not kept: the next call tries again; a success is kept.
	down.err = nil
	down.out = fixture(t, "lab-host-2.txt")
	m, err = c.GatherAll(context.Background(), []remote.Runner{good, down}, 3)
	if err != nil || len(m) != 2 || good.runs.Load() != 1 || down.runs.Load() != 2 {
		t.Errorf("retry: %v %v, runs good %d down %d", m, err, good.runs.Load(), down.runs.Load())
	}
}

func TestCacheHonoursCancellation(t *testing.T) {
	slow := &fakeRunner{host: "slow", out: fixture(t, "lab-host-1.txt"), delay: time.Minute}
	var c Cache
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	done := make(chan error, 2)
	for i := 0; i < 2; i++ {
		go func() {
			_, err := c.GatherAll(ctx, []remote.Runner{slow}, 1)
			done <- err
		}()
	}
	for i := 0; i < 2; i++ {
		select {
		case err := <-done:
			if !errors.Is(err, context.DeadlineExceeded) {
				t.Errorf("error %v", err)
			}
		case <-time.After(5 * time.Second):
			t.Fatal("GatherAll ignores its context")
		}
	}
	if n := slow.runs.Load(); n != 1 {
		t.Errorf("%d probes", n)
	}
}
