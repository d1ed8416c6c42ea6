package views

import (
	"io"
	"os"

	"golang.org/x/term"
)

// Terminal describes where output goes: whether to use colour, and how wide lines may be (0 = no wrapping).
type Terminal struct {
	Color bool
	Width int
	// Live says the output is a terminal, where progress can be redrawn in place.
	Live bool
}

// DetectTerminal looks at w: colour only on a terminal and only if neither --no-color nor NO_COLOR says no.
func DetectTerminal(w io.Writer, noColor bool, env []string) Terminal {
	f, ok := w.(*os.File)
	if !ok || !term.IsTerminal(int(f.Fd())) {
		return Terminal{}
	}
	t := Terminal{Color: !noColor && !envSet(env, "NO_COLOR"), Live: true}
	if width, _, err := term.GetSize(int(f.Fd())); err == nil {
		t.Width = width
	}
	return t
}

// envSet follows no-color.org: a NO_COLOR that is present and not empty turns colour off.
func envSet(env []string, name string) bool {
	for _, kv := range env {
		if len(kv) > len(name)+1 && kv[:len(name)+1] == name+"=" {
			return true
		}
	}
	return false
}
