// Package labtest gives a test package one lab, brought up on first use and always taken down: call Main from
// TestMain and Get from the tests that need hosts. Without root or systemd-nspawn those tests skip, saying why.
package labtest

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/kforge/kforge/providers/lab"
)

// Fixture is one package's lab. Names must differ between packages, whose tests run at the same time.
type Fixture struct {
	Name  string
	Hosts int

	manager *lab.Manager
	once    sync.Once
	lab     *lab.Lab
	skip    string
	err     error
}

// New describes the package's lab; nothing happens until the first Get.
func New(name string, hosts int) *Fixture {
	return &Fixture{Name: name, Hosts: hosts, manager: &lab.Manager{Paths: lab.DefaultPaths()}}
}

// Manager is the lab manager the fixture uses, for tests of the lab itself.
func (f *Fixture) Manager() *lab.Manager { return f.manager }

// Get returns the lab, bringing it up the first time; it skips the test when this machine cannot have labs.
func (f *Fixture) Get(t testing.TB) *lab.Lab {
	t.Helper()
	f.once.Do(func() {
		if err := lab.Preflight(); err != nil {
			f.skip = "no lab hosts on this machine: " + err.Error()
			return
		}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
		defer cancel()
		// A run of this package that was killed outright left its lab running: it is this fixture's to remove.
		if _, err := f.manager.Down(ctx, f.Name); err != nil {
			f.err = fmt.Errorf("removing what a killed run left: %w", err)
			return
		}
		res, err := f.manager.Up(ctx, lab.UpOptions{Name: f.Name, Hosts: f.Hosts})
		if err != nil {
			f.err = err
			return
		}
		f.lab = res.Lab
	})
	switch {
	case f.skip != "":
		t.Skip(f.skip)
	case f.err != nil:
		t.Fatalf("lab %s: %v", f.Name, f.err)
	}
	return f.lab
}

// Reboot reboots hosts of the fixture's lab (all without names) and keeps the lab Get returned up to date.
func (f *Fixture) Reboot(t testing.TB, hosts ...string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	if err := f.manager.Reboot(ctx, f.Name, hosts...); err != nil {
		t.Fatalf("reboot %v: %v", hosts, err)
	}
	fresh, err := f.manager.Load(f.Name)
	if err != nil {
		t.Fatal(err)
	}
	for i := range f.lab.Hosts {
		f.lab.Hosts[i].PID = fresh.Hosts[i].PID
	}
}

// Main runs the package's tests and then takes the lab down, also when the run is interrupted (SIGINT,
// SIGTERM). A run that was killed outright leaves its lab behind; the next run's Get removes it first.
func (f *Fixture) Main(m *testing.M) int {
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM)
	go func() {
		s := <-sigs
		fmt.Fprintf(os.Stderr, "labtest: %v: taking lab %s down\n", s, f.Name)
		f.down()
		os.Exit(1)
	}()
	code := m.Run()
	if err := f.down(); err != nil {
		fmt.Fprintf(os.Stderr, "labtest: taking lab %s down: %v\n", f.Name, err)
		if code == 0 {
			code = 1
		}
	}
	return code
}

func (f *Fixture) down() error {
	if f.lab == nil && f.err == nil {
		return nil // never brought up
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	_, err := f.manager.Down(ctx, f.Name)
	return err
}

// Leftovers lists what of lab l is still on the machine: processes, veths, the bridge, cgroups, mounts and
// its directory. Empty after a complete lab down.
func Leftovers(l *lab.Lab) []string {
	var left []string
	for _, h := range l.Hosts {
		if out, _ := exec.Command("pgrep", "-f", "-M "+h.Name+" ").Output(); len(out) > 0 {
			left = append(left, "process: "+strings.TrimSpace(string(out)))
		}
		if _, err := os.Stat("/sys/class/net/vb-" + h.Name); err == nil {
			left = append(left, "link vb-"+h.Name)
		}
	}
	if _, err := os.Stat("/sys/class/net/" + l.Bridge); err == nil {
		left = append(left, "bridge "+l.Bridge)
	}
	out, _ := exec.Command("find", "/sys/fs/cgroup", "-type", "d", "-path", "*/kforge-lab/"+l.Name+"*").Output()
	if s := strings.TrimSpace(string(out)); s != "" {
		left = append(left, "cgroups: "+s)
	}
	if mounts, _ := os.ReadFile("/proc/self/mountinfo"); strings.Contains(string(mounts), l.Dir) {
		left = append(left, "mount under "+l.Dir)
	}
	if _, err := os.Stat(l.Dir); err == nil {
		left = append(left, "directory "+l.Dir)
	}
	return left
}
