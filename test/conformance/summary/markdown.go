package main

import (
	"fmt"
	"strings"
)

// messageLines is how many non-blank lines of a failure message its row shows; maxMessage caps their length.
const (
	messageLines = 2
	maxMessage   = 300
)

// Markdown renders the summary: a table of counts, then a table of the failures.
func Markdown(s Summary) string {
	var b strings.Builder
	b.WriteString("# Conformance results\n\n")
	b.WriteString("| Specs | Count |\n|---|---:|\n")
	fmt.Fprintf(&b, "| Passed | %d |\n", s.Count(Passed))
	fmt.Fprintf(&b, "| Failed | %d |\n", s.Count(Failed))
	fmt.Fprintf(&b, "| Skipped | %d |\n", s.Skipped())
	fmt.Fprintf(&b, "| … not run (focus, skip, pending) | %d |\n", s.Count(NotRun))
	fmt.Fprintf(&b, "| … skipped at run time | %d |\n", s.Count(SkippedAtRunTime))
	fmt.Fprintf(&b, "| Total | %d |\n", s.Specs())
	fmt.Fprintf(&b, "| Duration | %s |\n\n", s.Duration)
	suite, suiteFailed := 0, 0
	for _, c := range s.Cases {
		if c.Suite {
			suite++
			if c.Outcome == Failed {
				suiteFailed++
			}
		}
	}
	fmt.Fprintf(&b, "Specs only: ginkgo's %d suite nodes ([SynchronizedBeforeSuite], [ReportAfterSuite], …) are not counted; "+
		"%d of them failed", suite, suiteFailed)
	if suiteFailed > 0 {
		b.WriteString(" (listed below)")
	}
	b.WriteString(".\n\n")
	failures := s.Failures()
	if len(failures) == 0 {
		b.WriteString("No failures.\n")
	} else {
		table(&b, "Failures", "Message", failures)
	}
	if skipped := s.SkippedAtRunTime(); len(skipped) > 0 {
		b.WriteString("\n")
		table(&b, "Skipped at run time", "Reason", skipped)
	}
	return b.String()
}

// table writes a section with one row per case: its name and the start of its message.
func table(b *strings.Builder, title, column string, cases []Case) {
	fmt.Fprintf(b, "## %s\n\n| Spec | %s |\n|---|---|\n", title, column)
	for _, c := range cases {
		fmt.Fprintf(b, "| %s | %s |\n", cell(c.Name), cell(firstLines(c.Message)))
	}
}

// firstLines is the start of a message: its first non-blank lines, trimmed, joined with " / ".
func firstLines(msg string) string {
	var lines []string
	for _, l := range strings.Split(msg, "\n") {
		if l = strings.TrimSpace(l); l != "" {
			lines = append(lines, l)
		}
		if len(lines) == messageLines {
			break
		}
	}
	out := strings.Join(lines, " / ")
	if r := []rune(out); len(r) > maxMessage {
		out = string(r[:maxMessage]) + "…"
	}
	return out
}

// cell makes text safe inside a markdown table cell: pipes and backslashes escaped, no HTML, one line.
var cellEscaper = strings.NewReplacer(`\`, `\\`, "|", `\|`, "<", "&lt;", ">", "&gt;", "\r", " ", "\n", " ")

func cell(s string) string { return cellEscaper.Replace(s) }
