package main

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"

	"github.com/kforge/kforge/cmd/kforge/internal/views"
	"github.com/kforge/kforge/internal/golden"
)

type result struct {
	code           int
	stdout, stderr string
}

// kforge runs the CLI in-process, as a user would from the shell, with its own environment.
func kforge(t *testing.T, env []string, stdin string, args ...string) result {
	t.Helper()
	var out, errOut bytes.Buffer
	code := run(args, strings.NewReader(stdin), &out, &errOut, env)
	return result{code: code, stdout: out.String(), stderr: errOut.String()}
}

const examplesDir = "../../examples"

// TestExamplesAreValid loads every example configuration the README points at, so they cannot go stale.
func TestExamplesAreValid(t *testing.T) {
	dirs, _ := filepath.Glob(filepath.Join(examplesDir, "*"))
	if len(dirs) < 4 {
		t.Fatalf("examples: %v", dirs)
	}
	for _, dir := range dirs {
		t.Run(filepath.Base(dir), func(t *testing.T) {
			r := kforge(t, nil, "", "validate", dir)
			if r.code != 0 || !strings.Contains(r.stdout, "The configuration is valid") {
				t.Fatalf("exit %d\n%s%s", r.code, r.stdout, r.stderr)
			}
			if _, err := os.Stat(filepath.Join(dir, "README.md")); err != nil {
				t.Errorf("example has no README: %v", err)
			}
		})
	}
	if r := kforge(t, nil, "", "fmt", "--check", "--recursive", examplesDir); r.code != 0 {
		t.Errorf("examples are not formatted (exit %d): %s%s", r.code, r.stdout, r.stderr)
	}
}

func TestValidateHASummary(t *testing.T) {
	r := kforge(t, nil, "", "validate", filepath.Join(examplesDir, "ha"))
	if r.code != 0 || r.stderr != "" {
		t.Fatalf("exit %d, stderr %q", r.code, r.stderr)
	}
	golden.Check(t, filepath.Join("testdata", "validate-ha.txt"), r.stdout)

	r = kforge(t, nil, "", "validate", "--json", filepath.Join(examplesDir, "ha"))
	if r.code != 0 {
		t.Fatalf("exit %d: %s", r.code, r.stderr)
	}
	golden.Check(t, filepath.Join("testdata", "validate-ha.json"), r.stdout)
}

// locationRe finds the "on FILE:LINE:COL" header of each diagnostic.
var locationRe = regexp.MustCompile(`(?m)^(Error|Warning): (.+)\n\n  on ([^:\s]+):(\d+):(\d+)`)

// TestValidateReportsEveryMistakeOnce: one run, mistakes in two files, each with file:line, and the JSON
// output lists exactly the same diagnostics.
func TestValidateReportsEveryMistakeOnce(t *testing.T) {
	dir := "../../config/testdata/invalid/two-files"
	r := kforge(t, nil, "", "validate", dir)
	if r.code != 1 || r.stdout != "" {
		t.Fatalf("exit %d, stdout %q", r.code, r.stdout)
	}
	golden.Check(t, filepath.Join("testdata", "validate-two-files.txt"), r.stderr)
	var human []string
	files := map[string]bool{}
	for _, m := range locationRe.FindAllStringSubmatch(r.stderr, -1) {
		human = append(human, strings.ToLower(m[1])+" "+m[3]+":"+m[4]+":"+m[5]+" "+m[2])
		files[m[3]] = true
	}
	if len(human) < 5 || len(files) != 2 {
		t.Fatalf("want at least 5 diagnostics in 2 files, got %d in %d:\n%s", len(human), len(files), r.stderr)
	}

	r = kforge(t, nil, "", "validate", "-json", dir)
	if r.code != 1 {
		t.Fatalf("json: exit %d", r.code)
	}
	var doc views.ValidateDocument
	if err := json.Unmarshal([]byte(r.stdout), &doc); err != nil {
		t.Fatalf("json: %v\n%s", err, r.stdout)
	}
	var fromJSON []string
	for _, d := range doc.Diagnostics {
		if d.Range == nil {
			t.Fatalf("diagnostic without range: %+v", d)
		}
		fromJSON = append(fromJSON, d.Severity+" "+d.Range.Filename+":"+itoa(d.Range.Start.Line)+":"+itoa(d.Range.Start.Column)+" "+d.Summary)
	}
	sort.Strings(human)
	sort.Strings(fromJSON)
	if strings.Join(human, "\n") != strings.Join(fromJSON, "\n") {
		t.Errorf("human and JSON disagree:\n%s\n---\n%s", strings.Join(human, "\n"), strings.Join(fromJSON, "\n"))
	}
	if doc.Valid || doc.ErrorCount != len(doc.Diagnostics) || doc.Cluster != nil {
		t.Errorf("doc = %+v", doc)
	}
}

func itoa(n int) string {
	b, _ := json.Marshal(n)
	return string(b)
}

