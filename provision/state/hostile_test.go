package state

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/kforge/kforge/provision/plan"
)

// savedState is a state as kforge writes it, with every field set.
func savedState(tb testing.TB) []byte {
	tb.Helper()
	dir := tb.TempDir()
	s, err := Load(dir)
	if err != nil {
		tb.Fatal(err)
	}
	s.Record("cp-1", plan.Managed{ID: "file:/etc/kubernetes/pki/ca.crt", Kind: "file", Name: "/etc/kubernetes/pki/ca.crt"})
	s.Record("cp-1", plan.Managed{ID: "unit:kubelet.service", Kind: "unit", Name: "kubelet.service"})
	s.Versions = map[string]map[string]string{"cp-1": {"/usr/local/bin/kubelet": "kubelet v1.37.2"}}
	s.Connections = map[string]Connection{"cp-1": {Address: "198.18.0.11", Port: 22, User: "root", HostKeyPolicy: "strict"}}
	s.PodCIDRs = map[string]string{"cp-1": "10.244.0.0/24"}
	s.Drained = map[string]bool{"cp-1": true}
	if err := s.Save(dir); err != nil {
		tb.Fatal(err)
	}
	b, err := os.ReadFile(filepath.Join(dir, FileName))
	if err != nil {
		tb.Fatal(err)
	}
	return b
}

// crafted are state files kforge never writes, with what Load must say about each.
var craftedStates = []struct{ doc, want string }{
	{"", "cannot be read: it is empty"},
	{"\x00\x01\x02garbage", "cannot be read: it is not valid JSON at line 1, column 1"},
	{`{"version": 1, "serial": "4"}`, `field "serial" at line 1, column 28 is a JSON string, where a whole number`},
	{`{"version": 1, "hosts": ["cp-1"]}`, `field "hosts" at line 1, column 25 is a JSON array, where an object is expected`},
	{`{"version": 1, "hosts": {"cp-1": [{"id": 7}]}}`, `field "hosts.id" at line 1, column 42 is a JSON number, where a string is expected`},
	{`{"version": 1, "serial": 1e99}`, "is a JSON number 1e99, where a whole number that fits in 64 bits is expected"},
	{`{"version": 1, "serial": -2}`, "cannot be read: serial -2 is negative"},
	{`{"version": 1, "hosts": {"cp-1": [{"kind": "file", "name": "/a"}]}}`, `host "cp-1": resource 1 has no id, kind or name`},
	{`{"version": 1, "pod_cidrs": {"w-1": "10.244.1.0/33"}}`, `host "w-1": pod CIDR "10.244.1.0/33" is not a CIDR`},
	// Entries kforge never records: refresh would read what they name as root, and an apply remove it.
	{`{"version": 1, "hosts": {"cp-1": [{"id": "sysctl:../../etc/shadow", "kind": "sysctl", "name": "../../etc/shadow"}]}}`,
		`host "cp-1": resource 1 (sysctl "../../etc/shadow"): a sysctl name has no empty part`},
	{`{"version": 1, "hosts": {"cp-1": [{"id": "sysctl:kernel.x/../../..", "kind": "sysctl", "name": "kernel.x/../../.."}]}}`,
		`host "cp-1": resource 1 (sysctl "kernel.x/../../.."): a sysctl name is parts of a-z, 0-9, '_' and '-' between dots, not "x/"`},
	{`{"version": 1, "hosts": {"cp-1": [{"id": "sysctl:vm.x\nP /etc/shadow", "kind": "sysctl", "name": "vm.x\nP /etc/shadow"}]}}`,
		`host "cp-1": resource 1 (sysctl "vm.x\nP /etc/shadow"): a sysctl name is parts`},
	{`{"version": 1, "hosts": {"cp-1": [{"id": "module:../../x", "kind": "module", "name": "../../x"}]}}`,
		`host "cp-1": resource 1 (module "../../x"): a kernel module's name is`},
	{`{"version": 1, "hosts": {"cp-1": [{"id": "unit:sshd", "kind": "unit", "name": "sshd"}]}}`,
		`host "cp-1": resource 1 (unit "sshd"): not a systemd unit name`},
	{`{"version": 1, "hosts": {"cp-1": [{"id": "user:root", "kind": "user", "name": "root"}]}}`,
		`host "cp-1": resource 1 (user "root"): root is never a user kforge made`},
	{`{"version": 1, "hosts": {"cp-1": [{"id": "file:/etc/kubernetes/../shadow", "kind": "file", "name": "/etc/kubernetes/../shadow"}]}}`,
		`host "cp-1": resource 1 (file "/etc/kubernetes/../shadow"): the path is not clean (cleaned, it is "/etc/shadow")`},
	{`{"version": 1, "hosts": {"cp-1": [{"id": "directory:var/lib", "kind": "directory", "name": "var/lib"}]}}`,
		`host "cp-1": resource 1 (directory "var/lib"): the path is not absolute`},
	{`{"version": 1, "hosts": {"cp-1": [{"id": "binary:/usr/bin/x\u0000", "kind": "binary", "name": "/usr/bin/x\u0000"}]}}`,
		`host "cp-1": resource 1 (binary "/usr/bin/x\x00"): the path holds a control character`},
	{`{"version": 1, "hosts": {"cp-1": [{"id": "data:/var/lib/etcd", "kind": "data", "name": "/var/lib/etcd"}]}}`,
		`host "cp-1": resource 1 (data "/var/lib/etcd"): kind "data" is not one kforge manages`},
	{`{"version": 1, "hosts": {"cp-1": [{"id": "file:/etc/shadow", "kind": "file", "name": "/etc/kubernetes/admin.conf"}]}}`,
		`host "cp-1": resource 1 (file "/etc/kubernetes/admin.conf"): its id "file:/etc/shadow" is not "file:/etc/kubernetes/admin.conf"`},
	{`{"version": 2}`, "has format 2; this kforge reads 1"},
	{`{}`, "cannot be read: it has no version, so it is not a kforge state"},
	{`null`, "cannot be read: it has no version"},
	{`[]`, "the document at line 1, column 1 is a JSON array, where an object is expected"},
}

