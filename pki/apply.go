package pki

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"runtime"
	"sync"
	"time"

	"github.com/kforge/kforge/config"
)

// Apply carries out a plan: CAs and key pairs first, then the certificates, several at once. Renewal marks of
// the certificates it re-issued are cleared.
func Apply(s *Store, iss Issuer, changes []Change, p config.PKI) error {
	request := func(spec Spec, validity time.Duration) Request {
		return Request{CN: spec.CN, O: spec.O, DNSNames: spec.DNSNames, IPs: spec.IPs, Usages: spec.Usages,
			KeyAlgorithm: p.KeyAlgorithm, KeySize: p.KeySize, Validity: validity}
	}
	var certs []Change
	for _, ch := range changes {
		if ch.Action == ActionKeep {
			continue
		}
		switch ch.Spec.Kind {
		case KindCA:
			pair, err := iss.NewCA(request(ch.Spec, p.CAValidity))
			if err != nil {
				return err
			}
			if err := s.Write(ch.Spec.Name, pair); err != nil {
				return err
			}
		case KindKeyPair:
			if err := writeKeyPair(s, ch.Spec.Name, p); err != nil {
				return err
			}
		case KindCert:
			certs = append(certs, ch)
		}
	}
	rotation, err := s.Rotation()
	if err != nil {
		return err
	}
	cas := map[string]Pair{}
	for _, ch := range certs {
		if _, ok := cas[ch.Spec.CA]; ok {
			continue
		}
		signer := rotation.Signing(ch.Spec.CA)
		e, err := s.Read(signer)
		if err != nil {
			return err
		}
		if e.CertPEM == nil || e.KeyPEM == nil {
			return fmt.Errorf("%s: its CA %s is not in the store", ch.Spec.Name, signer)
		}
		cas[ch.Spec.CA] = Pair{CertPEM: e.CertPEM, KeyPEM: e.KeyPEM}
	}

	// Signing is CPU-bound (key generation): one worker per CPU.
	work := make(chan Change)
	errs := make([]error, len(certs))
	index := map[string]int{}
	for i, ch := range certs {
		index[ch.Spec.Name] = i
	}
	var wg sync.WaitGroup
	for w := 0; w < runtime.GOMAXPROCS(0); w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ch := range work {
				pair, err := iss.Sign(cas[ch.Spec.CA], request(ch.Spec, p.Validity))
				if err == nil {
					err = s.Write(ch.Spec.Name, pair)
				}
				errs[index[ch.Spec.Name]] = err
			}
		}()
	}
	for _, ch := range certs {
		work <- ch
	}
	close(work)
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return err
	}
	renew, err := s.RenewRequested()
	if err != nil {
		return err
	}
	for _, ch := range certs {
		delete(renew, ch.Spec.Name)
	}
	return s.SetRenewRequested(renew)
}

// writeKeyPair makes the service-account signing key: NAME.key and NAME.pub.
func writeKeyPair(s *Store, name string, p config.PKI) error {
	var der []byte
	var err error
	switch p.KeyAlgorithm {
	case "rsa":
		k, kerr := rsa.GenerateKey(rand.Reader, p.KeySize)
		if kerr != nil {
			return kerr
		}
		der, err = x509.MarshalPKCS8PrivateKey(k)
	default:
		curve := map[int]elliptic.Curve{256: elliptic.P256(), 384: elliptic.P384(), 521: elliptic.P521()}[p.KeySize]
		k, kerr := ecdsa.GenerateKey(curve, rand.Reader)
		if kerr != nil {
			return kerr
		}
		der, err = x509.MarshalPKCS8PrivateKey(k)
	}
	if err != nil {
		return err
	}
	keyPEM := pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})
	if err := s.Write(name, Pair{KeyPEM: keyPEM}); err != nil {
		return err
	}
	e, err := s.Read(name)
	if err != nil {
		return err
	}
	pub, err := publicKeyPEM(e.Key)
	if err != nil {
		return err
	}
	return s.WriteFile(name+".pub", pub, 0o644)
}
