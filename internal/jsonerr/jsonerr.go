// Package jsonerr says what is wrong with a JSON file kforge wrote (a saved plan, the state, the lock) in words
// a person can act on: that it is empty or cut short, where it stops being JSON, which field has the wrong type.
package jsonerr

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"time"
)

// Explain rewrites err, returned by json.Unmarshal(data, …), as a plain sentence with a line and column. The
// result wraps err, so errors.As still finds the *json.SyntaxError or *json.UnmarshalTypeError.
func Explain(data []byte, err error) error {
	var syntax *json.SyntaxError
	var typ *json.UnmarshalTypeError
	switch {
	case err == nil:
		return nil
	case len(bytes.TrimSpace(data)) == 0:
		return &explained{"it is empty", err}
	case errors.As(err, &syntax) && syntax.Offset >= int64(len(data)):
		return &explained{fmt.Sprintf("it ends early, after %d bytes (cut short while it was written or copied?)", len(data)), err}
	case errors.As(err, &syntax):
		line, col := position(data, syntax.Offset)
		return &explained{fmt.Sprintf("it is not valid JSON at line %d, column %d: %s", line, col, syntax.Error()), err}
	case errors.As(err, &typ):
		line, col := position(data, typ.Offset)
		field := typ.Field
		if field == "" {
			field = "the document"
		} else {
			field = fmt.Sprintf("field %q", field)
		}
		return &explained{fmt.Sprintf("%s at line %d, column %d is a JSON %s, where %s is expected", field, line, col, typ.Value, kind(typ.Type)), err}
	}
	var parse *time.ParseError
	if errors.As(err, &parse) {
		return &explained{fmt.Sprintf("a time is not written as RFC 3339 (%q)", parse.Value), err}
	}
	return &explained{"it does not fit the expected format: " + err.Error(), err}
}

type explained struct {
	msg string
	err error
}

func (e *explained) Error() string { return e.msg }
func (e *explained) Unwrap() error { return e.err }

// position turns the decoder's offset (the bytes it read, the offending one last) into the 1-based line and
// column of that last byte.
func position(data []byte, offset int64) (line, col int) {
	at := int(min(max(offset-1, 0), int64(len(data))))
	before := data[:at]
	line = bytes.Count(before, []byte("\n")) + 1
	col = at - (bytes.LastIndexByte(before, '\n') + 1) + 1
	return line, col
}

// kind names a Go type the way a JSON document would spell what it expects.
func kind(t reflect.Type) string {
	if t == nil {
		return "another type"
	}
	switch t.Kind() {
	case reflect.String:
		return "a string"
	case reflect.Bool:
		return "true or false"
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return "a whole number that fits in " + fmt.Sprint(t.Bits()) + " bits"
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return "a non-negative whole number that fits in " + fmt.Sprint(t.Bits()) + " bits"
	case reflect.Float32, reflect.Float64:
		return "a number"
	case reflect.Slice, reflect.Array:
		return "a list"
	case reflect.Map, reflect.Struct:
		return "an object"
	case reflect.Pointer:
		return kind(t.Elem())
	}
	return "a " + t.String()
}