// TestVariablesFromFlagsAndEnvironment uses the single-dash spelling Terraform users type.
func TestVariablesFromFlagsAndEnvironment(t *testing.T) {
	pool := filepath.Join(examplesDir, "pool")
	count := func(r result) string {
		m := regexp.MustCompile(`worker\s+(\d+)`).FindStringSubmatch(r.stdout)
		if r.code != 0 || m == nil {
			t.Fatalf("exit %d\n%s%s", r.code, r.stdout, r.stderr)
		}
		return m[1]
	}
	if got := count(kforge(t, nil, "", "validate", pool)); got != "20" { // size.kfvars
		t.Errorf("from kfvars: %s workers", got)
	}
	env := []string{"KFORGE_VAR_workers=7"}
	if got := count(kforge(t, env, "", "validate", pool)); got != "7" {
		t.Errorf("from the environment: %s workers", got)
	}
	if got := count(kforge(t, env, "", "validate", "-var", "workers=100", pool)); got != "100" {
		t.Errorf("from -var: %s workers", got)
	}
	if got := count(kforge(t, env, "", "-var=workers=3", "validate", "-c", pool)); got != "3" {
		t.Errorf("from -var= before the command, with -c: %s workers", got)
	}
}

func TestFmt(t *testing.T) {
	dir := t.TempDir()
	messy := "cluster \"x\" {\npod_cidr=\"198.19.0.0/16\"\n    service_cidr   = \"198.18.128.0/20\"\n}\n"
	tidy := "cluster \"x\" {\n  pod_cidr     = \"198.19.0.0/16\"\n  service_cidr = \"198.18.128.0/20\"\n}\n"
	broken := "cluster \"x\" {\n  pod_cidr = \n"
	write := func(name, content string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), 0o640); err != nil {
			t.Fatal(err)
		}
		return p
	}
	read := func(p string) string {
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}
	messyPath := write("a.hcl", messy)
	tidyPath := write("b.hcl", tidy)
	varsPath := write("c.kfvars", "workers=3\n")

	r := kforge(t, nil, "", "fmt", "--check", dir)
	if r.code != 3 || r.stdout != messyPath+"\n"+varsPath+"\n" {
		t.Fatalf("check: exit %d, stdout %q", r.code, r.stdout)
	}
	if read(messyPath) != messy {
		t.Fatal("--check changed a file")
	}

	r = kforge(t, nil, "", "fmt", dir)
	if r.code != 0 || r.stdout != messyPath+"\n"+varsPath+"\n" {
		t.Fatalf("fmt: exit %d, stdout %q, stderr %q", r.code, r.stdout, r.stderr)
	}
	if got := read(messyPath); got != tidy {
		t.Errorf("rewritten:\n%s\nwant:\n%s", got, tidy)
	}
	if got := read(varsPath); got != "workers = 3\n" {
		t.Errorf("kfvars rewritten as %q", got)
	}
	if st, _ := os.Stat(messyPath); st.Mode().Perm() != 0o640 {
		t.Errorf("mode changed to %#o", st.Mode().Perm())
	}
	if read(tidyPath) != tidy {
		t.Error("an already formatted file changed")
	}
	if r := kforge(t, nil, "", "fmt", "--check", dir); r.code != 0 || r.stdout != "" {
		t.Errorf("second check: exit %d, stdout %q", r.code, r.stdout)
	}
	leftovers, _ := filepath.Glob(filepath.Join(dir, ".*tmp"))
	if len(leftovers) != 0 {
		t.Errorf("temporary files left: %v", leftovers)
	}

	brokenPath := write("d.hcl", broken)
	r = kforge(t, nil, "", "fmt", brokenPath)
	if r.code != 1 || !strings.Contains(r.stderr, brokenPath+":2:14") || read(brokenPath) != broken {
		t.Errorf("broken file: exit %d, stderr %q", r.code, r.stderr)
	}

	r = kforge(t, nil, messy, "fmt", "-")
	if r.code != 0 || r.stdout != tidy {
		t.Errorf("stdin: exit %d, stdout %q", r.code, r.stdout)
	}

	r = kforge(t, nil, "", "fmt", "--check", "--json", messyPath)
	var doc views.FmtDocument
	if err := json.Unmarshal([]byte(r.stdout), &doc); err != nil || r.code != 0 || len(doc.Files) != 1 || doc.Files[0].Changed {
		t.Errorf("json: exit %d, %v, %s", r.code, err, r.stdout)
	}
}

func TestVersion(t *testing.T) {
	r := kforge(t, nil, "", "version", "--json")
	var v views.VersionInfo
	if err := json.Unmarshal([]byte(r.stdout), &v); err != nil || r.code != 0 {
		t.Fatalf("exit %d, %v: %s", r.code, err, r.stdout)
	}
	if v.Version == "" || !strings.HasPrefix(v.GoVersion, "go") || v.DefaultKubernetesVersion != "v1.37.2" {
		t.Errorf("version = %+v", v)
	}
}

func TestUsageErrors(t *testing.T) {
	for _, args := range [][]string{{"nonsense"}, {"validate", "a", "b"}, {"validate", "--bogus"}} {
		r := kforge(t, nil, "", args...)
		if r.code != 1 || !strings.HasPrefix(r.stderr, "Error: ") {
			t.Errorf("%v: exit %d, stderr %q", args, r.code, r.stderr)
		}
	}
	r := kforge(t, nil, "", "validate", filepath.Join(t.TempDir(), "missing"))
	if r.code != 1 || !strings.Contains(r.stderr, "no such file or directory") {
		t.Errorf("missing path: exit %d, stderr %q", r.code, r.stderr)
	}
}

func TestNormalizeArgs(t *testing.T) {
	got := normalizeArgs([]string{"-var", "a=1", "-var=b=2", "-json", "-c", "x", "-v", "--", "-var"})
	want := []string{"--var", "a=1", "--var=b=2", "--json", "-c", "x", "-v", "--", "-var"}
	if strings.Join(got, " ") != strings.Join(want, " ") {
		t.Errorf("got %v", got)
	}
}
