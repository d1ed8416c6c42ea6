package main

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/kforge/kforge/pki"
	"github.com/kforge/kforge/providers/lab"
)

// The certificate scenarios of TestHAControlPlaneOnALab: three control-plane hosts behind a balancer that checks
// each API server's /readyz, while a client asks the API through the balancer every 100 ms on a new connection
// each time. kforge restarts the etcd members and the API servers one host at a time, each healthy before the
// next, so no request may fail.

// renewWithoutDowntime: certs renew --all, then apply; every member and API server then serves its new
// certificate.
func renewWithoutDowntime(t *testing.T, l *lab.Lab, dir string, lb *tcpBalancer) {
	t.Helper()
	pkiDir := filepath.Join(dir, ".kforge", "pki")
	before := servedCerts(t, l, pkiDir)
	p := startProbe(lb.addr, storeTLS(pkiDir, pki.ClusterCA, "admin"))
	r := kforge(t, nil, "", "-c", dir, "certs", "renew", "--all")
	if r.code != 0 {
		t.Fatalf("certs renew --all: %s", r.stderr)
	}
	r = kforge(t, nil, "", "-c", dir, "apply", "--auto-approve")
	requests := p.stop(t, "the renewed certificates rolled out", r.stdout)
	if r.code != 0 {
		t.Fatalf("apply after certs renew --all: %s%s", r.stdout, r.stderr)
	}
	after := servedCerts(t, l, pkiDir)
	for name, cert := range before {
		if after[name].Equal(cert) {
			t.Errorf("%s still serves its old certificate (serial %s)", name, cert.SerialNumber)
		}
	}
	if r := kforge(t, nil, "", "-c", dir, "plan", "--detailed-exitcode"); r.code != 0 {
		t.Errorf("plan after the renewal: exit %d\n%s", r.code, r.stdout)
	}
	t.Logf("every certificate renewed and rolled out; %d requests through the balancer meanwhile, none failed", requests)
}

