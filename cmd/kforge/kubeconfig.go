package main

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/spf13/cobra"

	"github.com/kforge/kforge/internal/atomicfile"
)

func (a *app) kubeconfigCmd() *cobra.Command {
	var out string
	cmd := &cobra.Command{
		Use:   "kubeconfig [-o FILE]",
		Short: "The cluster's admin kubeconfig (written by apply), to FILE (0600) or standard output",
		Args:  cobra.NoArgs,
		RunE: func(*cobra.Command, []string) error {
			path := filepath.Join(a.statePath(a.configPath), "pki", "kubeconfig", "admin.conf")
			data, err := os.ReadFile(path)
			if errors.Is(err, os.ErrNotExist) {
				return fmt.Errorf("no admin kubeconfig in %s yet: kforge apply (or kforge certs issue) writes it", filepath.Dir(path))
			}
			if err != nil {
				return err
			}
			if out == "" {
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
	return cmd
}
