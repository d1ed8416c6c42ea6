package planner

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/kforge/kforge/config"
	"github.com/kforge/kforge/provision/apply"
	"github.com/kforge/kforge/provision/backend"
	"github.com/kforge/kforge/provision/remote"
	"github.com/kforge/kforge/provision/resource"
	"github.com/kforge/kforge/provision/ssh"
	"github.com/kforge/kforge/provision/ssh/sshdtest"
	"github.com/kforge/kforge/provision/state"
)

// BenchmarkNoOpPlan times a plan that finds nothing to do on 1, 10 and 50 hosts (loopback sshd processes of
// the benchmark's own, 20 files each, already in place), and reports SSH round trips per host (target: at most
// 2) and the peak heap. Run with make bench.
func BenchmarkNoOpPlan(b *testing.B) {
	user := sshdtest.SystemUser(b, sshdtest.SudoNoPassword)
	for _, n := range []int{1, 10, 50} {
		b.Run(fmt.Sprintf("%d-hosts", n), func(b *testing.B) {
			servers := make([]*sshdtest.Server, n)
			var wg sync.WaitGroup
			for i := range servers {
				wg.Add(1)
				go func() {
					defer wg.Done()
					servers[i] = sshdtest.Start(b, sshdtest.Options{Users: []*sshdtest.User{user}})
				}()
			}
			wg.Wait()
			base, err := os.MkdirTemp("/var/tmp", "kforge-bench-")
			if err != nil {
				b.Fatal(err)
			}
			defer os.RemoveAll(base)
			known := map[string]bool{}
			var lines []byte
			for _, s := range servers {
				for _, k := range s.HostKeys {
					if l := s.KnownHostsLine(k); !known[l] {
						known[l] = true
						lines = append(lines, l+"\n"...)
					}
				}
			}
			knownFile := base + "/known_hosts"
			os.WriteFile(knownFile, lines, 0o600)
			d := &ssh.Dialer{UserKnownHostsFile: knownFile}
			in := Input{Cluster: "bench", Desired: map[string][]resource.Resource{}, Runners: map[string]remote.Runner{}}
			var clients []*ssh.Client
			for i, s := range servers {
				name := fmt.Sprintf("h%02d", i)
				c, err := d.Dial(context.Background(), ssh.Target{Name: name, Address: s.Host, Port: s.Port, User: user.Name,
					PrivateKeyFile: user.KeyFile, Sudo: true, HostKeyPolicy: config.HostKeyStrict})
				if err != nil {
					b.Fatal(err)
				}
				defer c.Close()
				clients = append(clients, c)
				in.Hosts = append(in.Hosts, name)
				in.Runners[name] = c
				rs := []resource.Resource{{Kind: resource.Directory, Name: base + "/" + name, Mode: 0o755}}
				for f := 0; f < 20; f++ {
					content := []byte(fmt.Sprintf("host %s file %d\n", name, f))
					sum := sha256.Sum256(content)
					rs = append(rs, resource.Resource{Kind: resource.File, Name: fmt.Sprintf("%s/%s/f%02d.conf", base, name, f),
						Content: content, SHA256: hex.EncodeToString(sum[:]), Size: int64(len(content)), Mode: 0o644})
				}
				in.Desired[name] = rs
			}
			stateDir := b.TempDir()
			in.State, _ = state.Load(stateDir)
			first, err := Make(context.Background(), in)
			if err != nil {
				b.Fatal(err)
			}
			if err := (&apply.Engine{Runners: in.Runners, State: in.State, Store: &backend.Local{Dir: stateDir}, Parallelism: 50}).Apply(context.Background(), first, in.Desired); err != nil {
				b.Fatal(err)
			}
			in.Parallelism = 50

			runtime.GC()
			var peak atomic.Uint64
			stop := make(chan struct{})
			go func() {
				var m runtime.MemStats
				for {
					runtime.ReadMemStats(&m)
					if m.HeapInuse > peak.Load() {
						peak.Store(m.HeapInuse)
					}
					select {
					case <-stop:
						return
					case <-time.After(5 * time.Millisecond):
					}
				}
			}()
			var sessions int64
			for _, c := range clients {
				sessions -= c.Sessions()
			}
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				p, err := Make(context.Background(), in)
				if err != nil {
					b.Fatal(err)
				}
				if !p.Empty() {
					b.Fatal("the plan is not empty")
				}
			}
			b.StopTimer()
			close(stop)
			for _, c := range clients {
				sessions += c.Sessions()
			}
			b.ReportMetric(float64(sessions)/float64(n*b.N), "round-trips/host")
			b.ReportMetric(float64(peak.Load())/(1<<20), "peak-heap-MiB")
		})
	}
}
