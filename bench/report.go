// Package bench measures how kforge's cost grows with the number of hosts, side by side with Ansible on the same
// hosts, and renders the figures as a table; `make bench` runs it and keeps each run in bench/results/.
package bench

import (
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"time"
)

// Row is one measured figure: kforge's time and, where there is one, the same work done by another tool.
type Row struct {
	Section string // what is measured: "plan", "push 20 files", …
	Case    string // the variant: "10 hosts", "no-op re-run", …
	Kforge  time.Duration
	Other   time.Duration // 0: no comparison
	// Notes are further figures: round trips per host, peak RSS, hosts touched.
	Notes string
	// Target is the goal the issue sets, and Met whether this run reached it ("" and nil without one).
	Target string
	Met    *bool
}

// Ratio is kforge's time over the other tool's, or 0 without a comparison.
func (r Row) Ratio() float64 {
	if r.Other <= 0 {
		return 0
	}
	return r.Kforge.Seconds() / r.Other.Seconds()
}

// Machine describes where a run happened: figures from a shared, noisy machine mean little without it.
type Machine struct {
	Date   string
	CPU    string
	Cores  int
	Memory string
	Kernel string
	Go     string
	Tools  string // versions of what kforge is compared with
}

// Render draws the rows as a Markdown table under a description of the machine.
func Render(m Machine, other string, rows []Row) string {
	var b strings.Builder
	fmt.Fprintf(&b, "## kforge benchmarks, %s\n\n", m.Date)
	fmt.Fprintf(&b, "Machine: %s, %d cores, %s memory, Linux %s, %s; %s.\n", m.CPU, m.Cores, m.Memory, m.Kernel, m.Go, m.Tools)
	b.WriteString("The machine is shared and noisy: compare ratios, not absolute times.\n\n")
	fmt.Fprintf(&b, "| measure | case | kforge | %s | kforge / %s | notes | target |\n", other, other)
	b.WriteString("| --- | --- | ---: | ---: | ---: | --- | --- |\n")
	for _, r := range rows {
		otherTime, ratio := "", ""
		if r.Other > 0 {
			otherTime, ratio = seconds(r.Other), fmt.Sprintf("%.2f", r.Ratio())
		}
		target := r.Target
		if r.Met != nil {
			if *r.Met {
				target += " (met)"
			} else {
				target += " (missed)"
			}
		}
		fmt.Fprintf(&b, "| %s | %s | %s | %s | %s | %s | %s |\n", r.Section, r.Case, seconds(r.Kforge), otherTime, ratio, r.Notes, target)
	}
	return b.String()
}

func seconds(d time.Duration) string {
	if d < 10*time.Second {
		return fmt.Sprintf("%.2f s", d.Seconds())
	}
	return fmt.Sprintf("%.1f s", d.Seconds())
}

// Met is a helper for Row.Met.
func Met(ok bool) *bool { return &ok }

// DescribeMachine reads the machine's description from /proc and the tools' versions from themselves.
func DescribeMachine(now time.Time, tools string) Machine {
	m := Machine{Date: now.UTC().Format("2006-01-02 15:04 UTC"), Cores: runtime.NumCPU(), Go: runtime.Version(), Tools: tools,
		CPU: "unknown CPU", Memory: "unknown", Kernel: "unknown"}
	if data, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, line := range strings.Split(string(data), "\n") {
			if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == "model name" {
				m.CPU = strings.TrimSpace(v)
				break
			}
		}
	}
	if data, err := os.ReadFile("/proc/meminfo"); err == nil {
		var kib int64
		if _, err := fmt.Sscanf(string(data), "MemTotal: %d kB", &kib); err == nil {
			m.Memory = fmt.Sprintf("%.0f GiB", float64(kib)/(1<<20))
		}
	}
	if out, err := exec.Command("uname", "-r").Output(); err == nil {
		m.Kernel = strings.TrimSpace(string(out))
	}
	return m
}