// rotateCAsWithoutDowntime: certs rotate-ca, then three applies (trust both, re-issue, drop the old), each
// announced by its plan. At the end every member and API server serves a certificate of the new CAs that the
// old ones did not sign, a client certificate of the old cluster CA is refused, and cluster DNS still follows
// the API (it resolves a Service made after the rotation).
func rotateCAsWithoutDowntime(t *testing.T, l *lab.Lab, dir string, lb *tcpBalancer) {
	t.Helper()
	pkiDir := filepath.Join(dir, ".kforge", "pki")
	oldCAs := map[string]*x509.Certificate{}
	for _, ca := range []string{pki.ClusterCA, pki.EtcdCA} {
		oldCAs[ca] = readCert(t, filepath.Join(pkiDir, ca+".crt"))
	}
	oldAdmin, err := tls.LoadX509KeyPair(filepath.Join(pkiDir, "admin.crt"), filepath.Join(pkiDir, "admin.key"))
	if err != nil {
		t.Fatal(err)
	}
	if r := kforge(t, nil, "", "-c", dir, "certs", "rotate-ca"); r.code != 0 || !strings.Contains(r.stdout, "New CAs made for ca, etcd-ca, front-proxy-ca") {
		t.Fatalf("certs rotate-ca: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	steps := []struct{ plan, applied string }{
		{"Warning: CA rotation of ca, etcd-ca, front-proxy-ca, step 1 of 2", "every host trusts the old and the new CAs"},
		{"Warning: CA rotation of ca, etcd-ca, front-proxy-ca, step 2 of 2", "every certificate is signed by the new CAs"},
		{"~   file /etc/kubernetes/pki/ca.crt  (content changed)", "Apply complete"},
	}
	total := 0
	for i, step := range steps {
		r := kforge(t, nil, "", "-c", dir, "plan", "--detailed-exitcode")
		if r.code != 2 || !strings.Contains(r.stdout, step.plan) {
			t.Fatalf("plan of rotation apply %d: exit %d, want %q\n%s%s", i+1, r.code, step.plan, r.stdout, r.stderr)
		}
		p := startProbe(lb.addr, storeTLS(pkiDir, pki.ClusterCA, "admin"))
		r = kforge(t, nil, "", "-c", dir, "apply", "--auto-approve")
		total += p.stop(t, fmt.Sprintf("rotation apply %d", i+1), r.stdout)
		if r.code != 0 || !strings.Contains(r.stdout, step.applied) {
			t.Fatalf("rotation apply %d: exit %d, want %q\n%s%s", i+1, r.code, step.applied, r.stdout, r.stderr)
		}
	}
	if r := kforge(t, nil, "", "-c", dir, "plan", "--detailed-exitcode"); r.code != 0 {
		t.Errorf("plan after the rotation: exit %d\n%s", r.code, r.stdout)
	}
	for name, cert := range servedCerts(t, l, pkiDir) {
		ca := pki.ClusterCA
		if strings.HasPrefix(name, "etcd") {
			ca = pki.EtcdCA
		}
		if cert.CheckSignatureFrom(oldCAs[ca]) == nil {
			t.Errorf("%s serves a certificate of the old %s", name, ca)
		}
	}
	// The controller-manager signs with the new cluster CA (it refuses a bundle: the signing pair is its own).
	if signed := csrSigned(t, l, "rotated-user"); signed.CheckSignatureFrom(readCert(t, filepath.Join(pkiDir, pki.ClusterCA+".crt"))) != nil {
		t.Errorf("a CSR approved after the rotation is signed by %q, not the new cluster CA", signed.Issuer)
	}
	// The old cluster CA is trusted nowhere: its admin certificate is refused by every API server.
	for _, h := range l.Hosts[:3] {
		client := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{
			Certificates: []tls.Certificate{oldAdmin}, InsecureSkipVerify: true}}} // only the answer's status matters
		resp, err := client.Get("https://" + netip.AddrPortFrom(h.Address, 6443).String() + "/api/v1/namespaces/kube-system")
		if err != nil {
			t.Errorf("API server on %s with the old admin certificate: %v", h.Name, err)
			continue
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusUnauthorized {
			t.Errorf("API server on %s with the old admin certificate: %s, want 401", h.Name, resp.Status)
		}
	}
	waitNodesReady(t, l, 4)
	// Cluster DNS follows the API with the new CA: a Service made now resolves.
	runPod(t, l, "rotated", l.Hosts[3].Name)
	onHost(t, l, 0, kubectl+"expose pod rotated --port=8080")
	svc := onHost(t, l, 0, kubectl+"get service rotated -o jsonpath={.spec.clusterIP}")
	got := ""
	for deadline := time.Now().Add(60 * time.Second); time.Now().Before(deadline); time.Sleep(time.Second) {
		if got = onHost(t, l, 0, kubectl+"exec rotated -- nslookup rotated.default.svc.cluster.local 2>&1 || true"); strings.Contains(got, "Address: "+svc) {
			break
		}
	}
	if !strings.Contains(got, "Address: "+svc) {
		t.Errorf("after the rotation, rotated.default.svc.cluster.local (%s):\n%s", svc, got)
	}
	onHost(t, l, 0, kubectl+"delete service rotated; "+kubectl+"delete pod rotated --wait=false")
	t.Logf("CAs rotated in three applies; %d requests through the balancer meanwhile, none failed", total)
}

// csrSigned is the certificate the cluster's signer issues for a client CSR of user, made and approved on the
// first host.
func csrSigned(t *testing.T, l *lab.Lab, user string) *x509.Certificate {
	t.Helper()
	csr := onHost(t, l, 0, "openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -keyout /dev/null -subj /CN="+user+" 2>/dev/null | base64 -w0")
	onHost(t, l, 0, "printf '%s' '"+`apiVersion: certificates.k8s.io/v1
kind: CertificateSigningRequest
metadata: {name: `+user+`}
spec: {request: `+strings.TrimSpace(csr)+`, signerName: kubernetes.io/kube-apiserver-client, usages: [client auth]}
' | `+kubectl+"apply -f - && "+kubectl+"certificate approve "+user)
	var pemCert string
	for deadline := time.Now().Add(time.Minute); time.Now().Before(deadline) && pemCert == ""; time.Sleep(time.Second) {
		pemCert = onHost(t, l, 0, kubectl+"get csr "+user+" -o jsonpath={.status.certificate} | base64 -d")
	}
	onHost(t, l, 0, kubectl+"delete csr "+user)
	block, _ := pem.Decode([]byte(pemCert))
	if block == nil {
		t.Fatalf("CSR %s: no certificate issued in a minute (is the controller-manager signing?)", user)
	}
	cert, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	return cert
}

