package main

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"

	"github.com/hashicorp/hcl/v2"
	"github.com/spf13/cobra"

	"github.com/kforge/kforge/cmd/kforge/internal/views"
	"github.com/kforge/kforge/config"
	"github.com/kforge/kforge/internal/atomicfile"
)

func (a *app) fmtCmd() *cobra.Command {
	var check, recursive bool
	cmd := &cobra.Command{
		Use:   "fmt [PATH...]",
		Short: "Rewrite configuration files in canonical HCL layout",
		Long: `Formats *.hcl and *.kfvars files in each PATH (a file or a directory; default: --config, else the
current directory) and prints the name of every file it changed. PATH "-" formats standard input to standard output.
With --check nothing is written: the files that would change are listed and kforge exits 3.
A file that does not parse is reported and left untouched (exit 1).`,
		RunE: func(_ *cobra.Command, args []string) error {
			if len(args) == 0 {
				args = []string{a.configPath}
			}
			if len(args) == 1 && args[0] == "-" {
				return a.fmtStdin()
			}
			var results []views.FormatResult
			var diags hcl.Diagnostics
			files := map[string]*hcl.File{}
			for _, arg := range args {
				paths, err := formatTargets(arg, recursive)
				if err != nil {
					return err
				}
				for _, p := range paths {
					changed, f, ds, err := formatFile(p, check)
					if err != nil {
						return err
					}
					if f != nil {
						files[p] = f
					}
					diags = append(diags, ds...)
					if !ds.HasErrors() {
						results = append(results, views.FormatResult{Path: p, Changed: changed})
					}
				}
			}
			var v views.Fmt = &views.FmtHuman{Out: a.stdout, Err: a.stderr, Term: a.terminal(a.stderr)}
			if a.json {
				v = &views.FmtJSON{Out: a.stdout}
			}
			if err := v.Result(results, check, files, diags); err != nil {
				return err
			}
			if diags.HasErrors() {
				return exitCode(exitError)
			}
			for _, r := range results {
				if check && r.Changed {
					return exitCode(exitFmtChange)
				}
			}
			return nil
		},
	}
	cmd.Flags().BoolVar(&check, "check", false, "list files that need formatting and exit 3; change nothing")
	cmd.Flags().BoolVar(&recursive, "recursive", false, "also format files in subdirectories")
	return cmd
}

func (a *app) fmtStdin() error {
	src, err := io.ReadAll(a.stdin)
	if err != nil {
		return fmt.Errorf("read standard input: %w", err)
	}
	out, f, diags := config.Format(src, "<stdin>")
	if diags.HasErrors() {
		views.WriteDiagnostics(a.stderr, map[string]*hcl.File{"<stdin>": f}, a.terminal(a.stderr), diags)
		return exitCode(exitError)
	}
	_, err = a.stdout.Write(out)
	return err
}

// formatTargets lists the files fmt looks at: the file itself, or the configuration files in a directory.
func formatTargets(path string, recursive bool) ([]string, error) {
	st, err := os.Stat(path)
	if err != nil {
		return nil, err
	}
	if !st.IsDir() {
		return []string{path}, nil
	}
	var out []string
	err = filepath.WalkDir(path, func(p string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			if p != path && (!recursive || d.Name()[0] == '.') {
				return filepath.SkipDir
			}
			return nil
		}
		if ext := filepath.Ext(p); ext == config.ConfigExt || ext == config.VarsExt {
			out = append(out, p)
		}
		return nil
	})
	sort.Strings(out)
	return out, err
}

// formatFile reformats one file; unless check is set, a changed file is replaced atomically with its mode kept.
func formatFile(path string, check bool) (changed bool, f *hcl.File, diags hcl.Diagnostics, err error) {
	src, err := os.ReadFile(path)
	if err != nil {
		return false, nil, nil, err
	}
	out, f, diags := config.Format(src, path)
	if diags.HasErrors() {
		return false, f, diags, nil
	}
	if bytes.Equal(src, out) {
		return false, f, nil, nil
	}
	if !check {
		if err := replaceFile(path, out); err != nil {
			return true, f, nil, err
		}
	}
	return true, f, nil, nil
}

// replaceFile rewrites path atomically, keeping its mode.
func replaceFile(path string, data []byte) error {
	st, err := os.Stat(path)
	if err != nil {
		return err
	}
	return atomicfile.Write(path, data, st.Mode().Perm())
}
