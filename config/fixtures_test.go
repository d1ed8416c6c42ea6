package config

import (
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"testing"

	"github.com/hashicorp/hcl/v2"
)

// markerRe finds the expected diagnostics written on the offending line of a fixture: # ERROR: summary.
var markerRe = regexp.MustCompile(`#\s*(ERROR|WARNING):\s*([^#]*[^#\s])`)

// expectedMarkers reads every fixture file in dir and returns "file:line" → sorted "SEVERITY: summary" list.
func expectedMarkers(t *testing.T, dir string) map[string][]string {
	t.Helper()
	want := map[string][]string{}
	files, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range files {
		path := filepath.Join(dir, f.Name())
		ext := filepath.Ext(path)
		if ext != ConfigExt && ext != VarsExt {
			continue
		}
		src, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		for i, line := range strings.Split(string(src), "\n") {
			for _, m := range markerRe.FindAllStringSubmatch(line, -1) {
				key := path + ":" + strconv.Itoa(i+1)
				want[key] = append(want[key], m[1]+": "+m[2])
			}
		}
	}
	for k := range want {
		sort.Strings(want[k])
	}
	return want
}

func gotMarkers(diags hcl.Diagnostics) map[string][]string {
	got := map[string][]string{}
	for _, d := range diags {
		key := "(no location)"
		if d.Subject != nil {
			key = d.Subject.Filename + ":" + strconv.Itoa(d.Subject.Start.Line)
		}
		sev := "ERROR"
		if d.Severity == hcl.DiagWarning {
			sev = "WARNING"
		}
		got[key] = append(got[key], sev+": "+d.Summary)
	}
	for k := range got {
		sort.Strings(got[k])
	}
	return got
}

// TestInvalidFixtures loads each directory under testdata/invalid and compares, line by line, the diagnostics
// with the markers written on the offending lines: every problem must be reported, in one run, where it is.
func TestInvalidFixtures(t *testing.T) {
	dirs, err := filepath.Glob("testdata/invalid/*")
	if err != nil || len(dirs) == 0 {
		t.Fatalf("no fixtures: %v", err)
	}
	for _, dir := range dirs {
		t.Run(filepath.Base(dir), func(t *testing.T) {
			want := expectedMarkers(t, dir)
			if len(want) == 0 {
				t.Fatal("fixture has no markers")
			}
			cluster, diags := NewLoader().Load(Options{Path: dir, Providers: []string{"lab", "vagrant"}})
			got := gotMarkers(diags)
			keys := map[string]bool{}
			for k := range want {
				keys[k] = true
			}
			for k := range got {
				keys[k] = true
			}
			sorted := make([]string, 0, len(keys))
			for k := range keys {
				sorted = append(sorted, k)
			}
			sort.Strings(sorted)
			for _, k := range sorted {
				if strings.Join(want[k], " | ") != strings.Join(got[k], " | ") {
					t.Errorf("%s:\n  want %q\n  got  %q", k, want[k], got[k])
				}
			}
			if t.Failed() {
				for _, d := range diags {
					t.Logf("diagnostic: %s", d)
				}
			}
			if diags.HasErrors() != (cluster == nil) {
				t.Errorf("cluster returned = %v with errors = %v", cluster != nil, diags.HasErrors())
			}
		})
	}
}
