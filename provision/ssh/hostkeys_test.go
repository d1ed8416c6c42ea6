package ssh

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"golang.org/x/crypto/ssh/knownhosts"

	"github.com/kforge/kforge/config"
	"github.com/kforge/kforge/provision/ssh/sshdtest"
)

func TestUnknownHostIsRefusedWithAWayForward(t *testing.T) {
	root := sshdtest.Root(t)
	srv := sshdtest.Start(t, sshdtest.Options{Users: []*sshdtest.User{root}})
	d, _ := testDialer(t) // knows no server
	_, err := d.Dial(context.Background(), targetOf("new", srv, root))
	var unknown *UnknownHostError
	if !errors.As(err, &unknown) {
		t.Fatalf("error = %v", err)
	}
	for _, want := range []string{srv.Addr, "SHA256:", "accept-new", d.KnownHostsFile} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("message lacks %q: %v", want, err)
		}
	}
	if _, statErr := os.Stat(d.KnownHostsFile); statErr == nil {
		t.Error("strict checking wrote a known_hosts file")
	}
}

func TestAcceptNewRecordsThenAChangedKeyIsRefused(t *testing.T) {
	root := sshdtest.Root(t)
	srv := sshdtest.Start(t, sshdtest.Options{Users: []*sshdtest.User{root}})
	d, _ := testDialer(t)
	target := targetOf("tofu", srv, root)
	target.HostKeyPolicy = config.HostKeyAcceptNew
	dial(t, d, target).Close()

	data, err := os.ReadFile(d.KnownHostsFile)
	if err != nil {
		t.Fatal(err)
	}
	if n := strings.Count(string(data), "\n"); n != 1 {
		t.Fatalf("known_hosts has %d lines:\n%s", n, data)
	}
	// Now known: strict accepts it.
	target.HostKeyPolicy = config.HostKeyStrict
	dial(t, d, target).Close()

	// The host comes back with other keys: refused under every policy but insecure, naming both keys and the line.
	srv.Restart(t, sshdtest.Options{Users: []*sshdtest.User{root}})
	for _, policy := range []config.HostKeyPolicy{config.HostKeyStrict, config.HostKeyAcceptNew} {
		target.HostKeyPolicy = policy
		_, err := d.Dial(context.Background(), target)
		var changed *ChangedHostKeyError
		if !errors.As(err, &changed) {
			t.Fatalf("%s: error = %v", policy, err)
		}
		if changed.File != d.KnownHostsFile || changed.Line != 1 || changed.Known == changed.Offered ||
			!strings.HasPrefix(changed.Known, "SHA256:") || !strings.Contains(err.Error(), fmt.Sprintf("%s:1", d.KnownHostsFile)) {
			t.Errorf("%s: %+v", policy, changed)
		}
	}
	after, _ := os.ReadFile(d.KnownHostsFile)
	if string(after) != string(data) {
		t.Errorf("known_hosts changed after a refused key:\n%s", after)
	}

	// insecure is the only way through, and it warns.
	d2, w := testDialer(t)
	target.HostKeyPolicy = config.HostKeyInsecure
	dial(t, d2, target).Close()
	if !strings.Contains(w.all(), "host key checking is disabled") {
		t.Errorf("no warning for insecure: %q", w.all())
	}
}

// TestAcceptNewRecordsIntoTheHostsOwnFile: a host with its own known_hosts file is recorded there, not in
// kforge's file.
func TestAcceptNewRecordsIntoTheHostsOwnFile(t *testing.T) {
	root := sshdtest.Root(t)
	srv := sshdtest.Start(t, sshdtest.Options{Users: []*sshdtest.User{root}})
	d, _ := testDialer(t)
	target := targetOf("box", srv, root)
	target.HostKeyPolicy = config.HostKeyAcceptNew
	target.KnownHostsFile = filepath.Join(t.TempDir(), "vagrant", "box.known_hosts")
	dial(t, d, target).Close()
	if data, err := os.ReadFile(target.KnownHostsFile); err != nil || strings.Count(string(data), "\n") != 1 {
		t.Errorf("host's file: %q %v", data, err)
	}
	if _, err := os.Stat(d.KnownHostsFile); err == nil {
		t.Error("kforge's own file was written")
	}
}

