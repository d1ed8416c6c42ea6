package remote

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"testing"
	"time"
)

func TestForEachBoundsConcurrencyAndKeepsHostErrors(t *testing.T) {
	hosts := make([]string, 30)
	for i := range hosts {
		hosts[i] = fmt.Sprintf("h%02d", i)
	}
	var running, peak atomic.Int32
	err := ForEach(context.Background(), hosts, 4, func(h string) string { return h }, "probe", func(_ context.Context, h string) error {
		n := running.Add(1)
		for {
			p := peak.Load()
			if n <= p || peak.CompareAndSwap(p, n) {
				break
			}
		}
		time.Sleep(2 * time.Millisecond)
		running.Add(-1)
		if h == "h03" || h == "h17" {
			return fmt.Errorf("boom on %s", h)
		}
		return nil
	})
	if p := peak.Load(); p != 4 {
		t.Errorf("peak concurrency = %d, want 4", p)
	}
	errs := HostErrors(err)
	if len(errs) != 2 || errs[0].Host != "h03" || errs[1].Host != "h17" || errs[0].Step != "probe" {
		t.Fatalf("host errors = %v", errs)
	}
	if got := errs[0].Error(); got != "host h03: probe: boom on h03" {
		t.Errorf("message = %q", got)
	}
	var he *HostError
	if !errors.As(err, &he) {
		t.Error("errors.As cannot find a HostError")
	}
}

func TestForEachStopsStartingWhenCancelled(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	var started atomic.Int32
	err := ForEach(ctx, []int{1, 2, 3, 4, 5}, 1, func(i int) string { return fmt.Sprint("h", i) }, "", func(ctx context.Context, i int) error {
		started.Add(1)
		if i == 2 {
			cancel()
		}
		return nil
	})
	errs := HostErrors(err)
	if started.Load() != 2 || len(errs) != 3 || !errors.Is(errs[0].Err, context.Canceled) || errs[0].Host != "h3" {
		t.Errorf("started %d, errors %v", started.Load(), errs)
	}
}

func TestForEachKeepsAnExistingHostError(t *testing.T) {
	inner := &HostError{Host: "a", Step: "upload /etc/x", Err: errors.New("disk full")}
	err := ForEach(context.Background(), []string{"a"}, 2, func(s string) string { return s }, "apply", func(context.Context, string) error { return inner })
	if errs := HostErrors(err); len(errs) != 1 || errs[0] != inner {
		t.Errorf("errors = %v", errs)
	}
}

func TestExitErrorAndLabel(t *testing.T) {
	e := &ExitError{Command: "read os-release", Status: 2, Stderr: "cat: /etc/os-release: No such file\n"}
	if e.Error() != "read os-release: exit status 2: cat: /etc/os-release: No such file" {
		t.Errorf("%q", e.Error())
	}
	if l := (Command{Script: "\n  set -e\n  echo hi\n"}).Label(); l != "set -e" {
		t.Errorf("label %q", l)
	}
}
