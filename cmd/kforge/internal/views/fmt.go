package views

import (
	"fmt"
	"io"

	"github.com/hashicorp/hcl/v2"
)

// FormatResult is what `kforge fmt` did, or would do, to one file.
type FormatResult struct {
	Path string `json:"path"`
	// Changed says the file was not in canonical form (and, without --check, has been rewritten).
	Changed bool `json:"changed"`
}

// Fmt shows the outcome of `kforge fmt`.
type Fmt interface {
	Result(results []FormatResult, check bool, files map[string]*hcl.File, diags hcl.Diagnostics) error
}

var (
	_ Fmt = (*FmtHuman)(nil)
	_ Fmt = (*FmtJSON)(nil)
)

// FmtHuman names each file that changed (or, with --check, would change), one per line, like gofmt -l.
type FmtHuman struct {
	Out, Err io.Writer
	Term     Terminal
}

func (v *FmtHuman) Result(results []FormatResult, check bool, files map[string]*hcl.File, diags hcl.Diagnostics) error {
	WriteDiagnostics(v.Err, files, v.Term, diags)
	for _, r := range results {
		if r.Changed {
			if _, err := fmt.Fprintln(v.Out, r.Path); err != nil {
				return err
			}
		}
	}
	return nil
}

// FmtJSON prints one JSON document.
type FmtJSON struct {
	Out io.Writer
}

// FmtDocument is the JSON shape of `kforge fmt --json`.
type FmtDocument struct {
	FormatVersion string         `json:"format_version"`
	Check         bool           `json:"check"`
	Files         []FormatResult `json:"files"`
	Diagnostics   []Diagnostic   `json:"diagnostics"`
}

func (v *FmtJSON) Result(results []FormatResult, check bool, _ map[string]*hcl.File, diags hcl.Diagnostics) error {
	if results == nil {
		results = []FormatResult{}
	}
	return writeJSON(v.Out, FmtDocument{FormatVersion: FormatVersion, Check: check, Files: results, Diagnostics: JSONDiagnostics(diags)})
}
