package sshdtest

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"
)

// SudoMode is what a user may do with sudo.
type SudoMode int

const (
	SudoNone       SudoMode = iota // not in sudoers
	SudoNoPassword                 // sudo without a password
	SudoPassword                   // sudo asks for a password, which the user does not have
)

func (m SudoMode) String() string {
	switch m {
	case SudoNone:
		return "SudoNone"
	case SudoNoPassword:
		return "SudoNoPassword"
	case SudoPassword:
		return "SudoPassword"
	}
	return "SudoMode(" + strconv.Itoa(int(m)) + ")"
}

// User is an account that may log in to servers it is passed to.
type User struct {
	Name    string
	Home    string
	KeyFile string // unencrypted ed25519 private key, 0600
	Signer  ssh.Signer
	Sudo    SudoMode
}

const (
	sudoersDir   = "/etc/sudoers.d"
	userAttempts = 10
)

// Root returns the root user with a fresh key. Every command runs root's
// real shell startup files; prefer SystemUser for tests that kill commands
// midway, as that may strand whatever those files were doing.
func Root(t testing.TB) *User {
	t.Helper()
	file, signer := newUserKey(t, "sshdtest root")
	return &User{Name: "root", Home: "/root", KeyFile: file, Signer: signer, Sudo: SudoNoPassword}
}

// SystemUser creates a local user with a unique name ("kft" and a random
// suffix), a home directory, a fresh key and the given sudo rights. The
// user and its sudoers file are removed by t.Cleanup.
func SystemUser(t testing.TB, sudo SudoMode) *User {
	t.Helper()
	name, err := addUser()
	if err != nil {
		t.Fatalf("sshdtest: %v", err)
	}
	t.Cleanup(func() {
		if err := removeUser(name); err != nil {
			t.Errorf("sshdtest: %v", err)
		}
	})
	u, err := user.Lookup(name)
	if err != nil {
		t.Fatalf("sshdtest: look up new user: %v", err)
	}
	if sudo != SudoNone {
		if err := writeSudoers(name, sudo); err != nil {
			t.Fatalf("sshdtest: %v", err)
		}
	}
	file, signer := newUserKey(t, "sshdtest "+name)
	return &User{Name: name, Home: u.HomeDir, KeyFile: file, Signer: signer, Sudo: sudo}
}

func randomName() (string, error) {
	b := make([]byte, 4)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("random user name: %w", err)
	}
	return "kft" + hex.EncodeToString(b), nil
}

// addUser retries because parallel tests contend for the lock on
// /etc/passwd, and a random name may (rarely) exist already.
func addUser() (string, error) {
	var lastErr error
	for attempt := 0; attempt < userAttempts; attempt++ {
		name, err := randomName()
		if err != nil {
			return "", err
		}
		// Debian's useradd stores "!" (locked) as the password, and sshd
		// without PAM refuses locked accounts even for key logins; "*"
		// only means that no password can match.
		out, err := exec.Command("/usr/sbin/useradd", "-m", "-p", "*", "-s", "/bin/bash", "-c", "kforge sshdtest", name).CombinedOutput()
		if err == nil {
			return name, nil
		}
		lastErr = fmt.Errorf("useradd %s: %w: %s", name, err, strings.TrimSpace(string(out)))
		time.Sleep(time.Duration(attempt+1) * 50 * time.Millisecond)
	}
	return "", lastErr
}

func removeUser(name string) error {
	var errs []error
	if err := os.Remove(sudoersFile(name)); err != nil && !errors.Is(err, os.ErrNotExist) {
		errs = append(errs, fmt.Errorf("remove sudoers file: %w", err))
	}
	// userdel refuses users with running processes; the user exists only
	// for this test, so whatever still runs as it was started by it.
	if u, err := user.Lookup(name); err == nil {
		if uid, err := strconv.Atoi(u.Uid); err == nil && uid != 0 {
			if err := killUser(uid); err != nil {
				errs = append(errs, err)
			}
		}
	}
	var lastErr error
	for attempt := 0; attempt < userAttempts; attempt++ {
		out, err := exec.Command("/usr/sbin/userdel", "-r", name).CombinedOutput()
		if err == nil {
			lastErr = nil
			break
		}
		lastErr = fmt.Errorf("userdel -r %s: %w: %s", name, err, strings.TrimSpace(string(out)))
		time.Sleep(time.Duration(attempt+1) * 50 * time.Millisecond)
	}
	if lastErr != nil {
		errs = append(errs, lastErr)
	}
	return errors.Join(errs...)
}

// killUser SIGKILLs every process whose real or effective UID is uid.
func killUser(uid int) error {
	for round := 0; round < 20; round++ {
		pids, err := pidsOfUID(uid)
		if err != nil {
			return err
		}
		if len(pids) == 0 {
			return nil
		}
		for _, pid := range pids {
			_ = syscall.Kill(pid, syscall.SIGKILL)
		}
		time.Sleep(20 * time.Millisecond)
	}
	return fmt.Errorf("processes of uid %d survive SIGKILL", uid)
}

func sudoersFile(name string) string { return filepath.Join(sudoersDir, "sshdtest-"+name) }

// writeSudoers validates the rule under a name sudo ignores (it skips
// files containing a dot) and only then renames it into effect.
func writeSudoers(name string, mode SudoMode) error {
	var rule string
	switch mode {
	case SudoNoPassword:
		rule = name + " ALL=(ALL:ALL) NOPASSWD: ALL\n"
	case SudoPassword:
		rule = name + " ALL=(ALL:ALL) ALL\n"
	default:
		return fmt.Errorf("sudoers: unknown mode %v", mode)
	}
	final := sudoersFile(name)
	tmp := final + ".tmp"
	if err := os.WriteFile(tmp, []byte(rule), 0o440); err != nil {
		return fmt.Errorf("write sudoers file: %w", err)
	}
	if out, err := exec.Command("/usr/sbin/visudo", "-cf", tmp).CombinedOutput(); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("visudo -cf %s: %w: %s", tmp, err, strings.TrimSpace(string(out)))
	}
	if err := os.Rename(tmp, final); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("install sudoers file: %w", err)
	}
	return nil
}
