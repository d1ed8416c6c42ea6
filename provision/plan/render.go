package plan

import (
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/kforge/kforge/internal/bytesize"
	"github.com/kforge/kforge/internal/jsonerr"
)

// NoChanges is what a plan that changes nothing says.
const NoChanges = "No changes. Every host matches the configuration."

var symbols = map[Action]string{Create: "+", Update: "~", Delete: "-", Replace: "-/+", Restart: "↻"}

var colors = map[Action]string{Create: "\x1b[32m", Update: "\x1b[33m", Delete: "\x1b[31m", Replace: "\x1b[35m", Restart: "\x1b[36m"}

// Text renders the plan for people: per host, one line per change with why, content diffs indented under it,
// and a summary line. It is a pure function of the plan. Every string taken from the plan goes through
// printable, so that only the renderer's own newlines and colours reach the terminal as controls.
func Text(p *Plan, color bool) string {
	if p.Empty() {
		return NoChanges + "\n" + warnings(p)
	}
	paint := func(a Action, s string) string {
		if !color {
			return s
		}
		return colors[a] + s + "\x1b[0m"
	}
	var b strings.Builder
	b.WriteString("kforge will make these changes (+ create, ~ update, - delete, -/+ replace, ↻ restart):\n")
	for _, h := range p.Hosts {
		if len(h.Changes) == 0 {
			continue
		}
		fmt.Fprintf(&b, "\nhost %s\n", printable(h.Host))
		for _, c := range h.Changes {
			line := fmt.Sprintf("  %-3s %s %s", symbols[c.Action], printable(c.Kind), printable(c.Name))
			if detail := describe(c); detail != "" {
				line += "  (" + printable(detail) + ")"
			}
			b.WriteString(paint(c.Action, line) + "\n")
			if c.Diff != "" {
				// The diff's newlines are its structure: each line is shown on a line of its own, indented.
				for _, l := range strings.Split(strings.TrimSuffix(c.Diff, "\n"), "\n") {
					b.WriteString("        " + printableDiffLine(l) + "\n")
				}
			}
		}
	}
	s := p.Summary()
	fmt.Fprintf(&b, "\nPlan: %d to add, %d to change, %d to destroy, %d to restart.\n", s.Add, s.Change, s.Destroy, s.Restart)
	return b.String() + rollout(p) + warnings(p)
}

// rollout shows the order of a rolling apply: which hosts go in turn, and which are drained first.
func rollout(p *Plan) string {
	if !Rolling(p.Rollout) {
		return ""
	}
	var b strings.Builder
	b.WriteString("\nOrder of apply:\n")
	for i, st := range p.Rollout {
		pace := ", together"
		switch {
		case len(st.Hosts) == 1:
			pace = ""
		case st.AtATime == 1:
			pace = ", one at a time"
		case st.AtATime < len(st.Hosts):
			pace = fmt.Sprintf(", %d at a time", st.AtATime)
		}
		fmt.Fprintf(&b, "  %d. %s%s: %s\n", i+1, printable(st.Name), pace, printable(strings.Join(st.Hosts, ", ")))
		if len(st.Drain) > 0 {
			fmt.Fprintf(&b, "     drained first, uncordoned once Ready: %s\n", printable(strings.Join(st.Drain, ", ")))
		}
	}
	return b.String()
}

// warnings are the plan's warnings, a line each after a blank one.
func warnings(p *Plan) string {
	if len(p.Warnings) == 0 {
		return ""
	}
	var b strings.Builder
	b.WriteString("\n")
	for _, w := range p.Warnings {
		b.WriteString("Warning: " + printable(w) + "\n")
	}
	return b.String()
}

