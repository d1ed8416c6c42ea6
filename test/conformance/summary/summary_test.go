package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/kforge/kforge/internal/golden"
)

func parseFixture(t *testing.T) Summary {
	t.Helper()
	f, err := os.Open("testdata/junit.xml")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	s, err := Parse(f)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestParse(t *testing.T) {
	s := parseFixture(t)
	counts := map[string][2]int{ // outcome → {got, want}
		"passed":              {s.Count(Passed), 2},
		"failed":              {s.Count(Failed), 3},
		"not run":             {s.Count(NotRun), 3},
		"skipped at run time": {s.Count(SkippedAtRunTime), 1},
		"skipped":             {s.Skipped(), 4},
		"specs":               {s.Specs(), 9},
		"failures with suite": {len(s.Failures()), 4},
	}
	for name, c := range counts {
		if c[0] != c[1] {
			t.Errorf("%s: %d, want %d", name, c[0], c[1])
		}
	}
	if s.Duration != 4024*time.Second {
		t.Errorf("duration %s, want 1h7m4s", s.Duration)
	}
	interrupted := s.Failures()[2]
	if !strings.HasPrefix(interrupted.Message, "[INTERRUPTED] Interrupted by User") {
		t.Errorf("an <error> without a message attribute: message %q, want its text", interrupted.Message)
	}
	if got := s.SkippedAtRunTime()[0].Message; got != "Only supported for providers [gce gke] (not skeleton)" {
		t.Errorf("skip reason %q", got)
	}
	want := "2 passed, 3 failed, 4 skipped (1 at run time) of 9 specs in 1h7m4s; 1 suite nodes failed"
	if got := s.Tally(); got != want {
		t.Errorf("tally %q, want %q", got, want)
	}
}

func TestMarkdown(t *testing.T) {
	golden.Check(t, "testdata/summary.md", Markdown(parseFixture(t)))
}

func TestMarkdownNoFailures(t *testing.T) {
	s := Summary{Cases: []Case{{Name: "[SynchronizedBeforeSuite]", Suite: true}, {Name: "a spec"}}, Duration: time.Minute}
	md := Markdown(s)
	for _, want := range []string{"| Passed | 1 |", "| Total | 1 |", "| Duration | 1m0s |", "1 suite nodes", "No failures.\n"} {
		if !strings.Contains(md, want) {
			t.Errorf("no %q in:\n%s", want, md)
		}
	}
	if strings.Contains(md, "## ") {
		t.Errorf("a section without rows:\n%s", md)
	}
}

func TestCell(t *testing.T) {
	for in, want := range map[string]string{
		"a | b":          `a \| b`,
		`regex \[x\]`:    `regex \\[x\\]`,
		"expected <int>": "expected &lt;int&gt;",
		"two\nlines":     "two lines",
	} {
		if got := cell(in); got != want {
			t.Errorf("cell(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestFirstLines(t *testing.T) {
	if got := firstLines("\n  first  \n\n second\nthird"); got != "first / second" {
		t.Errorf("got %q", got)
	}
	long := strings.Repeat("é", maxMessage+10)
	if got := firstLines(long); got != strings.Repeat("é", maxMessage)+"…" {
		t.Errorf("a long message is not cut at %d characters: %d", maxMessage, len([]rune(got)))
	}
}

func TestParseRejectsOtherXML(t *testing.T) {
	if _, err := Parse(strings.NewReader(`<html><body/></html>`)); err == nil {
		t.Error("an HTML page parsed as a JUnit report")
	}
}

func TestRunWritesFile(t *testing.T) {
	out := filepath.Join(t.TempDir(), "summary.md")
	if err := run("testdata/junit.xml", out); err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	if want := Markdown(parseFixture(t)); string(data) != want {
		t.Errorf("%s differs from Markdown's output", out)
	}
	if err := run("testdata/missing.xml", out); err == nil {
		t.Error("a missing report was not an error")
	}
}
