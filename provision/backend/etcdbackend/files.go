package etcdbackend

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"

	clientv3 "go.etcd.io/etcd/client/v3"
)

// fileCopy is the private copy of the files, and what each one was in etcd when read or last written: Sync
// writes what changed, and only over what it read.
type fileCopy struct {
	dir   string
	known map[string]fileRecord // by path relative to dir, slash separated
}

type fileRecord struct {
	revision int64 // the key's ModRevision
	digest   [sha256.Size]byte
	mode     fs.FileMode
}

// Files implements backend.Backend: the first call copies every key under files/ (read at one revision) into
// a new private directory; later calls return it. Directories are not kept, only the files in them.
func (b *Backend) Files(ctx context.Context) (string, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.files != nil {
		return b.files.dir, nil
	}
	prefix := b.key(filePrefix)
	resp, err := b.client.Get(ctx, prefix, clientv3.WithPrefix())
	if err != nil {
		return "", fmt.Errorf("%s: read the files: %w", b.name, err)
	}
	dir, err := os.MkdirTemp("", "kforge-files-")
	if err != nil {
		return "", err
	}
	fc := &fileCopy{dir: dir, known: map[string]fileRecord{}}
	for _, kv := range resp.Kvs {
		rel := strings.TrimPrefix(string(kv.Key), prefix)
		if err := fc.write(b.cfg.EncryptionKey, rel, kv.Value); err != nil {
			os.RemoveAll(dir)
			return "", fmt.Errorf("%s: file %s (key %s) %w", b.name, rel, kv.Key, err)
		}
		rec := fc.known[rel]
		rec.revision = kv.ModRevision
		fc.known[rel] = rec
	}
	b.files = fc
	return dir, nil
}

// write opens the value of the file at rel and writes it into the copy.
func (fc *fileCopy) write(key []byte, rel string, value []byte) error {
	if err := checkRel(rel); err != nil {
		return err
	}
	content, mode, plain, err := open(key, rel, value)
	if err != nil {
		return err
	}
	if plain && key != nil {
		// Sealing is integrity too: a plain value where values are sealed is one anybody who can write to etcd
		// could have put there (a CA of theirs), so it is not taken.
		return errors.New("it is stored unencrypted, but the backend has an encryption key: kforge does not take it " +
			"(to encrypt a store kept plain: kforge state migrate --to DIR without the key, delete the prefix's files/, add the key, kforge state migrate --from DIR)")
	}
	file := filepath.Join(fc.dir, filepath.FromSlash(rel))
	if err := os.MkdirAll(filepath.Dir(file), 0o700); err != nil {
		return err
	}
	if err := os.WriteFile(file, content, 0o600); err != nil {
		return err
	}
	// The umask has no say: the mode is the stored one.
	if err := os.Chmod(file, mode); err != nil {
		return err
	}
	fc.known[rel] = fileRecord{digest: sha256.Sum256(content), mode: mode}
	return nil
}

// checkRel refuses a key whose name would put its file outside the copy, or that kforge would not have written.
func checkRel(rel string) error {
	switch {
	case rel == "":
		return errors.New("has no file name")
	case strings.HasPrefix(rel, "/"):
		return errors.New("names an absolute path: refused")
	case !filepath.IsLocal(filepath.FromSlash(rel)):
		return errors.New(`names a path outside the files' directory (".."): refused`)
	case path.Clean(rel) != rel:
		return fmt.Errorf("names a path that is not clean (cleaned, it is %q): refused", path.Clean(rel))
	case strings.ContainsRune(rel, 0):
		return errors.New("names a path with a NUL: refused")
	}
	return nil
}

// change is a file to write back.
type change struct {
	rel     string
	content []byte
	mode    fs.FileMode
}

