package lab

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"sync"
	"time"
)

// Reboot shuts lab hosts down cleanly and boots them again, as a machine reboots: what is on their root file
// systems (all kforge installed) stays, what lived in memory does not. No hosts named means all of them. The hosts
// go down together and come up together, then each answers SSH again.
func (m *Manager) Reboot(ctx context.Context, name string, hosts ...string) error {
	l, err := m.Load(name)
	if err != nil {
		return err
	}
	var picked []int
	for i, h := range l.Hosts {
		if len(hosts) == 0 || slices.Contains(hosts, h.Name) {
			picked = append(picked, i)
		}
	}
	for _, h := range hosts {
		if !slices.ContainsFunc(l.Hosts, func(x Host) bool { return x.Name == h }) {
			return fmt.Errorf("lab %s has no host %s", name, h)
		}
	}
	m.progress("shutting down %d hosts", len(picked))
	errs := make([]error, len(l.Hosts))
	var wg sync.WaitGroup
	for _, i := range picked {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = stopHost(name, l.Hosts[i].Name, l.Hosts[i].PID)
		}()
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return err
	}
	m.progress("booting %d hosts", len(picked))
	for _, i := range picked {
		pid, err := boot(l, l.Hosts[i].Name, filepath.Join(m.dir(name), "hosts", l.Hosts[i].Name))
		if err != nil {
			return err
		}
		l.Hosts[i].PID = pid
		if err := m.save(l); err != nil {
			return err
		}
	}
	for _, i := range picked {
		h := l.Hosts[i]
		if err := waitSSH(ctx, h, filepath.Join(l.Dir, "logs", h.Name+".log"), 60*time.Second); err != nil {
			return err
		}
	}
	return nil
}
