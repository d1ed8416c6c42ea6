package views

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/kforge/kforge/provision/apply"
)

func TestLiveProgressRedrawsOneLinePerHost(t *testing.T) {
	var out bytes.Buffer
	v := &PlanHuman{Out: &out, Term: Terminal{Live: true}}
	t0 := time.Date(2026, 11, 28, 12, 0, 0, 0, time.UTC)
	v.Event(apply.Event{Time: t0, Host: "cp-1", Action: "create", Kind: "file", Name: "/a", Status: "start"})
	v.Event(apply.Event{Time: t0, Host: "w-1", Action: "create", Kind: "file", Name: "/b", Status: "start"})
	v.Event(apply.Event{Time: t0.Add(3 * time.Second), Host: "cp-1", Action: "create", Kind: "file", Name: "/a", Status: "done"})
	frames := strings.Split(out.String(), "\x1b[")
	last := out.String()[strings.LastIndex(out.String(), "\x1b[2A"):]
	want := "\x1b[2A\x1b[2Kcp-1         create file /a ✓\n\x1b[2Kw-1          create file /b … 0s\n"
	if last != want || len(frames) < 5 {
		t.Errorf("last frame %q, want %q", last, want)
	}

	out.Reset()
	plain := &PlanHuman{Out: &out}
	plain.Event(apply.Event{Time: t0, Host: "cp-1", Action: "create", Kind: "file", Name: "/a", Status: "start"})
	plain.Event(apply.Event{Time: t0, Host: "cp-1", Action: "create", Kind: "file", Name: "/a", Status: "done"})
	if out.String() != "12:00:00  cp-1         create file /a …\n" {
		t.Errorf("plain: %q", out.String())
	}
}

// TestEventsShowNoRawControls: a name from a crafted plan and a host's stderr reach the terminal escaped, the
// error's lines kept; the view's own colours and redraws are the only controls it prints.
func TestEventsShowNoRawControls(t *testing.T) {
	var out, errOut bytes.Buffer
	t0 := time.Date(2026, 11, 28, 12, 0, 0, 0, time.UTC)
	v := &PlanHuman{Out: &out, Err: &errOut}
	v.Event(apply.Event{Time: t0, Host: "cp-1", Action: "delete", Kind: "file", Name: "/etc/x\r\x1b[2K", Status: "failed",
		Error: "line one\n\x1b[31mred\x1b[0m"})
	v.Warn("cp-1", "drift\x1b]0;title\x07")
	want := "12:00:00  cp-1         delete file /etc/x\\r\\x1b[2K FAILED: line one\n\\x1b[31mred\\x1b[0m\n"
	if out.String() != want {
		t.Errorf("event:\n%q\nwant\n%q", out.String(), want)
	}
	if got := errOut.String(); got != "Warning: host cp-1: drift\\x1b]0;title\\a\n" {
		t.Errorf("warning: %q", got)
	}
	out.Reset()
	live := &PlanHuman{Out: &out, Term: Terminal{Live: true}}
	live.Event(apply.Event{Time: t0, Host: "cp-1", Action: "create", Kind: "file", Name: "/a\x1b[2J", Status: "start"})
	if strings.Contains(out.String(), "\x1b[2J") || !strings.Contains(out.String(), `/a\x1b[2J`) {
		t.Errorf("live board: %q", out.String())
	}
}
