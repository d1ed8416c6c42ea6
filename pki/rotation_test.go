package pki

import (
	"bytes"
	"crypto/x509"
	"encoding/base64"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/cloudflare/cfssl/helpers"
)

// TestCARotation walks a rotation of the cluster and etcd CAs through its two steps: the hosts are first given
// both CAs with every certificate kept, then every certificate under those CAs is re-issued by the new CA, and
// finally the new CAs replace the old (kept, retired) and the hosts are given the new CA alone. The front-proxy
// CA, not rotated, is never touched.
func TestCARotation(t *testing.T) {
	c := cluster(t, 1, 1, "")
	s, _ := OpenStore(filepath.Join(t.TempDir(), "pki"))
	now := time.Now()
	issueAll(t, c, s, now)
	specs := Catalog(c)
	oldCA, _ := s.Read(ClusterCA)
	oldProxy, _ := s.Read(FrontProxyCA)

	if _, err := StartRotation(s, CFSSL{}, specs, []string{"nope"}, c.PKI, now); err == nil || !strings.Contains(err.Error(), "nope is not one of the cluster's CAs (ca, etcd-ca, front-proxy-ca)") {
		t.Errorf("rotating an unknown CA: %v", err)
	}
	r, err := StartRotation(s, CFSSL{}, specs, []string{ClusterCA, EtcdCA}, c.PKI, now)
	if err != nil || r.Step != StepTrust {
		t.Fatalf("start: %+v %v", r, err)
	}
	if _, err := StartRotation(s, CFSSL{}, specs, []string{FrontProxyCA}, c.PKI, now); err == nil || !strings.Contains(err.Error(), "a rotation of ca, etcd-ca is at step 1 of 2") {
		t.Errorf("a second rotation: %v", err)
	}

	// Step 1: both trusted, nothing re-issued.
	trust, _ := s.Trust(ClusterCA)
	certs := parseAll(t, trust)
	if len(certs) != 2 || !certs[0].Equal(oldCA.Cert) || certs[1].Equal(oldCA.Cert) || !certs[1].IsCA {
		t.Fatalf("trust during step 1: %d certificates", len(certs))
	}
	if proxy, _ := s.Trust(FrontProxyCA); !bytes.Equal(proxy, oldProxy.CertPEM) {
		t.Error("the front-proxy CA, not rotated, is trusted with another")
	}
	for _, ch := range issueAll(t, c, s, now) {
		if ch.Action != ActionKeep {
			t.Errorf("step 1 %s: %s (%s)", ch.Spec.Name, ch.Action, ch.Reason)
		}
	}
	// The kubeconfigs carry both CAs.
	if _, err := WriteKubeconfigs(s, c); err != nil {
		t.Fatal(err)
	}
	if admin, _ := s.ReadFile("kubeconfig/admin.conf"); !bytes.Contains(admin, []byte(base64.StdEncoding.EncodeToString(trust))) {
		t.Error("admin.conf does not carry both cluster CAs")
	}

	// Step 2: everything under the rotating CAs is re-issued by the new ones, the rest kept.
	if r, err = s.AdvanceRotation(); err != nil || r.Step != StepSign {
		t.Fatalf("advance to step 2: %+v %v", r, err)
	}
	newCA, _ := s.Read(nextCA(ClusterCA))
	newEtcd, _ := s.Read(nextCA(EtcdCA))
	for _, ch := range issueAll(t, c, s, now) {
		rotating := ch.Spec.Kind == KindCert && (ch.Spec.CA == ClusterCA || ch.Spec.CA == EtcdCA)
		if rotating != (ch.Action == ActionReissue) || rotating && ch.Reason != "CA rotation: signed by the new "+ch.Spec.CA {
			t.Errorf("step 2 %s: %s (%s)", ch.Spec.Name, ch.Action, ch.Reason)
		}
	}
	for _, spec := range specs {
		e, _ := s.Read(spec.Name)
		switch {
		case spec.Kind != KindCert:
		case spec.CA == ClusterCA && e.Cert.CheckSignatureFrom(newCA.Cert) != nil,
			spec.CA == EtcdCA && e.Cert.CheckSignatureFrom(newEtcd.Cert) != nil,
			spec.CA == FrontProxyCA && e.Cert.CheckSignatureFrom(oldProxy.Cert) != nil:
			t.Errorf("after step 2, %s is not signed by the CA it should be", spec.Name)
		}
	}
	if changes, _ := Plan(specs, s, c.PKI, now); len(Warnings(changes)) != 0 || byName(changes)["admin"].Action != ActionKeep {
		t.Error("step 2 applied, the plan re-issues again")
	}

	// The end: the new CAs replace the old, which are kept; the hosts trust the new alone; nothing re-issued.
	if r, err = s.AdvanceRotation(); err != nil || r != nil {
		t.Fatalf("end of the rotation: %+v %v", r, err)
	}
	for name, want := range map[string]Entry{ClusterCA: newCA, EtcdCA: newEtcd, FrontProxyCA: oldProxy} {
		if got, _ := s.Trust(name); !bytes.Equal(got, want.CertPEM) {
			t.Errorf("after the rotation, %s is not the new CA alone", name)
		}
		if got, _ := s.Read(name); !bytes.Equal(got.KeyPEM, want.KeyPEM) {
			t.Errorf("after the rotation, %s's key is not the new one", name)
		}
	}
	retired, _ := filepath.Glob(filepath.Join(s.Dir, "ca.retired-*"))
	if len(retired) != 2 {
		t.Errorf("retired cluster CA files: %v", retired)
	} else if got, _ := os.ReadFile(retired[0]); !bytes.Equal(got, oldCA.CertPEM) {
		t.Errorf("%s is not the old CA", retired[0])
	}
	for _, ch := range issueAll(t, c, s, now) {
		if ch.Action != ActionKeep {
			t.Errorf("after the rotation %s: %s (%s)", ch.Spec.Name, ch.Action, ch.Reason)
		}
	}
	if r, err := s.Rotation(); r != nil || err != nil {
		t.Errorf("rotation after its end: %+v %v", r, err)
	}
}

