package plan

import (
	"fmt"
	"strings"
	"unicode/utf8"
)

// The strings of a plan come from a saved file anyone may have written and from what hosts reported (a drifted
// file's content), so Text never prints their control characters as they are: an ESC sequence, a carriage
// return or a backspace would redraw the operator's terminal (erase a destroy line, print "No changes."), and a
// bidi override would show a name in another order than it has. They are written as Go escapes instead
// (\x1b, \r, \u202e), which a terminal shows and does not act on. The JSON form keeps the exact strings.
//
// A backslash is left as it is: the escapes are for the eye, not to be read back, and file content (a unit's
// line continuations) is full of backslashes that must read as they are.

// printable is s with every control character escaped: C0 (newline and tab included: a name, a reason or a
// warning is one line), DEL, C1, the bidi controls, and bytes that are not UTF-8.
func printable(s string) string { return escapeControls(s, false) }

// Printable is printable, for views that show a plan's strings outside Text: one line, every control escaped.
func Printable(s string) string { return printable(s) }

// PrintableLines is s for a terminal with its lines kept: each line escaped as a diff line is. For text that
// comes from hosts or plan files and is shown outside a plan (apply's progress lines, their errors).
func PrintableLines(s string) string {
	lines := strings.Split(s, "\n")
	for i, l := range lines {
		lines[i] = printableDiffLine(l)
	}
	return strings.Join(lines, "\n")
}

// printableDiffLine is printable for one line of file content, which Text has already split at newlines: a tab
// there is content (and only moves the cursor forward, over nothing written yet), so it is kept.
func printableDiffLine(s string) string { return escapeControls(s, true) }

// shortEscapes are the C0 controls with a Go escape of their own.
var shortEscapes = map[rune]string{'\a': `\a`, '\b': `\b`, '\f': `\f`, '\n': `\n`, '\r': `\r`, '\t': `\t`, '\v': `\v`}

func escapeControls(s string, keepTab bool) string {
	if !needsEscape(s, keepTab) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); {
		r, size := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && size == 1:
			fmt.Fprintf(&b, `\x%02x`, s[i])
		case r == '\t' && keepTab:
			b.WriteByte('\t')
		case shortEscapes[r] != "":
			b.WriteString(shortEscapes[r])
		case r < 0x20 || r == 0x7f:
			fmt.Fprintf(&b, `\x%02x`, r)
		case isC1(r) || isBidiControl(r):
			fmt.Fprintf(&b, `\u%04x`, r)
		default:
			b.WriteString(s[i : i+size])
		}
		i += size
	}
	return b.String()
}

// needsEscape is the fast path: almost every string of a plan is plain.
func needsEscape(s string, keepTab bool) bool {
	for i := 0; i < len(s); {
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 || r < 0x20 && !(r == '\t' && keepTab) || r == 0x7f || isC1(r) || isBidiControl(r) {
			return true
		}
		i += size
	}
	return false
}

// isC1 reports the C1 controls (U+0080–U+009F): U+009B alone starts a control sequence on many terminals.
func isC1(r rune) bool { return r >= 0x80 && r <= 0x9f }

// isBidiControl reports the characters that reorder the text around them: the embeddings and overrides
// (U+202A–U+202E), the isolates (U+2066–U+2069) and the invisible direction marks (U+200E, U+200F, U+061C).
func isBidiControl(r rune) bool {
	return r >= 0x202a && r <= 0x202e || r >= 0x2066 && r <= 0x2069 || r == 0x200e || r == 0x200f || r == 0x061c
}
