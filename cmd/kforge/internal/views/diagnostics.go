package views

import (
	"fmt"
	"io"

	"github.com/hashicorp/hcl/v2"
)

// Diagnostic is the JSON form of an hcl.Diagnostic.
type Diagnostic struct {
	Severity string `json:"severity"`
	Summary  string `json:"summary"`
	Detail   string `json:"detail,omitempty"`
	Range    *Range `json:"range,omitempty"`
}

// Range is a source range; lines and columns start at 1, bytes at 0.
type Range struct {
	Filename string `json:"filename"`
	Start    Pos    `json:"start"`
	End      Pos    `json:"end"`
}

// Pos is a position in a source file.
type Pos struct {
	Line   int `json:"line"`
	Column int `json:"column"`
	Byte   int `json:"byte"`
}

// JSONDiagnostics converts diagnostics for machine-readable output; it never returns nil, so JSON shows [].
func JSONDiagnostics(diags hcl.Diagnostics) []Diagnostic {
	out := make([]Diagnostic, 0, len(diags))
	for _, d := range diags {
		jd := Diagnostic{Severity: "error", Summary: d.Summary, Detail: d.Detail}
		if d.Severity == hcl.DiagWarning {
			jd.Severity = "warning"
		}
		if d.Subject != nil {
			s := d.Subject
			jd.Range = &Range{Filename: s.Filename,
				Start: Pos{Line: s.Start.Line, Column: s.Start.Column, Byte: s.Start.Byte},
				End:   Pos{Line: s.End.Line, Column: s.End.Column, Byte: s.End.Byte}}
		}
		out = append(out, jd)
	}
	return out
}

// WriteDiagnostics prints diagnostics as file:line:col with the source snippet, HCL style.
func WriteDiagnostics(w io.Writer, files map[string]*hcl.File, t Terminal, diags hcl.Diagnostics) {
	if len(diags) == 0 {
		return
	}
	wr := hcl.NewDiagnosticTextWriter(w, files, uint(t.Width), t.Color)
	_ = wr.WriteDiagnostics(diags) // a failed write to stderr has nowhere better to be reported
}

// countSeverities returns the number of errors and warnings.
func countSeverities(diags hcl.Diagnostics) (errs, warns int) {
	for _, d := range diags {
		if d.Severity == hcl.DiagError {
			errs++
		} else {
			warns++
		}
	}
	return errs, warns
}

func plural(n int, word string) string {
	if n == 1 {
		return fmt.Sprintf("1 %s", word)
	}
	return fmt.Sprintf("%d %ss", n, word)
}
