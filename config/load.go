package config

import (
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/gohcl"
	"github.com/hashicorp/hcl/v2/hclparse"
	"github.com/zclconf/go-cty/cty"

	"github.com/kforge/kforge/config/funcs"
)

// Options say what to load and which variable values to apply on top of the defaults.
type Options struct {
	// Path is a configuration file, or a directory whose *.hcl files are loaded and merged.
	Path string
	// Vars are -var NAME=VALUE arguments in command-line order; the last one for a name wins.
	Vars []string
	// VarFiles are extra variable files, applied after the *.kfvars files found in the config directory.
	VarFiles []string
	// Env is the environment as "NAME=value"; only KFORGE_VAR_<name> entries are read.
	Env []string
	// Home replaces a leading ~ in paths; a path with ~ is an error when it is empty.
	Home string
	// Providers names the providers this build of kforge has; a provider block naming another is an error.
	Providers []string
}

// File extensions kforge reads from a configuration directory.
const (
	ConfigExt = ".hcl"
	VarsExt   = ".kfvars"
)

// Loader parses and decodes configurations; it keeps the parsed files so that diagnostics can be printed with
// the source lines they point at.
type Loader struct {
	parser *hclparse.Parser
}

// NewLoader returns a Loader with no files parsed yet.
func NewLoader() *Loader { return &Loader{parser: hclparse.NewParser()} }

// Files returns every file parsed so far, by name, so that diagnostics can be printed with their source lines.
func (l *Loader) Files() map[string]*hcl.File { return l.parser.Files() }

// Load reads, evaluates and validates the configuration at opts.Path. The Cluster is nil when any diagnostic
// is an error; warnings come back alongside a valid Cluster.
func (l *Loader) Load(opts Options) (*Cluster, hcl.Diagnostics) {
	dir, files, varFiles, err := discover(opts.Path)
	if err != nil {
		return nil, hcl.Diagnostics{{Severity: hcl.DiagError, Summary: "Cannot read configuration", Detail: err.Error()}}
	}
	var diags hcl.Diagnostics
	var parsed []*hcl.File
	for _, name := range files {
		f, ds := l.parser.ParseHCLFile(name)
		diags = append(diags, ds...)
		if f != nil {
			parsed = append(parsed, f)
		}
	}
	if diags.HasErrors() {
		return nil, diags // decoding half-parsed files would only add confusing follow-on errors
	}
	blocks := map[string][]*hcl.Block{} // by type, in file order: merging files is concatenating their blocks
	for _, f := range parsed {
		c, ds := f.Body.Content(rootSchema)
		diags = append(diags, ds...)
		for _, b := range c.Blocks {
			blocks[b.Type] = append(blocks[b.Type], b)
		}
	}

	paths := funcs.Paths{Dir: dir, Home: opts.Home}
	e := &evaluator{paths: paths, functions: funcs.Library(paths)}
	vars, ds := l.variables(e, blocks["variable"], append(varFiles, opts.VarFiles...), opts.Env, opts.Vars)
	diags = append(diags, ds...)
	locals, ds := e.locals(vars, blocks["locals"])
	diags = append(diags, ds...)
	ctx := &hcl.EvalContext{
		Variables: map[string]cty.Value{"var": cty.ObjectVal(vars), "local": cty.ObjectVal(locals)},
		Functions: e.functions,
	}

	b := &builder{evaluator: e, ctx: ctx, cluster: &Cluster{Dir: dir, Files: files},
		declErrors: diags.HasErrors(), unknown: map[hcl.Range]bool{}}
	b.decode(blocks, opts.Providers)
	diags = append(diags, b.diags...)
	diags = sortDiagnostics(dedupe(diags))
	if diags.HasErrors() {
		return nil, diags
	}
	return b.cluster, diags
}

// discover lists the configuration files and variable files at path, sorted so that merging is deterministic.
func discover(path string) (dir string, files, varFiles []string, err error) {
	if path == "" {
		path = "."
	}
	st, err := os.Stat(path)
	if err != nil {
		return "", nil, nil, fmt.Errorf("configuration path: %w", err)
	}
	if !st.IsDir() {
		return filepath.Dir(path), []string{path}, nil, nil
	}
	entries, err := os.ReadDir(path)
	if err != nil {
		return "", nil, nil, fmt.Errorf("configuration directory: %w", err)
	}
	for _, e := range entries {
		if e.IsDir() || strings.HasPrefix(e.Name(), ".") {
			continue
		}
		switch filepath.Ext(e.Name()) {
		case ConfigExt:
			files = append(files, filepath.Join(path, e.Name()))
		case VarsExt:
			varFiles = append(varFiles, filepath.Join(path, e.Name()))
		}
	}
	if len(files) == 0 {
		return "", nil, nil, fmt.Errorf("no *%s files in %s", ConfigExt, path)
	}
	sort.Strings(files)
	sort.Strings(varFiles)
	return path, files, varFiles, nil
}

// builder decodes the non-declaration blocks into the Cluster, collecting every problem on the way.
type builder struct {
	*evaluator
	ctx         *hcl.EvalContext
	cluster     *Cluster
	diags       hcl.Diagnostics
	sshDefaults sshBlock

	// declErrors says a variable or local is wrong; values built from it are unknown, the hosts may be
	// incomplete, and unknown tracks the expressions whose value is unknown so that nothing else is said about them.
	declErrors bool
	unknown    map[hcl.Range]bool
}

