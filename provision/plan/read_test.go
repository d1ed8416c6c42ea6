package plan

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// goldenPlans are the saved plans under testdata: what plan -out writes.
func goldenPlans(tb testing.TB) map[string][]byte {
	tb.Helper()
	files, _ := filepath.Glob("testdata/*.json")
	if len(files) < 5 {
		tb.Fatalf("too few golden plans: %v", files)
	}
	out := map[string][]byte{}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			tb.Fatal(err)
		}
		out[f] = b
	}
	return out
}

// crafted are valid JSON documents no kforge writes, each with what Read must say about it.
var crafted = []struct{ doc, want string }{
	{`{"format_version": "2.0", "hosts": []}`, `plan format "2.0" is newer than this kforge reads ("1.0")`},
	{`{"format_version": "1.1"}`, `plan format "1.1" is newer`},
	{`{"format_version": "0.9"}`, `plan format "0.9"; this kforge reads "1.0"`},
	{`{"format_version": "banana"}`, `plan format "banana"; this kforge reads "1.0"`},
	{`{"cluster": "x", "hosts": []}`, "not a kforge plan: it has no format_version"},
	{`null`, "not a kforge plan: it has no format_version"},
	{`{"format_version": "1.0", "hosts": [{"host": "cp-1", "changes": [{"kind": "file", "name": "/a", "action": "explode"}]}]}`,
		`host cp-1, change 1 (file /a): unknown action "explode"`},
	{`{"format_version": "1.0", "hosts": [{"host": "cp-1", "changes": [{"kind": "file", "name": "/a", "action": "create", "after": {"size": -5}}]}]}`,
		"host cp-1, change 1 (file /a): negative size -5"},
	{`{"format_version": "1.0", "hosts": [{"host": "", "changes": []}]}`, "host 1 of the plan has no name"},
	{`{"format_version": "1.0", "state": {"serial": -1}}`, "state serial -1 is negative"},
	{`{"format_version": "1.0", "rollout": [{"name": "workers", "hosts": ["w"], "at_a_time": -3}]}`, "rollout stage 1 (workers): negative at_a_time -3"},
	{`{"format_version": "1.0", "hosts": [{"host": "cp-1", "changes": [{"action": "create", "after": {"size": 1e30}}]}]}`,
		`field "hosts.changes.after.size" at line 1, column 108 is a JSON number 1e30, where a whole number that fits in 64 bits is expected`},
	{`{"format_version": "1.0", "state": {"serial": "3"}}`, `field "state.serial" at line 1, column 49 is a JSON string`},
	{`{"format_version": "1.0", "hosts": {"cp-1": []}}`, `field "hosts" at line 1, column 36 is a JSON object, where a list is expected`},
	{`{"format_version": 1.0}`, `field "format_version" at line 1, column 22 is a JSON number`},
	{`{"format_version": "1.0", "created_at": "last tuesday"}`, "a time is not written as RFC 3339"},
	{`[{"format_version": "1.0"}]`, "the document at line 1, column 1 is a JSON array, where an object is expected"},
}

// TestReadExplainsWhatIsWrong: garbage, a truncated plan and crafted plans are refused, saying why in words.
func TestReadExplainsWhatIsWrong(t *testing.T) {
	golden := goldenPlans(t)["testdata/rolling-upgrade.json"]
	cases := []struct{ doc, want string }{
		{"", "not a kforge plan: it is empty"},
		{string(golden[:len(golden)/2]), "not a kforge plan: it ends early, after"},
		{"\x89PNG\r\n\x1a\n\x00\x00", "not a kforge plan: it is not valid JSON at line 1, column 1: invalid character"},
		{"{\n  \"format_version\": \"1.0\",\n  \"hosts\": [,]\n}", "it is not valid JSON at line 3, column 13"},
	}
	for _, tc := range append(cases, crafted...) {
		p, err := Read([]byte(tc.doc))
		if err == nil || p != nil {
			t.Errorf("%.60q: read as a plan", tc.doc)
			continue
		}
		if !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%.60q:\n got %v\nwant %s", tc.doc, err, tc.want)
		}
	}
}

func TestReadTakesEveryGoldenPlan(t *testing.T) {
	for name, b := range goldenPlans(t) {
		p, err := Read(b)
		if err != nil {
			t.Errorf("%s: %v", name, err)
			continue
		}
		again, _ := JSON(p)
		if !bytes.Equal(again, b) {
			t.Errorf("%s: does not survive a read and a write", name)
		}
	}
}

// FuzzRead is kforge show and apply FILE on any file: Read refuses it or returns a plan that both views draw
// and that reads back the same after a write. Never a panic.
func FuzzRead(f *testing.F) {
	for _, b := range goldenPlans(f) {
		f.Add(b)
		f.Add(b[:len(b)*2/3])
	}
	for _, c := range crafted {
		f.Add([]byte(c.doc))
	}
	f.Add([]byte(`{"format_version": "1.0", "hosts": [{"host": "h", "changes": [{"kind": "file", "name": "/a", "action": "create", "diff": "@@ -1 +1 @@\n-a\n+b\n", "after": {"size": 9223372036854775807, "enabled": true, "active": false, "pending": true}}]}], "rollout": [{"name": "s", "hosts": ["h", "h"], "at_a_time": 0, "drain": ["h"]}], "warnings": ["\u001b[2J"]}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		p, err := Read(data)
		if err != nil {
			if p != nil || err.Error() == "" {
				t.Fatalf("error %q with plan %v", err, p)
			}
			return
		}
		Text(p, false)
		Text(p, true)
		out, err := JSON(p)
		if err != nil {
			t.Fatalf("a plan that was read cannot be written: %v", err)
		}
		back, err := Read(out)
		if err != nil {
			t.Fatalf("a plan written from a read one is refused: %v\n%s", err, out)
		}
		if again, _ := JSON(back); !bytes.Equal(again, out) {
			t.Fatalf("a plan changes when read back:\n%s\n%s", out, again)
		}
	})
}
