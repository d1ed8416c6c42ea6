package funcs

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hclsyntax"
	"github.com/zclconf/go-cty/cty"
	"github.com/zclconf/go-cty/cty/function"
)

// eval evaluates src the way a config attribute would be.
func eval(t *testing.T, funcs map[string]function.Function, src string) (cty.Value, hcl.Diagnostics) {
	t.Helper()
	expr, diags := hclsyntax.ParseExpression([]byte(src), "test.hcl", hcl.InitialPos)
	if diags.HasErrors() {
		t.Fatalf("parsing %s: %s", src, diags.Error())
	}
	return expr.Value(&hcl.EvalContext{Functions: funcs})
}

type evalCase struct {
	expr string
	want cty.Value
	// wantErr, if set, must appear in the diagnostic detail.
	wantErr string
}

func runEvalCases(t *testing.T, funcs map[string]function.Function, tests []evalCase) {
	t.Helper()
	for _, tt := range tests {
		got, diags := eval(t, funcs, tt.expr)
		if tt.wantErr != "" {
			if !diags.HasErrors() {
				t.Errorf("%s = %#v, want error containing %q", tt.expr, got, tt.wantErr)
				continue
			}
			if detail := diags[0].Detail; !strings.Contains(detail, tt.wantErr) {
				t.Errorf("%s: error %q does not contain %q", tt.expr, detail, tt.wantErr)
			}
			continue
		}
		if diags.HasErrors() {
			t.Errorf("%s: unexpected error: %s", tt.expr, diags.Error())
			continue
		}
		if !got.Type().Equals(tt.want.Type()) || !got.Equals(tt.want).True() {
			t.Errorf("%s = %#v, want %#v", tt.expr, got, tt.want)
		}
	}
}

func strList(s ...string) cty.Value {
	vals := make([]cty.Value, 0, len(s))
	for _, v := range s {
		vals = append(vals, cty.StringVal(v))
	}
	return cty.ListVal(vals)
}

func TestLibraryNames(t *testing.T) {
	want := []string{
		"abs", "abspath",
		"base64decode", "base64encode",
		"can", "ceil", "chomp", "chunklist",
		"cidrhost", "cidrnetmask", "cidrsubnet", "cidrsubnets",
		"coalesce", "coalescelist", "compact", "concat", "contains", "csvdecode",
		"distinct",
		"element",
		"file", "fileexists", "flatten", "floor", "format", "formatdate", "formatlist",
		"indent", "index",
		"join", "jsondecode", "jsonencode",
		"keys",
		"length", "log", "lookup", "lower",
		"max", "merge", "min",
		"parseint", "pathexpand", "pow",
		"range", "regex", "regexall", "replace", "reverse",
		"setintersection", "setproduct", "setsubtract", "setunion",
		"sha256", "signum", "slice", "sort", "split", "strrev", "substr",
		"timeadd", "title",
		"tobool", "tolist", "tomap", "tonumber", "toset", "tostring",
		"trim", "trimprefix", "trimspace", "trimsuffix", "try",
		"upper",
		"values",
		"zipmap",
	}
	if !slices.IsSorted(want) {
		t.Fatal("the expected list itself is not sorted")
	}
	lib := Library(Paths{Dir: t.TempDir()})
	var got []string
	for name, f := range lib {
		got = append(got, name)
		if f == (function.Function{}) {
			t.Errorf("function %q is the zero Function", name)
		}
	}
	slices.Sort(got)
	if !slices.Equal(got, want) {
		t.Errorf("Library names:\n got %q\nwant %q", got, want)
	}
}

func TestStdlibFunctions(t *testing.T) {
	runEvalCases(t, Library(Paths{Dir: t.TempDir()}), []evalCase{
		{expr: `format("w%03d", 7)`, want: cty.StringVal("w007")},
		{expr: `range(1, 4)`, want: cty.ListVal([]cty.Value{cty.NumberIntVal(1), cty.NumberIntVal(2), cty.NumberIntVal(3)})},
		{expr: `upper("kforge")`, want: cty.StringVal("KFORGE")},
		{expr: `join(",", ["a", "b"])`, want: cty.StringVal("a,b")},
		{expr: `replace("a-b-c", "-", ".")`, want: cty.StringVal("a.b.c")},
		{expr: `strrev("abc")`, want: cty.StringVal("cba")},
		{expr: `reverse(["x", "y"])`, want: cty.TupleVal([]cty.Value{cty.StringVal("y"), cty.StringVal("x")})},
		{expr: `sort(["b", "a"])`, want: strList("a", "b")},
		{expr: `length([1, 2, 3])`, want: cty.NumberIntVal(3)},
		{expr: `max(3, 9, 2)`, want: cty.NumberIntVal(9)},
		{expr: `lookup({a = "x"}, "b", "dflt")`, want: cty.StringVal("dflt")},
		{expr: `jsonencode({a = 1})`, want: cty.StringVal(`{"a":1}`)},
		{expr: `tonumber("42")`, want: cty.NumberIntVal(42)},
		{expr: `try(jsondecode("{"), "fallback")`, want: cty.StringVal("fallback")},
		{expr: `can(jsondecode("{"))`, want: cty.False},
		{expr: `can(cidrhost("10.0.0.0/8", 1))`, want: cty.True},
	})
}