func (b *builder) add(ds hcl.Diagnostics) {
	for _, d := range ds {
		if d.Context != nil && d.Summary == "Unsuitable value type" && strings.HasSuffix(d.Detail, "value must be known") {
			b.unknown[*d.Context] = true
			continue
		}
		b.diags = append(b.diags, d)
	}
}

func (b *builder) errorAt(rng hcl.Range, summary, detail string) {
	if !b.unknown[rng] {
		b.diags = append(b.diags, errorAt(rng, summary, detail))
	}
}

func (b *builder) warnAt(rng hcl.Range, summary, detail string) {
	if !b.unknown[rng] {
		r := rng
		b.diags = append(b.diags, &hcl.Diagnostic{Severity: hcl.DiagWarning, Summary: summary, Detail: detail, Subject: &r})
	}
}

func (b *builder) decode(blocks map[string][]*hcl.Block, known []string) {
	clusters := blocks["cluster"]
	switch {
	case len(clusters) == 0:
		b.diags = append(b.diags, &hcl.Diagnostic{Severity: hcl.DiagError, Summary: "Missing cluster block",
			Detail: `The configuration needs exactly one cluster "NAME" { … } block.`})
	case len(clusters) > 1:
		for _, c := range clusters[1:] {
			b.duplicate(c, clusters[0])
		}
	}
	for _, t := range []string{"ssh", "artifacts", "backend"} {
		if bs := blocks[t]; len(bs) > 1 {
			for _, c := range bs[1:] {
				b.duplicate(c, bs[0])
			}
		}
	}

	if bs := blocks["ssh"]; len(bs) > 0 {
		b.add(gohcl.DecodeBody(bs[0].Body, b.ctx, &b.sshDefaults))
	}
	b.sshSettings(b.sshDefaults) // reports mistakes in the defaults even when no host uses them

	if len(clusters) > 0 {
		var raw clusterBlock
		ds := gohcl.DecodeBody(clusters[0].Body, b.ctx, &raw)
		b.add(ds)
		b.cluster.Name = clusters[0].Labels[0]
		b.cluster.DeclRange = clusters[0].DefRange
		b.clusterSettings(raw, clusters[0].LabelRanges[0])
	}
	for _, hb := range blocks["host"] {
		b.hosts(hb)
	}
	var art artifactsBlock
	artRange := hcl.Range{}
	if bs := blocks["artifacts"]; len(bs) > 0 {
		b.add(gohcl.DecodeBody(bs[0].Body, b.ctx, &art))
		artRange = bs[0].DefRange
	}
	b.artifacts(art, artRange)
	b.backend(blocks["backend"])
	b.providers(blocks["provider"], known)
	if !b.declErrors {
		b.diags = append(b.diags, topology(b.cluster, len(b.cluster.Providers) == 0)...)
	}
}

// path resolves a path attribute; a path that cannot be resolved is reported at rng.
func (b *builder) path(p string, rng hcl.Range) string {
	resolved, err := b.paths.Resolve(p)
	if err != nil {
		b.errorAt(rng, "Invalid path", err.Error()+".")
		return p
	}
	return resolved
}

func (b *builder) duplicate(block, first *hcl.Block) {
	name := block.Type
	if len(block.Labels) > 0 {
		name = fmt.Sprintf("%s %q", block.Type, block.Labels[0])
	}
	b.errorAt(block.DefRange, "Duplicate "+block.Type+" block",
		fmt.Sprintf("Only one %s block is allowed; the first is at %s.", name, first.DefRange))
}

func (b *builder) providers(blocks []*hcl.Block, known []string) {
	seen := map[string]*hcl.Block{}
	for _, pb := range blocks {
		name := pb.Labels[0]
		if first, ok := seen[name]; ok {
			b.duplicate(pb, first)
			continue
		}
		if err := oneOf(name, known); err != nil {
			avail := "this build of kforge has none"
			if len(known) > 0 {
				avail = "available: " + quoteList(known)
			}
			b.errorAt(pb.LabelRanges[0], "Unknown provider", fmt.Sprintf("There is no provider %q (%s).%s", name, avail, didYouMean(name, known)))
			continue
		}
		seen[name] = pb
		b.cluster.Providers = append(b.cluster.Providers, Provider{Name: name, Body: pb.Body, DeclRange: pb.DefRange, EvalContext: b.ctx, Paths: b.paths})
	}
}

// dedupe drops repeated diagnostics: a mistake in a for_each host block is reported once, not once per instance.
func dedupe(diags hcl.Diagnostics) hcl.Diagnostics {
	seen := map[string]bool{}
	var out hcl.Diagnostics
	for _, d := range diags {
		key := fmt.Sprintf("%d|%s|%s|%v", d.Severity, d.Summary, d.Detail, d.Subject)
		if d.Subject != nil {
			key = fmt.Sprintf("%d|%s|%s|%s", d.Severity, d.Summary, d.Detail, d.Subject.String())
		}
		if seen[key] {
			continue
		}
		seen[key] = true
		out = append(out, d)
	}
	return out
}

// sortDiagnostics orders diagnostics as a reader goes through the files: those without a location first, then
// by file and position.
func sortDiagnostics(diags hcl.Diagnostics) hcl.Diagnostics {
	sort.SliceStable(diags, func(i, j int) bool {
		a, b := diags[i].Subject, diags[j].Subject
		switch {
		case a == nil || b == nil:
			return a == nil && b != nil
		case a.Filename != b.Filename:
			return a.Filename < b.Filename
		default:
			return a.Start.Byte < b.Start.Byte
		}
	})
	return diags
}
