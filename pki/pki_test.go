package pki

import (
	"crypto/x509"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/kforge/kforge/config"
)

// cluster loads a configuration with cps control-plane+etcd hosts and workers worker hosts.
func cluster(t testing.TB, cps, workers int, extra string) *config.Cluster {
	t.Helper()
	src := fmt.Sprintf(`
cluster "test" {
  pod_cidr     = "198.19.0.0/16"
  service_cidr = "198.18.128.0/20"
  api_endpoint = "k8s.example.internal"
  %s
}
host "cp" {
  for_each         = range(1, %d)
  address          = "198.18.0.${10 + each.value}"
  internal_address = "198.18.1.${10 + each.value}"
  roles            = ["control-plane", "etcd"]
}
host "w" {
  for_each = range(1, %d)
  address  = cidrhost("198.18.4.0/22", each.value)
  roles    = ["worker"]
}
`, extra, cps+1, workers+1)
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "main.hcl"), []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	c, diags := config.NewLoader().Load(config.Options{Path: dir})
	if diags.HasErrors() {
		t.Fatal(diags)
	}
	return c
}

func issueAll(t testing.TB, c *config.Cluster, s *Store, now time.Time) []Change {
	t.Helper()
	changes, err := Plan(Catalog(c), s, c.PKI, now)
	if err != nil {
		t.Fatal(err)
	}
	if err := Apply(s, CFSSL{}, changes, c.PKI); err != nil {
		t.Fatal(err)
	}
	return changes
}

func byName(changes []Change) map[string]Change {
	out := map[string]Change{}
	for _, c := range changes {
		out[c.Spec.Name] = c
	}
	return out
}

func TestEveryCertificateIsRight(t *testing.T) {
	c := cluster(t, 3, 2, "")
	s, err := OpenStore(filepath.Join(t.TempDir(), "pki"))
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	changes := issueAll(t, c, s, now)
	for _, ch := range changes {
		if ch.Action != ActionIssue {
			t.Errorf("%s: %s on an empty store", ch.Spec.Name, ch.Action)
		}
	}
	// 3 CAs + sa, 11 shared certificates, 2 etcd certificates per member, 2 kubelet certificates per node.
	if want := 4 + 11 + 3*2 + 5*2; len(changes) != want {
		t.Errorf("%d entries, want %d", len(changes), want)
	}
	roots := map[string]*x509.Certificate{}
	for _, ca := range []string{ClusterCA, EtcdCA, FrontProxyCA} {
		e, err := s.Read(ca)
		if err != nil {
			t.Fatal(err)
		}
		roots[ca] = e.Cert
		if !e.Cert.IsCA || e.Cert.KeyUsage&x509.KeyUsageCertSign == 0 || !within(e.Cert.NotAfter, now.Add(c.PKI.CAValidity), 48*time.Hour) {
			t.Errorf("%s: IsCA %v usage %v not-after %s", ca, e.Cert.IsCA, e.Cert.KeyUsage, e.Cert.NotAfter)
		}
	}
	for _, spec := range Catalog(c) {
		if spec.Kind != KindCert {
			continue
		}
		e, err := s.Read(spec.Name)
		if err != nil || e.Cert == nil || e.Key == nil {
			t.Fatalf("%s: %v", spec.Name, err)
		}
		cert := e.Cert
		if cert.Subject.CommonName != spec.CN || strings.Join(cert.Subject.Organization, ",") != strings.Join(spec.O, ",") {
			t.Errorf("%s: subject %s", spec.Name, cert.Subject)
		}
		if d := sanDiff(cert, spec); d != "" {
			t.Errorf("%s: SANs differ: %s", spec.Name, d)
		}
		if cert.IsCA || cert.KeyUsage&x509.KeyUsageDigitalSignature == 0 || !sameUsages(cert.ExtKeyUsage, spec.Usages) {
			t.Errorf("%s: IsCA %v key usage %v ext %v", spec.Name, cert.IsCA, cert.KeyUsage, cert.ExtKeyUsage)
		}
		if !within(cert.NotAfter, now.Add(c.PKI.Validity), 48*time.Hour) || cert.NotBefore.After(now) {
			t.Errorf("%s: valid %s to %s", spec.Name, cert.NotBefore, cert.NotAfter)
		}
		if alg, size := keyType(e.Key); alg != "ecdsa" || size != 256 || !sameKey(cert, e.Key) {
			t.Errorf("%s: key %s %d", spec.Name, alg, size)
		}
		pool := x509.NewCertPool()
		pool.AddCert(roots[spec.CA])
		var usage []x509.ExtKeyUsage
		for _, u := range spec.Usages {
			usage = append(usage, map[Usage]x509.ExtKeyUsage{UsageServer: x509.ExtKeyUsageServerAuth, UsageClient: x509.ExtKeyUsageClientAuth}[u])
		}
		opts := x509.VerifyOptions{Roots: pool, KeyUsages: usage, CurrentTime: now.Add(time.Minute)}
		if len(spec.DNSNames) > 0 {
			opts.DNSName = spec.DNSNames[0]
		}
		if _, err := cert.Verify(opts); err != nil {
			t.Errorf("%s: chain: %v", spec.Name, err)
		}
		// Another CA does not vouch for it.
		other := x509.NewCertPool()
		for name, r := range roots {
			if name != spec.CA {
				other.AddCert(r)
			}
		}
		if _, err := cert.Verify(x509.VerifyOptions{Roots: other, KeyUsages: usage}); err == nil {
			t.Errorf("%s verifies against the wrong CA", spec.Name)
		}
	}

	api, _ := s.Read("apiserver")
	wantDNS := "cp-1 cp-2 cp-3 k8s.example.internal kubernetes kubernetes.default kubernetes.default.svc kubernetes.default.svc.cluster.local localhost"
	if got := strings.Join(api.Cert.DNSNames, " "); got != wantDNS {
		t.Errorf("apiserver DNS SANs: %s", got)
	}
	var ips []string
	for _, ip := range api.Cert.IPAddresses {
		ips = append(ips, ip.String())
	}
	sort.Strings(ips)
	// the first service IP, loopback, and each control-plane host's two addresses.
	wantIPs := "127.0.0.1 198.18.0.11 198.18.0.12 198.18.0.13 198.18.1.11 198.18.1.12 198.18.1.13 198.18.128.1"
	if got := strings.Join(ips, " "); got != wantIPs {
		t.Errorf("apiserver IP SANs: %s", got)
	}
	if k, _ := s.Read("kubelet-w-1"); k.Cert.Subject.CommonName != "system:node:w-1" || k.Cert.Subject.Organization[0] != "system:nodes" {
		t.Errorf("kubelet client subject %s", k.Cert.Subject)
	}
	checkModes(t, s.Dir)
}

