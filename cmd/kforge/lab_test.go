package main

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/kforge/kforge/cmd/kforge/internal/views"
	"github.com/kforge/kforge/providers/lab"
	"github.com/kforge/kforge/providers/lab/labtest"
)

// TestLabCommands: lab up, status (systemd state read over SSH with strict host keys), a refused second up,
// and lab down leaving nothing behind.
func TestLabCommands(t *testing.T) {
	if err := lab.Preflight(); err != nil {
		t.Skip("no lab hosts on this machine: " + err.Error())
	}
	const name = "tcli"
	m := &lab.Manager{Paths: lab.DefaultPaths()}
	t.Cleanup(func() { kforge(t, nil, "", "lab", "down", "--name", name) })

	r := kforge(t, nil, "", "lab", "up", "--name", name, "--hosts", "2")
	if r.code != 0 || strings.Count(r.stdout, "running") != 2 {
		t.Fatalf("up: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	r = kforge(t, nil, "", "lab", "status", "--name", name, "--json")
	var rep views.LabReport
	if err := json.Unmarshal([]byte(r.stdout), &rep); err != nil || r.code != 0 || len(rep.Hosts) != 2 {
		t.Fatalf("status: exit %d %v\n%s", r.code, err, r.stdout)
	}
	for _, h := range rep.Hosts {
		if h.State != "running" || !strings.HasPrefix(h.Address, "198.18.") {
			t.Errorf("status host %+v", h)
		}
	}
	if r := kforge(t, nil, "", "lab", "up", "--name", name); r.code != 1 || !strings.Contains(r.stderr, "already up") {
		t.Errorf("second up: exit %d %s", r.code, r.stderr)
	}
	l, err := m.Load(name)
	if err != nil {
		t.Fatal(err)
	}
	if r := kforge(t, nil, "", "lab", "down", "--name", name); r.code != 0 || !strings.Contains(r.stdout, "2 hosts stopped") {
		t.Errorf("down: exit %d %s%s", r.code, r.stdout, r.stderr)
	}
	if left := labtest.Leftovers(l); len(left) > 0 {
		t.Errorf("left behind: %v", left)
	}
	if r := kforge(t, nil, "", "lab", "status", "--name", name); r.code != 1 || !strings.Contains(r.stderr, "no lab") {
		t.Errorf("status after down: exit %d %s", r.code, r.stderr)
	}
}
