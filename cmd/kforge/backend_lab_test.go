package main

import (
	"context"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/kforge/kforge/providers/lab/labtest"
	"github.com/kforge/kforge/provision/backend/etcdbackend"
	"github.com/kforge/kforge/provision/backend/etcdbackend/etcdtest"
)

// TestEtcdBackendOnALab: a cluster built with the state in etcd from one working directory is planned
// "No changes." from another holding only the configuration, and destroyed from there; while another run holds
// the lock, a plan fails at once naming the holder, or waits for it with --lock-timeout.
func TestEtcdBackendOnALab(t *testing.T) {
	l := labFixture.Get(t)
	clean(t, l)
	cleanComponents(t, l)
	srv := etcdtest.Start(t)
	set := labtest.ArtifactSet(t)
	block := etcdBackendBlock(t, srv, "/kforge/lab/", srv.ClientCertFile, srv.ClientKeyFile)
	top := "\nartifacts {\n  source = \"local\"\n  dir    = \"" + set + "\"\n}\n" + block
	first, second := t.TempDir(), t.TempDir()
	for _, dir := range []string{first, second} {
		writeLabConfig(t, dir, l, 2, labtest.ClusterSettings, top)
	}
	r := kforge(t, nil, "", "-c", first, "apply", "--auto-approve")
	if r.code != 0 || !strings.Contains(r.stdout, "All 2 nodes are Ready") {
		t.Fatalf("apply: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	if _, err := os.Stat(filepath.Join(first, ".kforge", "state.json")); !os.IsNotExist(err) {
		t.Errorf("a local state beside the etcd backend: %v", err)
	}
	r = kforge(t, nil, "", "-c", second, "plan", "--detailed-exitcode")
	if r.code != 0 || !strings.Contains(r.stdout, "No changes.") {
		t.Fatalf("plan from another directory: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	if keys := srv.Keys(t, "/kforge/lab/files/pki/"); len(keys) < 30 {
		t.Errorf("the PKI store in etcd has %d files", len(keys))
	}

	// Another run holds the lock.
	be, err := etcdbackend.Open(context.Background(), etcdbackend.Config{Endpoints: []string{srv.Endpoint}, Prefix: "/kforge/lab/",
		CAFile: srv.CAFile, CertFile: srv.ClientCertFile, KeyFile: srv.ClientKeyFile})
	if err != nil {
		t.Fatal(err)
	}
	defer be.Close()
	lock, err := be.Lock(context.Background(), "certs renew", 0)
	if err != nil {
		t.Fatal(err)
	}
	r = kforge(t, nil, "", "-c", second, "plan")
	if r.code != 1 || !strings.Contains(r.stderr, "locked by kforge certs renew, PID "+strconv.Itoa(os.Getpid())) || !strings.Contains(r.stderr, srv.Endpoint) {
		t.Errorf("plan while locked: exit %d\n%s", r.code, r.stderr)
	}
	go func() {
		time.Sleep(2 * time.Second)
		lock.Release()
	}()
	r = kforge(t, nil, "", "-c", second, "plan", "--lock-timeout", "1m", "--detailed-exitcode")
	if r.code != 0 || !strings.Contains(r.stdout, "No changes.") {
		t.Errorf("plan waiting for the lock: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}

	r = kforge(t, nil, "", "-c", second, "destroy", "--auto-approve", "--purge-data")
	if r.code != 0 || !strings.Contains(r.stdout, "destroyed") {
		t.Fatalf("destroy: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	if got := onHost(t, l, 0, "ls -A /etc/kubernetes /var/lib/kubelet 2>/dev/null | wc -l"); got != "0" {
		t.Errorf("after destroy: %s", got)
	}
}
