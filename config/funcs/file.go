package funcs

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"unicode/utf8"

	"github.com/zclconf/go-cty/cty"
	"github.com/zclconf/go-cty/cty/function"
)

// Paths resolves the paths written in a configuration, for these functions and for kforge's own attributes
// alike: a leading ~ is Home, and anything else relative belongs to the configuration's directory Dir.
type Paths struct {
	Dir  string
	Home string
}

// Resolve returns the absolute, cleaned form of path.
func (p Paths) Resolve(path string) (string, error) {
	path, err := p.expandHome(path)
	if err != nil {
		return "", err
	}
	if !filepath.IsAbs(path) {
		path = filepath.Join(p.Dir, path)
	}
	return filepath.Clean(path), nil
}

func (f Paths) fileFunc() function.Function {
	return function.New(&function.Spec{
		Description: "Reads a UTF-8 text file; relative paths are relative to the config's directory.",
		Params: []function.Parameter{
			{Name: "path", Type: cty.String, Description: "The file to read."},
		},
		Type: function.StaticReturnType(cty.String),
		Impl: func(args []cty.Value, _ cty.Type) (cty.Value, error) {
			path, err := f.Resolve(args[0].AsString())
			if err != nil {
				return cty.NilVal, function.NewArgError(0, err)
			}
			data, err := os.ReadFile(path)
			if err != nil {
				return cty.NilVal, function.NewArgError(0, describeFileError(path, err))
			}
			if !utf8.Valid(data) {
				return cty.NilVal, function.NewArgError(0, fmt.Errorf("%s is not valid UTF-8 text, and file() only reads text", path))
			}
			return cty.StringVal(string(data)), nil
		},
	})
}

func (f Paths) fileExistsFunc() function.Function {
	return function.New(&function.Spec{
		Description: "Reports whether a file exists; relative paths are relative to the config's directory.",
		Params: []function.Parameter{
			{Name: "path", Type: cty.String, Description: "The file to look for."},
		},
		Type: function.StaticReturnType(cty.Bool),
		Impl: func(args []cty.Value, _ cty.Type) (cty.Value, error) {
			path, err := f.Resolve(args[0].AsString())
			if err != nil {
				return cty.NilVal, function.NewArgError(0, err)
			}
			info, err := os.Stat(path)
			if errors.Is(err, fs.ErrNotExist) {
				return cty.False, nil
			}
			if err != nil {
				return cty.NilVal, function.NewArgError(0, describeFileError(path, err))
			}
			// A directory where a file was expected is more likely a mistake
			// in the config than a reason to take the "missing" branch.
			if info.IsDir() {
				return cty.NilVal, function.NewArgError(0, fmt.Errorf("%s is a directory, not a file", path))
			}
			if !info.Mode().IsRegular() {
				return cty.NilVal, function.NewArgError(0, fmt.Errorf("%s exists but is not a regular file", path))
			}
			return cty.True, nil
		},
	})
}

func (f Paths) absPathFunc() function.Function {
	return function.New(&function.Spec{
		Description: "Returns the absolute form of a path; relative paths are relative to the config's directory.",
		Params: []function.Parameter{
			{Name: "path", Type: cty.String, Description: "The path to make absolute. It need not exist."},
		},
		Type: function.StaticReturnType(cty.String),
		Impl: func(args []cty.Value, _ cty.Type) (cty.Value, error) {
			path, err := f.Resolve(args[0].AsString())
			if err != nil {
				return cty.NilVal, function.NewArgError(0, err)
			}
			return cty.StringVal(path), nil
		},
	})
}

func (f Paths) pathExpandFunc() function.Function {
	return function.New(&function.Spec{
		Description: "Replaces a leading ~ in a path with the current user's home directory.",
		Params: []function.Parameter{
			{Name: "path", Type: cty.String, Description: "The path to expand."},
		},
		Type: function.StaticReturnType(cty.String),
		Impl: func(args []cty.Value, _ cty.Type) (cty.Value, error) {
			path, err := f.expandHome(args[0].AsString())
			if err != nil {
				return cty.NilVal, function.NewArgError(0, err)
			}
			return cty.StringVal(path), nil
		},
	})
}

// expandHome replaces a leading ~ with the home directory and leaves every
// other path alone.
func (f Paths) expandHome(path string) (string, error) {
	if !strings.HasPrefix(path, "~") {
		return path, nil
	}
	rest := path[1:]
	if rest != "" && rest[0] != '/' && rest[0] != filepath.Separator {
		// Looking up other users' homes would make configs depend on the
		// machine's user database.
		return "", fmt.Errorf("%s: only ~ for the current user's home directory is supported, not ~user", path)
	}
	if f.Home == "" {
		return "", fmt.Errorf("cannot expand ~ in %s: no home directory is known", path)
	}
	return filepath.Join(f.Home, rest), nil
}

// describeFileError names the resolved path once; os errors name it too,
// which would repeat it.
func describeFileError(path string, err error) error {
	if errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("no file exists at %s", path)
	}
	var pe *fs.PathError
	if errors.As(err, &pe) {
		err = pe.Err
	}
	return fmt.Errorf("cannot read %s: %w", path, err)
}
