package ready

import (
	"context"
	"fmt"
	"time"

	"github.com/kforge/kforge/provision/remote"
)

// Drainer moves a node's pods away before a change that disrupts them (a new kubelet or container runtime) and
// lets pods back once the node is Ready again, through kubectl on a control-plane host.
type Drainer struct {
	CP    remote.Runner
	Nodes map[string]remote.Runner // by host name, for the kubelet's journal when a node does not come back
	// DrainTimeout bounds a drain (default 5 minutes): evictions go through the eviction API, so a
	// PodDisruptionBudget that never allows one fails the apply rather than being overridden.
	DrainTimeout time.Duration
	// ReadyTimeout bounds the wait for the node to be Ready before it is uncordoned (default 3 minutes).
	ReadyTimeout time.Duration
}

// Drain cordons node and evicts its pods (DaemonSets' excepted; emptyDir data goes with its pod). A pod that no
// controller would recreate stops the drain: kforge does not delete what nothing brings back.
func (d *Drainer) Drain(ctx context.Context, node string) error {
	timeout := orDefault(d.DrainTimeout, 5*time.Minute)
	_, err := d.CP.Run(ctx, remote.Command{Name: "drain node " + node, Sudo: true, Timeout: timeout + time.Minute,
		Script: kubectl + "drain " + remote.ShellQuote(node) + fmt.Sprintf(" --ignore-daemonsets --delete-emptydir-data --timeout=%ds", int(timeout.Seconds()))})
	return err
}

// Uncordon waits until node is Ready, then lets pods be scheduled on it again.
func (d *Drainer) Uncordon(ctx context.Context, node string) error {
	if err := Wait(ctx, d.CP, d.Nodes, []string{node}, orDefault(d.ReadyTimeout, 3*time.Minute), 2*time.Second); err != nil {
		return err
	}
	_, err := d.CP.Run(ctx, remote.Command{Name: "uncordon node " + node, Sudo: true, Script: kubectl + "uncordon " + remote.ShellQuote(node)})
	return err
}

func orDefault(d, def time.Duration) time.Duration {
	if d <= 0 {
		return def
	}
	return d
}
