package sshdtest

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/crypto/ssh"
)

const sshKeygenPath = "/usr/bin/ssh-keygen"

// keygen runs ssh-keygen for a new key at file and returns its public half.
func keygen(file, keyType, passphrase, comment string, extra ...string) (ssh.PublicKey, error) {
	args := append([]string{"-q", "-t", keyType, "-N", passphrase, "-C", comment, "-f", file}, extra...)
	if out, err := exec.Command(sshKeygenPath, args...).CombinedOutput(); err != nil {
		return nil, fmt.Errorf("ssh-keygen -t %s -f %s: %w: %s", keyType, file, err, strings.TrimSpace(string(out)))
	}
	return readPublicKey(file + ".pub")
}

func readPublicKey(path string) (ssh.PublicKey, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read public key: %w", err)
	}
	pub, _, _, _, err := ssh.ParseAuthorizedKey(b)
	if err != nil {
		return nil, fmt.Errorf("parse public key %s: %w", path, err)
	}
	return pub, nil
}

func generateHostKeys(dir string) ([]*HostKey, error) {
	var keys []*HostKey
	for _, k := range []struct{ typ, flags string }{{"ed25519", ""}, {"ecdsa", "256"}} {
		file := filepath.Join(dir, "ssh_host_"+k.typ+"_key")
		var extra []string
		if k.flags != "" {
			extra = []string{"-b", k.flags}
		}
		pub, err := keygen(file, k.typ, "", "sshdtest host key", extra...)
		if err != nil {
			return nil, fmt.Errorf("host key: %w", err)
		}
		keys = append(keys, &HostKey{Type: k.typ, PrivateFile: file, Public: pub})
	}
	return keys, nil
}

// copyHostKeys copies the private keys so that the new server does not
// depend on the lifetime of the directory they came from.
func copyHostKeys(dir string, keys []*HostKey) ([]*HostKey, error) {
	out := make([]*HostKey, 0, len(keys))
	for i, k := range keys {
		b, err := os.ReadFile(k.PrivateFile)
		if err != nil {
			return nil, fmt.Errorf("reuse host key: %w", err)
		}
		file := filepath.Join(dir, fmt.Sprintf("ssh_host_%s_key.%d", k.Type, i))
		// sshd refuses host keys that others can read.
		if err := os.WriteFile(file, b, 0o600); err != nil {
			return nil, fmt.Errorf("reuse host key: %w", err)
		}
		out = append(out, &HostKey{Type: k.Type, PrivateFile: file, Public: k.Public})
	}
	return out, nil
}

// newUserKey makes an unencrypted ed25519 key for a login user.
func newUserKey(t testing.TB, comment string) (string, ssh.Signer) {
	t.Helper()
	file := filepath.Join(t.TempDir(), "id_ed25519")
	if _, err := keygen(file, "ed25519", "", comment); err != nil {
		t.Fatalf("sshdtest: user key: %v", err)
	}
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatalf("sshdtest: user key: %v", err)
	}
	signer, err := ssh.ParsePrivateKey(b)
	if err != nil {
		t.Fatalf("sshdtest: parse user key %s: %v", file, err)
	}
	return file, signer
}

// EncryptedKey writes a passphrase-protected ed25519 key and returns its
// file and public key. It authorizes the key nowhere; see Server.Authorize.
func EncryptedKey(t testing.TB, passphrase string) (string, ssh.PublicKey) {
	t.Helper()
	if passphrase == "" {
		t.Fatalf("sshdtest: EncryptedKey needs a passphrase")
	}
	file := filepath.Join(t.TempDir(), "id_ed25519_encrypted")
	// Few KDF rounds: the default 16 cost about a second per parse.
	pub, err := keygen(file, "ed25519", passphrase, "sshdtest encrypted key", "-a", "2")
	if err != nil {
		t.Fatalf("sshdtest: encrypted key: %v", err)
	}
	return file, pub
}
