package views

import (
	"fmt"
	"io"
	"strings"
	"text/tabwriter"

	"github.com/kforge/kforge/provision/preflight"
)

// Preflight shows the checks' findings.
type Preflight interface {
	// Findings shows every finding (preflight) or only what needs attention (before a plan).
	Findings(fs []preflight.Finding, all bool) error
}

var (
	_ Preflight = (*PreflightHuman)(nil)
	_ Preflight = (*PreflightJSON)(nil)
)

// PreflightHuman prints one table per host: check, status, detail and fix.
type PreflightHuman struct {
	Out  io.Writer
	Term Terminal
}

func (v *PreflightHuman) Findings(fs []preflight.Finding, all bool) error {
	var b strings.Builder
	host := "\x00"
	var tw *tabwriter.Writer
	flush := func() {
		if tw != nil {
			tw.Flush()
		}
	}
	errs, warns := 0, 0
	for _, f := range fs {
		switch f.Severity {
		case preflight.SeverityError:
			errs++
		case preflight.SeverityWarning:
			warns++
		}
		if !all && f.Severity != preflight.SeverityError && f.Severity != preflight.SeverityWarning {
			continue
		}
		if f.Host != host {
			flush()
			host = f.Host
			title := "cluster"
			if host != "" {
				title = "host " + host
			}
			fmt.Fprintf(&b, "\n%s\n", title)
			tw = tabwriter.NewWriter(&b, 0, 4, 2, ' ', 0)
		}
		status := f.Severity.String()
		if f.Ignored {
			status += " (ignored)"
		}
		fmt.Fprintf(tw, "  %s\t%s\t%s\n", f.ID, status, f.Detail)
		if f.Fix != "" && (f.Severity == preflight.SeverityError || f.Severity == preflight.SeverityWarning) {
			fmt.Fprintf(tw, "  \t\tfix: %s\n", f.Fix)
		}
	}
	flush()
	if all || errs+warns > 0 {
		fmt.Fprintf(&b, "\nPreflight: %s, %s.\n", plural(errs, "error"), plural(warns, "warning"))
	}
	_, err := io.WriteString(v.Out, strings.TrimPrefix(b.String(), "\n"))
	return err
}

// PreflightJSON prints the findings as one document.
type PreflightJSON struct{ Out io.Writer }

func (v *PreflightJSON) Findings(fs []preflight.Finding, _ bool) error {
	if fs == nil {
		fs = []preflight.Finding{}
	}
	return writeJSON(v.Out, map[string]any{"findings": fs, "errors": preflight.HasErrors(fs)})
}
