package ssh

import (
	"bytes"
	"crypto/ed25519"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"syscall"

	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/knownhosts"

	"github.com/kforge/kforge/config"
)

// UnknownHostError: strict checking met a host that no known_hosts file lists.
type UnknownHostError struct {
	Host, Addr  string
	Fingerprint string
	Files       []string
	WriteFile   string
}

func (e *UnknownHostError) Error() string {
	into := e.WriteFile
	if into == "" {
		into = "a known_hosts file"
	}
	return fmt.Sprintf("host key of %s (%s) is not known: it offers %s, which no known_hosts file lists (%s). "+
		"Check the fingerprint on the host (ssh-keygen -lf /etc/ssh/ssh_host_ed25519_key.pub), then add it to %s, "+
		"or set host_key_policy = \"accept-new\" to trust it on first use",
		e.Addr, e.Host, e.Fingerprint, strings.Join(e.Files, ", "), into)
}

// ChangedHostKeyError: a host offers a key other than the one recorded for it. Never accepted.
type ChangedHostKeyError struct {
	Host, Addr string
	Offered    string // fingerprint
	Known      string // fingerprint
	File       string
	Line       int
}

func (e *ChangedHostKeyError) Error() string {
	return fmt.Sprintf("HOST KEY CHANGED for %s (%s): it offers %s but %s:%d records %s. "+
		"Someone may be intercepting the connection, or the host was reinstalled; if you are sure it is the latter, "+
		"remove line %d of %s and connect again",
		e.Addr, e.Host, e.Offered, e.File, e.Line, e.Known, e.Line, e.File)
}

// hostKeys checks one target's host key against the known_hosts files, and records new keys when the policy
// allows it.
type hostKeys struct {
	target    Target
	files     []string // read; those that exist when checked
	writeFile string   // kforge's own known_hosts: accept-new records keys here
}

func (d *Dialer) hostKeysFor(t Target) *hostKeys {
	files := []string{}
	for _, f := range []string{d.KnownHostsFile, d.UserKnownHostsFile, t.KnownHostsFile} {
		if f != "" && !contains(files, f) {
			files = append(files, f)
		}
	}
	// accept-new records into the host's own known_hosts file when it has one (a Vagrant box's, whose
	// 127.0.0.1:2222 stands for another machine each time a box is recreated), kforge's otherwise.
	write := d.KnownHostsFile
	if t.KnownHostsFile != "" {
		write = t.KnownHostsFile
	}
	return &hostKeys{target: t, files: files, writeFile: write}
}

func contains(xs []string, x string) bool {
	for _, y := range xs {
		if x == y {
			return true
		}
	}
	return false
}

// callback is the ssh.HostKeyCallback for the target.
func (h *hostKeys) callback() (ssh.HostKeyCallback, error) {
	if h.target.HostKeyPolicy == config.HostKeyInsecure {
		return ssh.InsecureIgnoreHostKey(), nil // only ever reached when the configuration says "insecure"
	}
	return func(hostname string, remote net.Addr, key ssh.PublicKey) error {
		err := h.check(hostname, remote, key)
		var unknown *UnknownHostError
		if errors.As(err, &unknown) && h.target.HostKeyPolicy == config.HostKeyAcceptNew {
			return h.record(hostname, remote, key)
		}
		return err
	}, nil
}

func (h *hostKeys) check(hostname string, remote net.Addr, key ssh.PublicKey) error {
	cb, existing, err := h.load()
	if err != nil {
		return err
	}
	if cb == nil {
		return h.unknown(key, existing)
	}
	err = cb(hostname, remote, key)
	var ke *knownhosts.KeyError
	var revoked *knownhosts.RevokedError
	switch {
	case err == nil:
		return nil
	case errors.As(err, &revoked):
		return fmt.Errorf("host key of %s is marked @revoked in %s:%d", h.target.Addr(), revoked.Revoked.Filename, revoked.Revoked.Line)
	case errors.As(err, &ke) && len(ke.Want) == 0:
		return h.unknown(key, existing)
	case errors.As(err, &ke):
		// The dialler offers only the key types known for the host (see algorithms), so a mismatch is a change.
		w := ke.Want[0]
		for _, k := range ke.Want {
			if k.Key.Type() == key.Type() {
				w = k
				break
			}
		}
		return &ChangedHostKeyError{Host: h.target.Name, Addr: h.target.Addr(), Offered: ssh.FingerprintSHA256(key),
			Known: ssh.FingerprintSHA256(w.Key), File: w.Filename, Line: w.Line}
	default:
		return err
	}
}

