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
