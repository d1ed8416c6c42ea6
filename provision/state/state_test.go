package state

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/kforge/kforge/provision/plan"
)

func TestStateRoundTripAndSerial(t *testing.T) {
	dir := filepath.Join(t.TempDir(), ".kforge")
	s, err := Load(dir)
	if err != nil || s.Serial != 0 || s.Lineage != "" {
		t.Fatalf("%+v %v", s, err)
	}
	s.Record("cp-1", plan.Managed{ID: "file:/etc/kubernetes/a", Kind: "file", Name: "/etc/kubernetes/a"})
	s.Record("cp-1", plan.Managed{ID: "unit:kforge-x.service", Kind: "unit", Name: "kforge-x.service"})
	s.Record("cp-1", plan.Managed{ID: "file:/etc/kubernetes/a", Kind: "file", Name: "/etc/kubernetes/a"})
	if err := s.Save(dir); err != nil {
		t.Fatal(err)
	}
	back, err := Load(dir)
	if err != nil || back.Serial != 1 || len(back.Lineage) != 32 || back.Lineage != s.Lineage || len(back.Hosts["cp-1"]) != 2 {
		t.Fatalf("%+v %v", back, err)
	}
	back.Forget("cp-1", "file:/etc/kubernetes/a")
	back.Forget("cp-1", "unit:kforge-x.service")
	if _, ok := back.Hosts["cp-1"]; ok {
		t.Error("an emptied host stays in the state")
	}
	if st, _ := os.Stat(filepath.Join(dir, "state.json")); st.Mode().Perm() != 0o600 {
		t.Errorf("mode %v", st.Mode())
	}
}

func TestLock(t *testing.T) {
	dir := t.TempDir()
	l, err := Acquire(dir, "apply")
	if err != nil || l.Previous != nil {
		t.Fatalf("%v %v", l, err)
	}
	_, err = Acquire(dir, "plan")
	var locked *LockedError
	if !errors.As(err, &locked) || locked.Holder.PID != os.Getpid() || locked.Holder.Operation != "apply" ||
		!strings.Contains(err.Error(), "force-unlock") {
		t.Fatalf("second acquire: %v", err)
	}
	if err := l.Release(); err != nil {
		t.Fatal(err)
	}
	l2, err := Acquire(dir, "plan")
	if err != nil || l2.Previous != nil {
		t.Fatalf("after release: %v %v", l2, err)
	}
	l2.Release()
}

// TestLockOfAKilledHolder: a process holding the lock is killed; the lock is free again, and the next holder
// learns who did not finish.
func TestLockOfAKilledHolder(t *testing.T) {
	if os.Getenv("KFORGE_LOCK_HOLDER") != "" {
		if _, err := Acquire(os.Getenv("KFORGE_LOCK_HOLDER"), "apply"); err != nil {
			os.Exit(3)
		}
		os.Stdout.WriteString("locked\n")
		time.Sleep(time.Minute)
		return
	}
	dir := t.TempDir()
	cmd := exec.Command(os.Args[0], "-test.run=^TestLockOfAKilledHolder$")
	cmd.Env = append(os.Environ(), "KFORGE_LOCK_HOLDER="+dir)
	out, _ := cmd.StdoutPipe()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 7)
	if _, err := out.Read(buf); err != nil || string(buf) != "locked\n" {
		t.Fatalf("holder: %q %v", buf, err)
	}
	if _, err := Acquire(dir, "apply"); err == nil {
		t.Fatal("the lock was not held")
	}
	holderPID := cmd.Process.Pid
	cmd.Process.Kill()
	cmd.Wait()
	l, err := Acquire(dir, "apply")
	if err != nil {
		t.Fatalf("after the holder died: %v", err)
	}
	defer l.Release()
	if l.Previous == nil || l.Previous.PID != holderPID || l.Previous.Operation != "apply" {
		t.Errorf("previous holder: %+v", l.Previous)
	}
}

func TestForceUnlock(t *testing.T) {
	dir := t.TempDir()
	if _, err := ForceUnlock(dir); err == nil {
		t.Error("force-unlock without a lock succeeded")
	}
	l, _ := Acquire(dir, "apply")
	info, err := ForceUnlock(dir)
	if err != nil || info.PID != os.Getpid() {
		t.Errorf("%+v %v", info, err)
	}
	l.Release()
}
