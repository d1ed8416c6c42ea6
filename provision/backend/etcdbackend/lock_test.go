package etcdbackend

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/kforge/kforge/provision/backend/etcdbackend/etcdtest"
	"github.com/kforge/kforge/provision/state"
)

// TestLock: a held lock stops another run at once (wait 0) naming the holder, stops it after its wait while
// still held, and is taken by a waiting run as soon as the holder releases it.
func TestLock(t *testing.T) {
	t.Parallel()
	srv := etcdtest.Start(t)
	const prefix = "/kforge/lock/"
	ctx := testContext(t)
	a, b := openBackend(t, config(srv, prefix)), openBackend(t, config(srv, prefix))

	held, err := a.Lock(ctx, "apply", 0)
	if err != nil {
		t.Fatal(err)
	}
	if held.Previous() != nil {
		t.Errorf("a first lock has a previous holder: %+v", held.Previous())
	}
	select {
	case <-held.(*Lock).Lost():
		t.Fatal("the lock is lost while held")
	default:
	}

	start := time.Now()
	_, err = b.Lock(ctx, "destroy", 0)
	var locked *state.LockedError
	if !errors.As(err, &locked) {
		t.Fatalf("B's lock while A holds it: %v", err)
	}
	t.Log(err)
	if locked.Holder.Operation != "apply" || locked.Holder.PID != os.Getpid() || locked.Waited != 0 ||
		!strings.Contains(err.Error(), fmt.Sprintf("kforge apply, PID %d", os.Getpid())) || !strings.Contains(err.Error(), prefix) {
		t.Errorf("B's lock: %+v: %v", locked, err)
	}
	if took := time.Since(start); took > time.Second {
		t.Errorf("a lock with no wait took %s", took)
	}

	start = time.Now()
	_, err = b.Lock(ctx, "destroy", time.Second)
	if !errors.As(err, &locked) {
		t.Fatalf("B's lock with a wait while A holds it: %v", err)
	}
	t.Log(err)
	if locked.Waited < time.Second || time.Since(start) > 3*time.Second || !strings.Contains(err.Error(), "after waiting 1s") {
		t.Errorf("B waited %s (%s by the clock): %v", locked.Waited, time.Since(start), err)
	}

	go func() {
		time.Sleep(time.Second)
		held.Release()
	}()
	start = time.Now()
	taken, err := b.Lock(ctx, "destroy", 3*time.Second)
	if err != nil {
		t.Fatalf("B's lock once A releases: %v", err)
	}
	if took := time.Since(start); took < 500*time.Millisecond || took > 3*time.Second {
		t.Errorf("B took the lock after %s; A released it after 1s", took)
	}
	if taken.Previous() != nil {
		t.Errorf("A released, yet B's lock names a previous holder: %+v", taken.Previous())
	}
	if h, err := a.Holder(ctx); err != nil || h.Operation != "destroy" {
		t.Errorf("holder: %+v, %v", h, err)
	}
	if err := taken.Release(); err != nil {
		t.Fatal(err)
	}
	if h, err := a.Holder(ctx); err != nil || h.PID != 0 {
		t.Errorf("holder after release: %+v, %v", h, err)
	}
	if keys := srv.Keys(t, prefix+"lock/"); len(keys) != 0 {
		t.Errorf("keys left after release: %q", keys)
	}
}

// holderEnv carries the configuration to the holder process of TestLockOfAKilledHolder.
const holderEnv = "KFORGE_ETCD_LOCK_HOLDER"

