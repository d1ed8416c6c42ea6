package lab_test

import (
	"context"
	"testing"
	"time"

	"github.com/kforge/kforge/providers/lab"
)

// BenchmarkLabUp3 times a cold `lab up` of 3 hosts with the image cached: until every sshd answers, and until
// systemd reports "running" in every host. Run with make bench.
func BenchmarkLabUp3(b *testing.B) {
	if err := lab.Preflight(); err != nil {
		b.Skip(err)
	}
	m := fixture.Manager()
	if _, err := m.Up(context.Background(), lab.UpOptions{Name: "tbench", Hosts: 1}); err != nil { // builds the image if needed
		b.Fatal(err)
	}
	if _, err := m.Down(context.Background(), "tbench"); err != nil {
		b.Fatal(err)
	}
	var toSSH, toRunning time.Duration
	for i := 0; i < b.N; i++ {
		start := time.Now()
		res, err := m.Up(context.Background(), lab.UpOptions{Name: "tbench", Hosts: 3})
		if err != nil {
			b.Fatal(err)
		}
		toSSH += time.Since(start)
		for _, h := range res.Lab.Hosts {
			out := sshRun(b, res.Lab, h, "systemctl is-system-running --wait")
			if out != "running" {
				b.Errorf("%s: %s", h.Name, out)
			}
		}
		toRunning += time.Since(start)
		if _, err := m.Down(context.Background(), "tbench"); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(toSSH.Seconds()/float64(b.N), "s-to-ssh")
	b.ReportMetric(toRunning.Seconds()/float64(b.N), "s-to-running")
}