func TestCIDRFunctions(t *testing.T) {
	runEvalCases(t, Library(Paths{Dir: t.TempDir()}), []evalCase{
		{expr: `cidrhost("198.18.0.0/24", 10)`, want: cty.StringVal("198.18.0.10")},
		{expr: `cidrhost("198.18.0.0/24", -1)`, want: cty.StringVal("198.18.0.255")},
		{expr: `cidrhost("2001:db8::/64", 255)`, want: cty.StringVal("2001:db8::ff")},
		{expr: `cidrhost("198.18.0.0/24", 256)`, wantErr: "host number 256 is outside 198.18.0.0/24"},
		{expr: `cidrhost("198.18.0.0/24", 1.5)`, wantErr: "invalid host number: 1.5 is not a whole number"},
		{expr: `cidrhost("198.18.0.0/24", 1e30)`, wantErr: "invalid host number: 1e+30 is too far from zero"},
		{expr: `cidrhost("198.18.0.5/24", 1)`, wantErr: "198.18.0.5/24 has host bits set: the network is 198.18.0.0/24"},
		{expr: `cidrhost("nodes", 1)`, wantErr: `"nodes" is not a valid CIDR: the prefix length is missing`},

		{expr: `cidrsubnet("198.19.0.0/16", 8, 3)`, want: cty.StringVal("198.19.3.0/24")},
		{expr: `cidrsubnet("2001:db8::/32", 16, 1)`, want: cty.StringVal("2001:db8:1::/48")},
		{expr: `cidrsubnet("198.19.0.0/16", 8, 256)`, wantErr: "subnet number 256 is outside 198.19.0.0/16"},
		{expr: `cidrsubnet("198.19.0.0/16", 17, 0)`, wantErr: "would give a /33"},
		{expr: `cidrsubnet("198.19.0.0/16", 8, -1)`, wantErr: "subnet number must not be negative"},
		{expr: `cidrsubnet("198.19.0.0/16", 0.5, 0)`, wantErr: "invalid newbits: 0.5 is not a whole number"},
		{expr: `cidrsubnet("198.19.0.0/16", 4294967304, 0)`, wantErr: "invalid newbits: 4294967304 is too far from zero"},

		{expr: `cidrsubnets("10.1.0.0/16", 4, 4, 8, 4)`, want: strList("10.1.0.0/20", "10.1.16.0/20", "10.1.32.0/24", "10.1.48.0/20")},
		{expr: `cidrsubnets("fd00::/48", 16, 16)`, want: strList("fd00::/64", "fd00:0:0:1::/64")},
		{expr: `cidrsubnets("10.1.0.0/16")`, want: cty.ListValEmpty(cty.String)},
		{expr: `cidrsubnets("10.0.0.0/24", 1, 1, 1)`, wantErr: "subnet 3 of 3 (a /25) does not fit in 10.0.0.0/24"},
		{expr: `cidrsubnets("10.0.0.0/24", 1, 2.5)`, wantErr: "invalid newbits: 2.5 is not a whole number"},

		{expr: `cidrnetmask("172.16.0.0/12")`, want: cty.StringVal("255.240.0.0")},
		{expr: `cidrnetmask("10.0.0.0/8")`, want: cty.StringVal("255.0.0.0")},
		{expr: `cidrnetmask("2001:db8::/32")`, wantErr: "netmasks only exist for IPv4 prefixes"},
		{expr: `cidrnetmask("10.0.0.0/33")`, wantErr: `"10.0.0.0/33" is not a valid CIDR`},
	})
}

func TestEncodingFunctions(t *testing.T) {
	runEvalCases(t, Library(Paths{Dir: t.TempDir()}), []evalCase{
		{expr: `base64encode("kforge")`, want: cty.StringVal("a2Zvcmdl")},
		{expr: `base64encode("")`, want: cty.StringVal("")},
		{expr: `base64decode("a2Zvcmdl")`, want: cty.StringVal("kforge")},
		{expr: `base64decode("a2Zvcm")`, wantErr: "not valid base64"},
		// "/w==" is the single byte 0xff.
		{expr: `base64decode("/w==")`, wantErr: "the decoded bytes are not UTF-8 text"},
		{expr: `sha256("")`, want: cty.StringVal("e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855")},
		{expr: `sha256("abc")`, want: cty.StringVal("ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")},
	})
}