// TestHostWithSeveralKeyTypes: known_hosts records only the host's ECDSA key; the host also has ed25519, which
// it would offer first. That is not a changed key.
func TestHostWithSeveralKeyTypes(t *testing.T) {
	root := sshdtest.Root(t)
	srv := sshdtest.Start(t, sshdtest.Options{Users: []*sshdtest.User{root}})
	var ecdsa *sshdtest.HostKey
	for _, k := range srv.HostKeys {
		if k.Type == "ecdsa" {
			ecdsa = k
		}
	}
	if ecdsa == nil || len(srv.HostKeys) < 2 {
		t.Fatalf("server keys: %+v", srv.HostKeys)
	}
	d, _ := testDialer(t)
	if err := os.WriteFile(d.UserKnownHostsFile, []byte(srv.KnownHostsLine(ecdsa)+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	dial(t, d, targetOf("two-keys", srv, root)).Close()
}

// TestConcurrentAcceptNew: many hosts recorded at once into one known_hosts file, which must stay well-formed.
func TestConcurrentAcceptNew(t *testing.T) {
	root := sshdtest.Root(t)
	const n = 12
	servers := make([]*sshdtest.Server, n)
	for i := range servers {
		servers[i] = sshdtest.Start(t, sshdtest.Options{Users: []*sshdtest.User{root}})
	}
	d, _ := testDialer(t)
	var wg sync.WaitGroup
	errs := make(chan error, 2*n)
	for i, srv := range servers {
		for j := 0; j < 2; j++ { // two connections per host race to record the same key
			wg.Add(1)
			go func() {
				defer wg.Done()
				target := targetOf(fmt.Sprintf("h%d", i), srv, root)
				target.HostKeyPolicy = config.HostKeyAcceptNew
				c, err := d.Dial(context.Background(), target)
				if err != nil {
					errs <- err
					return
				}
				c.Close()
			}()
		}
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	data, err := os.ReadFile(d.KnownHostsFile)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(string(data)), "\n")
	if len(lines) != n {
		t.Errorf("%d lines for %d hosts:\n%s", len(lines), n, data)
	}
	cb, err := knownhosts.New(d.KnownHostsFile)
	if err != nil {
		t.Fatalf("known_hosts no longer parses: %v", err)
	}
	for _, srv := range servers {
		matched := false
		for _, k := range srv.HostKeys {
			if cb(srv.Addr, &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: srv.Port}, k.Public) == nil {
				matched = true
			}
		}
		if !matched {
			t.Errorf("%s is not recorded", srv.Addr)
		}
	}
	if st, _ := os.Stat(d.KnownHostsFile); st.Mode().Perm() != 0o600 {
		t.Errorf("known_hosts mode %#o", st.Mode().Perm())
	}
	if st, _ := os.Stat(filepath.Dir(d.KnownHostsFile)); st.Mode().Perm() != 0o700 {
		t.Errorf("state dir mode %#o", st.Mode().Perm())
	}
}

func TestInsecureIsTheOnlyPathToIgnoringHostKeys(t *testing.T) {
	for _, policy := range []config.HostKeyPolicy{config.HostKeyStrict, config.HostKeyAcceptNew} {
		h := (&Dialer{}).hostKeysFor(Target{HostKeyPolicy: policy})
		cb, err := h.callback()
		if err != nil {
			t.Fatal(err)
		}
		// An insecure callback accepts anything; ours must refuse a key it cannot know (no files, no writer).
		if err := cb("198.18.0.1:22", &net.TCPAddr{IP: net.IPv4(198, 18, 0, 1), Port: 22}, probeKey()); err == nil {
			t.Errorf("%s accepted an unknown key with nowhere to record it", policy)
		}
	}
	// And the source has exactly one use of InsecureIgnoreHostKey, behind the policy check.
	var uses []string
	err := filepath.WalkDir("../..", func(path string, e os.DirEntry, err error) error {
		if err != nil || e.IsDir() || !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
			return err
		}
		src, err := os.ReadFile(path)
		if err == nil && strings.Contains(string(src), "ssh.InsecureIgnoreHostKey()") {
			uses = append(uses, path)
		}
		return err
	})
	if err != nil || len(uses) != 1 || filepath.Base(uses[0]) != "hostkeys.go" {
		t.Errorf("InsecureIgnoreHostKey used in %v (%v)", uses, err)
	}
}
