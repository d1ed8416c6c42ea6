package plan

import (
	"fmt"
	"reflect"
	"strings"
	"testing"
	"unicode/utf8"
)

// rawControls lists what in out a terminal would act on rather than show, other than a newline and, inside
// a content diff, a tab; kforge's own colour codes are taken out first when color is set.
func rawControls(t *testing.T, out string, color bool) []string {
	t.Helper()
	if color {
		for _, c := range colors {
			out = strings.ReplaceAll(out, c, "")
		}
		out = strings.ReplaceAll(out, "\x1b[0m", "")
	}
	var found []string
	for n, line := range strings.Split(out, "\n") {
		inDiff := strings.HasPrefix(line, "        ")
		for i := 0; i < len(line); {
			r, size := utf8.DecodeRuneInString(line[i:])
			bad := r == utf8.RuneError && size == 1 || r < 0x20 && !(r == '\t' && inDiff) || r == 0x7f ||
				r >= 0x80 && r <= 0x9f || r >= 0x202a && r <= 0x202e || r >= 0x2066 && r <= 0x2069
			if bad {
				found = append(found, fmt.Sprintf("line %d: %q after %q", n+1, line[i:i+size], line[:i]))
			}
			i += size
		}
	}
	return found
}

// craftedPlan is a saved plan someone wrote to deceive whoever shows it: a destroy line that erases itself, a
// warning that clears the screen and prints "No changes.", a name shown backwards, and a diff that returns to
// the start of its line to hide what it removes.
const craftedPlan = `{
  "format_version": "1.0",
  "cluster": "prod",
  "hosts": [
    {"host": "cp-1\u001b[1A", "changes": [
      {"id": "file:/etc/kubernetes/pki/ca.key", "kind": "file", "name": "/etc/kubernetes/pki/ca.key\r\u001b[2K",
       "action": "delete", "reasons": ["no longer in the configuration\u001b[8m"]},
      {"id": "unit:x", "kind": "unit", "name": "evil\u202egol.service", "action": "restart", "reasons": ["\u009b2K"]},
      {"id": "file:/etc/a.conf", "kind": "file", "name": "/etc/a.conf", "action": "update", "reasons": ["content"],
       "diff": "@@ -1,1 +1,1 @@\n-token: old\r+token: harmless\u0008\u0008\u0008\u007f\n+\ttoken: new\u2066\n"}
    ]}
  ],
  "warnings": ["\u001b[2J\u001b[HNo changes. Every host matches the configuration.\nsecond line"],
  "rollout": [{"name": "etcd\u001b]0;pwned\u0007", "hosts": ["cp-1\u001b[1A", "cp-2"], "at_a_time": 1, "drain": ["cp-1\r"]}]
}`

// TestTextShowsControlCharactersEscaped: a crafted plan read from a file renders with every control character
// of its strings escaped, colour or not; the destroy line and its summary are there to read; kforge's own
// colours still colour.
func TestTextShowsControlCharactersEscaped(t *testing.T) {
	p, err := Read([]byte(craftedPlan))
	if err != nil {
		t.Fatal(err)
	}
	for _, color := range []bool{false, true} {
		out := Text(p, color)
		if bad := rawControls(t, out, color); len(bad) > 0 {
			t.Errorf("color %v: raw control characters: %q\n%s", color, bad, out)
		}
		for _, want := range []string{
			`host cp-1\x1b[1A`,
			`-   file /etc/kubernetes/pki/ca.key\r\x1b[2K  (no longer in the configuration\x1b[8m)`,
			`unit evil\u202egol.service  (\u009b2K)`,
			`        -token: old\r+token: harmless\b\b\b\x7f`,
			"        +\ttoken: new\\u2066\n", // a tab inside a diff is content
			`Warning: \x1b[2J\x1b[HNo changes. Every host matches the configuration.\nsecond line`,
			`1. etcd\x1b]0;pwned\a, one at a time: cp-1\x1b[1A, cp-2`,
			`drained first, uncordoned once Ready: cp-1\r` + "\n",
			"Plan: 0 to add, 1 to change, 1 to destroy, 1 to restart.",
		} {
			if !strings.Contains(out, want) {
				t.Errorf("color %v: the rendering lacks %q:\n%s", color, want, out)
			}
		}
		if strings.HasPrefix(out, NoChanges) || strings.Count(out, "\n"+NoChanges) > 0 {
			t.Errorf("color %v: a line starts with %q:\n%s", color, NoChanges, out)
		}
	}
	if colored := Text(p, true); !strings.Contains(colored, colors[Delete]+"  -   file /etc/kubernetes/pki/ca.key") ||
		!strings.Contains(colored, `\x1b[2K  (no longer in the configuration\x1b[8m)`+"\x1b[0m\n") {
		t.Errorf("kforge's colours are gone:\n%q", colored)
	}
	// A plan with nothing to do still shows its warnings escaped.
	p.Hosts = nil
	if out := Text(p, false); !strings.HasPrefix(out, NoChanges+"\n") || len(rawControls(t, out, false)) > 0 {
		t.Errorf("empty plan: %q", out)
	}
}