// describe is the parenthesis after a change: the reasons, or for a new resource what it will be.
func describe(c Change) string {
	if c.Action == Create && c.After != nil {
		a := c.After
		var parts []string
		if a.Version != "" {
			parts = append(parts, a.Version)
		}
		if a.Mode != "" {
			parts = append(parts, a.Mode+" "+a.Owner)
		}
		if a.Size > 0 {
			parts = append(parts, bytesize.String(a.Size))
		}
		switch {
		case a.Pending:
			parts = append(parts, strings.Join(c.Reasons, ", "))
		case a.Secret:
			parts = append(parts, "secret, sha256 "+short(a.SHA256))
		case a.SHA256 != "":
			parts = append(parts, "sha256 "+short(a.SHA256))
		}
		if a.Target != "" {
			parts = append(parts, "-> "+a.Target)
		}
		if a.Value != "" {
			parts = append(parts, "= "+a.Value)
		}
		if a.Enabled != nil && *a.Enabled {
			parts = append(parts, "enabled")
		}
		if a.Active != nil && *a.Active {
			parts = append(parts, "running")
		}
		return strings.Join(parts, ", ")
	}
	return strings.Join(c.Reasons, ", ")
}

// JSON renders the plan as the JSON document kforge plan --json prints and plan -out saves.
func JSON(p *Plan) ([]byte, error) {
	out, err := json.MarshalIndent(p, "", "  ")
	if err != nil {
		return nil, err
	}
	return append(out, '\n'), nil
}

// Read parses a saved plan, refusing a format this kforge does not know and values no kforge writes, so that
// a damaged or crafted file is reported rather than shown or applied.
func Read(data []byte) (*Plan, error) {
	var p Plan
	if err := json.Unmarshal(data, &p); err != nil {
		return nil, fmt.Errorf("not a kforge plan: %w", jsonerr.Explain(data, err))
	}
	if err := checkFormat(p.FormatVersion); err != nil {
		return nil, err
	}
	if err := p.check(); err != nil {
		return nil, fmt.Errorf("not a plan kforge made: %w", err)
	}
	return &p, nil
}

// checkFormat accepts FormatVersion only: any other reads differently, and a newer one is worth saying so.
func checkFormat(v string) error {
	switch {
	case v == FormatVersion:
		return nil
	case v == "":
		return errors.New("not a kforge plan: it has no format_version")
	case newer(v, FormatVersion):
		return fmt.Errorf("plan format %q is newer than this kforge reads (%q): show or apply it with the kforge that made it", v, FormatVersion)
	}
	return fmt.Errorf("plan format %q; this kforge reads %q", v, FormatVersion)
}

// newer reports whether format version a (MAJOR.MINOR) comes after b; false when either is not one.
func newer(a, b string) bool {
	am, an, ok1 := majorMinor(a)
	bm, bn, ok2 := majorMinor(b)
	return ok1 && ok2 && (am > bm || am == bm && an > bn)
}

func majorMinor(v string) (major, minor int, ok bool) {
	ma, mi, found := strings.Cut(v, ".")
	major, err1 := strconv.Atoi(ma)
	minor, err2 := strconv.Atoi(mi)
	return major, minor, found && err1 == nil && err2 == nil && major >= 0 && minor >= 0
}

// check refuses what a plan kforge made never holds: unknown actions, negative sizes and counts, hosts
// without names. Its errors quote the plan's strings through printable: they reach the terminal too.
func (p *Plan) check() error {
	if p.State.Serial < 0 {
		return fmt.Errorf("state serial %d is negative", p.State.Serial)
	}
	for i, h := range p.Hosts {
		if h.Host == "" {
			return fmt.Errorf("host %d of the plan has no name", i+1)
		}
		for j, c := range h.Changes {
			where := printable(fmt.Sprintf("host %s, change %d (%s %s)", h.Host, j+1, c.Kind, c.Name))
			switch c.Action {
			case Create, Update, Delete, Replace, Restart, NoOp:
			default:
				return fmt.Errorf("%s: unknown action %q", where, c.Action)
			}
			for _, a := range []*Attributes{c.Before, c.After} {
				if a != nil && a.Size < 0 {
					return fmt.Errorf("%s: negative size %d", where, a.Size)
				}
			}
		}
	}
	for i, st := range p.Rollout {
		if st.AtATime < 0 {
			return fmt.Errorf("rollout stage %d (%s): negative at_a_time %d", i+1, printable(st.Name), st.AtATime)
		}
	}
	return nil
}
