package main

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/kforge/kforge/cmd/kforge/internal/views"
	"github.com/kforge/kforge/providers/lab"
	"github.com/kforge/kforge/provision/remote"
	"github.com/kforge/kforge/provision/ssh"
)

func (a *app) labCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "lab",
		Short: "Local lab hosts: real systemd machines (systemd-nspawn) on this computer, to bootstrap for real",
		Long: `A lab is a set of hosts made with systemd-nspawn on a bridge of their own (198.18.100.0/24 to
198.18.199.0/24): each has systemd as PID 1, sshd, its own address, machine-id, SSH host keys and cgroups. Needs
root and systemd-nspawn (apt-get install systemd-container). Use one in a configuration with
provider "lab" { name = "NAME" }.`,
	}
	var name string
	cmd.PersistentFlags().StringVar(&name, "name", "dev", "lab name (1-8 lower-case letters and digits)")
	var hosts int
	var subnet string
	up := &cobra.Command{
		Use:   "up",
		Short: "Build the image if needed, boot the hosts and wait until systemd runs in each",
		Args:  cobra.NoArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			return a.labUp(c.Context(), name, hosts, subnet)
		},
	}
	up.Flags().IntVar(&hosts, "hosts", 3, "number of hosts")
	up.Flags().StringVar(&subnet, "subnet", "", "the lab's /24 (default: a free one in 198.18.100.0-198.18.199.255)")
	status := &cobra.Command{
		Use:   "status",
		Short: "Show a lab's hosts and whether they run",
		Args:  cobra.NoArgs,
		RunE:  func(c *cobra.Command, _ []string) error { return a.labStatus(c.Context(), name) },
	}
	down := &cobra.Command{
		Use:   "down",
		Short: "Stop the hosts and remove everything the lab made (processes, cgroups, links, mounts, files)",
		Args:  cobra.NoArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			m := a.labManager(nil)
			res, err := m.Down(c.Context(), name)
			if err != nil {
				return err
			}
			return a.labView().Down(views.LabDown{Name: name, Hosts: res.Hosts, MachineChanges: changeStrings(res.Sysctls)})
		},
	}
	reboot := &cobra.Command{
		Use:   "reboot [HOST...]",
		Short: "Shut hosts down cleanly and boot them again (all without names), as machines reboot; then show the lab",
		RunE: func(c *cobra.Command, hosts []string) error {
			view := a.labView()
			if err := a.labManager(view.Progress).Reboot(c.Context(), name, hosts...); err != nil {
				return err
			}
			l, err := a.labManager(nil).Load(name)
			if err != nil {
				return err
			}
			view.Progress("waiting for systemd in every host (over SSH, host keys checked)")
			report, err := a.labReport(c.Context(), l, true)
			if err != nil {
				return err
			}
			return view.Status(report)
		},
	}
	cmd.AddCommand(up, status, reboot, down)
	return cmd
}

func (a *app) labView() views.Lab {
	if a.json {
		return &views.LabJSON{Out: a.stdout}
	}
	return &views.LabHuman{Out: a.stdout, Err: a.stderr}
}

func (a *app) labManager(progress func(string)) *lab.Manager {
	return &lab.Manager{Paths: lab.DefaultPaths(), Progress: progress}
}

func (a *app) labUp(ctx context.Context, name string, hosts int, subnet string) error {
	view := a.labView()
	var want netip.Prefix
	if subnet != "" {
		p, err := netip.ParsePrefix(subnet)
		if err != nil || p.Bits() != 24 || !p.Addr().Is4() || p != p.Masked() {
			return fmt.Errorf("--subnet %q: give an IPv4 /24 such as 198.18.120.0/24", subnet)
		}
		want = p
	}
	start := time.Now()
	res, err := a.labManager(view.Progress).Up(ctx, lab.UpOptions{Name: name, Hosts: hosts, Subnet: want})
	if err != nil {
		return err
	}
	view.Progress("waiting for systemd in every host (over SSH, host keys checked)")
	report, err := a.labReport(ctx, res.Lab, true)
	if err != nil {
		return err
	}
	report.MachineChanges, report.ImageBuilt = changeStrings(res.Sysctls), res.ImageBuilt
	report.Seconds = time.Since(start).Seconds()
	return view.Up(report)
}

func (a *app) labStatus(ctx context.Context, name string) error {
	m := a.labManager(nil)
	l, _, err := m.Status(name)
	if errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("there is no lab %q on this machine (kforge lab up --name %s makes one)", name, name)
	}
	if err != nil {
		return err
	}
	report, err := a.labReport(ctx, l, false)
	if err != nil {
		return err
	}
	return a.labView().Status(report)
}

// labReport asks each host's systemd for its state over SSH, the way kforge will reach the hosts later; wait
// makes it wait until boot has finished.
func (a *app) labReport(ctx context.Context, l *lab.Lab, wait bool) (views.LabReport, error) {
	r := views.LabReport{Name: l.Name, Bridge: l.Bridge, Subnet: l.Subnet.String(),
		MachineAddress: l.MachineAddress().String(), KeyFile: l.KeyFile,
		KnownHostsFile: l.KnownHostsFile, HostsFile: l.HostsFile}
	m := a.labManager(nil)
	_, statuses, err := m.Status(l.Name)
	if err != nil {
		return r, err
	}
	r.Hosts = make([]views.LabHost, len(statuses))
	d := &ssh.Dialer{ConnectAttempts: 3}
	script := "systemctl is-system-running"
	if wait {
		script += " --wait"
	}
	err = remote.ForEach(ctx, statuses, 10, func(h lab.HostStatus) string { return h.Name }, "systemd state",
		func(ctx context.Context, h lab.HostStatus) error {
			i := indexOfHost(statuses, h.Name)
			r.Hosts[i] = views.LabHost{Name: h.Name, Address: h.Address.String(), PID: h.PID, State: "stopped"}
			if !h.Running {
				return nil
			}
			c, err := d.Dial(ctx, ssh.TargetFor(l.ConfigHost(h.Host)))
			if err != nil {
				return err
			}
			defer c.Close()
			// is-system-running exits non-zero for any state but running; the state is what matters here.
			res, err := c.Run(ctx, remote.Command{Name: "systemctl is-system-running", Script: script, Timeout: 60 * time.Second})
			var exit *remote.ExitError
			if err != nil && !errors.As(err, &exit) {
				return err
			}
			r.Hosts[i].State = strings.TrimSpace(string(res.Stdout))
			return nil
		})
	return r, err
}

func indexOfHost(hs []lab.HostStatus, name string) int {
	for i, h := range hs {
		if h.Name == name {
			return i
		}
	}
	return -1
}

func changeStrings(cs []lab.Change) []string {
	out := []string{}
	for _, c := range cs {
		out = append(out, c.String())
	}
	return out
}
