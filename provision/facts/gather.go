package facts

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/kforge/kforge/provision/remote"
)

// ProbeTimeout bounds the probe on one host; it takes well under a second on an idle host.
const ProbeTimeout = 30 * time.Second

// Gather runs the probe on one host, as root, in exactly one command (one SSH round trip), and parses it.
func Gather(ctx context.Context, r remote.Runner) (*Facts, error) {
	started := time.Now()
	res, err := r.Run(ctx, remote.Command{Name: "probe host facts", Script: Script(), Sudo: true, Timeout: ProbeTimeout})
	if err != nil {
		return nil, err
	}
	duration := time.Since(started)
	f, err := Parse(res.Stdout)
	if err != nil {
		// The command ran, so the error is the host's output: say which host, as a failed command does.
		return nil, &remote.HostError{Host: r.Host(), Step: "gather facts", Err: fmt.Errorf("read the facts probe's output: %w", err)}
	}
	f.Host = r.Host()
	// Round to what JSON keeps (no monotonic reading), so that cached and saved facts compare equal.
	f.ProbeStarted = started.Round(0).UTC()
	f.ProbeDuration = duration
	return f, nil
}

// Cache holds the facts of one command run: every step of the run sees the same facts, and no host is
// probed twice, also when several steps ask at once. A failed probe is not kept, so a later call tries that
// host again. The zero value is ready to use; it is safe for concurrent use.
type Cache struct {
	mu    sync.Mutex
	hosts map[string]*probe
}

// probe is one host's probe, finished when done is closed.
type probe struct {
	done  chan struct{}
	facts *Facts
	err   error
}

// GatherAll returns the facts of every runner's host by host name, probing those not probed yet in
// parallel, at most limit at once. The error joins one *remote.HostError per host that failed; the map
// holds the hosts that did not.
func (c *Cache) GatherAll(ctx context.Context, runners []remote.Runner, limit int) (map[string]*Facts, error) {
	// One runner per host: a host listed twice would otherwise report its failure twice.
	var unique []remote.Runner
	seen := map[string]bool{}
	for _, r := range runners {
		if !seen[r.Host()] {
			seen[r.Host()] = true
			unique = append(unique, r)
		}
	}
	var mu sync.Mutex
	out := make(map[string]*Facts, len(unique))
	err := remote.ForEach(ctx, unique, limit, remote.Runner.Host, "gather facts", func(ctx context.Context, r remote.Runner) error {
		f, err := c.get(ctx, r)
		if err != nil {
			return err
		}
		mu.Lock()
		out[r.Host()] = f
		mu.Unlock()
		return nil
	})
	return out, err
}

// Get returns the facts gathered for host during this run, if any.
func (c *Cache) Get(host string) (*Facts, bool) {
	c.mu.Lock()
	p := c.hosts[host]
	c.mu.Unlock()
	if p == nil {
		return nil, false
	}
	select {
	case <-p.done:
		return p.facts, p.err == nil
	default:
		return nil, false
	}
}

func (c *Cache) get(ctx context.Context, r remote.Runner) (*Facts, error) {
	host := r.Host()
	c.mu.Lock()
	if c.hosts == nil {
		c.hosts = map[string]*probe{}
	}
	p, running := c.hosts[host]
	if !running {
		p = &probe{done: make(chan struct{})}
		c.hosts[host] = p
	}
	c.mu.Unlock()

	if running {
		select {
		case <-p.done:
			return p.facts, p.err
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	p.facts, p.err = Gather(ctx, r)
	if p.err != nil {
		c.mu.Lock()
		delete(c.hosts, host)
		c.mu.Unlock()
	}
	close(p.done)
	return p.facts, p.err
}
