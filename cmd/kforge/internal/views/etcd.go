package views

import (
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/kforge/kforge/internal/bytesize"
	"github.com/kforge/kforge/provision/etcdsnapshot"
)

// SnapshotSaved is a snapshot written to this machine.
type SnapshotSaved struct {
	Cluster string `json:"cluster"`
	File    string `json:"file"`
	// SumFile holds the digest in sha256sum's format, so that `sha256sum -c` checks the snapshot.
	SumFile string `json:"sha256_file"`
	etcdsnapshot.Snapshot
}

// Etcd shows the etcd commands' results.
type Etcd interface {
	Saved(SnapshotSaved) error
	RestorePlan(etcdsnapshot.RestorePlan) error
	// Step reports a restore step starting (done false) or ending.
	Step(s etcdsnapshot.Step, done bool, err error)
	Restored(p etcdsnapshot.RestorePlan, took time.Duration) error
}

var (
	_ Etcd = (*EtcdHuman)(nil)
	_ Etcd = (*EtcdJSON)(nil)
)

// EtcdHuman prints for people: results to Out, progress to Err.
type EtcdHuman struct {
	Out, Err io.Writer
}

func (v *EtcdHuman) Saved(s SnapshotSaved) error {
	_, err := fmt.Fprintf(v.Out, "Saved a snapshot of cluster %q's etcd from member %s (revision %d):\n  %s\n  %s, sha256 %s (also in %s)\n",
		s.Cluster, s.Member, s.Revision, s.File, bytesize.String(s.Size), s.SHA256, s.SumFile)
	return err
}

func (v *EtcdHuman) RestorePlan(p etcdsnapshot.RestorePlan) error {
	_, err := io.WriteString(v.Out, RenderRestorePlan(p))
	return err
}

// RenderRestorePlan is the restore plan as text: what happens, in order, on which hosts.
func RenderRestorePlan(p etcdsnapshot.RestorePlan) string {
	var b strings.Builder
	fmt.Fprintf(&b, "kforge will restore the whole etcd cluster from %s\n  (%s, sha256 %s).\n", p.File, bytesize.String(p.Size), p.SHA256)
	var steps strings.Builder
	n, apiBack := 0, 0
	for _, s := range p.Steps {
		if len(s.Hosts) == 0 {
			continue
		}
		n++
		if s.Action == etcdsnapshot.StartControlPlane {
			apiBack = n
		}
		fmt.Fprintf(&steps, "  %d. %s on %s\n     %s\n", n, s.Action, strings.Join(s.Hosts, ", "), s.Detail)
	}
	fmt.Fprintf(&b, "Everything the cluster stored after the snapshot was taken is lost; the API is down until step %d ends.\n\n", apiBack)
	b.WriteString(steps.String())
	fmt.Fprintf(&b, "\nNew cluster token: %s. Each member's old data stays in %s.\n", p.Token, p.Aside)
	return b.String()
}

func (v *EtcdHuman) Step(s etcdsnapshot.Step, done bool, err error) {
	switch {
	case !done:
		fmt.Fprintf(v.Err, "… %s on %s\n", s.Action, strings.Join(s.Hosts, ", "))
	case err != nil:
		fmt.Fprintf(v.Err, "✗ %s\n", s.Action)
	}
}

func (v *EtcdHuman) Restored(p etcdsnapshot.RestorePlan, took time.Duration) error {
	_, err := fmt.Fprintf(v.Out, "\nRestored etcd from %s in %s: every member is healthy and every API server ready.\n", p.File, took.Round(100*time.Millisecond))
	return err
}

// EtcdJSON writes one JSON document per result, and a line per restore step event.
type EtcdJSON struct {
	Out io.Writer
}

func (v *EtcdJSON) Saved(s SnapshotSaved) error { return writeJSON(v.Out, s) }

func (v *EtcdJSON) RestorePlan(p etcdsnapshot.RestorePlan) error {
	return writeJSON(v.Out, struct {
		Type string                   `json:"type"`
		Plan etcdsnapshot.RestorePlan `json:"plan"`
	}{"restore_plan", p})
}

func (v *EtcdJSON) Step(s etcdsnapshot.Step, done bool, err error) {
	ev := struct {
		Type   string   `json:"type"`
		Action string   `json:"action"`
		Hosts  []string `json:"hosts"`
		Error  string   `json:"error,omitempty"`
	}{"step_start", s.Action, s.Hosts, ""}
	if done {
		ev.Type = "step_done"
		if err != nil {
			ev.Type, ev.Error = "step_failed", err.Error()
		}
	}
	writeJSON(v.Out, ev)
}

func (v *EtcdJSON) Restored(p etcdsnapshot.RestorePlan, took time.Duration) error {
	return writeJSON(v.Out, struct {
		Type    string  `json:"type"`
		File    string  `json:"file"`
		Seconds float64 `json:"seconds"`
	}{"restored", p.File, took.Seconds()})
}