func within(a, b time.Time, d time.Duration) bool { return a.Sub(b) < d && b.Sub(a) < d }

// checkModes: the directory 0700, keys and key-holding files 0600, certificates and public keys 0644.
func checkModes(t *testing.T, dir string) {
	t.Helper()
	st, err := os.Stat(dir)
	if err != nil || st.Mode().Perm() != 0o700 {
		t.Errorf("%s: %v %v", dir, st.Mode(), err)
	}
	filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		info, _ := d.Info()
		want := fs.FileMode(0o600)
		if strings.HasSuffix(p, ".crt") || strings.HasSuffix(p, ".pub") {
			want = 0o644
		}
		if info.Mode().Perm() != want {
			t.Errorf("%s: mode %#o, want %#o", p, info.Mode().Perm(), want)
		}
		return nil
	})
}

// snapshot records every file's bytes and modification time.
func snapshot(t *testing.T, dir string) map[string]string {
	t.Helper()
	out := map[string]string{}
	filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			b, _ := os.ReadFile(p)
			info, _ := d.Info()
			out[p] = info.ModTime().String() + "|" + string(b)
		}
		return err
	})
	return out
}

func TestSecondRunChangesNoByte(t *testing.T) {
	c := cluster(t, 3, 2, "")
	s, _ := OpenStore(filepath.Join(t.TempDir(), "pki"))
	now := time.Now()
	issueAll(t, c, s, now)
	if _, err := EnsureEncryptionConfig(s, c.SecretsEncryption, now); err != nil {
		t.Fatal(err)
	}
	if _, err := WriteKubeconfigs(s, c); err != nil {
		t.Fatal(err)
	}
	before := snapshot(t, s.Dir)
	time.Sleep(20 * time.Millisecond) // so that a rewrite would show in the modification times
	changes := issueAll(t, c, s, now.Add(time.Hour))
	if Changed(changes) {
		t.Errorf("second plan changes something: %+v", changes)
	}
	if _, err := EnsureEncryptionConfig(s, c.SecretsEncryption, now); err != nil {
		t.Fatal(err)
	}
	if _, err := WriteKubeconfigs(s, c); err != nil {
		t.Fatal(err)
	}
	after := snapshot(t, s.Dir)
	if len(before) != len(after) {
		t.Errorf("%d files before, %d after", len(before), len(after))
	}
	for p, v := range before {
		if after[p] != v {
			t.Errorf("%s changed", p)
		}
	}
}

