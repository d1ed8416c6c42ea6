package views

import (
	"fmt"
	"io"
	"strings"
)

// LabHost is one host in a lab report.
type LabHost struct {
	Name    string `json:"name"`
	Address string `json:"address"`
	PID     int    `json:"pid"`
	// State is systemd's state in the host (running, degraded, …) or "stopped".
	State string `json:"state"`
}

// LabReport describes a lab after up or for status.
type LabReport struct {
	Name   string `json:"name"`
	Bridge string `json:"bridge"`
	Subnet string `json:"subnet"`
	// MachineAddress is this machine's address on the bridge, where lab hosts reach services run here.
	MachineAddress string    `json:"machine_address"`
	Hosts          []LabHost `json:"hosts"`
	KeyFile        string    `json:"key_file"`
	KnownHostsFile string    `json:"known_hosts_file"`
	HostsFile      string    `json:"hosts_file"`
	// MachineChanges lists the machine settings this command changed (or restored).
	MachineChanges []string `json:"machine_changes"`
	ImageBuilt     bool     `json:"image_built,omitempty"`
	Seconds        float64  `json:"seconds,omitempty"`
}

// LabDown describes what lab down removed.
type LabDown struct {
	Name           string   `json:"name"`
	Hosts          []string `json:"hosts"`
	MachineChanges []string `json:"machine_changes"`
}

// Lab shows the lab commands' results.
type Lab interface {
	Progress(msg string)
	Up(LabReport) error
	Status(LabReport) error
	Down(LabDown) error
}

var (
	_ Lab = (*LabHuman)(nil)
	_ Lab = (*LabJSON)(nil)
)

// LabHuman prints progress to Err and results to Out.
type LabHuman struct {
	Out, Err io.Writer
}

func (v *LabHuman) Progress(msg string) { fmt.Fprintf(v.Err, "… %s\n", msg) }

func (v *LabHuman) Up(r LabReport) error {
	var b strings.Builder
	if len(r.MachineChanges) > 0 {
		b.WriteString("Changed on this machine for the kubelet (kforge lab down on the last lab restores them):\n")
		for _, c := range r.MachineChanges {
			fmt.Fprintf(&b, "  %s\n", c)
		}
		b.WriteString("\n")
	}
	fmt.Fprintf(&b, "Lab %q is up in %.1fs: %s on %s (%s)\n", r.Name, r.Seconds, plural(len(r.Hosts), "host"), r.Bridge, r.Subnet)
	writeLabHosts(&b, r)
	_, err := io.WriteString(v.Out, b.String())
	return err
}

func (v *LabHuman) Status(r LabReport) error {
	var b strings.Builder
	fmt.Fprintf(&b, "Lab %q: %s on %s (%s)\n", r.Name, plural(len(r.Hosts), "host"), r.Bridge, r.Subnet)
	writeLabHosts(&b, r)
	_, err := io.WriteString(v.Out, b.String())
	return err
}

func writeLabHosts(b *strings.Builder, r LabReport) {
	for _, h := range r.Hosts {
		fmt.Fprintf(b, "  %-12s %-16s %s\n", h.Name, h.Address, h.State)
	}
	if len(r.Hosts) > 0 {
		fmt.Fprintf(b, "\nssh:  ssh -i %s -o UserKnownHostsFile=%s root@%s\n", r.KeyFile, r.KnownHostsFile, r.Hosts[0].Address)
	}
	fmt.Fprintf(b, "use:  provider \"lab\" { name = %q }   (or the host blocks in %s)\n", r.Name, r.HostsFile)
}

func (v *LabHuman) Down(r LabDown) error {
	var b strings.Builder
	if len(r.Hosts) == 0 {
		fmt.Fprintf(&b, "Lab %q: nothing to take down.\n", r.Name)
	} else {
		fmt.Fprintf(&b, "Lab %q is down: %s stopped, bridge, cgroups, mounts and files removed.\n", r.Name, plural(len(r.Hosts), "host"))
	}
	if len(r.MachineChanges) > 0 {
		b.WriteString("Restored on this machine:\n")
		for _, c := range r.MachineChanges {
			fmt.Fprintf(&b, "  %s\n", c)
		}
	}
	_, err := io.WriteString(v.Out, b.String())
	return err
}

// LabJSON prints one JSON document per command; progress is not part of it.
type LabJSON struct{ Out io.Writer }

func (v *LabJSON) Progress(string)          {}
func (v *LabJSON) Up(r LabReport) error     { return writeJSON(v.Out, r) }
func (v *LabJSON) Status(r LabReport) error { return writeJSON(v.Out, r) }
func (v *LabJSON) Down(r LabDown) error     { return writeJSON(v.Out, r) }
