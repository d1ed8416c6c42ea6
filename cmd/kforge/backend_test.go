package main

import (
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/kforge/kforge/provision/backend"
	"github.com/kforge/kforge/provision/backend/etcdbackend/etcdtest"
	"github.com/kforge/kforge/provision/state"
)

// etcdBackendBlock is a backend "etcd" block for srv under prefix, with an encryption key file of its own.
func etcdBackendBlock(t *testing.T, srv *etcdtest.Server, prefix, certFile, keyFile string) string {
	t.Helper()
	keyPath := filepath.Join(t.TempDir(), "backend.key")
	key := bytes.Repeat([]byte{0x5a}, 32)
	if err := os.WriteFile(keyPath, []byte(base64.StdEncoding.EncodeToString(key)+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return fmt.Sprintf(`
backend "etcd" {
  endpoints           = [%q]
  prefix              = %q
  ca_file             = %q
  cert_file           = %q
  key_file            = %q
  encryption_key_file = %q
}
`, srv.Endpoint, prefix, srv.CAFile, certFile, keyFile, keyPath)
}

// TestStateMigrateThroughEtcd: a local state moves into a real etcd and back out byte for byte, its PKI store
// and known hosts exactly; in etcd the files are sealed (no plaintext), the state document is as it was; a
// client with a certificate of another CA gets a clear error naming the endpoint, and nothing is written.
func TestStateMigrateThroughEtcd(t *testing.T) {
	srv := etcdtest.Start(t)
	dir := t.TempDir()
	cfg := hostileConfig + etcdBackendBlock(t, srv, "/kforge/migrate/", srv.ClientCertFile, srv.ClientKeyFile)
	if err := os.WriteFile(filepath.Join(dir, "cluster.hcl"), []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	if r := kforge(t, nil, "", "validate", dir); r.code != 0 || !strings.Contains(r.stdout, "etcd "+srv.Endpoint+", prefix /kforge/migrate/\n") {
		t.Errorf("validate: %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	from := t.TempDir()
	doc := writeLocalState(t, from, "eeee", 7)
	if r := kforge(t, nil, "", "-c", dir, "state", "migrate", "--from", from); r.code != 0 || !strings.Contains(r.stdout, "Moved the state and 4 files from local directory") {
		t.Fatalf("migrate --from: %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	keys := srv.Keys(t, "/kforge/migrate/")
	if !bytes.Equal(keys["/kforge/migrate/state"], doc) {
		t.Errorf("the state in etcd:\n%s", keys["/kforge/migrate/state"])
	}
	for _, f := range []string{"pki/ca.key", "pki/etcd/ca.key", "pki/ca.crt", "known_hosts"} {
		v, ok := keys["/kforge/migrate/files/"+f]
		if !ok || bytes.Contains(v, []byte("key of eeee")) || bytes.Contains(v, []byte("etcd key")) || bytes.Contains(v, []byte("ssh-ed25519")) {
			t.Errorf("%s in etcd: present %v, %q", f, ok, v)
		}
	}
	if r := kforge(t, nil, "", "-c", dir, "state", "pull"); r.code != 0 || r.stdout != string(doc) {
		t.Errorf("pull: %d %s%s", r.code, r.stdout, r.stderr)
	}
	back := filepath.Join(t.TempDir(), "back")
	if r := kforge(t, nil, "", "-c", dir, "state", "migrate", "--to", back); r.code != 0 {
		t.Fatalf("migrate --to: %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	for _, f := range []string{"state.json", "pki/ca.key", "pki/etcd/ca.key", "pki/ca.crt", "known_hosts"} {
		a, _ := os.ReadFile(filepath.Join(from, f))
		b, err := os.ReadFile(filepath.Join(back, f))
		if err != nil || !bytes.Equal(a, b) {
			t.Errorf("%s came back as %q (%v), went as %q", f, b, err, a)
		}
	}
	// Another history is refused and leaves etcd as it was.
	other := t.TempDir()
	writeLocalState(t, other, "ffff", 9)
	if r := kforge(t, nil, "", "-c", dir, "state", "migrate", "--from", other); r.code != 1 || !strings.Contains(r.stderr, "holds lineage eeee serial 7") {
		t.Errorf("another lineage: %d %s", r.code, r.stderr)
	}
	if after := srv.Keys(t, "/kforge/migrate/"); !bytes.Equal(after["/kforge/migrate/state"], doc) || len(after) != len(keys) {
		t.Errorf("a refused migration changed etcd: %d keys", len(after))
	}

	// Wrong credentials: a client certificate of another CA.
	wrongCert, wrongKey := srv.WrongClient(t)
	wrong := t.TempDir()
	cfg = hostileConfig + etcdBackendBlock(t, srv, "/kforge/wrong/", wrongCert, wrongKey)
	if err := os.WriteFile(filepath.Join(wrong, "cluster.hcl"), []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	r := kforge(t, nil, "", "-c", wrong, "state", "migrate", "--from", from)
	if r.code != 1 || !strings.Contains(r.stderr, srv.Endpoint) {
		t.Errorf("wrong credentials: %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	if got := srv.Keys(t, "/kforge/wrong/"); len(got) != 0 {
		t.Errorf("written with wrong credentials: %v", got)
	}
}

type losableLock struct{ lost chan struct{} }

func (l losableLock) Previous() *state.LockInfo { return nil }
func (l losableLock) Release() error            { return nil }
func (l losableLock) Lost() <-chan struct{}     { return l.lost }

// TestApplyStopsWhenTheLockIsLost: an apply's context ends, with the reason, when its lock's lease ends; a lock
// that cannot be lost (the local flock) leaves it alone.
func TestApplyStopsWhenTheLockIsLost(t *testing.T) {
	l := losableLock{lost: make(chan struct{})}
	ctx, stop := whileLocked(context.Background(), l)
	defer stop(nil)
	select {
	case <-ctx.Done():
		t.Fatal("ended before the lock was lost")
	case <-time.After(50 * time.Millisecond):
	}
	close(l.lost)
	select {
	case <-ctx.Done():
		if !errors.Is(context.Cause(ctx), errLockLost) {
			t.Errorf("cause: %v", context.Cause(ctx))
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the context outlived the lock")
	}
	local, stopLocal := whileLocked(context.Background(), struct{ backend.Lock }{})
	defer stopLocal(nil)
	if local.Err() != nil {
		t.Error("a lock that cannot be lost ended the context")
	}
}
