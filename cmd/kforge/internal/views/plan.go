package views

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"sync"
	"time"

	"github.com/kforge/kforge/provision/apply"
	"github.com/kforge/kforge/provision/plan"
)

// Plan shows plans and applies.
type Plan interface {
	Plan(p *plan.Plan) error
	Event(e apply.Event)
	Applied(s plan.Summary, took time.Duration) error
	// NodesReady says that every node turned Ready after the apply, and how long that took.
	NodesReady(nodes int, took time.Duration) error
	// AddonAvailable says that an add-on's replicas (of its kforge.io/addon name) are all available after the
	// apply, and how long that took.
	AddonAvailable(addon string, replicas int, took time.Duration) error
	Warn(host, msg string)
	// Note tells the operator something an apply did beyond the plan's changes, and what to do next.
	Note(msg string)
}

var (
	_ Plan = (*PlanHuman)(nil)
	_ Plan = (*PlanJSON)(nil)
)

// PlanHuman draws the plan as text, and apply's progress as one live line per host on a terminal (its current
// step and how long it has been at it) or one timestamped line per step elsewhere.
type PlanHuman struct {
	Out, Err io.Writer
	Term     Terminal

	mu    sync.Mutex
	board []string               // hosts in the order they first appeared
	lines map[string]apply.Event // each host's latest event
	since map[string]time.Time   // when each host's current step started
	drawn int                    // lines drawn last time, to move back over
}

func (v *PlanHuman) Plan(p *plan.Plan) error {
	_, err := io.WriteString(v.Out, plan.Text(p, v.Term.Color))
	return err
}

func (v *PlanHuman) Event(e apply.Event) {
	if v.Term.Live {
		v.live(printableEvent(e))
		return
	}
	e = printableEvent(e)
	switch e.Status {
	case "start":
		fmt.Fprintf(v.Out, "%s  %-12s %s %s %s …\n", e.Time.Format("15:04:05"), e.Host, e.Action, e.Kind, e.Name)
	case "failed":
		fmt.Fprintf(v.Out, "%s  %-12s %s %s %s FAILED: %s\n", e.Time.Format("15:04:05"), e.Host, e.Action, e.Kind, e.Name, e.Error)
	}
}

// printableEvent escapes what an event carries from a plan file or a host (names, a remote command's stderr in
// its error), so that only this view's own output acts on the terminal.
func printableEvent(e apply.Event) apply.Event {
	e.Host, e.Action, e.Kind, e.Name = plan.Printable(e.Host), plan.Printable(e.Action), plan.Printable(e.Kind), plan.Printable(e.Name)
	e.Error = plan.PrintableLines(e.Error)
	return e
}

// live redraws the board: one line per host, the current step and its elapsed time.
func (v *PlanHuman) live(e apply.Event) {
	v.mu.Lock()
	defer v.mu.Unlock()
	if v.lines == nil {
		v.lines, v.since = map[string]apply.Event{}, map[string]time.Time{}
	}
	if _, ok := v.lines[e.Host]; !ok {
		v.board = append(v.board, e.Host)
	}
	if e.Status == "start" {
		v.since[e.Host] = e.Time
	}
	v.lines[e.Host] = e
	var b strings.Builder
	if v.drawn > 0 {
		fmt.Fprintf(&b, "\x1b[%dA", v.drawn)
	}
	for _, h := range v.board {
		ev := v.lines[h]
		line := fmt.Sprintf("%-12s %s %s %s", h, ev.Action, ev.Kind, ev.Name)
		switch ev.Status {
		case "start":
			line += fmt.Sprintf(" … %.0fs", ev.Time.Sub(v.since[h]).Seconds())
		case "failed":
			line += " FAILED: " + ev.Error
		default:
			line += " ✓"
		}
		if v.Term.Width > 0 && len(line) > v.Term.Width {
			line = line[:v.Term.Width-1] + "…"
		}
		b.WriteString("\x1b[2K" + line + "\n")
	}
	v.drawn = len(v.board)
	io.WriteString(v.Out, b.String())
}

func (v *PlanHuman) Applied(s plan.Summary, took time.Duration) error {
	_, err := fmt.Fprintf(v.Out, "\nApply complete in %.1fs: %d added, %d changed, %d destroyed, %d restarted.\n",
		took.Seconds(), s.Add, s.Change, s.Destroy, s.Restart)
	return err
}

func (v *PlanHuman) NodesReady(nodes int, took time.Duration) error {
	_, err := fmt.Fprintf(v.Out, "All %d nodes are Ready (waited %.1fs).\n", nodes, took.Seconds())
	return err
}

// addonTitles are the add-ons' names in sentences.
var addonTitles = map[string]string{"dns": "Cluster DNS"}

func (v *PlanHuman) AddonAvailable(addon string, replicas int, took time.Duration) error {
	title := addonTitles[addon]
	if title == "" {
		title = "Add-on " + addon
	}
	_, err := fmt.Fprintf(v.Out, "%s is available: %d replicas (waited %.1fs).\n", title, replicas, took.Seconds())
	return err
}

func (v *PlanHuman) Warn(host, msg string) {
	fmt.Fprintf(v.Err, "Warning: host %s: %s\n", plan.Printable(host), plan.PrintableLines(msg))
}

func (v *PlanHuman) Note(msg string) { fmt.Fprintln(v.Out, msg) }

// PlanJSON prints the plan as one JSON document; for apply (Stream) everything, the plan included, is one JSON
// event per line, so that a CI job can read the output as it comes.
type PlanJSON struct {
	Out    io.Writer
	Stream bool
}

// EventsFormatVersion is the version of apply's and destroy's JSON event lines (each carries it as
// format_version); it changes when a reader would misread a new event.
const EventsFormatVersion = "1.0"

// emit writes one event line: its type, the format version, and its fields.
func (v *PlanJSON) emit(typ string, fields map[string]any) error {
	fields["type"], fields["format_version"] = typ, EventsFormatVersion
	b, err := json.Marshal(fields)
	if err != nil {
		return err
	}
	_, err = fmt.Fprintf(v.Out, "%s\n", b)
	return err
}

func (v *PlanJSON) Plan(p *plan.Plan) error {
	if v.Stream {
		return v.emit("plan", map[string]any{"plan": p})
	}
	b, err := plan.JSON(p)
	if err != nil {
		return err
	}
	_, err = v.Out.Write(b)
	return err
}

func (v *PlanJSON) Event(e apply.Event) {
	fields := map[string]any{"time": e.Time, "host": e.Host, "action": e.Action, "kind": e.Kind, "name": e.Name, "status": e.Status}
	if e.Error != "" {
		fields["error"] = e.Error
	}
	v.emit("progress", fields)
}

func (v *PlanJSON) Applied(s plan.Summary, took time.Duration) error {
	return v.emit("applied", map[string]any{"summary": s, "seconds": took.Seconds()})
}

func (v *PlanJSON) NodesReady(nodes int, took time.Duration) error {
	return v.emit("nodes_ready", map[string]any{"nodes": nodes, "seconds": took.Seconds()})
}

func (v *PlanJSON) AddonAvailable(addon string, replicas int, took time.Duration) error {
	return v.emit("addon_available", map[string]any{"addon": addon, "replicas": replicas, "seconds": took.Seconds()})
}

func (v *PlanJSON) Warn(host, msg string) {
	v.emit("warning", map[string]any{"host": host, "message": msg})
}

func (v *PlanJSON) Note(msg string) {
	v.emit("note", map[string]any{"message": msg})
}
