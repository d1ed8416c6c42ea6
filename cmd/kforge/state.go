package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/spf13/cobra"

	"github.com/kforge/kforge/internal/atomicfile"
	"github.com/kforge/kforge/provision/backend"
	"github.com/kforge/kforge/provision/state"
)

func (a *app) stateCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "state",
		Short: "Read, write and move the state kept in the backend",
	}
	pull := &cobra.Command{
		Use:   "pull",
		Short: "Print the stored state document as it is",
		Args:  cobra.NoArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			be, err := a.backendOnly(c.Context())
			if err != nil {
				return err
			}
			defer be.Close()
			doc, err := be.StateDocument(c.Context())
			if err != nil {
				return err
			}
			if doc == nil {
				return fmt.Errorf("%s holds no state yet", be.Name())
			}
			_, err = a.stdout.Write(doc)
			return err
		},
	}
	push := &cobra.Command{
		Use:   "push FILE",
		Short: "Store FILE's state as it is (refused for another cluster's history or an older serial)",
		Args:  cobra.ExactArgs(1),
		RunE: func(c *cobra.Command, args []string) error {
			doc, err := os.ReadFile(args[0])
			if err != nil {
				return err
			}
			h, err := a.backendHold(c.Context(), "state push")
			if err != nil {
				return err
			}
			defer h.release()
			if err := putState(c.Context(), h.backend, doc, args[0]); err != nil {
				return err
			}
			_, err = fmt.Fprintf(a.stdout, "Stored %s in %s.\n", args[0], h.backend.Name())
			return err
		},
	}
	var from, to string
	migrate := &cobra.Command{
		Use:   "migrate (--from DIR | --to DIR)",
		Short: "Move the state and the files (PKI store, known hosts) between a local directory and the configured backend",
		Long: `Moves what kforge keeps between a local state directory and the backend the configuration names: --from
DIR copies DIR's state and files into the backend (after adding a backend "etcd" block), --to DIR copies the
backend's into DIR (before removing it). Both are locked meanwhile. The state moves byte for byte, the files
exactly (what the target has beyond them is deleted); a target holding another cluster's history, a newer
serial, or files without a state is refused, and nothing is written.`,
		Args: cobra.NoArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			if (from == "") == (to == "") {
				return errors.New("give --from DIR or --to DIR")
			}
			h, err := a.backendHold(c.Context(), "state migrate")
			if err != nil {
				return err
			}
			defer h.release()
			local := &backend.Local{Dir: from + to}
			if l, ok := h.backend.(*backend.Local); ok && samePath(l.Dir, local.Dir) {
				return fmt.Errorf("%s is the configured backend itself: nothing to move", local.Dir)
			}
			ll, err := a.lock(c.Context(), local, "state migrate")
			if err != nil {
				return err
			}
			defer ll.Release()
			src, dst := backend.Backend(local), h.backend
			if to != "" {
				src, dst = dst, src
			}
			n, err := migrateState(c.Context(), src, dst)
			if err != nil {
				return err
			}
			_, err = fmt.Fprintf(a.stdout, "Moved the state and %d files from %s to %s.\n", n, src.Name(), dst.Name())
			return err
		},
	}
	migrate.Flags().StringVar(&from, "from", "", "local state directory to move into the configured backend")
	migrate.Flags().StringVar(&to, "to", "", "local state directory to move the configured backend's state into")
	cmd.AddCommand(pull, push, migrate)
	return cmd
}

// backendHold opens the configuration's backend (provider hosts are not looked up) and takes its lock.
func (a *app) backendHold(ctx context.Context, operation string) (*hold, error) {
	cluster, err := a.load(ctx, a.configPath, false)
	if err != nil {
		return nil, err
	}
	return a.holdBackend(ctx, cluster, operation)
}

func samePath(a, b string) bool {
	a, errA := filepath.Abs(a)
	b, errB := filepath.Abs(b)
	return errA == nil && errB == nil && a == b
}

// putState stores doc (named from, for errors) in be unless be holds another lineage or a newer serial.
func putState(ctx context.Context, be backend.Backend, doc []byte, from string) error {
	s, err := state.Parse(doc, from)
	if err != nil {
		return err
	}
	if s.Lineage == "" {
		return fmt.Errorf("%s has no lineage: it was never saved by kforge", from)
	}
	stored, err := be.StateDocument(ctx)
	if err != nil {
		return err
	}
	if stored != nil {
		cur, err := state.Parse(stored, be.Name())
		if err != nil {
			return err
		}
		switch {
		case cur.Lineage != s.Lineage:
			return fmt.Errorf("%s holds another cluster's history (lineage %s) than %s (lineage %s): nothing written", be.Name(), cur.Lineage, from, s.Lineage)
		case cur.Serial > s.Serial:
			return fmt.Errorf("%s holds a newer state (serial %d) than %s (serial %d): nothing written", be.Name(), cur.Serial, from, s.Serial)
		}
	}
	return be.PutStateDocument(ctx, doc)
}

