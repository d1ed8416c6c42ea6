package ssh

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"

	"github.com/kforge/kforge/provision/remote"
	"github.com/kforge/kforge/provision/ssh/sshdtest"
)

// TestTwentyHostsInParallel connects to 20 servers and runs a command on each through the one fan-out helper;
// a 21st host that cannot be reached fails alone, with its name.
func TestTwentyHostsInParallel(t *testing.T) {
	root := sshdtest.Root(t)
	servers := make([]*sshdtest.Server, 20)
	var wg sync.WaitGroup
	for i := range servers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			servers[i] = sshdtest.Start(t, sshdtest.Options{Users: []*sshdtest.User{root}})
		}()
	}
	wg.Wait()
	d, _ := testDialer(t, servers...)
	var targets []Target
	for i, srv := range servers {
		targets = append(targets, targetOf(fmt.Sprintf("worker-%02d", i), srv, root))
	}
	dead := targetOf("worker-dead", servers[0], root)
	dead.Port = freePort(t)
	targets = append(targets, dead)

	var mu sync.Mutex
	got := map[string]string{}
	err := remote.ForEach(context.Background(), targets, 10, func(t Target) string { return t.Name }, "probe",
		func(ctx context.Context, target Target) error {
			c, err := d.Dial(ctx, target)
			if err != nil {
				return err
			}
			defer c.Close()
			res, err := c.Run(ctx, remote.Command{Script: "echo $SSH_CONNECTION"})
			if err != nil {
				return err
			}
			mu.Lock()
			got[target.Name] = strings.TrimSpace(string(res.Stdout))
			mu.Unlock()
			return nil
		})
	errs := remote.HostErrors(err)
	if len(errs) != 1 || errs[0].Host != "worker-dead" || errs[0].Step != "probe" {
		t.Fatalf("errors: %v", err)
	}
	var he *remote.HostError
	if !errors.As(err, &he) {
		t.Error("not a HostError")
	}
	for i, srv := range servers {
		name := fmt.Sprintf("worker-%02d", i)
		// SSH_CONNECTION ends with the server's address and port: each command ran on its own server.
		if !strings.HasSuffix(got[name], fmt.Sprintf("%s %d", srv.Host, srv.Port)) {
			t.Errorf("%s: SSH_CONNECTION %q", name, got[name])
		}
	}
}

// TestBastion reaches a host that only the bastion can reach, checking both hosts' keys.
func TestBastion(t *testing.T) {
	root := sshdtest.Root(t)
	bastion, target := sshdtest.BastionTopology(t, root)
	d, _ := testDialer(t, bastion, target)
	direct := targetOf("inner", target, root)
	direct.ConnectTimeout = 1e9
	if _, err := d.Dial(context.Background(), direct); err == nil {
		t.Fatal("the target is reachable without the bastion; the test proves nothing")
	}
	via := targetOf("inner", target, root)
	b := targetOf("jump", bastion, root)
	via.Bastion = &b
	c := dial(t, d, via)
	if got := run(t, c, "echo $SSH_CONNECTION", false); !strings.HasSuffix(got, fmt.Sprintf("%s %d", target.Host, target.Port)) {
		t.Errorf("ran on %q, want the target %s", got, target.Addr)
	}

	// The bastion's own key is checked too: unknown bastion, refused.
	d2, _ := testDialer(t, target)
	_, err := d2.Dial(context.Background(), via)
	var unknown *UnknownHostError
	if !errors.As(err, &unknown) || unknown.Addr != bastion.Addr {
		t.Errorf("unknown bastion: %v", err)
	}
}