func (h *hostKeys) unknown(key ssh.PublicKey, existing []string) error {
	return &UnknownHostError{Host: h.target.Name, Addr: h.target.Addr(), Fingerprint: key.Type() + " " + ssh.FingerprintSHA256(key),
		Files: existing, WriteFile: h.writeFile}
}

// load reads the known_hosts files that exist now; nil callback when there are none.
func (h *hostKeys) load() (ssh.HostKeyCallback, []string, error) {
	var existing []string
	for _, f := range h.files {
		if _, err := os.Stat(f); err == nil {
			existing = append(existing, f)
		}
	}
	if len(existing) == 0 {
		return nil, nil, nil
	}
	cb, err := knownhosts.New(existing...)
	if err != nil {
		return nil, nil, fmt.Errorf("known_hosts: %w", err)
	}
	return cb, existing, nil
}

// algorithms lists the host key algorithms to accept from the target: those of the keys already known for it,
// so that a host with several keys is not reported as changed because it offered another type first. Nil
// means any (nothing is known yet).
func (h *hostKeys) algorithms() []string {
	if h.target.HostKeyPolicy == config.HostKeyInsecure {
		return nil
	}
	cb, _, err := h.load()
	if cb == nil || err != nil {
		return nil
	}
	probe := probeKey()
	var ke *knownhosts.KeyError
	if err := cb(h.target.Addr(), &net.TCPAddr{IP: net.IPv4zero}, probe); !errors.As(err, &ke) {
		return nil
	}
	var algos []string
	for _, k := range ke.Want {
		for _, a := range algorithmsFor(k.Key.Type()) {
			if !contains(algos, a) {
				algos = append(algos, a)
			}
		}
	}
	return algos
}

// probeKey is a key no host has: offered to a known_hosts callback, it makes the callback list the host's keys.
func probeKey() ssh.PublicKey {
	k, err := ssh.NewPublicKey(ed25519.NewKeyFromSeed(make([]byte, ed25519.SeedSize)).Public())
	if err != nil {
		panic(err) // an ed25519 public key always converts
	}
	return k
}

func algorithmsFor(keyType string) []string {
	if keyType == ssh.KeyAlgoRSA {
		return []string{ssh.KeyAlgoRSASHA512, ssh.KeyAlgoRSASHA256, ssh.KeyAlgoRSA}
	}
	return []string{keyType}
}

// record appends the host's key to kforge's known_hosts under an exclusive lock, so that hosts connected in
// parallel never interleave lines; if another writer recorded the host meanwhile, its entry decides.
func (h *hostKeys) record(hostname string, remote net.Addr, key ssh.PublicKey) error {
	if h.writeFile == "" {
		return h.unknown(key, nil)
	}
	if err := os.MkdirAll(filepath.Dir(h.writeFile), 0o700); err != nil {
		return fmt.Errorf("known_hosts: %w", err)
	}
	f, err := os.OpenFile(h.writeFile, os.O_RDWR|os.O_CREATE|os.O_APPEND, 0o600)
	if err != nil {
		return fmt.Errorf("known_hosts: %w", err)
	}
	defer f.Close()
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX); err != nil {
		return fmt.Errorf("lock %s: %w", h.writeFile, err)
	}
	defer syscall.Flock(int(f.Fd()), syscall.LOCK_UN) //nolint:errcheck // closing the file unlocks too

	err = h.check(hostname, remote, key)
	var unknown *UnknownHostError
	if !errors.As(err, &unknown) {
		return err // recorded by another writer: accepted or a conflict
	}
	line := knownhosts.Line([]string{knownhosts.Normalize(h.target.Addr())}, key) + "\n"
	// A file that does not end in a newline (edited by hand) must not swallow our line.
	if st, err := f.Stat(); err == nil && st.Size() > 0 {
		last := make([]byte, 1)
		if _, err := f.ReadAt(last, st.Size()-1); err == nil && !bytes.Equal(last, []byte("\n")) {
			line = "\n" + line
		}
	}
	if _, err := f.WriteString(line); err != nil {
		return fmt.Errorf("record host key in %s: %w", h.writeFile, err)
	}
	if err := f.Sync(); err != nil {
		return fmt.Errorf("record host key in %s: %w", h.writeFile, err)
	}
	return nil
}
