package download

import (
	"cmp"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"slices"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/gohcl"
	"github.com/hashicorp/hcl/v2/hclsyntax"
	"github.com/hashicorp/hcl/v2/hclwrite"
	"github.com/zclconf/go-cty/cty"
)

// lockEntry records one downloaded file, as Terraform's lock file records providers: a later download must have
// the same digest, so a file changed upstream (or on a mirror) is refused instead of installed.
type lockEntry struct {
	Name    string `hcl:"name,label"`
	Version string `hcl:"version"`
	Path    string `hcl:"path"`
	SHA256  string `hcl:"sha256"`
}

type lockFile struct {
	path    string
	Entries []lockEntry `hcl:"artifact,block"`
}

const lockHeader = `# Written by kforge: the sha256 of every artifact it downloaded. Later downloads must match, so a file
# changed upstream is refused. Commit this file. To accept a changed file, delete its block or fetch with -upgrade.
`

// readLock reads the lock file; a missing file is an empty lock.
func readLock(path string) (*lockFile, error) {
	l := &lockFile{path: path}
	if path == "" {
		return l, nil
	}
	src, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return l, nil
	}
	if err != nil {
		return nil, fmt.Errorf("download: lock file: %w", err)
	}
	f, diags := hclsyntax.ParseConfig(src, path, hcl.InitialPos)
	if !diags.HasErrors() {
		diags = gohcl.DecodeBody(f.Body, nil, l)
	}
	if diags.HasErrors() {
		return nil, fmt.Errorf("download: lock file: %w", diags)
	}
	for _, e := range l.Entries {
		if !isDigest(e.SHA256) {
			return nil, fmt.Errorf("download: lock file %s: artifact %q: sha256 %q is not a sha256", path, e.Name, e.SHA256)
		}
	}
	return l, nil
}

// sum is the locked digest of an artifact's file, if the lock has one for this very file.
func (l *lockFile) sum(a Artifact) string {
	for _, e := range l.Entries {
		if e.Name == a.Name && e.Path == a.Path {
			return e.SHA256
		}
	}
	return ""
}

// record sets an artifact's entry. Entries of the same artifact at another version go: a version changed in the
// configuration replaces them. Entries at the same version for another architecture stay.
func (l *lockFile) record(a Artifact, sum string) {
	l.Entries = slices.DeleteFunc(l.Entries, func(e lockEntry) bool {
		return e.Name == a.Name && (e.Version != a.Version || e.Path == a.Path)
	})
	l.Entries = append(l.Entries, lockEntry{Name: a.Name, Version: a.Version, Path: a.Path, SHA256: sum})
}

// bytes renders the lock: entries sorted, so the same lock is always the same bytes and diffs stay small.
func (l *lockFile) bytes() []byte {
	entries := slices.Clone(l.Entries)
	slices.SortFunc(entries, func(a, b lockEntry) int { return cmp.Or(cmp.Compare(a.Name, b.Name), cmp.Compare(a.Path, b.Path)) })
	f := hclwrite.NewEmptyFile()
	body := f.Body()
	body.AppendUnstructuredTokens(hclwrite.Tokens{{Type: hclsyntax.TokenComment, Bytes: []byte(lockHeader)}})
	for _, e := range entries {
		body.AppendNewline()
		b := body.AppendNewBlock("artifact", []string{e.Name}).Body()
		b.SetAttributeValue("version", cty.StringVal(e.Version))
		b.SetAttributeValue("path", cty.StringVal(e.Path))
		b.SetAttributeValue("sha256", cty.StringVal(e.SHA256))
	}
	return hclwrite.Format(f.Bytes())
}

// write saves the lock if its bytes changed, so an unchanged lock keeps its file untouched.
func (l *lockFile) write() error {
	if l.path == "" {
		return nil
	}
	data := l.bytes()
	if old, err := os.ReadFile(l.path); err == nil && string(old) == string(data) {
		return nil
	}
	if err := writeFileAtomic(l.path, data, 0o644); err != nil {
		return fmt.Errorf("download: lock file: %w", err)
	}
	return nil
}
