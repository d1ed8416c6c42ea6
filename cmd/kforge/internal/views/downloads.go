package views

import (
	"fmt"
	"io"
	"sync"
)

// Downloads shows artifact downloads: a progress line redrawn in place on a terminal, a line per file
// elsewhere (logs of CI runs stay short).
type Downloads struct {
	Out  io.Writer
	Term Terminal

	mu      sync.Mutex
	started map[string]bool
}

// Progress is called as bytes of a file arrive; total is -1 when the server does not say.
func (v *Downloads) Progress(name string, done, total int64) {
	v.mu.Lock()
	defer v.mu.Unlock()
	if v.started == nil {
		v.started = map[string]bool{}
	}
	finished := total >= 0 && done >= total
	if !v.Term.Live {
		if !v.started[name] {
			fmt.Fprintf(v.Out, "Downloading %s (%s)\n", name, size(total))
		}
		v.started[name] = true
		return
	}
	v.started[name] = true
	line := fmt.Sprintf("Downloading %s  %s / %s", name, size(done), size(total))
	if total > 0 {
		line += fmt.Sprintf("  %3d%%", done*100/total)
	}
	if finished {
		fmt.Fprintf(v.Out, "\r\x1b[K%s\n", line)
	} else {
		fmt.Fprintf(v.Out, "\r\x1b[K%s", line)
	}
}

func size(n int64) string {
	switch {
	case n < 0:
		return "size unknown"
	case n < 1<<20:
		return fmt.Sprintf("%.0f KiB", float64(n)/(1<<10))
	}
	return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
}
