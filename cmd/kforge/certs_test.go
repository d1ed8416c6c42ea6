package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/kforge/kforge/cmd/kforge/internal/views"
)

func copyDir(t *testing.T, from string) string {
	t.Helper()
	to := t.TempDir()
	entries, err := os.ReadDir(from)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if e.IsDir() {
			continue
		}
		b, err := os.ReadFile(filepath.Join(from, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(to, e.Name()), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return to
}

func certsList(t *testing.T, dir string) map[string]views.CertRow {
	t.Helper()
	r := kforge(t, nil, "", "-c", dir, "certs", "list", "--json")
	var doc struct{ Certificates []views.CertRow }
	if err := json.Unmarshal([]byte(r.stdout), &doc); err != nil || r.code != 0 {
		t.Fatalf("list: exit %d %v\n%s%s", r.code, err, r.stdout, r.stderr)
	}
	out := map[string]views.CertRow{}
	for _, row := range doc.Certificates {
		out[row.Name] = row
	}
	return out
}

// TestCertsCommands issues the certificates of examples/ha, lists them with days left, and renews one.
func TestCertsCommands(t *testing.T) {
	dir := copyDir(t, filepath.Join(examplesDir, "ha"))
	before := certsList(t, dir)
	if len(before) != 33 || before["apiserver"].Status != "issue" || before["apiserver"].DaysLeft != nil {
		t.Fatalf("before issuing: %d rows, apiserver %+v", len(before), before["apiserver"])
	}
	r := kforge(t, nil, "", "-c", dir, "certs", "issue")
	if r.code != 0 || !strings.Contains(r.stdout, "Certificates: 33 issued, 0 re-issued, 0 unchanged.") {
		t.Fatalf("issue: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	var outputs []string
	outputs = append(outputs, r.stdout, r.stderr)

	r = kforge(t, nil, "", "-c", dir, "certs", "list")
	outputs = append(outputs, r.stdout)
	if r.code != 0 || !strings.Contains(r.stdout, "DAYS LEFT") || strings.Count(r.stdout, "\n") != 34 {
		t.Errorf("list:\n%s", r.stdout)
	}
	after := certsList(t, dir)
	for name, row := range after {
		if row.Status != "ok" || (row.Kind != "keypair" && (row.DaysLeft == nil || *row.DaysLeft < 363)) {
			t.Errorf("%s: %+v", name, row)
		}
	}
	if sans := strings.Join(after["apiserver"].SANs, " "); !strings.Contains(sans, "k8s.example.internal") || !strings.Contains(sans, "198.18.0.11") {
		t.Errorf("apiserver SANs: %s", sans)
	}

	r = kforge(t, nil, "", "-c", dir, "certs", "renew", "admin", "kubelet-worker-1")
	if r.code != 0 {
		t.Fatalf("renew: %s", r.stderr)
	}
	if got := certsList(t, dir); got["admin"].Status != "re-issue" || got["admin"].Reason != "renewal requested" || got["kube-proxy"].Status != "ok" {
		t.Errorf("after renew: admin %+v, kube-proxy %+v", got["admin"], got["kube-proxy"])
	}
	r = kforge(t, nil, "", "-c", dir, "certs", "issue")
	if !strings.Contains(r.stdout, "Certificates: 0 issued, 2 re-issued, 31 unchanged.") {
		t.Errorf("second issue:\n%s", r.stdout)
	}
	outputs = append(outputs, r.stdout)
	for _, args := range [][]string{{"renew", "nope"}, {"renew"}, {"renew", "--all", "admin"}} {
		if r := kforge(t, nil, "", append([]string{"-c", dir, "certs"}, args...)...); r.code != 1 {
			t.Errorf("%v: exit %d", args, r.code)
		}
	}
	// A CA rotation: refused for what is not a CA, started once, and then it is what certs issue follows (the
	// certificates stay until an apply has every host trust both CAs).
	if r := kforge(t, nil, "", "-c", dir, "certs", "rotate-ca", "admin"); r.code != 1 || !strings.Contains(r.stderr, "admin is not one of the cluster's CAs") {
		t.Errorf("rotate-ca admin: exit %d\n%s", r.code, r.stderr)
	}
	r = kforge(t, nil, "", "-c", dir, "certs", "rotate-ca")
	outputs = append(outputs, r.stdout)
	if r.code != 0 || !strings.Contains(r.stdout, "New CAs made for ca, etcd-ca, front-proxy-ca") {
		t.Errorf("rotate-ca: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	if r := kforge(t, nil, "", "-c", dir, "certs", "rotate-ca", "ca"); r.code != 1 || !strings.Contains(r.stderr, "a rotation of ca, etcd-ca, front-proxy-ca is at step 1 of 2: apply to go on with it") {
		t.Errorf("second rotate-ca: exit %d\n%s", r.code, r.stderr)
	}
	if r := kforge(t, nil, "", "-c", dir, "certs", "issue"); !strings.Contains(r.stdout, "Certificates: 0 issued, 0 re-issued, 33 unchanged.") {
		t.Errorf("issue at step 1 of a rotation:\n%s", r.stdout)
	}
	// No key material in anything printed.
	for _, out := range outputs {
		if strings.Contains(out, "PRIVATE KEY") || strings.Contains(out, "BEGIN") {
			t.Errorf("key material printed:\n%s", out)
		}
	}
	if st, err := os.Stat(filepath.Join(dir, ".kforge", "pki", "ca.key")); err != nil || st.Mode().Perm() != 0o600 {
		t.Errorf("ca.key: %v %v", st, err)
	}
}

// TestKubeconfigMerge: `kforge kubeconfig --merge` adds the cluster to the kubeconfig $KUBECONFIG names,
// keeping the other clusters there and switching to this one; a second merge changes nothing; --keep-context
// leaves the user's context; -o with --merge is refused.
func TestKubeconfigMerge(t *testing.T) {
	dir := copyDir(t, filepath.Join(examplesDir, "ha"))
	if r := kforge(t, nil, "", "-c", dir, "certs", "issue"); r.code != 0 {
		t.Fatalf("issue: %s%s", r.stdout, r.stderr)
	}
	mine := filepath.Join(t.TempDir(), "config")
	other := "apiVersion: v1\nkind: Config\nclusters:\n- name: prod\n  cluster:\n    server: https://prod.example:6443\n" +
		"users:\n- name: prod-admin\n  user:\n    token: secret\ncontexts:\n- name: prod\n  context:\n    cluster: prod\n    user: prod-admin\ncurrent-context: prod\n"
	if err := os.WriteFile(mine, []byte(other), 0o640); err != nil {
		t.Fatal(err)
	}
	env := []string{"KUBECONFIG=" + mine + string(os.PathListSeparator) + "/nonexistent/second"}
	r := kforge(t, env, "", "-c", dir, "kubeconfig", "--merge")
	if r.code != 0 || !strings.Contains(r.stderr, `added user "ha-admin"`) || !strings.Contains(r.stderr, "current context ha-admin@ha") {
		t.Fatalf("merge: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	merged, _ := os.ReadFile(mine)
	for _, want := range []string{"- name: prod\n", "token: secret", "name: ha-admin@ha", "current-context: ha-admin@ha", "server: https://"} {
		if !strings.Contains(string(merged), want) {
			t.Errorf("merged kubeconfig lacks %q:\n%s", want, merged)
		}
	}
	if fi, _ := os.Stat(mine); fi.Mode().Perm() != 0o640 {
		t.Errorf("mode %v", fi.Mode())
	}
	if r := kforge(t, env, "", "-c", dir, "kubeconfig", "--merge"); r.code != 0 || !strings.Contains(r.stderr, "already has this cluster") {
		t.Errorf("second merge: exit %d\n%s", r.code, r.stderr)
	}
	if again, _ := os.ReadFile(mine); string(again) != string(merged) {
		t.Errorf("second merge changed the file")
	}
	if err := os.WriteFile(mine, []byte(other), 0o600); err != nil {
		t.Fatal(err)
	}
	if r := kforge(t, env, "", "-c", dir, "kubeconfig", "--merge", "--keep-context"); r.code != 0 || !strings.Contains(r.stderr, "current context prod") {
		t.Errorf("--keep-context: exit %d\n%s", r.code, r.stderr)
	}
	if r := kforge(t, env, "", "-c", dir, "kubeconfig", "--merge", "-o", mine); r.code != 1 || !strings.Contains(r.stderr, "choose one") {
		t.Errorf("-o with --merge: exit %d\n%s", r.code, r.stderr)
	}
}
