package main

import (
	"context"
	"time"

	"github.com/spf13/cobra"

	"github.com/kforge/kforge/cmd/kforge/internal/views"
	"github.com/kforge/kforge/provision/preflight"
)

func (a *app) preflightCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "preflight",
		Short: "Check every host for what Kubernetes needs (cgroups, namespaces, overlayfs, ports, …); change nothing",
		Long: `Probes every host with one SSH command, runs every check, and prints one table per host with what
was found and how to fix it. Exits 1 on any error; --ignore-preflight ID,… turns named errors into warnings.
plan and apply run the same checks first.`,
		Args: cobra.NoArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			s, err := a.openSession(c.Context(), "")
			if err != nil {
				return err
			}
			defer s.close()
			findings, err := a.preflight(c.Context(), s)
			if err != nil {
				return err
			}
			if err := a.preflightView().Findings(findings, true); err != nil {
				return err
			}
			if preflight.HasErrors(findings) {
				return exitCode(exitError)
			}
			return nil
		},
	}
}

func (a *app) preflightView() views.Preflight {
	if a.json {
		return &views.PreflightJSON{Out: a.stdout}
	}
	return &views.PreflightHuman{Out: a.stdout, Term: a.terminal(a.stdout)}
}

// preflight probes the session's hosts (once per command run) and checks them.
func (a *app) preflight(ctx context.Context, s *session) ([]preflight.Finding, error) {
	now := time.Now()
	got, err := s.facts.GatherAll(ctx, s.runnerList(), readParallelism)
	if err != nil {
		return nil, err
	}
	return preflight.Run(preflight.Input{Cluster: s.cluster, Facts: got, OperatorTime: now, Ignore: a.ignorePreflight}), nil
}
