package ssh

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/kforge/kforge/provision/remote"
	"github.com/kforge/kforge/provision/ssh/sshdtest"
)

// TestRunStopsAtOutputLimit: a host that prints without end (100 MiB here, gigabytes for a hostile one) gets
// its command stopped once a stream passes what Run keeps, at once rather than at the command's timeout, with
// an error naming the host, the step and the stream; the remote processes are gone, and the connection serves on.
func TestRunStopsAtOutputLimit(t *testing.T) {
	root := sshdtest.Root(t)
	srv := sshdtest.Start(t, sshdtest.Options{Users: []*sshdtest.User{root}})
	d, _ := testDialer(t, srv)
	c := dial(t, d, targetOf("flood-1", srv, root))
	if c.maxStdout != remote.MaxStdout || c.maxStderr != remote.MaxStderr {
		t.Fatalf("limits %d and %d, want remote.MaxStdout and MaxStderr", c.maxStdout, c.maxStderr)
	}
	c.maxStdout, c.maxStderr = 1<<20, 64<<10

	for _, tc := range []struct {
		stream, redirect, limit string
		max                     int
	}{
		{"stdout", "", "1.0 MiB", 1 << 20},
		{"stderr", " >&2", "64.0 KiB", 64 << 10},
	} {
		t.Run(tc.stream, func(t *testing.T) {
			// A byte count of its own finds this head among the host's processes; the echo after it keeps sh
			// (whose command line has the marker) as its parent.
			count := 100<<20 + os.Getpid()%1000*1000 + time.Now().Nanosecond()%1000
			marker := fmt.Sprintf("flood-%d", count)
			ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
			defer cancel()
			start := time.Now()
			res, err := c.Run(ctx, remote.Command{Name: "read the flood",
				Script: fmt.Sprintf("head -c %d /dev/zero%s; echo %s", count, tc.redirect, marker)})
			took := time.Since(start)

			var limit *remote.OutputLimitError
			var he *remote.HostError
			if !errors.As(err, &limit) || !errors.As(err, &he) {
				t.Fatalf("error = %v (%T), want an *OutputLimitError in a *HostError", err, err)
			}
			want := "host flood-1: read the flood: its " + tc.stream + " exceeded the limit of " + tc.limit +
				" that kforge keeps of a command's output; the command was stopped"
			if err.Error() != want || limit.Stream != tc.stream || limit.Limit != tc.max || he.Host != "flood-1" {
				t.Errorf("error %q (%+v),\nwant %q", err, limit, want)
			}
			if took > 15*time.Second {
				t.Errorf("stopping the flood took %s: the output was drained, or the stop waited for a timeout", took)
			}
			kept := map[string][]byte{"stdout": res.Stdout, "stderr": res.Stderr}[tc.stream]
			if len(kept) > tc.max || len(kept) < tc.max/2 || len(bytes.Trim(kept, "\x00")) != 0 || res.ExitStatus != -1 {
				t.Errorf("result: %d bytes of %s kept (at most %d), exit status %d", len(kept), tc.stream, tc.max, res.ExitStatus)
			}
			// Nothing of the command is left running on the host.
			deadline := time.Now().Add(5 * time.Second)
			for {
				sh, _ := exec.Command("pgrep", "-f", marker).Output()
				head, _ := exec.Command("pgrep", "-f", fmt.Sprintf("head -c %d /dev/zero", count)).Output()
				if len(bytes.TrimSpace(sh)) == 0 && len(bytes.TrimSpace(head)) == 0 {
					break
				}
				if time.Now().After(deadline) {
					t.Fatalf("the command still runs on the host: sh %s, head %s", sh, head)
				}
				time.Sleep(50 * time.Millisecond)
			}
		})
	}

	// Output that ends just past the limit fits in the channel's window, so the command exits by itself: it is
	// refused all the same, rather than returned cut short.
	_, err := c.Run(context.Background(), remote.Command{Name: "one byte too many", Script: "head -c 1048577 /dev/zero"})
	var limit *remote.OutputLimitError
	if !errors.As(err, &limit) || limit.Stream != "stdout" || !strings.HasPrefix(err.Error(), "host flood-1: one byte too many: ") {
		t.Errorf("one byte past the limit: %v", err)
	}
	_, err = c.Run(context.Background(), remote.Command{Name: "one byte too many", Script: "head -c 65537 /dev/zero >&2; exit 4"})
	if !errors.As(err, &limit) || limit.Stream != "stderr" {
		t.Errorf("one byte past the limit on stderr, with a failure: %v", err)
	}

	// Up to the limit, everything is kept; streamed output has no limit; the connection still serves.
	res, err := c.Run(context.Background(), remote.Command{Script: "head -c 1048576 /dev/zero; head -c 65000 /dev/zero >&2"})
	if err != nil || len(res.Stdout) != 1<<20 || len(res.Stderr) != 65000 {
		t.Errorf("output at the limit: %d and %d bytes, %v", len(res.Stdout), len(res.Stderr), err)
	}
	var streamed bytes.Buffer
	res, err = c.Run(context.Background(), remote.Command{Script: "head -c 4194304 /dev/zero", Stdout: &streamed})
	if err != nil || streamed.Len() != 4<<20 || len(res.Stdout) != 0 {
		t.Errorf("streamed: %d bytes, %v", streamed.Len(), err)
	}
	if got := run(t, c, "echo still here", false); got != "still here" {
		t.Errorf("after the floods: %q", got)
	}
}
