package main

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/kforge/kforge/internal/ociimage"
)

// TestMain runs the command itself when a test starts this binary with OCISERVE_MAIN set: the end-to-end test
// runs the real main, signals and exit status included, without building it.
func TestMain(m *testing.M) {
	if os.Getenv("OCISERVE_MAIN") == "1" {
		main()
		os.Exit(0)
	}
	os.Exit(m.Run())
}

func command(t *testing.T, args ...string) *exec.Cmd {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(exe, args...)
	cmd.Env = append(os.Environ(), "OCISERVE_MAIN=1")
	return cmd
}

func TestServesUntilSIGTERM(t *testing.T) {
	dir := t.TempDir()
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(os.WriteFile(filepath.Join(dir, "hello"), []byte("hello"), 0o644))
	var layout bytes.Buffer
	must(ociimage.Write(&layout, ociimage.Spec{Architecture: "amd64", Images: []ociimage.Image{
		{Name: "registry.k8s.io/e2e-test-images/agnhost:2.66.1", Layers: []string{dir}},
		{Name: "kforge.local/testbox:busybox", Layers: []string{dir}, Cmd: []string{"sh"}},
	}}))
	tarball := filepath.Join(t.TempDir(), "layout.tar")
	must(os.WriteFile(tarball, layout.Bytes(), 0o644))

	cmd := command(t, "-listen", "127.0.0.1:0", "-log", tarball)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	stdout, err := cmd.StdoutPipe()
	must(err)
	must(cmd.Start())
	defer cmd.Process.Kill() // if a check fails before the SIGTERM
	var serving []string
	addr := ""
	sc := bufio.NewScanner(stdout)
	for addr == "" && sc.Scan() {
		if a, ok := strings.CutPrefix(sc.Text(), "listening on "); ok {
			addr = a
		} else {
			serving = append(serving, sc.Text())
		}
	}
	if addr == "" {
		cmd.Wait()
		t.Fatalf("no listening line; stderr: %s", stderr.String())
	}
	if want := "serving kforge.local/testbox:busybox\nserving registry.k8s.io/e2e-test-images/agnhost:2.66.1"; strings.Join(serving, "\n") != want {
		t.Errorf("output before the address:\n%s\nwant:\n%s", strings.Join(serving, "\n"), want)
	}
	if strings.HasSuffix(addr, ":0") {
		t.Errorf("listening on %s: not the bound port", addr)
	}

	path := "/v2/e2e-test-images/agnhost/manifests/2.66.1"
	resp, err := http.Get("http://" + addr + path + "?ns=registry.k8s.io")
	must(err)
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	must(err)
	sum := sha256.Sum256(body)
	if resp.StatusCode != 200 || resp.Header.Get("Docker-Content-Digest") != "sha256:"+hex.EncodeToString(sum[:]) {
		t.Errorf("GET %s: %d %v", path, resp.StatusCode, resp.Header)
	}

	must(cmd.Process.Signal(syscall.SIGTERM))
	io.Copy(io.Discard, stdout) // to the end, as Wait wants its pipe read first
	if err := cmd.Wait(); err != nil {
		t.Fatalf("after SIGTERM: %v; stderr: %s", err, stderr.String())
	}
	if want := " GET " + path + " ns=registry.k8s.io 200\n"; !strings.Contains(stderr.String(), want) {
		t.Errorf("the request log %q has no line with %q", stderr.String(), want)
	}
}

func TestBadLayoutExits1(t *testing.T) {
	missing := filepath.Join(t.TempDir(), "missing.tar")
	cmd := command(t, "-listen", "127.0.0.1:0", missing)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	err := cmd.Run()
	var exit *exec.ExitError
	if !errors.As(err, &exit) || exit.ExitCode() != 1 {
		t.Fatalf("err = %v, want exit status 1", err)
	}
	if !strings.HasPrefix(stderr.String(), "ociserve: ") || !strings.Contains(stderr.String(), missing) {
		t.Errorf("stderr: %q", stderr.String())
	}
}
