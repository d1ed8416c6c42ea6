// Package ready waits, after an apply, until the cluster serves (every node Ready, add-ons available), and drains
// and uncordons nodes around changes that disrupt their pods. It works through kubectl on a control-plane host,
// since the operator's machine may not reach the API server (a bastion, a private network).
package ready

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/kforge/kforge/provision/remote"
)

// nodesScript prints each node's name and its Ready condition's status and reason.
const nodesScript = `/usr/local/bin/kubectl --kubeconfig=/etc/kubernetes/admin.conf get nodes -o jsonpath='{range .items[*]}{.metadata.name}{"\t"}{.status.conditions[?(@.type=="Ready")].status}{"\t"}{.status.conditions[?(@.type=="Ready")].message}{"\n"}{end}'`

// Wait polls through cp until every node in want is Ready, for at most timeout. On a timeout the error names
// each node that is not, with what its Ready condition says and the last lines of its kubelet's journal (read
// through nodes, the runners by host name, where there is one).
func Wait(ctx context.Context, cp remote.Runner, nodes map[string]remote.Runner, want []string, timeout, every time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	var waiting map[string]string
	var lastErr error
	for {
		res, err := cp.Run(ctx, remote.Command{Script: nodesScript, Sudo: true, Name: "list the nodes"})
		if err == nil {
			if waiting = notReady(string(res.Stdout), want); len(waiting) == 0 {
				return nil
			}
		} else if ctx.Err() == nil {
			lastErr = err // the API server may still be starting: ask again
		}
		select {
		case <-ctx.Done():
			return timedOut(context.WithoutCancel(ctx), cp.Host(), nodes, waiting, lastErr, timeout)
		case <-time.After(every):
		}
	}
}

// notReady lists the wanted nodes that are missing or not Ready, with why.
func notReady(listing string, want []string) map[string]string {
	seen := map[string]string{}
	for _, line := range strings.Split(strings.TrimSpace(listing), "\n") {
		f := strings.SplitN(line, "\t", 3)
		if len(f) < 2 {
			continue
		}
		msg := ""
		if len(f) == 3 {
			msg = f[2]
		}
		if f[1] == "True" {
			seen[f[0]] = ""
		} else {
			seen[f[0]] = "not Ready: " + orUnknown(msg)
		}
	}
	out := map[string]string{}
	for _, n := range want {
		why, ok := seen[n]
		switch {
		case !ok:
			out[n] = "not registered (no Node object)"
		case why != "":
			out[n] = why
		}
	}
	return out
}

func orUnknown(s string) string {
	if s == "" {
		return "no Ready condition yet"
	}
	return s
}

func timedOut(ctx context.Context, cp string, nodes map[string]remote.Runner, waiting map[string]string, lastErr error, timeout time.Duration) error {
	if waiting == nil {
		return fmt.Errorf("host %s: the node list did not come within %s: %w", cp, timeout, lastErr)
	}
	names := make([]string, 0, len(waiting))
	for n := range waiting {
		names = append(names, n)
	}
	sort.Strings(names)
	var errs []error
	for _, n := range names {
		msg := fmt.Sprintf("node %s is %s after %s", n, waiting[n], timeout)
		if r, ok := nodes[n]; ok {
			ctx, cancel := context.WithTimeout(ctx, 15*time.Second)
			journal, err := remote.Journal(ctx, r, "kubelet.service", 15)
			cancel()
			if err == nil && journal != "" {
				msg += "; the kubelet's last journal lines on " + n + ":\n" + indent(journal)
			}
		}
		errs = append(errs, errors.New(msg))
	}
	return errors.Join(errs...)
}

func indent(s string) string {
	return "    " + strings.ReplaceAll(strings.TrimRight(s, "\n"), "\n", "\n    ")
}
