package ssh

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"

	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/agent"
)

// authMethod gathers the signers for a target: its key file, or else the agent and the user's default keys.
// The returned closer ends the agent connection.
func (d *Dialer) authMethod(t Target) (ssh.AuthMethod, []string, func(), error) {
	var signers []ssh.Signer
	var tried []string
	closeAgent := func() {}
	var agentSigners []ssh.Signer
	if t.UseAgent && d.AgentSocket != "" {
		conn, err := net.Dial("unix", d.AgentSocket)
		if err == nil {
			closeAgent = func() { conn.Close() }
			agentSigners, err = agent.NewClient(conn).Signers()
		}
		if err != nil {
			d.warn(t.Name, fmt.Sprintf("ssh-agent at %s is not usable: %v", d.AgentSocket, err))
		}
	}

	if t.PrivateKeyFile != "" {
		s, err := loadKey(t.PrivateKeyFile, agentSigners)
		if err != nil {
			closeAgent()
			return nil, nil, nil, err
		}
		return ssh.PublicKeys(s), []string{t.PrivateKeyFile}, closeAgent, nil
	}
	if len(agentSigners) > 0 {
		signers = append(signers, agentSigners...)
		tried = append(tried, fmt.Sprintf("%d from ssh-agent", len(agentSigners)))
	}
	for _, name := range []string{"id_ed25519", "id_ecdsa", "id_rsa"} {
		if d.Home == "" {
			break
		}
		path := filepath.Join(d.Home, ".ssh", name)
		if _, err := os.Stat(path); err != nil {
			continue
		}
		// A default key behind a passphrase is skipped: the agent, if it holds it, is already in the list.
		if s, err := loadKey(path, nil); err == nil {
			signers = append(signers, s)
			tried = append(tried, path)
		}
	}
	if len(signers) == 0 {
		closeAgent()
		return nil, nil, nil, errors.New("no SSH key to log in with: set private_key_file, or load a key into ssh-agent (SSH_AUTH_SOCK)")
	}
	return ssh.PublicKeys(signers...), tried, closeAgent, nil
}

// loadKey reads a private key; a passphrase-protected one is used through the agent when the agent holds it.
func loadKey(path string, agentSigners []ssh.Signer) (ssh.Signer, error) {
	pem, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("private key: %w", err)
	}
	s, err := ssh.ParsePrivateKey(pem)
	var missing *ssh.PassphraseMissingError
	switch {
	case err == nil:
		return s, nil
	case errors.As(err, &missing):
		if missing.PublicKey != nil {
			want := missing.PublicKey.Marshal()
			for _, as := range agentSigners {
				if bytes.Equal(as.PublicKey().Marshal(), want) {
					return as, nil
				}
			}
		}
		return nil, fmt.Errorf("private key %s is protected by a passphrase and ssh-agent does not hold it: run `ssh-add %s`", path, path)
	default:
		return nil, fmt.Errorf("private key %s: %w", path, err)
	}
}