// TestLoadExplainsDamageAndWritesNothing: a truncated, garbled or crafted state.json is refused with its path
// and what is wrong, and stays byte for byte as it was, also after a lock was taken and released.
func TestLoadExplainsDamageAndWritesNothing(t *testing.T) {
	good := savedState(t)
	cases := append([]struct{ doc, want string }{
		{string(good[:len(good)/2]), "cannot be read: it ends early, after"},
		{strings.Replace(string(good), `"lineage"`, `"lineage`, 1), "cannot be read: it is not valid JSON at line 3"},
	}, craftedStates...)
	for _, tc := range cases {
		dir := t.TempDir()
		path := filepath.Join(dir, FileName)
		if err := os.WriteFile(path, []byte(tc.doc), 0o600); err != nil {
			t.Fatal(err)
		}
		l, err := Acquire(dir, "apply")
		if err != nil {
			t.Fatal(err)
		}
		s, err := Load(dir)
		l.Release()
		switch {
		case err == nil || s != nil:
			t.Errorf("%.50q: loaded as a state", tc.doc)
		case !strings.Contains(err.Error(), path):
			t.Errorf("%.50q: the error does not name %s: %v", tc.doc, path, err)
		case !strings.Contains(err.Error(), tc.want):
			t.Errorf("%.50q:\n got %v\nwant %s", tc.doc, err, tc.want)
		}
		if after, _ := os.ReadFile(path); !bytes.Equal(after, []byte(tc.doc)) {
			t.Errorf("%.50q: state.json changed to %.50q", tc.doc, after)
		}
		if entries, _ := os.ReadDir(dir); len(entries) != 2 {
			t.Errorf("%.50q: the state directory holds %d files, want state.json and lock.json", tc.doc, len(entries))
		}
	}
}

// TestSaveReplacesWhole: Save goes through a temporary file renamed over state.json, so a reader sees the old
// state or the new one; nothing is left beside it.
func TestSaveReplacesWhole(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, FileName)
	s, _ := Load(dir)
	if err := s.Save(dir); err != nil {
		t.Fatal(err)
	}
	before, _ := os.Stat(path)
	s.Record("cp-1", plan.Managed{ID: "file:/etc/kubernetes/a", Kind: "file", Name: "/etc/kubernetes/a"})
	if err := s.Save(dir); err != nil {
		t.Fatal(err)
	}
	after, _ := os.Stat(path)
	if os.SameFile(before, after) {
		t.Error("state.json was written in place, not replaced")
	}
	// A directory where the temporary file would go fails the save and leaves the old state.
	old, _ := os.ReadFile(path)
	if err := os.Chmod(dir, 0o500); err != nil {
		t.Fatal(err)
	}
	defer os.Chmod(dir, 0o700)
	if os.Geteuid() != 0 { // root writes anyway
		s.Record("cp-1", plan.Managed{ID: "file:/etc/kubernetes/b", Kind: "file", Name: "/etc/kubernetes/b"})
		if err := s.Save(dir); err == nil {
			t.Fatal("saved into a read-only directory")
		}
		if now, _ := os.ReadFile(path); !bytes.Equal(now, old) {
			t.Error("a failed save changed state.json")
		}
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 1 {
		t.Errorf("left beside state.json: %v", entries)
	}
}