// TestRotationEndIsRepeatable: a run killed while the new CA moves into the old one's place (here: after the
// old CA was copied away and the new key moved in, before the new certificate) has the move finished when the
// store is next opened, the old CA retired and never the new one.
func TestRotationEndIsRepeatable(t *testing.T) {
	c := cluster(t, 1, 1, "")
	s, _ := OpenStore(filepath.Join(t.TempDir(), "pki"))
	now := time.Now()
	issueAll(t, c, s, now)
	oldCA, _ := s.Read(ClusterCA)
	if _, err := StartRotation(s, CFSSL{}, Catalog(c), []string{ClusterCA}, c.PKI, now); err != nil {
		t.Fatal(err)
	}
	newCA, _ := s.Read(nextCA(ClusterCA))
	s.AdvanceRotation()
	issueAll(t, c, s, now)
	r, _ := s.Rotation()
	r.Step = stepPromote
	s.writeRotation(r)
	retired := "ca.retired-" + r.Started.Format("20060102T150405Z")
	for _, ext := range []string{".crt", ".key"} {
		old, _ := s.ReadFile("ca" + ext)
		s.WriteFile(retired+ext, old, 0o600)
	}
	os.Rename(filepath.Join(s.Dir, "ca.next.key"), filepath.Join(s.Dir, "ca.key"))

	s, err := OpenStore(s.Dir)
	if err != nil {
		t.Fatal(err)
	}
	if r, err := s.Rotation(); r != nil || err != nil {
		t.Fatalf("rotation after reopening: %+v %v", r, err)
	}
	if got, _ := s.Read(ClusterCA); !got.Cert.Equal(newCA.Cert) || !bytes.Equal(got.KeyPEM, newCA.KeyPEM) {
		t.Error("the new CA is not in place")
	}
	if got, _ := s.ReadFile(retired + ".crt"); !bytes.Equal(got, oldCA.CertPEM) {
		t.Error("the retired CA is not the old one")
	}
	if got, _ := s.ReadFile(retired + ".key"); !bytes.Equal(got, oldCA.KeyPEM) {
		t.Error("the retired key is not the old one")
	}
	for _, ch := range issueAll(t, c, s, now) {
		if ch.Action != ActionKeep {
			t.Errorf("after the finished rotation %s: %s (%s)", ch.Spec.Name, ch.Action, ch.Reason)
		}
	}
}

func parseAll(t *testing.T, pemData []byte) []*x509.Certificate {
	t.Helper()
	certs, err := helpers.ParseCertificatesPEM(pemData)
	if err != nil {
		t.Fatal(err)
	}
	return certs
}
