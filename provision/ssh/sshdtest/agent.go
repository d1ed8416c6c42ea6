package sshdtest

import (
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// StartAgent runs a real ssh-agent in the foreground, adds keyFiles to it
// with ssh-add and returns its socket; t.Cleanup kills the agent. Keys
// must be unencrypted: ssh-add runs without a terminal to ask on.
func StartAgent(t testing.TB, keyFiles ...string) string {
	t.Helper()
	// Not t.TempDir: its long per-test path can exceed the 108-byte limit
	// on unix socket paths.
	dir, err := os.MkdirTemp("", "sshdtest-agent-")
	if err != nil {
		t.Fatalf("sshdtest: agent directory: %v", err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	sock := filepath.Join(dir, "agent.sock")
	logFile := filepath.Join(dir, "agent.log")
	logf, err := os.Create(logFile)
	if err != nil {
		t.Fatalf("sshdtest: agent log: %v", err)
	}
	defer logf.Close()

	cmd := exec.Command("/usr/bin/ssh-agent", "-D", "-a", sock)
	cmd.Stdout = logf
	cmd.Stderr = logf
	cmd.Env = []string{"PATH=/usr/bin:/bin"}
	if err := cmd.Start(); err != nil {
		t.Fatalf("sshdtest: start ssh-agent: %v", err)
	}
	done := make(chan struct{})
	go func() {
		_ = cmd.Wait()
		close(done)
	}()
	t.Cleanup(func() {
		select {
		case <-done:
			return
		default:
		}
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-done:
		case <-time.After(termGrace):
			_ = cmd.Process.Signal(syscall.SIGKILL)
			<-done
		}
	})

	deadline := time.Now().Add(readyTimeout)
	for {
		c, err := net.Dial("unix", sock)
		if err == nil {
			c.Close()
			break
		}
		select {
		case <-done:
			t.Fatalf("sshdtest: ssh-agent exited during startup (%v): %s", cmd.ProcessState, logTail(logFile, 0, 20))
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("sshdtest: ssh-agent socket %s not ready within %v: %s", sock, readyTimeout, logTail(logFile, 0, 20))
		}
		time.Sleep(5 * time.Millisecond)
	}

	for _, f := range keyFiles {
		add := exec.Command("/usr/bin/ssh-add", "-q", f)
		add.Env = []string{"PATH=/usr/bin:/bin", "SSH_AUTH_SOCK=" + sock, "SSH_ASKPASS_REQUIRE=never"}
		// A new session has no controlling terminal, so ssh-add fails on an
		// encrypted key instead of prompting on the developer's terminal.
		add.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
		if out, err := add.CombinedOutput(); err != nil {
			t.Fatalf("sshdtest: ssh-add %s: %v: %s", f, err, strings.TrimSpace(string(out)))
		}
	}
	return sock
}