// sharedFiles are the files a backend keeps beside the state: the PKI store and the hosts' keys. (A local state
// directory holds more — the lock, etcd snapshots — which stay where they are.)
var sharedFiles = []string{"pki", "known_hosts"}

// migrateState copies src's files, then its state (the commit), into dst, and returns how many files it copied.
func migrateState(ctx context.Context, src, dst backend.Backend) (int, error) {
	doc, err := src.StateDocument(ctx)
	if err != nil {
		return 0, err
	}
	if doc == nil {
		return 0, fmt.Errorf("%s holds no state: nothing to move", src.Name())
	}
	// Checked before the files move: a refused migration writes nothing.
	if err := checkTarget(ctx, dst, doc, src.Name()); err != nil {
		return 0, err
	}
	srcDir, err := src.Files(ctx)
	if err != nil {
		return 0, err
	}
	dstDir, err := dst.Files(ctx)
	if err != nil {
		return 0, err
	}
	n, err := mirrorFiles(srcDir, dstDir)
	if err != nil {
		return n, err
	}
	if err := dst.Sync(ctx); err != nil {
		return n, err
	}
	return n, putState(ctx, dst, doc, src.Name())
}

// checkTarget refuses a target with another lineage or a newer serial, or with files but no state (a PKI store
// of unknown origin is never overwritten).
func checkTarget(ctx context.Context, dst backend.Backend, doc []byte, from string) error {
	stored, err := dst.StateDocument(ctx)
	if err != nil {
		return err
	}
	if stored == nil {
		dir, err := dst.Files(ctx)
		if err != nil {
			return err
		}
		files, err := listFiles(dir)
		if err != nil {
			return err
		}
		if len(files) > 0 {
			return fmt.Errorf("%s holds files (%s) but no state: kforge does not overwrite a PKI store it cannot place; nothing written",
				dst.Name(), strings.Join(files[:min(3, len(files))], ", "))
		}
		return nil
	}
	s, err := state.Parse(doc, from)
	if err != nil {
		return err
	}
	cur, err := state.Parse(stored, dst.Name())
	if err != nil {
		return err
	}
	if cur.Lineage != s.Lineage || cur.Serial > s.Serial {
		return fmt.Errorf("%s holds lineage %s serial %d, %s lineage %s serial %d: only the same history, not newer, is overwritten; nothing written",
			dst.Name(), cur.Lineage, cur.Serial, from, s.Lineage, s.Serial)
	}
	return nil
}

// listFiles lists the shared files under dir, relative, sorted.
func listFiles(dir string) ([]string, error) {
	var out []string
	for _, top := range sharedFiles {
		err := filepath.WalkDir(filepath.Join(dir, top), func(p string, d fs.DirEntry, err error) error {
			if errors.Is(err, fs.ErrNotExist) && p == filepath.Join(dir, top) {
				return nil
			}
			if err != nil || d.IsDir() {
				return err
			}
			if !d.Type().IsRegular() {
				return fmt.Errorf("%s is not a regular file", p)
			}
			rel, err := filepath.Rel(dir, p)
			out = append(out, rel)
			return err
		})
		if err != nil {
			return nil, err
		}
	}
	return out, nil
}

// mirrorFiles makes dst's shared files exactly src's: content and mode; what only dst has is deleted.
func mirrorFiles(src, dst string) (int, error) {
	want, err := listFiles(src)
	if err != nil {
		return 0, err
	}
	have, err := listFiles(dst)
	if err != nil {
		return 0, err
	}
	keep := map[string]bool{}
	for i, rel := range want {
		keep[rel] = true
		from, to := filepath.Join(src, rel), filepath.Join(dst, rel)
		st, err := os.Stat(from)
		if err != nil {
			return i, err
		}
		data, err := os.ReadFile(from)
		if err != nil {
			return i, err
		}
		if old, err := os.ReadFile(to); err == nil && bytes.Equal(old, data) {
			if err := os.Chmod(to, st.Mode().Perm()); err != nil {
				return i, err
			}
			continue
		}
		if err := os.MkdirAll(filepath.Dir(to), 0o700); err != nil {
			return i, err
		}
		if err := atomicfile.Write(to, data, st.Mode().Perm()); err != nil {
			return i, err
		}
	}
	for _, rel := range have {
		if !keep[rel] {
			if err := os.Remove(filepath.Join(dst, rel)); err != nil {
				return len(want), err
			}
		}
	}
	return len(want), nil
}