// servedCerts are the certificates the API servers and etcd members serve, by "apiserver HOST" and "etcd HOST".
func servedCerts(t *testing.T, l *lab.Lab, pkiDir string) map[string]*x509.Certificate {
	t.Helper()
	out := map[string]*x509.Certificate{}
	for _, h := range l.Hosts[:3] {
		for name, ep := range map[string]struct {
			port     uint16
			ca, cert string
		}{"apiserver": {6443, pki.ClusterCA, "admin"}, "etcd": {2379, pki.EtcdCA, "etcd-healthcheck-client"}} {
			addr := netip.AddrPortFrom(h.Address, ep.port).String()
			c, err := tls.DialWithDialer(&net.Dialer{Timeout: 5 * time.Second}, "tcp", addr, storeTLS(pkiDir, ep.ca, ep.cert))
			if err != nil {
				t.Fatalf("TLS to %s: %v", addr, err)
			}
			out[name+" "+h.Name] = c.ConnectionState().PeerCertificates[0]
			c.Close()
		}
	}
	return out
}

// storeTLS follows the state directory's PKI as it changes: each handshake presents the client certificate
// stored now and accepts a server certificate that the CA, or a CA being rotated in, signed. (Host names are
// not checked: the lab is reached by address.)
func storeTLS(pkiDir, ca, cert string) *tls.Config {
	return &tls.Config{
		GetClientCertificate: func(*tls.CertificateRequestInfo) (*tls.Certificate, error) {
			pair, err := tls.LoadX509KeyPair(filepath.Join(pkiDir, cert+".crt"), filepath.Join(pkiDir, cert+".key"))
			return &pair, err
		},
		InsecureSkipVerify: true, // verified below, against the CAs of the moment
		VerifyConnection: func(cs tls.ConnectionState) error {
			roots := x509.NewCertPool()
			for _, name := range []string{ca + ".crt", ca + ".next.crt"} {
				if data, err := os.ReadFile(filepath.Join(pkiDir, name)); err == nil {
					roots.AppendCertsFromPEM(data)
				}
			}
			if len(cs.PeerCertificates) == 0 {
				return errors.New("no server certificate")
			}
			inter := x509.NewCertPool()
			for _, c := range cs.PeerCertificates[1:] {
				inter.AddCert(c)
			}
			_, err := cs.PeerCertificates[0].Verify(x509.VerifyOptions{Roots: roots, Intermediates: inter})
			return err
		},
	}
}

func readCert(t *testing.T, path string) *x509.Certificate {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	block, _ := pem.Decode(data)
	if block == nil {
		t.Fatalf("%s: no PEM", path)
	}
	c, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return c
}

// probe asks the API through the balancer every 100 ms, each time on a new connection, and records failures.
type probe struct {
	done     chan struct{}
	stopped  chan struct{}
	mu       sync.Mutex
	requests int
	failures []string
}

func startProbe(addr string, cfg *tls.Config) *probe {
	p := &probe{done: make(chan struct{}), stopped: make(chan struct{})}
	client := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: cfg, DisableKeepAlives: true}}
	go func() {
		defer close(p.stopped)
		tick := time.NewTicker(100 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-p.done:
				return
			case <-tick.C:
			}
			resp, err := client.Get("https://" + addr + "/api/v1/namespaces/kube-system")
			if err == nil {
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode != http.StatusOK {
					err = fmt.Errorf("HTTP %s", resp.Status)
				}
			}
			p.mu.Lock()
			p.requests++
			if err != nil {
				p.failures = append(p.failures, time.Now().Format("15:04:05.000")+" "+err.Error())
			}
			p.mu.Unlock()
		}
	}()
	return p
}

// stop ends the probe and fails the test if a request failed (or too few were made to mean anything); it
// returns how many were made. log is the output of what ran meanwhile, for the failure's message.
func (p *probe) stop(t *testing.T, during, log string) int {
	t.Helper()
	close(p.done)
	<-p.stopped
	p.mu.Lock()
	defer p.mu.Unlock()
	if len(p.failures) != 0 || p.requests < 50 {
		t.Errorf("while %s, %d of %d requests through the balancer failed:\n%s\n%s", during, len(p.failures), p.requests, strings.Join(p.failures, "\n"), log)
	}
	return p.requests
}
