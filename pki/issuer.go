package pki

import (
	"fmt"
	"net/netip"
	"sync"
	"time"

	cfconfig "github.com/cloudflare/cfssl/config"
	"github.com/cloudflare/cfssl/csr"
	"github.com/cloudflare/cfssl/helpers"
	"github.com/cloudflare/cfssl/initca"
	cflog "github.com/cloudflare/cfssl/log"
	"github.com/cloudflare/cfssl/signer"
	"github.com/cloudflare/cfssl/signer/local"
)

// Request is what a certificate says and how its key is made.
type Request struct {
	CN           string
	O            []string
	DNSNames     []string
	IPs          []netip.Addr
	Usages       []Usage
	KeyAlgorithm string // "ecdsa" or "rsa"
	KeySize      int
	Validity     time.Duration
}

// Usage is what a certificate may be used for.
type Usage string

const (
	UsageServer Usage = "server auth"
	UsageClient Usage = "client auth"
)

// Pair is a certificate and its private key, PEM-encoded.
type Pair struct {
	CertPEM, KeyPEM []byte
}

// Issuer makes CAs and signs certificates. kforge uses cfssl behind it; tests may use another.
type Issuer interface {
	NewCA(r Request) (Pair, error)
	Sign(ca Pair, r Request) (Pair, error)
}

// CFSSL is the Issuer kforge uses.
type CFSSL struct{}

var _ Issuer = CFSSL{}

// quietCFSSL turns cfssl's package-level logger down once: it would print every signing to stderr.
var quietCFSSL sync.Once

func silence() { quietCFSSL.Do(func() { cflog.Level = cflog.LevelFatal }) }

func keyRequest(r Request) *csr.KeyRequest {
	return &csr.KeyRequest{A: r.KeyAlgorithm, S: r.KeySize}
}

func subjectNames(o []string) []csr.Name {
	var out []csr.Name
	for _, org := range o {
		out = append(out, csr.Name{O: org})
	}
	return out
}

// NewCA implements Issuer.
func (CFSSL) NewCA(r Request) (Pair, error) {
	silence()
	cert, _, key, err := initca.New(&csr.CertificateRequest{CN: r.CN, Names: subjectNames(r.O), KeyRequest: keyRequest(r),
		CA: &csr.CAConfig{Expiry: r.Validity.String()}})
	if err != nil {
		return Pair{}, fmt.Errorf("make CA %s: %w", r.CN, err)
	}
	return Pair{CertPEM: cert, KeyPEM: key}, nil
}

// Sign implements Issuer.
func (CFSSL) Sign(ca Pair, r Request) (Pair, error) {
	silence()
	caCert, err := helpers.ParseCertificatePEM(ca.CertPEM)
	if err != nil {
		return Pair{}, fmt.Errorf("CA certificate: %w", err)
	}
	caKey, err := helpers.ParsePrivateKeyPEM(ca.KeyPEM)
	if err != nil {
		return Pair{}, fmt.Errorf("CA key: %w", err)
	}
	usages := []string{"digital signature"}
	if r.KeyAlgorithm == "rsa" {
		usages = append(usages, "key encipherment")
	}
	for _, u := range r.Usages {
		usages = append(usages, string(u))
	}
	// An explicit expiry: a profile without one is rejected as "invalid policy".
	policy := &cfconfig.Signing{Default: &cfconfig.SigningProfile{Usage: usages, Expiry: r.Validity, ExpiryString: r.Validity.String()}}
	s, err := local.NewSigner(caKey, caCert, signer.DefaultSigAlgo(caKey), policy)
	if err != nil {
		return Pair{}, fmt.Errorf("signer: %w", err)
	}
	hosts := append([]string{}, r.DNSNames...)
	for _, ip := range r.IPs {
		hosts = append(hosts, ip.String())
	}
	csrPEM, key, err := csr.ParseRequest(&csr.CertificateRequest{CN: r.CN, Names: subjectNames(r.O), KeyRequest: keyRequest(r), Hosts: hosts})
	if err != nil {
		return Pair{}, fmt.Errorf("key and request for %s: %w", r.CN, err)
	}
	cert, err := s.Sign(signer.SignRequest{Request: string(csrPEM), Hosts: hosts})
	if err != nil {
		return Pair{}, fmt.Errorf("sign %s: %w", r.CN, err)
	}
	return Pair{CertPEM: cert, KeyPEM: key}, nil
}
