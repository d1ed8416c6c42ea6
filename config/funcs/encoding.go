package funcs

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"unicode/utf8"

	"github.com/zclconf/go-cty/cty"
	"github.com/zclconf/go-cty/cty/function"
)

func base64EncodeFunc() function.Function {
	return function.New(&function.Spec{
		Description: "Encodes the UTF-8 bytes of a string as standard base64.",
		Params: []function.Parameter{
			{Name: "str", Type: cty.String, Description: "The string to encode."},
		},
		Type: function.StaticReturnType(cty.String),
		Impl: func(args []cty.Value, _ cty.Type) (cty.Value, error) {
			return cty.StringVal(base64.StdEncoding.EncodeToString([]byte(args[0].AsString()))), nil
		},
	})
}

func base64DecodeFunc() function.Function {
	return function.New(&function.Spec{
		Description: "Decodes standard base64 into a string; the decoded bytes must be UTF-8 text.",
		Params: []function.Parameter{
			{Name: "str", Type: cty.String, Description: "The base64 text to decode."},
		},
		Type: function.StaticReturnType(cty.String),
		Impl: func(args []cty.Value, _ cty.Type) (cty.Value, error) {
			data, err := base64.StdEncoding.DecodeString(args[0].AsString())
			if err != nil {
				return cty.NilVal, function.NewArgError(0, fmt.Errorf("not valid base64: %w", err))
			}
			// HCL strings are Unicode text, so binary data has no faithful
			// representation; failing beats silently mangling it.
			if !utf8.Valid(data) {
				return cty.NilVal, function.NewArgError(0, fmt.Errorf("the decoded bytes are not UTF-8 text"))
			}
			return cty.StringVal(string(data)), nil
		},
	})
}

func sha256Func() function.Function {
	return function.New(&function.Spec{
		Description: "Returns the SHA-256 hash of the UTF-8 bytes of a string, in lowercase hex.",
		Params: []function.Parameter{
			{Name: "str", Type: cty.String, Description: "The string to hash."},
		},
		Type: function.StaticReturnType(cty.String),
		Impl: func(args []cty.Value, _ cty.Type) (cty.Value, error) {
			sum := sha256.Sum256([]byte(args[0].AsString()))
			return cty.StringVal(hex.EncodeToString(sum[:])), nil
		},
	})
}
