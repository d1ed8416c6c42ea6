package ssh

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/kforge/kforge/provision/remote"
	"github.com/kforge/kforge/provision/ssh/sshdtest"
)

// BenchmarkUploadVersusSCP sends the same 256 MiB file to the same loopback sshd with kforge's Upload and with
// scp, and reports both rates and their ratio (above 1: kforge is faster). Run with make bench.
func BenchmarkUploadVersusSCP(b *testing.B) {
	root := sshdtest.Root(b)
	srv := sshdtest.Start(b, sshdtest.Options{Users: []*sshdtest.User{root}})
	known := srv.WriteKnownHosts(b)
	d := &Dialer{UserKnownHostsFile: known}
	target := Target{Name: "bench", Address: srv.Host, Port: srv.Port, User: "root", PrivateKeyFile: root.KeyFile}
	c, err := d.Dial(context.Background(), target)
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()

	const size = 256 << 20
	src := filepath.Join(b.TempDir(), "payload")
	f, err := os.Create(src)
	if err != nil {
		b.Fatal(err)
	}
	h := sha256.New()
	if _, err := io.Copy(io.MultiWriter(f, h), newPattern(size)); err != nil {
		b.Fatal(err)
	}
	f.Close()
	sum := hex.EncodeToString(h.Sum(nil))
	dir, err := os.MkdirTemp("/var/tmp", "kforge-bench-")
	if err != nil {
		b.Fatal(err)
	}
	defer os.RemoveAll(dir)

	var kforgeTime, scpTime time.Duration
	for i := 0; i < b.N; i++ {
		dst := filepath.Join(dir, "kforge-"+strconv.Itoa(i))
		start := time.Now()
		_, err := c.Upload(context.Background(), remote.File{Path: dst, Mode: 0o755, SHA256: sum, Size: size,
			Open: func() (io.ReadCloser, error) { return os.Open(src) }})
		kforgeTime += time.Since(start)
		if err != nil {
			b.Fatal(err)
		}
		start = time.Now()
		out, err := exec.Command("scp", "-q", "-i", root.KeyFile, "-o", "UserKnownHostsFile="+known, "-o", "BatchMode=yes",
			"-P", strconv.Itoa(srv.Port), src, fmt.Sprintf("root@%s:%s", srv.Host, filepath.Join(dir, "scp-"+strconv.Itoa(i)))).CombinedOutput()
		scpTime += time.Since(start)
		if err != nil {
			b.Fatalf("scp: %v %s", err, out)
		}
	}
	mb := float64(size) / (1 << 20) * float64(b.N)
	b.ReportMetric(mb/kforgeTime.Seconds(), "kforge-MiB/s")
	b.ReportMetric(mb/scpTime.Seconds(), "scp-MiB/s")
	b.ReportMetric(scpTime.Seconds()/kforgeTime.Seconds(), "speed-ratio-kforge/scp")
}

// BenchmarkStat200Paths reports how many SSH round trips (sessions) reading sha256, mode and owner of 200 paths
// takes; the target is 1.
func BenchmarkStat200Paths(b *testing.B) {
	root := sshdtest.Root(b)
	srv := sshdtest.Start(b, sshdtest.Options{Users: []*sshdtest.User{root}})
	d := &Dialer{UserKnownHostsFile: srv.WriteKnownHosts(b)}
	c, err := d.Dial(context.Background(), Target{Name: "bench", Address: srv.Host, Port: srv.Port, User: "root", PrivateKeyFile: root.KeyFile})
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	dir := b.TempDir()
	var paths []string
	for i := 0; i < 200; i++ {
		p := filepath.Join(dir, fmt.Sprintf("file-%03d", i))
		if err := os.WriteFile(p, []byte(p), 0o644); err != nil {
			b.Fatal(err)
		}
		paths = append(paths, p)
	}
	b.ResetTimer()
	before := c.Sessions()
	for i := 0; i < b.N; i++ {
		if _, err := c.Stat(context.Background(), paths); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(c.Sessions()-before)/float64(b.N), "round-trips/200-paths")
}
