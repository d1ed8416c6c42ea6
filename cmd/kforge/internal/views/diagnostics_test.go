package views

import (
	"bytes"
	"testing"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hclsyntax"
)

func TestWriteDiagnosticsUnderlinesTheSpan(t *testing.T) {
	src := "host \"é\" {\n\taddress = \"x y\"\n  roles = [\n    \"a\",\n    \"b\",\n    \"c\",\n  ]\n}\n"
	f, diags := hclsyntax.ParseConfig([]byte(src), "h.hcl", hcl.InitialPos)
	if diags.HasErrors() {
		t.Fatal(diags)
	}
	files := map[string]*hcl.File{"h.hcl": f}
	body := f.Body.(*hclsyntax.Body).Blocks[0].Body
	addr := body.Attributes["address"].Expr.Range()
	roles := body.Attributes["roles"].Expr.Range()
	var out bytes.Buffer
	WriteDiagnostics(&out, files, Terminal{}, hcl.Diagnostics{
		{Severity: hcl.DiagError, Summary: "Invalid host address", Detail: "bad", Subject: &addr},
		{Severity: hcl.DiagWarning, Summary: "Roles", Detail: "a long detail that wraps", Subject: &roles},
		{Severity: hcl.DiagError, Summary: "No location"},
	})
	want := "Error: Invalid host address\n\n" +
		"  on h.hcl:2:12, in host \"é\":\n" +
		"  2 | \taddress = \"x y\"\n" +
		"    | \t          ^^^^^\n\n" +
		"bad\n\n" +
		"Warning: Roles\n\n" +
		"  on h.hcl:3:11, in host \"é\":\n" +
		"  3 |   roles = [\n" +
		"  4 |     \"a\",\n" +
		"  5 |     \"b\",\n\n" +
		"a long detail that wraps\n\n" +
		"Error: No location\n\n"
	if out.String() != want {
		t.Errorf("got:\n%s\nwant:\n%s", out.String(), want)
	}

	out.Reset()
	WriteDiagnostics(&out, files, Terminal{Color: true, Width: 10}, hcl.Diagnostics{
		{Severity: hcl.DiagError, Summary: "S", Detail: "a long detail that wraps"},
	})
	want = "\x1b[31m\x1b[1mError:\x1b[0m \x1b[1mS\x1b[0m\n\na long\ndetail\nthat wraps\n\n"
	if out.String() != want {
		t.Errorf("colour and wrapping: got %q", out.String())
	}
}

func TestEnvSet(t *testing.T) {
	for env, want := range map[string]bool{"NO_COLOR=1": true, "NO_COLOR=": false, "NO_COLORS=1": false, "X=NO_COLOR=1": false} {
		if got := envSet([]string{env}, "NO_COLOR"); got != want {
			t.Errorf("%q: %v", env, got)
		}
	}
}
