package ready

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/kforge/kforge/provision/remote"
)

// Deployment is a Deployment an apply waits for: an add-on kforge deployed.
type Deployment struct {
	Namespace, Name string
	Selector        string // its pods' label selector, for the error
}

const kubectl = "/usr/local/bin/kubectl --kubeconfig=/etc/kubernetes/admin.conf --request-timeout=10s "

// rollout is a Deployment's rollout as its status says it.
type rollout struct {
	generation, observed, replicas, current, updated, available int
}

func parseRollout(s string) (rollout, bool) {
	f := strings.Split(strings.TrimRight(s, "\r\n"), "\t") // not TrimSpace: empty last fields are tabs
	if len(f) != 6 {
		return rollout{}, false
	}
	n := make([]int, 6)
	for i, v := range f {
		if v == "" {
			continue // a status field not set yet: zero
		}
		x, err := strconv.Atoi(v)
		if err != nil {
			return rollout{}, false
		}
		n[i] = x
	}
	return rollout{n[0], n[1], n[2], n[3], n[4], n[5]}, true
}

// done is kubectl rollout status' rule: the controller saw the latest spec, every replica runs it and is
// available, and no old replica is left.
func (r rollout) done() bool {
	return r.observed >= r.generation && r.updated == r.replicas && r.available == r.replicas && r.current == r.replicas
}

func (r rollout) String() string {
	return fmt.Sprintf("%d of %d replicas available, %d up to date", r.available, r.replicas, r.updated)
}

// WaitAvailable polls through cp until d's rollout is complete, for at most timeout, and returns its replicas.
// On a timeout the error says how far it got, with its pods (kubectl get -o wide) and their latest events.
func WaitAvailable(ctx context.Context, cp remote.Runner, d Deployment, timeout, every time.Duration) (int, error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	script := kubectl + fmt.Sprintf("-n %s get deployment %s -o jsonpath=", remote.ShellQuote(d.Namespace), remote.ShellQuote(d.Name)) +
		remote.ShellQuote(`{.metadata.generation}{"\t"}{.status.observedGeneration}{"\t"}{.spec.replicas}{"\t"}{.status.replicas}{"\t"}{.status.updatedReplicas}{"\t"}{.status.availableReplicas}`)
	why := "it does not exist"
	for {
		res, err := cp.Run(ctx, remote.Command{Script: script, Sudo: true, Name: "ask for deployment " + d.Namespace + "/" + d.Name})
		if err == nil {
			if r, ok := parseRollout(string(res.Stdout)); ok {
				if r.done() {
					return r.replicas, nil
				}
				why = r.String()
			}
		} else if ctx.Err() == nil {
			why = err.Error()
		}
		select {
		case <-ctx.Done():
			return 0, notAvailable(context.WithoutCancel(ctx), cp, d, why, timeout)
		case <-time.After(every):
		}
	}
}

func notAvailable(ctx context.Context, cp remote.Runner, d Deployment, why string, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	ns := "-n " + remote.ShellQuote(d.Namespace) + " "
	// The pods' events, newest last: the reason a pod is not ready (an image not found, a failing probe, a node
	// that does not fit) is there.
	script := "echo 'its pods:'; " + kubectl + ns + "get pods -o wide -l " + remote.ShellQuote(d.Selector) + " 2>&1 | sed 's/^/  /'; " +
		"echo 'their latest events:'; " + kubectl + ns + "get events --field-selector involvedObject.kind=Pod --sort-by=.lastTimestamp " +
		"-o custom-columns=LAST:.lastTimestamp,POD:.involvedObject.name,TYPE:.type,REASON:.reason,MESSAGE:.message --no-headers 2>&1 | " +
		"grep -F " + remote.ShellQuote(" "+d.Name+"-") + " | tail -n 20 | sed 's/^/  /'; true"
	msg := fmt.Sprintf("host %s: deployment %s/%s is not available after %s: %s", cp.Host(), d.Namespace, d.Name, timeout, why)
	if res, err := cp.Run(ctx, remote.Command{Script: script, Sudo: true, Name: "describe deployment " + d.Name}); err == nil {
		msg += "; " + strings.TrimRight(string(res.Stdout), "\n")
	}
	return errors.New(msg)
}

// RestartTrusting waits until the kube-root-ca.crt ConfigMap of d's namespace (what its pods trust the API
// server with, published by the controller-manager) is trust, then restarts d's rollout: its pods read the CA
// once, when they start.
func RestartTrusting(ctx context.Context, cp remote.Runner, d Deployment, trust []byte, timeout, every time.Duration) error {
	wait, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	get := kubectl + "-n " + remote.ShellQuote(d.Namespace) + ` get configmap kube-root-ca.crt -o jsonpath='{.data.ca\.crt}'`
	for {
		res, err := cp.Run(wait, remote.Command{Script: get, Sudo: true, Name: "read kube-root-ca.crt in " + d.Namespace})
		if err == nil && strings.TrimSpace(string(res.Stdout)) == strings.TrimSpace(string(trust)) {
			break
		}
		select {
		case <-wait.Done():
			return fmt.Errorf("kube-root-ca.crt in %s does not hold the CAs the hosts trust after %s: is the controller-manager running?", d.Namespace, timeout)
		case <-time.After(every):
		}
	}
	_, err := cp.Run(ctx, remote.Command{Name: "restart deployment " + d.Namespace + "/" + d.Name, Sudo: true,
		Script: kubectl + "-n " + remote.ShellQuote(d.Namespace) + " rollout restart deployment " + remote.ShellQuote(d.Name)})
	return err
}
