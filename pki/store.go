package pki

import (
	"crypto"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"

	"github.com/cloudflare/cfssl/helpers"

	"github.com/kforge/kforge/internal/atomicfile"
)

// Store keeps the PKI in a directory of its own: the directory 0700, keys 0600, certificates 0644, and every
// file written to a temporary name and renamed, so that a crash never leaves half a key.
type Store struct {
	Dir string
}

// OpenStore makes the directory if needed, tightens its mode if someone loosened it, and finishes a CA rotation
// that a killed run left halfway through moving the new CAs into place.
func OpenStore(dir string) (*Store, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("pki store: %w", err)
	}
	if err := os.Chmod(dir, 0o700); err != nil {
		return nil, fmt.Errorf("pki store: %w", err)
	}
	s := &Store{Dir: dir}
	if err := s.finishPromotion(); err != nil {
		return nil, fmt.Errorf("pki store: finishing a CA rotation: %w", err)
	}
	return s, nil
}

func (s *Store) certPath(name string) string { return filepath.Join(s.Dir, name+".crt") }
func (s *Store) keyPath(name string) string  { return filepath.Join(s.Dir, name+".key") }

// Entry is what the store holds for one name; either part may be missing.
type Entry struct {
	Cert    *x509.Certificate
	CertPEM []byte
	KeyPEM  []byte
	Key     crypto.Signer
}

// Read loads what exists for name; a missing file is not an error, an unreadable one is.
func (s *Store) Read(name string) (Entry, error) {
	var e Entry
	var err error
	if e.CertPEM, err = readIfExists(s.certPath(name)); err != nil {
		return e, err
	}
	if e.KeyPEM, err = readIfExists(s.keyPath(name)); err != nil {
		return e, err
	}
	if e.CertPEM != nil {
		if e.Cert, err = helpers.ParseCertificatePEM(e.CertPEM); err != nil {
			return e, fmt.Errorf("%s: %w", s.certPath(name), err)
		}
	}
	if e.KeyPEM != nil {
		if e.Key, err = helpers.ParsePrivateKeyPEM(e.KeyPEM); err != nil {
			return e, fmt.Errorf("%s: cannot parse the key", s.keyPath(name)) // never quote key material
		}
	}
	return e, nil
}

func readIfExists(path string) ([]byte, error) {
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	return b, err
}

// Write stores a pair: the key first, so that a certificate is never there without its key.
func (s *Store) Write(name string, p Pair) error {
	if p.KeyPEM != nil {
		if err := writeAtomic(s.keyPath(name), p.KeyPEM, 0o600); err != nil {
			return err
		}
	}
	if p.CertPEM != nil {
		return writeAtomic(s.certPath(name), p.CertPEM, 0o644)
	}
	return nil
}

// WriteFile stores another file (a public key, a kubeconfig, the encryption config) with the given mode.
func (s *Store) WriteFile(rel string, data []byte, mode os.FileMode) error {
	return writeAtomic(filepath.Join(s.Dir, rel), data, mode)
}

// ReadFile reads a file of the store; nil when it does not exist.
func (s *Store) ReadFile(rel string) ([]byte, error) { return readIfExists(filepath.Join(s.Dir, rel)) }

func (s *Store) renewPath() string { return filepath.Join(s.Dir, "renew.json") }

// RenewRequested lists the certificates marked for re-issue by `kforge certs renew`.
func (s *Store) RenewRequested() (map[string]bool, error) {
	out := map[string]bool{}
	data, err := readIfExists(s.renewPath())
	if err != nil || data == nil {
		return out, err
	}
	var names []string
	if err := json.Unmarshal(data, &names); err != nil {
		return nil, fmt.Errorf("%s: %w", s.renewPath(), err)
	}
	for _, n := range names {
		out[n] = true
	}
	return out, nil
}

// SetRenewRequested replaces the list of certificates marked for re-issue.
func (s *Store) SetRenewRequested(marked map[string]bool) error {
	if len(marked) == 0 {
		err := os.Remove(s.renewPath())
		if errors.Is(err, os.ErrNotExist) {
			return nil
		}
		return err
	}
	names := make([]string, 0, len(marked))
	for n := range marked {
		names = append(names, n)
	}
	sort.Strings(names)
	data, _ := json.Marshal(names)
	return writeAtomic(s.renewPath(), append(data, '\n'), 0o600)
}

// writeAtomic writes one store file, making its directory (0700) first.
func writeAtomic(path string, data []byte, mode os.FileMode) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return err
	}
	return atomicfile.Write(path, data, mode)
}

// publicKeyPEM encodes a key's public half.
func publicKeyPEM(k crypto.Signer) ([]byte, error) {
	der, err := x509.MarshalPKIXPublicKey(k.Public())
	if err != nil {
		return nil, err
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}), nil
}
