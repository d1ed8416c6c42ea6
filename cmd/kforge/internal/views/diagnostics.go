package views

import (
	"fmt"
	"io"
	"strings"
	"unicode/utf8"

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

// WriteDiagnostics prints each diagnostic with its location as file:line:col (which editors and terminals can
// follow), the enclosing block, the source lines it points at with the exact span underlined, and the detail.
func WriteDiagnostics(w io.Writer, files map[string]*hcl.File, t Terminal, diags hcl.Diagnostics) {
	var b strings.Builder
	for _, d := range diags {
		writeDiagnostic(&b, files, t, d)
	}
	_, _ = io.WriteString(w, b.String()) // a failed write to stderr has nowhere better to be reported
}

// maxSnippetLines keeps a diagnostic about a whole block from printing the block.
const maxSnippetLines = 3

func writeDiagnostic(b *strings.Builder, files map[string]*hcl.File, t Terminal, d *hcl.Diagnostic) {
	severity, color := "Error", ansiRed
	if d.Severity == hcl.DiagWarning {
		severity, color = "Warning", ansiYellow
	}
	fmt.Fprintf(b, "%s %s\n", t.paint(color+ansiBold, severity+":"), t.paint(ansiBold, d.Summary))
	if s := d.Subject; s != nil {
		fmt.Fprintf(b, "\n  on %s:%d:%d", s.Filename, s.Start.Line, s.Start.Column)
		f := files[s.Filename]
		if f != nil {
			if nav, ok := f.Nav.(interface{ ContextString(int) string }); ok {
				if c := nav.ContextString(s.Start.Byte); c != "" {
					fmt.Fprintf(b, ", in %s", c)
				}
			}
		}
		b.WriteString(":\n")
		if f != nil {
			writeSnippet(b, f.Bytes, *s, t, color)
		}
	}
	if d.Detail != "" {
		b.WriteString("\n")
		b.WriteString(wrap(d.Detail, t.Width))
		b.WriteString("\n")
	}
	b.WriteString("\n")
}

// writeSnippet prints the lines the range covers, numbered; a range within one line is underlined with carets.
func writeSnippet(b *strings.Builder, src []byte, r hcl.Range, t Terminal, color string) {
	lines := strings.Split(string(src), "\n")
	last := r.End.Line
	if r.End.Column == 1 && last > r.Start.Line {
		last-- // a range that ends at the start of a line does not cover it
	}
	if last-r.Start.Line >= maxSnippetLines {
		last = r.Start.Line + maxSnippetLines - 1
	}
	width := len(fmt.Sprint(last))
	for n := r.Start.Line; n <= last && n <= len(lines); n++ {
		fmt.Fprintf(b, "  %*d | %s\n", width, n, strings.TrimRight(lines[n-1], "\r"))
	}
	if last != r.Start.Line || r.Start.Line > len(lines) {
		return
	}
	line := lines[r.Start.Line-1]
	endColumn := r.End.Column
	if r.End.Line != r.Start.Line { // the range runs to the end of this line
		endColumn = utf8.RuneCountInString(line) + 1
	}
	// Columns count characters; the carets must line up under them, tabs included.
	var pad strings.Builder
	col := 1
	for _, ch := range line {
		if col >= r.Start.Column {
			break
		}
		if ch == '\t' {
			pad.WriteRune('\t')
		} else {
			pad.WriteRune(' ')
		}
		col++
	}
	n := endColumn - r.Start.Column
	if n < 1 {
		n = 1
	}
	fmt.Fprintf(b, "  %*s | %s%s\n", width, "", pad.String(), t.paint(color, strings.Repeat("^", n)))
}

// wrap breaks text at spaces so that no line is longer than width; width 0 leaves it as it is.
func wrap(text string, width int) string {
	if width <= 0 {
		return text
	}
	var out []string
	for _, para := range strings.Split(text, "\n") {
		line := ""
		for _, word := range strings.Fields(para) {
			if line != "" && len(line)+1+len(word) > width {
				out = append(out, line)
				line = word
				continue
			}
			if line != "" {
				line += " "
			}
			line += word
		}
		out = append(out, line)
	}
	return strings.Join(out, "\n")
}

const (
	ansiBold   = "\x1b[1m"
	ansiRed    = "\x1b[31m"
	ansiYellow = "\x1b[33m"
	ansiReset  = "\x1b[0m"
)

func (t Terminal) paint(code, s string) string {
	if !t.Color {
		return s
	}
	return code + s + ansiReset
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
