package etcdbackend

import (
	"bytes"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/kforge/kforge/provision/backend/etcdbackend/etcdtest"
)

// A file set as kforge keeps it: the PKI store and known hosts.
var testFiles = []struct {
	rel     string
	mode    fs.FileMode
	content string
}{
	{"pki/ca.key", 0o600, "-----BEGIN PRIVATE KEY-----\nMIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQg\n-----END PRIVATE KEY-----\n"},
	{"pki/ca.crt", 0o644, "-----BEGIN CERTIFICATE-----\nMIIBszCCAVmgAwIBAgIUYWJj\n-----END CERTIFICATE-----\n"},
	{"known_hosts", 0o644, "10.0.0.11 ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHostKeyOfCp1\n"},
}

func writeFiles(t *testing.T, dir string) {
	t.Helper()
	for _, f := range testFiles {
		file := filepath.Join(dir, f.rel)
		if err := os.MkdirAll(filepath.Dir(file), 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(file, []byte(f.content), f.mode); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(file, f.mode); err != nil {
			t.Fatal(err)
		}
	}
}

// checkFiles says where dir differs from testFiles.
func checkFiles(t *testing.T, dir string) {
	t.Helper()
	for _, f := range testFiles {
		file := filepath.Join(dir, f.rel)
		got, err := os.ReadFile(file)
		if err != nil {
			t.Errorf("%s: %v", f.rel, err)
			continue
		}
		info, _ := os.Stat(file)
		if string(got) != f.content || info.Mode().Perm() != f.mode {
			t.Errorf("%s: %v %q, want %v %q", f.rel, info.Mode().Perm(), got, f.mode, f.content)
		}
	}
}

// TestFilesEncrypted: files written back by Sync come out of another Backend the same, bytes and modes; etcd
// holds only ciphertext bound to each file's name; a missing or wrong key is a clear error; a deleted file is
// deleted; and a file another run changed meanwhile stops Sync with an error naming it.
func TestFilesEncrypted(t *testing.T) {
	t.Parallel()
	srv := etcdtest.Start(t)
	const prefix = "/kforge/files/"
	ctx := testContext(t)
	key := newKey(t)
	c := config(srv, prefix)
	c.EncryptionKey = key

	a := openBackend(t, c)
	dirA, err := a.Files(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if info, err := os.Stat(dirA); err != nil || info.Mode().Perm() != 0o700 {
		t.Errorf("the copy's directory: %v, %v", info.Mode(), err)
	}
	writeFiles(t, dirA)
	if err := a.Sync(ctx); err != nil {
		t.Fatal(err)
	}

	raw := srv.Keys(t, prefix+"files/")
	if len(raw) != len(testFiles) {
		t.Errorf("stored keys: %d, want %d", len(raw), len(testFiles))
	}
	for _, f := range testFiles {
		value, ok := raw[prefix+"files/"+f.rel]
		if !ok {
			t.Errorf("%s is not stored", f.rel)
			continue
		}
		firstLine, _, _ := strings.Cut(f.content, "\n")
		if contains(value, "PRIVATE KEY") || contains(value, firstLine) || !contains(value, `"cipher":"AES-256-GCM"`) {
			t.Errorf("%s is stored in the clear: %s", f.rel, value)
		}
	}

	b := openBackend(t, c)
	dirB, err := b.Files(ctx)
	if err != nil {
		t.Fatal(err)
	}
	checkFiles(t, dirB)
	if again, _ := b.Files(ctx); again != dirB {
		t.Errorf("a second Files gave %s, the first %s", again, dirB)
	}

	noKey := config(srv, prefix)
	_, err = openBackend(t, noKey).Files(ctx)
	t.Log(err)
	if err == nil || !strings.Contains(err.Error(), "is encrypted: give the backend's encryption key") {
		t.Errorf("Files without the key: %v", err)
	}
	wrongKey := c
	wrongKey.EncryptionKey = newKey(t)
	_, err = openBackend(t, wrongKey).Files(ctx)
	t.Log(err)
	if err == nil || !strings.Contains(err.Error(), "cannot be decrypted with the given key") {
		t.Errorf("Files with another key: %v", err)
	}

	// A value moved to another name no longer opens, even with the right key.
	srv.Put(t, prefix+"files/pki/apiserver.key", raw[prefix+"files/pki/ca.key"])
	_, err = openBackend(t, c).Files(ctx)
	t.Log(err)
	if err == nil || !strings.Contains(err.Error(), "pki/apiserver.key") || !strings.Contains(err.Error(), "cannot be decrypted") {
		t.Errorf("Files with a value moved to another key: %v", err)
	}
	srv.Delete(t, prefix+"files/pki/apiserver.key")

	// B deletes known_hosts and changes a mode only.
	if err := os.Remove(filepath.Join(dirB, "known_hosts")); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(filepath.Join(dirB, "pki/ca.crt"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := b.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	if _, ok := srv.Get(t, prefix+"files/known_hosts"); ok {
		t.Error("a deleted file is still stored")
	}
	dirC, err := openBackend(t, c).Files(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if info, err := os.Stat(filepath.Join(dirC, "pki/ca.crt")); err != nil || info.Mode().Perm() != 0o600 {
		t.Errorf("the changed mode did not come back: %v, %v", info.Mode(), err)
	}

	// A still remembers what it read before B's Sync: its changes to the files B changed must not be written,
	// nor its change to a file B left alone.
	before := srv.Keys(t, prefix+"files/")
	for _, rel := range []string{"known_hosts", "pki/ca.crt", "pki/ca.key"} {
		if err := os.WriteFile(filepath.Join(dirA, rel), []byte("changed by A\n"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	err = a.Sync(ctx)
	t.Log(err)
	if err == nil || !strings.Contains(err.Error(), "files known_hosts, pki/ca.crt changed in etcd meanwhile by another run") ||
		!strings.Contains(err.Error(), "nothing written") {
		t.Errorf("A's Sync after B's: %v", err)
	}
	after := srv.Keys(t, prefix+"files/")
	if len(after) != len(before) {
		t.Errorf("A's refused Sync changed the keys: %d, were %d", len(after), len(before))
	}
	for k, v := range before {
		if !bytes.Equal(after[k], v) {
			t.Errorf("A's refused Sync changed %s", k)
		}
	}

	if err := b.Close(); err != nil {
		t.Error(err)
	}
	if _, err := os.Stat(dirB); !os.IsNotExist(err) {
		t.Errorf("the copy is left after Close: %v", err)
	}
}

// TestFilesPlain: without a key, files are stored plain, as the user chose; a Backend given a key refuses them
// (the seal is what proves a value was written by a key holder).
func TestFilesPlain(t *testing.T) {
	t.Parallel()
	srv := etcdtest.Start(t)
	const prefix = "/kforge/plain/"
	ctx := testContext(t)
	plain := openBackend(t, config(srv, prefix))
	dir, err := plain.Files(ctx)
	if err != nil {
		t.Fatal(err)
	}
	writeFiles(t, dir)
	if err := plain.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	if v, _ := srv.Get(t, prefix+"files/pki/ca.crt"); !contains(v, `"cipher":"none"`) {
		t.Errorf("stored: %s", v)
	}

	// With a key, a plain value is refused, naming the file: anybody who can write to etcd could have put it.
	c := config(srv, prefix)
	c.EncryptionKey = newKey(t)
	if _, err := openBackend(t, c).Files(ctx); err == nil || !strings.Contains(err.Error(), "is stored unencrypted, but the backend has an encryption key") {
		t.Errorf("a plain value read with a key: %v", err)
	}
	// Without a key it reads back as written.
	dir, err = openBackend(t, config(srv, prefix)).Files(ctx)
	if err != nil {
		t.Fatal(err)
	}
	checkFiles(t, dir)
}

// TestFilesRefused: a key whose name leads out of the copy is refused, and so is a file Sync cannot keep.
func TestFilesRefused(t *testing.T) {
	t.Parallel()
	srv := etcdtest.Start(t)
	ctx := testContext(t)
	for i, name := range []string{"../outside", "/etc/cron.d/x", "pki/../../x", "./pki/ca.key"} {
		prefix := fmt.Sprintf("/kforge/refused%d/", i)
		value, err := seal(nil, name, 0o600, []byte("x"))
		if err != nil {
			t.Fatal(err)
		}
		srv.Put(t, prefix+"files/"+name, value)
		_, err = openBackend(t, config(srv, prefix)).Files(ctx)
		t.Log(err)
		if err == nil || !strings.Contains(err.Error(), "file "+name+" ") || !strings.Contains(err.Error(), "refused") {
			t.Errorf("Files with a key named %q: %v", name, err)
		}
	}

	b := openBackend(t, config(srv, "/kforge/symlink/"))
	dir, err := b.Files(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("/etc/passwd", filepath.Join(dir, "known_hosts")); err != nil {
		t.Fatal(err)
	}
	err = b.Sync(ctx)
	t.Log(err)
	if err == nil || !strings.Contains(err.Error(), "known_hosts is a symbolic link, not a regular file") {
		t.Errorf("Sync of a symlink: %v", err)
	}
	if keys := srv.Keys(t, "/kforge/symlink/"); len(keys) != 0 {
		t.Errorf("keys written: %q", keys)
	}
}
