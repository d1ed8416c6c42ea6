package config

import (
	"fmt"
	"sort"

	"github.com/agext/levenshtein"
	"github.com/hashicorp/hcl/v2"
	"github.com/zclconf/go-cty/cty"
	"github.com/zclconf/go-cty/cty/function"

	"github.com/kforge/kforge/config/funcs"
)

// evaluator holds what expressions and paths are evaluated against.
type evaluator struct {
	paths     funcs.Paths
	functions map[string]function.Function
}

// locals evaluates the locals blocks in dependency order, so a local may use another wherever it is written.
func (e *evaluator) locals(vars map[string]cty.Value, blocks []*hcl.Block) (map[string]cty.Value, hcl.Diagnostics) {
	var diags hcl.Diagnostics
	pending := map[string]*hcl.Attribute{}
	for _, blk := range blocks {
		attrs, ds := blk.Body.JustAttributes()
		diags = append(diags, ds...)
		for _, a := range sortedAttrs(attrs) {
			if first, ok := pending[a.Name]; ok {
				diags = append(diags, errorAt(a.NameRange, "Duplicate local value",
					fmt.Sprintf("Local value %q is already defined at %s.", a.Name, first.NameRange)))
				continue
			}
			pending[a.Name] = a
		}
	}
	done := map[string]cty.Value{}
	for len(pending) > 0 {
		progress := false
		for _, a := range sortedAttrs(toAttributes(pending)) {
			if waitsFor(a, pending) {
				continue
			}
			ctx := &hcl.EvalContext{
				Variables: map[string]cty.Value{"var": cty.ObjectVal(vars), "local": cty.ObjectVal(done)},
				Functions: e.functions,
			}
			v, ds := a.Expr.Value(ctx)
			diags = append(diags, ds...)
			if ds.HasErrors() {
				v = cty.DynamicVal // lets locals that use this one evaluate without a second, misleading error
			}
			done[a.Name] = v
			delete(pending, a.Name)
			progress = true
		}
		if !progress {
			for _, a := range sortedAttrs(toAttributes(pending)) {
				diags = append(diags, errorAt(a.Expr.Range(), "Cycle in local values",
					fmt.Sprintf("Local value %q depends on itself through other local values.", a.Name)))
			}
			break
		}
	}
	return done, diags
}

func waitsFor(a *hcl.Attribute, pending map[string]*hcl.Attribute) bool {
	for _, t := range a.Expr.Variables() {
		if t.RootName() != "local" || len(t) < 2 {
			continue
		}
		if step, ok := t[1].(hcl.TraverseAttr); ok && step.Name != a.Name {
			if _, waiting := pending[step.Name]; waiting {
				return true
			}
		} else if ok && step.Name == a.Name {
			return true // refers to itself: reported as a cycle
		}
	}
	return false
}

func toAttributes(m map[string]*hcl.Attribute) hcl.Attributes {
	out := hcl.Attributes{}
	for k, v := range m {
		out[k] = v
	}
	return out
}

func errorAt(rng hcl.Range, summary, detail string) *hcl.Diagnostic {
	r := rng
	return &hcl.Diagnostic{Severity: hcl.DiagError, Summary: summary, Detail: detail, Subject: &r}
}

func plainError(summary, detail string) *hcl.Diagnostic {
	return &hcl.Diagnostic{Severity: hcl.DiagError, Summary: summary, Detail: detail}
}

// didYouMean suggests the closest candidate, HCL-style, or returns "".
func didYouMean(name string, candidates []string) string {
	best, bestDist := "", 3
	for _, c := range candidates {
		if d := levenshtein.Distance(name, c, nil); d < bestDist {
			best, bestDist = c, d
		}
	}
	if best == "" {
		return ""
	}
	return fmt.Sprintf(" Did you mean %q?", best)
}

func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
