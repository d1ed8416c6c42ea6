package funcs

import (
	"fmt"
	"math"
	"math/big"

	"github.com/kforge/kforge/config/netcalc"
	"github.com/zclconf/go-cty/cty"
	"github.com/zclconf/go-cty/cty/function"
)

func cidrHostFunc() function.Function {
	return function.New(&function.Spec{
		Description: "Returns the address with the given number within a CIDR prefix; negative numbers count back from the last address.",
		Params: []function.Parameter{
			{Name: "prefix", Type: cty.String, Description: "A network in CIDR notation, such as 10.0.0.0/16."},
			{Name: "hostnum", Type: cty.Number, Description: "The address number; 0 is the network address and -1 the last address."},
		},
		Type: function.StaticReturnType(cty.String),
		Impl: func(args []cty.Value, _ cty.Type) (cty.Value, error) {
			p, err := netcalc.ParsePrefix(args[0].AsString())
			if err != nil {
				return cty.NilVal, function.NewArgError(0, err)
			}
			n, err := wholeNumber(args[1])
			if err != nil {
				return cty.NilVal, function.NewArgError(1, fmt.Errorf("invalid host number: %w", err))
			}
			a, err := netcalc.Host(p, n)
			if err != nil {
				return cty.NilVal, function.NewArgError(1, err)
			}
			return cty.StringVal(a.String()), nil
		},
	})
}

func cidrSubnetFunc() function.Function {
	return function.New(&function.Spec{
		Description: "Returns the subnet with the given number that is newbits longer than a CIDR prefix.",
		Params: []function.Parameter{
			{Name: "prefix", Type: cty.String, Description: "A network in CIDR notation, such as 10.0.0.0/16."},
			{Name: "newbits", Type: cty.Number, Description: "How many bits longer the subnet's prefix is; 8 turns a /16 into /24s."},
			{Name: "netnum", Type: cty.Number, Description: "Which subnet to return, counting from 0."},
		},
		Type: function.StaticReturnType(cty.String),
		Impl: func(args []cty.Value, _ cty.Type) (cty.Value, error) {
			p, err := netcalc.ParsePrefix(args[0].AsString())
			if err != nil {
				return cty.NilVal, function.NewArgError(0, err)
			}
			newBits, err := smallNumber(args[1])
			if err != nil {
				return cty.NilVal, function.NewArgError(1, fmt.Errorf("invalid newbits: %w", err))
			}
			num, err := wholeNumber(args[2])
			if err != nil {
				return cty.NilVal, function.NewArgError(2, fmt.Errorf("invalid subnet number: %w", err))
			}
			s, err := netcalc.Subnet(p, newBits, num)
			if err != nil {
				return cty.NilVal, err
			}
			return cty.StringVal(s.String()), nil
		},
	})
}

func cidrSubnetsFunc() function.Function {
	return function.New(&function.Spec{
		Description: "Allocates consecutive subnets of a CIDR prefix, one for each newbits value, each aligned to its own size.",
		Params: []function.Parameter{
			{Name: "prefix", Type: cty.String, Description: "A network in CIDR notation, such as 10.0.0.0/16."},
		},
		VarParam: &function.Parameter{
			Name:        "newbits",
			Type:        cty.Number,
			Description: "How many bits longer each subnet's prefix is than prefix's.",
		},
		Type: function.StaticReturnType(cty.List(cty.String)),
		Impl: func(args []cty.Value, _ cty.Type) (cty.Value, error) {
			p, err := netcalc.ParsePrefix(args[0].AsString())
			if err != nil {
				return cty.NilVal, function.NewArgError(0, err)
			}
			newBits := make([]int, 0, len(args)-1)
			for i, v := range args[1:] {
				nb, err := smallNumber(v)
				if err != nil {
					return cty.NilVal, function.NewArgError(i+1, fmt.Errorf("invalid newbits: %w", err))
				}
				newBits = append(newBits, nb)
			}
			subnets, err := netcalc.Subnets(p, newBits...)
			if err != nil {
				return cty.NilVal, err
			}
			if len(subnets) == 0 {
				return cty.ListValEmpty(cty.String), nil
			}
			vals := make([]cty.Value, 0, len(subnets))
			for _, s := range subnets {
				vals = append(vals, cty.StringVal(s.String()))
			}
			return cty.ListVal(vals), nil
		},
	})
}

func cidrNetmaskFunc() function.Function {
	return function.New(&function.Spec{
		Description: "Returns the dotted-quad netmask of an IPv4 CIDR prefix, such as 255.255.255.0 for a /24.",
		Params: []function.Parameter{
			{Name: "prefix", Type: cty.String, Description: "An IPv4 network in CIDR notation, such as 10.0.0.0/16."},
		},
		Type: function.StaticReturnType(cty.String),
		Impl: func(args []cty.Value, _ cty.Type) (cty.Value, error) {
			p, err := netcalc.ParsePrefix(args[0].AsString())
			if err != nil {
				return cty.NilVal, function.NewArgError(0, err)
			}
			m, err := netcalc.Netmask(p)
			if err != nil {
				return cty.NilVal, function.NewArgError(0, err)
			}
			return cty.StringVal(m.String()), nil
		},
	})
}

// wholeNumber converts an HCL number argument, which may be fractional or
// arbitrarily large, to an int64. The meaningful range depends on the prefix,
// so netcalc reports that; this only keeps the conversion exact.
func wholeNumber(v cty.Value) (int64, error) {
	f := v.AsBigFloat()
	if !f.IsInt() {
		return 0, fmt.Errorf("%s is not a whole number", f.Text('g', -1))
	}
	i, acc := f.Int64()
	if acc != big.Exact {
		return 0, fmt.Errorf("%s is too far from zero", f.Text('g', -1))
	}
	return i, nil
}

// smallNumber is for values such as newbits that netcalc takes as an int,
// which may be 32 bits: refusing huge values here keeps a wrapped conversion
// from turning an absurd newbits into a plausible one.
func smallNumber(v cty.Value) (int, error) {
	i, err := wholeNumber(v)
	if err == nil && (i < math.MinInt32 || i > math.MaxInt32) {
		err = fmt.Errorf("%d is too far from zero", i)
	}
	return int(i), err
}
