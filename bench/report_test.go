package bench

import (
	"testing"
	"time"

	"github.com/kforge/kforge/internal/golden"
)

func TestRender(t *testing.T) {
	m := Machine{Date: "2026-11-28 21:00 UTC", CPU: "Example CPU", Cores: 2, Memory: "24 GiB", Kernel: "6.1.0", Go: "go1.26.8", Tools: "ansible-core 2.14.18"}
	rows := []Row{
		{Section: "plan", Case: "100 hosts", Kforge: 1500 * time.Millisecond, Other: 30 * time.Second, Notes: "1.0 round trips/host, 40 MiB RSS",
			Target: "≤ 1/10 of Ansible", Met: Met(true)},
		{Section: "lab cluster", Case: "apply from nothing", Kforge: 95 * time.Second, Target: "< 90 s", Met: Met(false)},
		{Section: "PKI", Case: "1000 nodes", Kforge: 2300 * time.Millisecond},
	}
	golden.Check(t, "testdata/render.md", Render(m, "Ansible", rows))
	if r := rows[0].Ratio(); r != 0.05 {
		t.Errorf("ratio %v", r)
	}
	if r := rows[2].Ratio(); r != 0 {
		t.Errorf("ratio without a comparison: %v", r)
	}
}

func TestDescribeMachine(t *testing.T) {
	m := DescribeMachine(time.Date(2026, 11, 28, 21, 0, 0, 0, time.UTC), "x")
	if m.Date != "2026-11-28 21:00 UTC" || m.Cores < 1 || m.CPU == "" || m.Kernel == "unknown" || m.Memory == "unknown" {
		t.Errorf("%+v", m)
	}
}
