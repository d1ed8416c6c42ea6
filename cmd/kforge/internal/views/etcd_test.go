package views

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/kforge/kforge/internal/golden"
	"github.com/kforge/kforge/provision/etcdsnapshot"
)

func restorePlan(t *testing.T) etcdsnapshot.RestorePlan {
	t.Helper()
	p, err := etcdsnapshot.PlanRestore(etcdsnapshot.RestoreInput{Cluster: "prod", File: "/backups/prod.db",
		SHA256: strings.Repeat("ab", 32), Size: 25 << 20,
		Members:      []etcdsnapshot.Member{{Name: "cp-1", IP: "198.18.0.11"}, {Name: "cp-2", IP: "198.18.0.12"}, {Name: "cp-3", IP: "198.18.0.13"}},
		ControlPlane: []string{"cp-1", "cp-2", "cp-3"}, Nodes: []string{"cp-1", "cp-2", "cp-3", "worker-1", "worker-2"}, APIPort: 6443,
		Now: time.Date(2026, 12, 7, 4, 15, 0, 0, time.UTC)})
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// TestRestorePlanText: the restore plan as an operator reads it before saying yes (a golden file shows it whole).
func TestRestorePlanText(t *testing.T) {
	golden.Check(t, "testdata/restore-plan.txt", RenderRestorePlan(restorePlan(t)))
}

// TestRestorePlanJSON: the same plan for a pipeline, then an event per step.
func TestRestorePlanJSON(t *testing.T) {
	var out bytes.Buffer
	v := &EtcdJSON{Out: &out}
	p := restorePlan(t)
	if err := v.RestorePlan(p); err != nil {
		t.Fatal(err)
	}
	v.Step(p.Steps[1], false, nil)
	v.Step(p.Steps[1], true, nil)
	var doc struct {
		Type string `json:"type"`
		Plan struct {
			Token string `json:"cluster_token"`
			Steps []struct {
				Action string   `json:"action"`
				Hosts  []string `json:"hosts"`
			} `json:"steps"`
		} `json:"plan"`
	}
	dec := json.NewDecoder(&out)
	if err := dec.Decode(&doc); err != nil || doc.Type != "restore_plan" || len(doc.Plan.Steps) != 8 ||
		doc.Plan.Steps[7].Action != "restart the kubelets" || len(doc.Plan.Steps[7].Hosts) != 5 || doc.Plan.Token != "kforge-prod-restore-20261207T041500Z" {
		t.Errorf("plan document: %v %+v", err, doc)
	}
	var ev struct{ Type, Action string }
	for _, want := range []string{"step_start", "step_done"} {
		if err := dec.Decode(&ev); err != nil || ev.Type != want || ev.Action != "stop the control plane" {
			t.Errorf("event: %v %+v, want %s", err, ev, want)
		}
	}
}