// TestLockOfAKilledHolder: a process holding the lock is killed; its lock ends with its lease, the next run
// takes it and learns which process did not finish.
func TestLockOfAKilledHolder(t *testing.T) {
	if conf := os.Getenv(holderEnv); conf != "" {
		var c Config
		if err := json.Unmarshal([]byte(conf), &c); err != nil {
			os.Exit(2)
		}
		b, err := Open(testContext(t), c)
		if err != nil {
			os.Exit(3)
		}
		if _, err := b.Lock(testContext(t), "apply", 0); err != nil {
			os.Exit(4)
		}
		os.Stdout.WriteString("locked\n")
		time.Sleep(time.Minute)
		return
	}
	t.Parallel()
	srv := etcdtest.Start(t)
	c := config(srv, "/kforge/killed/")
	c.LockTTL = 2 * time.Second
	conf, _ := json.Marshal(c)
	cmd := exec.Command(os.Args[0], "-test.run=^TestLockOfAKilledHolder$")
	cmd.Env = append(os.Environ(), holderEnv+"="+string(conf))
	out, _ := cmd.StdoutPipe()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { // for a test that fails before the kill; a second Kill and Wait do nothing
		cmd.Process.Kill()
		cmd.Wait()
	})
	buf := make([]byte, 7)
	if _, err := out.Read(buf); err != nil || string(buf) != "locked\n" {
		t.Fatalf("holder: %q %v", buf, err)
	}
	holder := cmd.Process.Pid
	ctx := testContext(t)
	b := openBackend(t, c)
	_, err := b.Lock(ctx, "apply", 0)
	var locked *state.LockedError
	if !errors.As(err, &locked) || locked.Holder.PID != holder {
		t.Errorf("the lock while the holder runs: %v", err)
	}

	cmd.Process.Kill()
	cmd.Wait()
	killed := time.Now()
	l, err := b.Lock(ctx, "apply", 10*time.Second)
	if err != nil {
		t.Fatalf("after the holder was killed: %v", err)
	}
	defer l.Release()
	t.Logf("taken %s after the kill", time.Since(killed))
	if prev := l.Previous(); prev == nil || prev.PID != holder || prev.Operation != "apply" {
		t.Errorf("previous holder: %+v, want PID %d", prev, holder)
	}
}

// TestForceUnlock: force-unlock removes a held lock and says whose it was; the next run takes the lock, and
// the forced holder's late release leaves the new holder's record alone.
func TestForceUnlock(t *testing.T) {
	t.Parallel()
	srv := etcdtest.Start(t)
	const prefix = "/kforge/force/"
	ctx := testContext(t)
	a, b := openBackend(t, config(srv, prefix)), openBackend(t, config(srv, prefix))

	if _, err := b.ForceUnlock(ctx); err == nil || !strings.Contains(err.Error(), "there is no lock in") {
		t.Errorf("force-unlock without a lock: %v", err)
	}
	stuck, err := a.Lock(ctx, "apply", 0)
	if err != nil {
		t.Fatal(err)
	}
	info, err := b.ForceUnlock(ctx)
	if err != nil || info.PID != os.Getpid() || info.Operation != "apply" {
		t.Fatalf("force-unlock: %+v, %v", info, err)
	}
	next, err := b.Lock(ctx, "destroy", 0)
	if err != nil {
		t.Fatalf("lock after force-unlock: %v", err)
	}
	stuck.Release()
	if h, err := b.Holder(ctx); err != nil || h.Operation != "destroy" {
		t.Errorf("the holder after the forced one released: %+v, %v", h, err)
	}
	if err := next.Release(); err != nil {
		t.Fatal(err)
	}
}

// TestPrefixesApart: two prefixes on one etcd share nothing: state, lock or files.
func TestPrefixesApart(t *testing.T) {
	t.Parallel()
	srv := etcdtest.Start(t)
	ctx := testContext(t)
	prod, staging := openBackend(t, config(srv, "/kforge/prod/")), openBackend(t, config(srv, "/kforge/staging/"))

	s, _ := prod.LoadState(ctx)
	if err := prod.SaveState(ctx, s); err != nil {
		t.Fatal(err)
	}
	l, err := prod.Lock(ctx, "apply", 0)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Release()
	dir, _ := prod.Files(ctx)
	if err := os.WriteFile(dir+"/known_hosts", []byte("prod"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := prod.Sync(ctx); err != nil {
		t.Fatal(err)
	}

	if other, err := staging.LoadState(ctx); err != nil || other.Lineage != "" || other.Serial != 0 {
		t.Errorf("staging's state: %+v, %v", other, err)
	}
	if h, err := staging.Holder(ctx); err != nil || h.PID != 0 {
		t.Errorf("staging's holder: %+v, %v", h, err)
	}
	sl, err := staging.Lock(ctx, "apply", 0)
	if err != nil {
		t.Fatalf("staging's lock while prod's is held: %v", err)
	}
	sl.Release()
	sdir, err := staging.Files(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if entries, _ := os.ReadDir(sdir); len(entries) != 0 {
		t.Errorf("staging's files: %v", entries)
	}
	if _, err := staging.ForceUnlock(ctx); err == nil {
		t.Error("staging's force-unlock found a lock")
	}
	if h, _ := prod.Holder(ctx); h.PID != os.Getpid() {
		t.Errorf("prod's holder: %+v", h)
	}
}