// TestTextEscapesEveryString fills every string a plan holds with control characters, for every action and
// every way describe reads the attributes, so that a string a later change adds to the rendering cannot slip
// through raw.
func TestTextEscapesEveryString(t *testing.T) {
	const hostile = "a\x1b[2K\r\x00\x7f\u0085\u202e\u2069\xff\tz"
	yes := true
	var changes []Change
	for _, a := range []Action{Create, Update, Delete, Replace, Restart, NoOp} {
		changes = append(changes, Change{Action: a, Reasons: []string{""}, Diff: "-\n+\n"})
	}
	for _, after := range []*Attributes{{Size: 1, Secret: true}, {Size: 1, Pending: true}, {Size: 1, Enabled: &yes, Active: &yes}} {
		changes = append(changes, Change{Action: Create, Reasons: []string{""}, Before: &Attributes{}, After: after})
	}
	p := &Plan{Hosts: []HostPlan{{Changes: changes}}, Warnings: []string{""},
		Rollout: []Stage{{Hosts: []string{"", ""}, AtATime: 1, Drain: []string{""}}}}
	filled := fillStrings(reflect.ValueOf(p).Elem(), hostile)
	if filled < 40 {
		t.Fatalf("only %d strings filled", filled)
	}
	for _, color := range []bool{false, true} {
		out := Text(p, color)
		if bad := rawControls(t, out, color); len(bad) > 0 {
			t.Errorf("color %v: raw control characters: %q\n%s", color, bad, out)
		}
		if !strings.Contains(out, `a\x1b[2K\r\x00\x7f\u0085\u202e\u2069\xff\tz`) {
			t.Errorf("color %v: the hostile string is not shown escaped:\n%s", color, out)
		}
	}
}

// fillStrings sets every string (not the Action: the renderer only looks it up) reachable from v to s and
// returns how many it set.
func fillStrings(v reflect.Value, s string) int {
	switch v.Kind() {
	case reflect.String:
		if v.Type() == reflect.TypeOf(Action("")) {
			return 0
		}
		v.SetString(s)
		return 1
	case reflect.Pointer:
		if v.IsNil() {
			return 0
		}
		return fillStrings(v.Elem(), s)
	case reflect.Struct:
		n := 0
		for i := range v.NumField() {
			if v.Type().Field(i).IsExported() {
				n += fillStrings(v.Field(i), s)
			}
		}
		return n
	case reflect.Slice:
		n := 0
		for i := range v.Len() {
			n += fillStrings(v.Index(i), s)
		}
		return n
	}
	return 0
}

func TestPrintable(t *testing.T) {
	for _, tc := range []struct{ in, want, diffLine string }{
		{"/etc/kubernetes/kubelet.conf", "/etc/kubernetes/kubelet.conf", "/etc/kubernetes/kubelet.conf"},
		{"↻ café ✓ \\x1b", "↻ café ✓ \\x1b", "↻ café ✓ \\x1b"}, // printable text and backslashes stay
		{"\x1b[31mred", `\x1b[31mred`, `\x1b[31mred`},
		{"a\rb\nc\td", `a\rb\nc\td`, "a\\rb\\nc\td"},
		{"\x00\x01\x1f\x7f", `\x00\x01\x1f\x7f`, `\x00\x01\x1f\x7f`},
		{"\u0080\u009b\u009f\u00a0", `\u0080\u009b\u009f` + "\u00a0", `\u0080\u009b\u009f` + "\u00a0"},
		{"\u202a\u202e\u2066\u2069\u200e\u200f\u061c\u2065", `\u202a\u202e\u2066\u2069\u200e\u200f\u061c` + "\u2065",
			`\u202a\u202e\u2066\u2069\u200e\u200f\u061c` + "\u2065"},
		{"\x9b2J\xff\xc3", `\x9b2J\xff\xc3`, `\x9b2J\xff\xc3`}, // not UTF-8: raw C1 bytes for an 8-bit terminal
		{"\ufffd", "\ufffd", "\ufffd"},
	} {
		if got := printable(tc.in); got != tc.want {
			t.Errorf("printable(%q) = %q, want %q", tc.in, got, tc.want)
		}
		if got := printableDiffLine(tc.in); got != tc.diffLine {
			t.Errorf("printableDiffLine(%q) = %q, want %q", tc.in, got, tc.diffLine)
		}
	}
}

// TestReadErrorsShowControlCharactersEscaped: the error for a crafted plan quotes its names, and those reach the
// terminal as well.
func TestReadErrorsShowControlCharactersEscaped(t *testing.T) {
	for _, doc := range []string{
		`{"format_version": "1.0", "hosts": [{"host": "cp-1\u001b[2K", "changes": [{"kind": "file\r", "name": "/a\u202e", "action": "explode"}]}]}`,
		`{"format_version": "1.0", "rollout": [{"name": "w\u001b[2J", "hosts": ["w"], "at_a_time": -3}]}`,
	} {
		_, err := Read([]byte(doc))
		if err == nil {
			t.Fatalf("%s: read", doc)
		}
		if bad := rawControls(t, err.Error(), false); len(bad) > 0 || !strings.Contains(err.Error(), `\x1b[2`) {
			t.Errorf("error %q: raw control characters %q", err, bad)
		}
	}
}

// FuzzText: whatever plan Read accepts, Text shows no control character raw but its own newlines, a tab inside
// a content diff and, with colour, its own colour codes.
func FuzzText(f *testing.F) {
	for _, b := range goldenPlans(f) {
		f.Add(b)
	}
	f.Add([]byte(craftedPlan))
	f.Fuzz(func(t *testing.T, data []byte) {
		p, err := Read(data)
		if err != nil {
			return
		}
		for _, color := range []bool{false, true} {
			if bad := rawControls(t, Text(p, color), color); len(bad) > 0 {
				t.Fatalf("color %v: raw control characters %q", color, bad)
			}
		}
	})
}
