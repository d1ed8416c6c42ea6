package lab

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/pem"
	"os"
	"path/filepath"

	"golang.org/x/crypto/ssh"
)

// writeKeyPair writes an OpenSSH private key (0600) and its .pub file, and returns the public key.
func writeKeyPair(path string, priv crypto.Signer, comment string) (ssh.PublicKey, error) {
	block, err := ssh.MarshalPrivateKey(priv, comment)
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, err
	}
	if err := os.WriteFile(path, pem.EncodeToMemory(block), 0o600); err != nil {
		return nil, err
	}
	pub, err := ssh.NewPublicKey(priv.Public())
	if err != nil {
		return nil, err
	}
	line := append(ssh.MarshalAuthorizedKey(pub)[:len(ssh.MarshalAuthorizedKey(pub))-1], ' ')
	line = append(append(line, comment...), '\n')
	return pub, os.WriteFile(path+".pub", line, 0o644)
}

func newEd25519() (crypto.Signer, error) {
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	return priv, err
}

// hostKeys gives a host its own SSH host keys (ed25519 and ecdsa, like a fresh Debian install) and returns the
// public halves for known_hosts.
func hostKeys(root, host string) ([]ssh.PublicKey, error) {
	edPriv, err := newEd25519()
	if err != nil {
		return nil, err
	}
	ecPriv, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	var pubs []ssh.PublicKey
	for name, priv := range map[string]crypto.Signer{"ed25519": edPriv, "ecdsa": ecPriv} {
		pub, err := writeKeyPair(filepath.Join(root, "etc/ssh/ssh_host_"+name+"_key"), priv, "root@"+host)
		if err != nil {
			return nil, err
		}
		pubs = append(pubs, pub)
	}
	return pubs, nil
}