// Sync implements backend.Backend: every file that is new, or whose content or mode changed, is written, and
// every file that is gone is deleted; each only if its key is still at the revision it was read at (absent,
// for a new one). Before anything is written, all of them are compared at once, so that a change by another
// run usually stops the Sync with nothing written.
func (b *Backend) Sync(ctx context.Context) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	fc := b.files
	if fc == nil {
		return nil
	}
	changes, gone, err := fc.scan()
	if err != nil {
		return fmt.Errorf("%s: sync: %w", b.name, err)
	}
	if len(changes) == 0 && len(gone) == 0 {
		return nil
	}

	prefix := b.key(filePrefix)
	resp, err := b.client.Get(ctx, prefix, clientv3.WithPrefix(), clientv3.WithKeysOnly())
	if err != nil {
		return fmt.Errorf("%s: sync: read the files' revisions: %w", b.name, err)
	}
	current := map[string]int64{}
	for _, kv := range resp.Kvs {
		current[strings.TrimPrefix(string(kv.Key), prefix)] = kv.ModRevision
	}
	var moved []string
	for _, rel := range slices.Concat(changedNames(changes), gone) {
		if current[rel] != fc.known[rel].revision {
			moved = append(moved, rel)
		}
	}
	if len(moved) > 0 {
		slices.Sort(moved)
		return b.movedError(moved, nil)
	}

	var written []string
	for _, c := range changes {
		value, err := seal(b.cfg.EncryptionKey, c.rel, c.mode, c.content)
		if err != nil {
			return err
		}
		key := prefix + c.rel
		resp, err := b.client.Txn(ctx).
			If(clientv3.Compare(clientv3.ModRevision(key), "=", fc.known[c.rel].revision)).
			Then(clientv3.OpPut(key, string(value))).
			Commit()
		if err != nil {
			return fmt.Errorf("%s: sync: write file %s (key %s): %w", b.name, c.rel, key, err)
		}
		if !resp.Succeeded {
			return b.movedError([]string{c.rel}, written)
		}
		fc.known[c.rel] = fileRecord{revision: resp.Header.Revision, digest: sha256.Sum256(c.content), mode: c.mode}
		written = append(written, c.rel)
	}
	for _, rel := range gone {
		key := prefix + rel
		resp, err := b.client.Txn(ctx).
			If(clientv3.Compare(clientv3.ModRevision(key), "=", fc.known[rel].revision)).
			Then(clientv3.OpDelete(key)).
			Commit()
		if err != nil {
			return fmt.Errorf("%s: sync: delete file %s (key %s): %w", b.name, rel, key, err)
		}
		if !resp.Succeeded {
			return b.movedError([]string{rel}, written)
		}
		delete(fc.known, rel)
		written = append(written, rel)
	}
	return nil
}

// movedError: another run wrote or deleted the keys of rels since this one read them. written lists what this
// Sync had already written.
func (b *Backend) movedError(rels, written []string) error {
	done := "nothing written"
	if len(written) > 0 {
		done = "written before: " + strings.Join(written, ", ")
	}
	what := "file " + rels[0]
	if len(rels) > 1 {
		what = "files " + strings.Join(rels, ", ")
	}
	return fmt.Errorf("%s: %s changed in etcd meanwhile by another run (under %s): %s; run again to start from what it wrote",
		b.name, what, b.key(filePrefix), done)
}

// scan compares the copy with what was read: the files to write (new, or changed in content or mode) and the
// ones that are gone, both sorted.
func (fc *fileCopy) scan() (changes []change, gone []string, err error) {
	seen := map[string]bool{}
	err = filepath.WalkDir(fc.dir, func(file string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			return nil
		}
		rel, err := filepath.Rel(fc.dir, file)
		if err != nil {
			return err
		}
		rel = filepath.ToSlash(rel)
		if !d.Type().IsRegular() {
			return fmt.Errorf("%s is %s, not a regular file: only regular files are kept", rel, describe(d.Type()))
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		content, err := os.ReadFile(file)
		if err != nil {
			return err
		}
		seen[rel] = true
		rec, known := fc.known[rel]
		if known && rec.digest == sha256.Sum256(content) && rec.mode == info.Mode().Perm() {
			return nil
		}
		changes = append(changes, change{rel: rel, content: content, mode: info.Mode().Perm()})
		return nil
	})
	for _, rel := range slices.Sorted(maps.Keys(fc.known)) {
		if !seen[rel] {
			gone = append(gone, rel)
		}
	}
	return changes, gone, err
}

func changedNames(changes []change) []string {
	names := make([]string, len(changes))
	for i, c := range changes {
		names[i] = c.rel
	}
	return names
}

func describe(t fs.FileMode) string {
	switch {
	case t&fs.ModeSymlink != 0:
		return "a symbolic link"
	case t&fs.ModeNamedPipe != 0:
		return "a named pipe"
	case t&fs.ModeSocket != 0:
		return "a socket"
	case t&fs.ModeDevice != 0:
		return "a device"
	}
	return "of type " + t.String()
}
