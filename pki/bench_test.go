package pki

import (
	"path/filepath"
	"testing"
	"time"
)

// BenchmarkIssueFullSet times issuing every certificate and key of a 3-node and a 1000-node cluster from an
// empty store (ECDSA P-256; the target for 1000 nodes is under 5 s). Run with make bench.
func BenchmarkIssueFullSet(b *testing.B) {
	for _, size := range []struct {
		name         string
		cps, workers int
		extra        string
	}{
		{"3-nodes", 1, 2, ""},
		{"1000-nodes", 3, 997, "node_pod_cidr_size = 26"},
	} {
		b.Run(size.name, func(b *testing.B) {
			c := cluster(b, size.cps, size.workers, size.extra)
			var total time.Duration
			certs := 0
			for i := 0; i < b.N; i++ {
				s, err := OpenStore(filepath.Join(b.TempDir(), "pki"))
				if err != nil {
					b.Fatal(err)
				}
				start := time.Now()
				changes := issueAll(b, c, s, time.Now())
				total += time.Since(start)
				certs = len(changes)
			}
			b.ReportMetric(total.Seconds()/float64(b.N), "s/full-set")
			b.ReportMetric(float64(certs), "certificates")
		})
	}
}
