package main

import (
	"github.com/spf13/cobra"

	"github.com/kforge/kforge/cmd/kforge/internal/views"
	"github.com/kforge/kforge/config"
	"github.com/kforge/kforge/provision/backend/etcdbackend"
)

func (a *app) validateCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "validate [PATH]",
		Short: "Check the configuration and summarise the cluster it describes",
		Long: `Loads every *.hcl file in PATH (default: --config, else the current directory), applies variables,
and reports every problem at once with file:line:col. Exits 0 when the configuration is valid, 1 otherwise.
Nothing on any host is contacted.`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(_ *cobra.Command, args []string) error {
			path := a.configPath
			if len(args) == 1 {
				path = args[0]
			}
			loader := config.NewLoader()
			cluster, diags := loader.Load(a.loadOptions(path))
			if cluster != nil {
				// Provider blocks are checked as written; their hosts are looked up when planning, not here.
				diags = append(diags, a.providers().Validate(cluster)...)
				if diags.HasErrors() {
					cluster = nil
				}
			}
			var v views.Validate = &views.ValidateHuman{Out: a.stdout, Err: a.stderr, Term: a.terminal(a.stderr)}
			if a.json {
				v = &views.ValidateJSON{Out: a.stdout}
			}
			result := views.ValidateResult{Cluster: cluster, Files: loader.Files(), Diags: diags, StateDir: a.statePath(path)}
			if cluster != nil && cluster.Backend.Type == config.BackendEtcd {
				result.Backend = etcdbackend.Describe(cluster.Backend.Endpoints, cluster.Backend.Prefix)
				if cluster.Backend.LocalPKI {
					result.Backend += " (PKI in " + result.StateDir + ")"
				}
			}
			if err := v.Result(result); err != nil {
				return err
			}
			if cluster == nil {
				return exitCode(exitError)
			}
			return nil
		},
	}
}
