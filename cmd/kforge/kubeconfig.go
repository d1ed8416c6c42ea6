package main

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/spf13/cobra"

	"github.com/kforge/kforge/internal/atomicfile"
	"github.com/kforge/kforge/internal/kubeconfig"
)

func (a *app) kubeconfigCmd() *cobra.Command {
	var out string
	var merge, keepContext bool
	cmd := &cobra.Command{
		Use:   "kubeconfig [-o FILE | --merge]",
		Short: "The cluster's admin kubeconfig (written by apply), to standard output, FILE (0600) or merged into yours",
		Long: `Prints the cluster's admin kubeconfig, writes it to FILE (-o, mode 0600), or merges it (--merge) into your
kubeconfig: the first path in $KUBECONFIG, else ~/.kube/config. A merge adds or replaces this cluster's
cluster, user and context entries, keeps everything else, and switches to the new context unless
--keep-context; the file is replaced atomically and keeps its mode.`,
		Args: cobra.NoArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			if merge && out != "" {
				return errors.New("-o and --merge: choose one")
			}
			be, err := a.backendOnly(c.Context())
			if err != nil {
				return err
			}
			defer be.Close()
			files, err := be.Files(c.Context())
			if err != nil {
				return err
			}
			path := filepath.Join(files, "pki", "kubeconfig", "admin.conf")
			data, err := os.ReadFile(path)
			if errors.Is(err, os.ErrNotExist) {
				return fmt.Errorf("no admin kubeconfig in %s yet: kforge apply (or kforge certs issue) writes it", be.Name())
			}
			if err != nil {
				return err
			}
			switch {
			case merge:
				return a.mergeKubeconfig(data, keepContext)
			case out == "":
				_, err = a.stdout.Write(data)
				return err
			}
			if err := atomicfile.Write(out, data, 0o600); err != nil {
				return err
			}
			_, err = fmt.Fprintf(a.stderr, "Wrote %s: kubectl --kubeconfig %s get nodes\n", out, out)
			return err
		},
	}
	cmd.Flags().StringVarP(&out, "output", "o", "", "write to FILE (mode 0600) instead of standard output")
	cmd.Flags().BoolVar(&merge, "merge", false, "merge into $KUBECONFIG's first file or ~/.kube/config")
	cmd.Flags().BoolVar(&keepContext, "keep-context", false, "with --merge: leave the current context as it is")
	return cmd
}

func (a *app) mergeKubeconfig(admin []byte, keepContext bool) error {
	home, _ := os.UserHomeDir()
	if h := envValue(a.env, "HOME"); h != "" {
		home = h
	}
	path := kubeconfig.DefaultPath(func(k string) string { return envValue(a.env, k) }, home)
	sum, err := kubeconfig.WriteMerged(path, admin, kubeconfig.Options{KeepCurrentContext: keepContext})
	if err != nil {
		return err
	}
	if !sum.Changed() {
		_, err = fmt.Fprintf(a.stderr, "%s already has this cluster; current context %s.\n", path, sum.CurrentContext)
		return err
	}
	for _, c := range sum.Changes {
		if c.Action != kubeconfig.Unchanged {
			fmt.Fprintf(a.stderr, "%s %s %q\n", c.Action, c.Kind, c.Name)
		}
	}
	_, err = fmt.Fprintf(a.stderr, "Merged into %s; current context %s: kubectl get nodes\n", path, sum.CurrentContext)
	return err
}
