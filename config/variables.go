package config

import (
	"fmt"
	"sort"
	"strings"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/ext/typeexpr"
	"github.com/hashicorp/hcl/v2/gohcl"
	"github.com/hashicorp/hcl/v2/hclsyntax"
	"github.com/zclconf/go-cty/cty"
	"github.com/zclconf/go-cty/cty/convert"
)

// EnvVarPrefix marks environment variables that set configuration variables: KFORGE_VAR_name=value.
const EnvVarPrefix = "KFORGE_VAR_"

type variableDecl struct {
	name  string
	ty    cty.Type
	block *hcl.Block
}

// variables decides every variable's value. Precedence, lowest first: the default in the variable block, the
// *.kfvars files in the config directory (sorted by name), --var-file files in order, KFORGE_VAR_<name> in the
// environment, -var arguments in order. CI sets the environment; a person at a terminal has the last word.
func (l *Loader) variables(e *evaluator, blocks []*hcl.Block, varFiles, env, cliVars []string) (map[string]cty.Value, hcl.Diagnostics) {
	var diags hcl.Diagnostics
	decls := map[string]*variableDecl{}
	values := map[string]cty.Value{}
	for _, blk := range blocks {
		name := blk.Labels[0]
		if !hclsyntax.ValidIdentifier(name) {
			diags = append(diags, errorAt(blk.LabelRanges[0], "Invalid variable name",
				fmt.Sprintf("%q is not a valid name: use letters, digits, underscores and dashes, starting with a letter.", name)))
			continue
		}
		if first, ok := decls[name]; ok {
			diags = append(diags, errorAt(blk.DefRange, "Duplicate variable",
				fmt.Sprintf("Variable %q is already declared at %s.", name, first.block.DefRange)))
			continue
		}
		var raw variableBlock
		if ds := gohcl.DecodeBody(blk.Body, nil, &raw); ds.HasErrors() {
			diags = append(diags, ds...)
			continue
		}
		decl := &variableDecl{name: name, ty: cty.DynamicPseudoType, block: blk}
		decls[name] = decl
		if raw.Type != nil {
			ty, ds := typeexpr.TypeConstraint(raw.Type.Expr)
			diags = append(diags, ds...)
			if ds.HasErrors() {
				continue
			}
			decl.ty = ty
		}
		if raw.Default != nil {
			v, ds := raw.Default.Expr.Value(&hcl.EvalContext{Functions: e.functions})
			diags = append(diags, ds...)
			if !ds.HasErrors() {
				values[name], ds = convertVar(v, decl.ty, name, raw.Default.Expr.Range())
				diags = append(diags, ds...)
			}
		}
	}
	names := make([]string, 0, len(decls))
	for n := range decls {
		names = append(names, n)
	}
	sort.Strings(names)

	for _, path := range varFiles {
		f, ds := l.parser.ParseHCLFile(path)
		diags = append(diags, ds...)
		if f == nil || ds.HasErrors() {
			continue
		}
		attrs, ds := f.Body.JustAttributes()
		diags = append(diags, ds...)
		for _, attr := range sortedAttrs(attrs) {
			decl, ok := decls[attr.Name]
			if !ok {
				diags = append(diags, errorAt(attr.NameRange, "Undeclared variable",
					fmt.Sprintf("%s sets %q, which no variable block declares.%s", path, attr.Name, didYouMean(attr.Name, names))))
				continue
			}
			v, ds := attr.Expr.Value(&hcl.EvalContext{Functions: e.functions})
			diags = append(diags, ds...)
			if !ds.HasErrors() {
				values[attr.Name], ds = convertVar(v, decl.ty, attr.Name, attr.Expr.Range())
				diags = append(diags, ds...)
			}
		}
	}

	for _, kv := range env {
		name, raw, ok := strings.Cut(kv, "=")
		if !ok || !strings.HasPrefix(name, EnvVarPrefix) {
			continue
		}
		name = strings.TrimPrefix(name, EnvVarPrefix)
		// Undeclared ones are ignored: one environment may serve several configurations.
		if decl, ok := decls[name]; ok {
			v, err := parseVarString(raw, decl.ty)
			if err != nil {
				diags = append(diags, plainError("Invalid value for variable",
					fmt.Sprintf("Environment variable %s%s: %s", EnvVarPrefix, name, err)))
				continue
			}
			values[name] = v
		}
	}

	for _, arg := range cliVars {
		name, raw, ok := strings.Cut(arg, "=")
		if !ok {
			diags = append(diags, plainError("Invalid -var option",
				fmt.Sprintf("-var %q: expected NAME=VALUE.", arg)))
			continue
		}
		decl, ok := decls[name]
		if !ok {
			diags = append(diags, plainError("Undeclared variable",
				fmt.Sprintf("-var %q sets %q, which no variable block declares.%s", arg, name, didYouMean(name, names))))
			continue
		}
		v, err := parseVarString(raw, decl.ty)
		if err != nil {
			diags = append(diags, plainError("Invalid value for variable", fmt.Sprintf("-var %q: %s", arg, err)))
			continue
		}
		values[name] = v
	}

	for _, n := range names {
		if _, ok := values[n]; !ok {
			diags = append(diags, errorAt(decls[n].block.DefRange, "No value for required variable",
				fmt.Sprintf("Variable %q has no default: set it with -var %s=…, %s%s=… or a %s file.", n, n, EnvVarPrefix, n, VarsExt)))
			values[n] = cty.UnknownVal(decls[n].ty)
		}
	}
	return values, diags
}

// parseVarString reads a value given as text (-var or the environment): as the string itself when the variable
// is a string or untyped, otherwise as an HCL expression such as ["a", "b"] or { x = 1 }.
func parseVarString(raw string, ty cty.Type) (cty.Value, error) {
	if ty == cty.String || ty == cty.DynamicPseudoType {
		return cty.StringVal(raw), nil
	}
	// A bare word such as "many" parses as a variable reference; either way it is not a literal of the type.
	expr, ds := hclsyntax.ParseExpression([]byte(raw), "<value>", hcl.InitialPos)
	if ds.HasErrors() {
		return cty.NilVal, fmt.Errorf("%q is not a valid %s value", raw, typeexpr.TypeString(ty))
	}
	v, ds := expr.Value(nil)
	if ds.HasErrors() {
		return cty.NilVal, fmt.Errorf("%q is not a valid %s value", raw, typeexpr.TypeString(ty))
	}
	out, err := convert.Convert(v, ty)
	if err != nil {
		return cty.NilVal, fmt.Errorf("%q is not a valid %s value: %s", raw, typeexpr.TypeString(ty), err)
	}
	return out, nil
}

// convertVar converts a variable's value to its declared type. A value that does not fit becomes unknown, so
// that expressions using it stay quiet instead of repeating the same mistake.
func convertVar(v cty.Value, ty cty.Type, name string, rng hcl.Range) (cty.Value, hcl.Diagnostics) {
	out, err := convert.Convert(v, ty)
	if err != nil {
		return cty.UnknownVal(ty), hcl.Diagnostics{errorAt(rng, "Invalid value for variable",
			fmt.Sprintf("Variable %q must be %s: %s.", name, typeexpr.TypeString(ty), err))}
	}
	return out, nil
}

func sortedAttrs(attrs hcl.Attributes) []*hcl.Attribute {
	out := make([]*hcl.Attribute, 0, len(attrs))
	for _, a := range attrs {
		out = append(out, a)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Range.Start.Byte < out[j].Range.Start.Byte })
	return out
}
