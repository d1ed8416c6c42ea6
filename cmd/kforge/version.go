package main

import (
	"runtime"

	"github.com/spf13/cobra"

	"github.com/kforge/kforge/cmd/kforge/internal/views"
	"github.com/kforge/kforge/config"
)

func (a *app) versionCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print kforge's version",
		Args:  cobra.NoArgs,
		RunE: func(*cobra.Command, []string) error {
			var v views.Version = &views.VersionHuman{Out: a.stdout}
			if a.json {
				v = &views.VersionJSON{Out: a.stdout}
			}
			return v.Show(views.VersionInfo{
				Version:                  version,
				GoVersion:                runtime.Version(),
				Platform:                 runtime.GOOS + "/" + runtime.GOARCH,
				DefaultKubernetesVersion: config.DefaultKubernetesVersion,
			})
		},
	}
}