// TestDamagedLockFile: Holder says the lock file is damaged, naming it; a new run takes the lock (nobody
// holds it) and learns of no previous holder; force-unlock removes it, returning no PID to signal.
func TestDamagedLockFile(t *testing.T) {
	for _, garbage := range []string{"{\"operation\": \"apply\", \"pid\": ", "\xff\xfe\x00", `{"pid": -1}`, `{"pid": 0, "operation": "apply"}`, `{"pid": "12"}`} {
		dir := t.TempDir()
		path := filepath.Join(dir, lockName)
		if err := os.WriteFile(path, []byte(garbage), 0o600); err != nil {
			t.Fatal(err)
		}
		info, err := Holder(dir)
		if err == nil || info != (LockInfo{}) || !strings.Contains(err.Error(), "lock file "+path+" is damaged: ") {
			t.Errorf("%q: holder %+v, %v", garbage, info, err)
		}
		l, err := Acquire(dir, "plan")
		if err != nil || l.Previous != nil {
			t.Fatalf("%q: acquire: %v %v", garbage, l, err)
		}
		// Held now, with the file damaged again: the error says the holder is unknown.
		if err := os.WriteFile(path, []byte(garbage), 0o600); err != nil {
			t.Fatal(err)
		}
		_, err = Acquire(dir, "apply")
		var locked *LockedError
		if !errors.As(err, &locked) || !strings.Contains(err.Error(), "locked by a holder the lock file does not name") {
			t.Errorf("%q: second acquire: %v", garbage, err)
		}
		l.Release()
		if err := os.WriteFile(path, []byte(garbage), 0o600); err != nil {
			t.Fatal(err)
		}
		info, err = ForceUnlock(dir)
		if err != nil || info.PID != 0 {
			t.Errorf("%q: force-unlock: %+v %v", garbage, info, err)
		}
		if _, err := os.Stat(path); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("%q: force-unlock left the lock file: %v", garbage, err)
		}
	}
}

// FuzzLoad: any state.json is loaded or refused with its path; it is never changed; a loaded state saves and
// loads back the same.
func FuzzLoad(f *testing.F) {
	good := savedState(f)
	f.Add(good)
	f.Add(good[:len(good)/3])
	for _, c := range craftedStates {
		f.Add([]byte(c.doc))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		dir := t.TempDir()
		path := filepath.Join(dir, FileName)
		if err := os.WriteFile(path, data, 0o600); err != nil {
			t.Fatal(err)
		}
		s, err := Load(dir)
		if after, _ := os.ReadFile(path); !bytes.Equal(after, data) {
			t.Fatal("Load changed state.json")
		}
		if err != nil {
			if s != nil || !strings.Contains(err.Error(), path) {
				t.Fatalf("state %v, error without the path: %v", s, err)
			}
			return
		}
		serial := s.Serial
		if err := s.Save(dir); err != nil {
			t.Fatal(err)
		}
		back, err := Load(dir)
		if err != nil || back.Serial != serial+1 || back.Lineage != s.Lineage || len(back.Hosts) != len(s.Hosts) {
			t.Fatalf("a loaded state does not survive a save: %v %+v", err, back)
		}
	})
}

// FuzzHolder: any lock file gives a holder with a PID or an error naming it, never a panic; a damaged one
// never keeps a run from taking the lock.
func FuzzHolder(f *testing.F) {
	dir := f.TempDir()
	l, err := Acquire(dir, "apply")
	if err != nil {
		f.Fatal(err)
	}
	real, _ := os.ReadFile(filepath.Join(dir, lockName))
	l.Release()
	f.Add(real)
	f.Add(real[:len(real)/2])
	f.Add([]byte(`{"pid": -1, "since": "yesterday"}`))
	f.Add([]byte(`{"pid": 99999999999999999999}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		dir := t.TempDir()
		path := filepath.Join(dir, lockName)
		if err := os.WriteFile(path, data, 0o600); err != nil {
			t.Fatal(err)
		}
		info, err := Holder(dir)
		switch {
		case err != nil && (info != LockInfo{} || !strings.Contains(err.Error(), path)):
			t.Fatalf("holder %+v with %v", info, err)
		case err == nil && len(data) > 0 && info.PID <= 0:
			t.Fatalf("holder without a PID: %+v", info)
		}
		l, err := Acquire(dir, "plan")
		if err != nil {
			t.Fatalf("a lock file nobody holds blocks: %v", err)
		}
		if err := l.Release(); err != nil {
			t.Fatal(err)
		}
	})
}