func TestIndex(t *testing.T) {
	runEvalCases(t, Library(Paths{Dir: t.TempDir()}), []evalCase{
		{expr: `index(["a", "b", "c"], "c")`, want: cty.NumberIntVal(2)},
		{expr: `index(["a", "b", "a"], "a")`, want: cty.NumberIntVal(0)},
		{expr: `index(tolist([10, 20]), 20)`, want: cty.NumberIntVal(1)},
		{expr: `index(["a"], "z")`, wantErr: `the list does not contain "z"`},
		{expr: `index([1], 2)`, wantErr: `the list does not contain 2`},
		{expr: `index("abc", "a")`, wantErr: "index needs a list or tuple, not string"},
	})
}

func TestFileFunctions(t *testing.T) {
	home := t.TempDir()
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "x.txt"), "hello\n")
	writeFile(t, filepath.Join(dir, "sub", "y.txt"), "nested")
	writeFile(t, filepath.Join(dir, "bin.dat"), "\xff\xfe")
	writeFile(t, filepath.Join(home, "h.txt"), "from home")

	runEvalCases(t, Library(Paths{Dir: dir, Home: home}), []evalCase{
		{expr: `file("x.txt")`, want: cty.StringVal("hello\n")},
		{expr: `file("sub/y.txt")`, want: cty.StringVal("nested")},
		{expr: `file("sub/../x.txt")`, want: cty.StringVal("hello\n")},
		{expr: `file("` + filepath.Join(dir, "x.txt") + `")`, want: cty.StringVal("hello\n")},
		{expr: `file("~/h.txt")`, want: cty.StringVal("from home")},
		{expr: `file("missing.txt")`, wantErr: "no file exists at " + filepath.Join(dir, "missing.txt")},
		{expr: `file("bin.dat")`, wantErr: filepath.Join(dir, "bin.dat") + " is not valid UTF-8 text"},
		{expr: `file("sub")`, wantErr: "cannot read " + filepath.Join(dir, "sub") + ": is a directory"},
		{expr: `file("~bob/x")`, wantErr: "only ~ for the current user's home directory is supported"},

		{expr: `fileexists("x.txt")`, want: cty.True},
		{expr: `fileexists("sub/y.txt")`, want: cty.True},
		{expr: `fileexists("~/h.txt")`, want: cty.True},
		{expr: `fileexists("nope.txt")`, want: cty.False},
		{expr: `fileexists("sub")`, wantErr: filepath.Join(dir, "sub") + " is a directory, not a file"},

		{expr: `pathexpand("~/a/b")`, want: cty.StringVal(home + "/a/b")},
		{expr: `pathexpand("~")`, want: cty.StringVal(home)},
		{expr: `pathexpand("a/~")`, want: cty.StringVal("a/~")},
		{expr: `pathexpand("/etc/~")`, want: cty.StringVal("/etc/~")},
		{expr: `pathexpand("~bob/x")`, wantErr: "~bob/x: only ~ for the current user's home directory is supported, not ~user"},

		{expr: `abspath("x.txt")`, want: cty.StringVal(dir + "/x.txt")},
		{expr: `abspath("a/./b/..")`, want: cty.StringVal(dir + "/a")},
		{expr: `abspath("../elsewhere")`, want: cty.StringVal(filepath.Dir(dir) + "/elsewhere")},
		{expr: `abspath("/etc/hosts")`, want: cty.StringVal("/etc/hosts")},
		{expr: `abspath("~/k")`, want: cty.StringVal(home + "/k")},
	})
	runEvalCases(t, Library(Paths{Dir: dir}), []evalCase{
		{expr: `file("~/h.txt")`, wantErr: "cannot expand ~ in ~/h.txt: no home directory is known"},
	})
}

func TestRelativeBaseDir(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "cfg", "y.txt"), "relative")
	t.Chdir(dir)
	lib := Library(Paths{Dir: "cfg"})
	// Moving away afterwards must not change what "y.txt" means.
	t.Chdir(t.TempDir())
	runEvalCases(t, lib, []evalCase{
		{expr: `file("y.txt")`, want: cty.StringVal("relative")},
		{expr: `abspath("y.txt")`, want: cty.StringVal(filepath.Join(dir, "cfg", "y.txt"))},
	})
}

// TestDiagnosticSubject checks that an argument error is reported at the
// argument, which is where a config author needs to look.
func TestDiagnosticSubject(t *testing.T) {
	_, diags := eval(t, Library(Paths{Dir: t.TempDir()}), `file("missing.txt")`)
	if len(diags) != 1 {
		t.Fatalf("got %d diagnostics, want 1: %s", len(diags), diags.Error())
	}
	// `file("` takes columns 1-6; HCL marks the literal's contents, the 11
	// bytes of missing.txt, which span columns 7 up to (not including) 18.
	subj := diags[0].Subject
	if subj == nil || subj.Start.Column != 7 || subj.End.Column != 18 {
		t.Errorf("diagnostic subject = %v, want columns 7 to 18", subj)
	}
}

func writeFile(t *testing.T, path, content string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}
