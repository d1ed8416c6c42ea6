package funcs

import (
	"fmt"

	"github.com/zclconf/go-cty/cty"
	"github.com/zclconf/go-cty/cty/function"
)

// indexFunc finds a value's position in a list, as Terraform's index does.
// go-cty's stdlib.IndexFunc is a different thing, looking an element up by
// key, and under this name it would quietly give Terraform users wrong
// answers.
func indexFunc() function.Function {
	return function.New(&function.Spec{
		Description: "Returns the position of the first element of a list that equals the given value.",
		Params: []function.Parameter{
			{Name: "list", Type: cty.DynamicPseudoType, Description: "The list or tuple to search."},
			{Name: "value", Type: cty.DynamicPseudoType, Description: "The value to look for."},
		},
		Type: func(args []cty.Value) (cty.Type, error) {
			ty := args[0].Type()
			if !ty.IsListType() && !ty.IsTupleType() && ty != cty.DynamicPseudoType {
				return cty.NilType, function.NewArgErrorf(0, "index needs a list or tuple, not %s", ty.FriendlyName())
			}
			return cty.Number, nil
		},
		Impl: func(args []cty.Value, _ cty.Type) (cty.Value, error) {
			for it := args[0].ElementIterator(); it.Next(); {
				i, v := it.Element()
				eq := v.Equals(args[1])
				if !eq.IsKnown() {
					// An unknown element might be the one we want, so the
					// position cannot be known yet either.
					return cty.UnknownVal(cty.Number), nil
				}
				if eq.True() {
					return i, nil
				}
			}
			return cty.NilVal, function.NewArgError(1, fmt.Errorf("the list does not contain %s", describeValue(args[1])))
		},
	})
}

// describeValue renders short scalar values so that "not found" errors show
// what was searched for; other values would make unreadable messages.
func describeValue(v cty.Value) string {
	switch {
	case v.Type() == cty.String:
		return fmt.Sprintf("%q", v.AsString())
	case v.Type() == cty.Number:
		return v.AsBigFloat().Text('g', -1)
	case v.Type() == cty.Bool:
		return fmt.Sprintf("%t", v.True())
	}
	return "the given " + v.Type().FriendlyName()
}