// TestAddingAControlPlaneHost re-issues exactly the certificates whose SANs include the new host, issues the
// new host's own, and keeps everything else.
func TestAddingAControlPlaneHost(t *testing.T) {
	s, _ := OpenStore(filepath.Join(t.TempDir(), "pki"))
	now := time.Now()
	issueAll(t, cluster(t, 3, 2, ""), s, now)
	before := snapshot(t, s.Dir)
	bigger := cluster(t, 4, 2, "")
	changes, err := Plan(Catalog(bigger), s, bigger.PKI, now)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, ch := range changes {
		if ch.Action != ActionKeep {
			got = append(got, fmt.Sprintf("%s %s (%s)", ch.Action, ch.Spec.Name, ch.Reason))
		}
	}
	want := []string{
		"re-issue apiserver (SANs changed: +198.18.0.14 +198.18.1.14 +cp-4)",
		"issue etcd-server-cp-4 (new)",
		"issue etcd-peer-cp-4 (new)",
		"issue kubelet-cp-4 (new)",
		"issue kubelet-serving-cp-4 (new)",
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("changes:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if err := Apply(s, CFSSL{}, changes, bigger.PKI); err != nil {
		t.Fatal(err)
	}
	after := snapshot(t, s.Dir)
	for p, v := range before {
		changed := after[p] != v
		expected := strings.Contains(p, "/apiserver.")
		if changed != expected {
			t.Errorf("%s: changed %v, expected %v", p, changed, expected)
		}
	}
}

func TestRenewalWindowRequestsAndKeyTypes(t *testing.T) {
	c := cluster(t, 1, 1, "")
	s, _ := OpenStore(filepath.Join(t.TempDir(), "pki"))
	now := time.Now()
	issueAll(t, c, s, now)

	// Eleven months on, every leaf is inside the 30-day window; the CAs are not.
	later := now.Add(340 * 24 * time.Hour)
	changes, err := Plan(Catalog(c), s, c.PKI, later)
	if err != nil {
		t.Fatal(err)
	}
	for _, ch := range changes {
		wantRenew := ch.Spec.Kind == KindCert
		if (ch.Action == ActionReissue) != wantRenew || (wantRenew && !strings.HasPrefix(ch.Reason, "expires in 2")) {
			t.Errorf("%s: %s (%s)", ch.Spec.Name, ch.Action, ch.Reason)
		}
	}
	if w := Warnings(changes); len(w) != 0 {
		t.Errorf("warnings with every CA outside its window: %q", w)
	}
	// Near the end of the CAs' ten years, they are kept (a plan never replaces one) and the plan warns of each.
	changes, err = Plan(Catalog(c), s, c.PKI, now.Add(c.PKI.CAValidity-10*24*time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	w := Warnings(changes)
	if len(w) != 3 || !strings.HasPrefix(w[0], "CA ca (kubernetes-ca) expires in ") || !strings.HasSuffix(w[0], "inside renew_before (30 days); CAs are not replaced by a plan") {
		t.Errorf("warnings near the CAs' end: %q", w)
	}
	for _, ch := range changes {
		if ch.Spec.Kind == KindCA && ch.Action != ActionKeep {
			t.Errorf("%s: %s", ch.Spec.Name, ch.Action)
		}
	}

	if err := s.SetRenewRequested(map[string]bool{"admin": true}); err != nil {
		t.Fatal(err)
	}
	changes = issueAll(t, c, s, now)
	if ch := byName(changes)["admin"]; ch.Action != ActionReissue || ch.Reason != "renewal requested" {
		t.Errorf("admin: %+v", ch)
	}
	if marked, _ := s.RenewRequested(); len(marked) != 0 {
		t.Errorf("marks left after re-issue: %v", marked)
	}

	rsaCluster := cluster(t, 1, 1, `pki {
    key_algorithm = "rsa"
  }`)
	changes, err = Plan(Catalog(rsaCluster), s, rsaCluster.PKI, now)
	if err != nil {
		t.Fatal(err)
	}
	for _, ch := range changes {
		want := map[Kind]Action{KindCA: ActionKeep, KindKeyPair: ActionKeep, KindCert: ActionReissue}[ch.Spec.Kind]
		if ch.Action != want || (want == ActionReissue && ch.Reason != "key type changed: ecdsa 256 -> rsa 2048") {
			t.Errorf("%s: %s (%s)", ch.Spec.Name, ch.Action, ch.Reason)
		}
	}
}

func TestAMissingCAKeyIsAnError(t *testing.T) {
	c := cluster(t, 1, 1, "")
	s, _ := OpenStore(filepath.Join(t.TempDir(), "pki"))
	issueAll(t, c, s, time.Now())
	if err := os.Remove(filepath.Join(s.Dir, "etcd-ca.key")); err != nil {
		t.Fatal(err)
	}
	_, err := Plan(Catalog(c), s, c.PKI, time.Now())
	if err == nil || !strings.Contains(err.Error(), "the CA key "+filepath.Join(s.Dir, "etcd-ca.key")+" is missing") ||
		!strings.Contains(err.Error(), "apiserver-etcd-client") {
		t.Errorf("error = %v", err)
	}
	// A lost CA (certificate and key) makes a new CA and re-issues everything it signed.
	os.Remove(filepath.Join(s.Dir, "etcd-ca.crt"))
	changes, err := Plan(Catalog(c), s, c.PKI, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	for _, ch := range changes {
		if ch.Spec.CA == EtcdCA && (ch.Action != ActionReissue || ch.Reason != "CA changed") {
			t.Errorf("%s: %s (%s)", ch.Spec.Name, ch.Action, ch.Reason)
		}
		if ch.Spec.CA == ClusterCA && ch.Action != ActionKeep {
			t.Errorf("%s: %s", ch.Spec.Name, ch.Action)
		}
	}
}

// TestOpenSSLVerifies checks the chains with another implementation than Go's.
func TestOpenSSLVerifies(t *testing.T) {
	if _, err := exec.LookPath("openssl"); err != nil {
		t.Skip("openssl is not installed")
	}
	c := cluster(t, 1, 1, "")
	s, _ := OpenStore(filepath.Join(t.TempDir(), "pki"))
	issueAll(t, c, s, time.Now())
	for _, spec := range Catalog(c) {
		if spec.Kind != KindCert {
			continue
		}
		purpose := "sslclient"
		if spec.Usages[0] == UsageServer {
			purpose = "sslserver"
		}
		out, err := exec.Command("openssl", "verify", "-purpose", purpose, "-CAfile", filepath.Join(s.Dir, spec.CA+".crt"),
			filepath.Join(s.Dir, spec.Name+".crt")).CombinedOutput()
		if err != nil || !strings.HasSuffix(strings.TrimSpace(string(out)), ": OK") {
			t.Errorf("openssl verify %s: %v %s", spec.Name, err, out)
		}
	}
}

func TestKubeconfigsAndEncryptionConfig(t *testing.T) {
	c := cluster(t, 1, 1, "")
	s, _ := OpenStore(filepath.Join(t.TempDir(), "pki"))
	now := time.Now()
	issueAll(t, c, s, now)
	paths, err := WriteKubeconfigs(s, c)
	if err != nil || len(paths) != 6 {
		t.Fatalf("%v %v", paths, err)
	}
	admin, _ := os.ReadFile(filepath.Join(s.Dir, "kubeconfig", "admin.conf"))
	cm, _ := os.ReadFile(filepath.Join(s.Dir, "kubeconfig", "controller-manager.conf"))
	if !strings.Contains(string(admin), "server: https://k8s.example.internal:6443\n") || !strings.Contains(string(admin), "current-context: test-admin@test\n") ||
		!strings.Contains(string(cm), "server: https://127.0.0.1:6443\n") {
		t.Errorf("admin:\n%s\ncontroller-manager:\n%s", admin, cm)
	}

	first, err := EnsureEncryptionConfig(s, "secretbox", now)
	if err != nil || strings.Count(string(first), "secret: ") != 1 || !strings.Contains(string(first), "- secretbox:") {
		t.Fatalf("%s %v", first, err)
	}
	again, _ := EnsureEncryptionConfig(s, "secretbox", now.Add(time.Hour))
	if string(again) != string(first) {
		t.Error("the same provider made a new key")
	}
	switched, _ := EnsureEncryptionConfig(s, "aescbc", now.Add(time.Hour))
	if strings.Count(string(switched), "secret: ") != 2 || strings.Index(string(switched), "aescbc") > strings.Index(string(switched), "secretbox") {
		t.Errorf("after switching, the new key goes first and the old one stays:\n%s", switched)
	}
	off, _ := EnsureEncryptionConfig(s, "none", now)
	if !strings.HasPrefix(strings.SplitAfter(string(off), "providers:\n")[1], "      - identity: {}") || strings.Count(string(off), "secret: ") != 2 {
		t.Errorf("none: identity first, keys kept to read old Secrets:\n%s", off)
	}
	checkModes(t, s.Dir)
}

func TestCatalogOfEtcdOnlyHosts(t *testing.T) {
	c := cluster(t, 1, 0, "")
	c.Hosts = append(c.Hosts, config.Host{Name: "e-1", Address: "198.18.3.1", Roles: []config.Role{config.RoleEtcd}})
	names := map[string]bool{}
	for _, s := range Catalog(c) {
		names[s.Name] = true
	}
	if !names["etcd-server-e-1"] || !names["etcd-peer-e-1"] || names["kubelet-e-1"] {
		t.Errorf("catalog: %v", names)
	}
}
