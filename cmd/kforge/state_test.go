package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// writeLocalState makes a state directory as kforge leaves one: state.json, a lock file, a PKI store and
// known hosts.
func writeLocalState(t *testing.T, dir, lineage string, serial int) []byte {
	t.Helper()
	doc := []byte(`{
  "version": 1,
  "lineage": "` + lineage + `",
  "serial": ` + strconv.Itoa(serial) + `,
  "hosts": {
    "cp-1": [
      {"id": "file:/etc/kubernetes/admin.conf", "kind": "file", "name": "/etc/kubernetes/admin.conf"}
    ]
  }
}
`)
	for name, data := range map[string]string{"state.json": string(doc), "pki/ca.key": "key of " + lineage, "pki/ca.crt": "cert",
		"pki/etcd/ca.key": "etcd key", "known_hosts": "198.18.0.10 ssh-ed25519 AAAA\n", "lock.json": ""} {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(data), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return doc
}

// TestStateMigrateBetweenLocalDirectories: migrate --to copies the state byte for byte and the PKI store and
// known hosts exactly (not the lock); a target with another history or a newer serial, or with files but no
// state, is refused and left as it was; pull prints the document; push refuses an older serial.
func TestStateMigrateBetweenLocalDirectories(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "cluster.hcl"), []byte(hostileConfig), 0o644); err != nil {
		t.Fatal(err)
	}
	doc := writeLocalState(t, filepath.Join(dir, ".kforge"), "aaaa", 5)
	target := filepath.Join(t.TempDir(), "copy")
	r := kforge(t, nil, "", "-c", dir, "state", "migrate", "--to", target)
	if r.code != 0 || !strings.Contains(r.stdout, "Moved the state and 4 files from local directory") {
		t.Fatalf("migrate: %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	if got, _ := os.ReadFile(filepath.Join(target, "state.json")); !bytes.Equal(got, doc) {
		t.Errorf("the state moved as\n%s", got)
	}
	for _, f := range []string{"pki/ca.key", "pki/etcd/ca.key", "known_hosts"} {
		a, _ := os.ReadFile(filepath.Join(dir, ".kforge", f))
		b, err := os.ReadFile(filepath.Join(target, f))
		if err != nil || !bytes.Equal(a, b) {
			t.Errorf("%s: %v %q", f, err, b)
		}
	}
	if st, err := os.Stat(filepath.Join(target, "pki", "ca.key")); err != nil || st.Mode().Perm() != 0o600 {
		t.Errorf("ca.key mode: %v %v", st, err)
	}
	if r := kforge(t, nil, "", "-c", dir, "state", "pull"); r.code != 0 || r.stdout != string(doc) {
		t.Errorf("pull: %d %s%s", r.code, r.stdout, r.stderr)
	}

	// Refusals: nothing in the target changes.
	other := t.TempDir()
	writeLocalState(t, other, "bbbb", 1)
	newer := t.TempDir()
	writeLocalState(t, newer, "aaaa", 9)
	filesOnly := t.TempDir()
	writeLocalState(t, filesOnly, "cccc", 1)
	os.Remove(filepath.Join(filesOnly, "state.json"))
	for target, want := range map[string]string{other: "holds lineage bbbb serial 1", newer: "holds lineage aaaa serial 9",
		filesOnly: "holds files (pki/ca.crt, pki/ca.key, pki/etcd/ca.key) but no state"} {
		before := snapshotDir(t, target)
		r := kforge(t, nil, "", "-c", dir, "state", "migrate", "--to", target)
		if r.code != 1 || !strings.Contains(r.stderr, want) || !strings.Contains(r.stderr, "nothing written") {
			t.Errorf("%s: %d\n%s%s\nwant %s", target, r.code, r.stdout, r.stderr, want)
		}
		if after := snapshotDir(t, target); after != before {
			t.Errorf("%s changed:\n%s\nwas\n%s", target, after, before)
		}
	}
	if r := kforge(t, nil, "", "-c", dir, "state", "push", filepath.Join(t.TempDir(), "none.json")); r.code != 1 {
		t.Errorf("push of a missing file: %d", r.code)
	}
	old := filepath.Join(t.TempDir(), "old.json")
	os.WriteFile(old, bytes.Replace(doc, []byte(`"serial": 5`), []byte(`"serial": 4`), 1), 0o600)
	if r := kforge(t, nil, "", "-c", dir, "state", "push", old); r.code != 1 || !strings.Contains(r.stderr, "holds a newer state (serial 5)") {
		t.Errorf("push of an older serial: %d %s", r.code, r.stderr)
	}
	if r := kforge(t, nil, "", "-c", dir, "state", "migrate", "--to", filepath.Join(dir, ".kforge")); r.code != 1 || !strings.Contains(r.stderr, "the configured backend itself") {
		t.Errorf("migrate onto itself: %d %s", r.code, r.stderr)
	}
}

// snapshotDir lists a directory's files with their content, for comparing before and after.
func snapshotDir(t *testing.T, dir string) string {
	t.Helper()
	var b strings.Builder
	filepath.Walk(dir, func(p string, fi os.FileInfo, err error) error {
		if err == nil && !fi.IsDir() {
			data, _ := os.ReadFile(p)
			b.WriteString(p + " " + fi.Mode().String() + " " + string(data) + "\n")
		}
		return nil
	})
	return b.String()
}

// TestGlobalOptionsFromTheEnvironment: every global option has a KFORGE_ variable, the command line wins, and a
// bad value names the variable and its option.
func TestGlobalOptionsFromTheEnvironment(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "cluster.hcl"), []byte(hostileConfig), 0o644); err != nil {
		t.Fatal(err)
	}
	r := kforge(t, []string{"KFORGE_CONFIG=" + dir, "KFORGE_JSON=true"}, "", "validate")
	if r.code != 0 || !strings.HasPrefix(r.stdout, "{") {
		t.Errorf("KFORGE_CONFIG, KFORGE_JSON: %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	if r := kforge(t, []string{"KFORGE_JSON=true"}, "", "validate", "--json=false", dir); r.code != 0 || strings.HasPrefix(r.stdout, "{") {
		t.Errorf("the command line does not win: %s", r.stdout)
	}
	if r := kforge(t, []string{"KFORGE_LOCK_TIMEOUT=soon"}, "", "-c", dir, "validate"); r.code != 1 ||
		!strings.Contains(r.stderr, `KFORGE_LOCK_TIMEOUT=soon: `) || !strings.Contains(r.stderr, "--lock-timeout") {
		t.Errorf("a bad value: %d %s", r.code, r.stderr)
	}
	state := t.TempDir()
	writeLocalState(t, state, "dddd", 3)
	if r := kforge(t, []string{"KFORGE_STATE=" + state}, "", "-c", dir, "state", "pull"); r.code != 0 || !strings.Contains(r.stdout, `"lineage": "dddd"`) {
		t.Errorf("KFORGE_STATE: %d %s%s", r.code, r.stdout, r.stderr)
	}
}
