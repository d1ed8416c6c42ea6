package main

import (
	"context"
	"fmt"
	"path/filepath"

	"github.com/spf13/cobra"

	"github.com/kforge/kforge/cmd/kforge/internal/views"
	"github.com/kforge/kforge/config"
	"github.com/kforge/kforge/provision/artifacts"
	"github.com/kforge/kforge/provision/artifacts/download"
)

// artifactSet is the set of binaries the configuration names: none, a local directory, or release files
// downloaded into the cache and checked against their published sums, the pins and the lock file beside the
// configuration (no request at all once the lock file and the cache have every file).
func (a *app) artifactSet(ctx context.Context, c *config.Cluster, upgrade bool) (*artifacts.Set, error) {
	switch c.Artifacts.Source {
	case config.SourceNone:
		return nil, nil
	case config.SourceLocal:
		return artifacts.Load(c.Artifacts.Dir)
	}
	req, err := download.FromConfig(c.Artifacts, c.KubernetesVersion.String())
	if err != nil {
		return nil, err
	}
	req.NetworkPlugin = c.Network.Plugin
	req.LockFile, req.Upgrade = filepath.Join(configDirOf(a.configPath), download.LockFileName), upgrade
	if !a.json {
		req.Progress = (&views.Downloads{Out: a.stderr, Term: a.terminal(a.stderr)}).Progress
	}
	dir, err := download.Fetch(ctx, req)
	if err != nil {
		return nil, err
	}
	return artifacts.Load(dir)
}

func (a *app) initCmd() *cobra.Command {
	var upgrade bool
	cmd := &cobra.Command{
		Use:   "init [-upgrade]",
		Short: "Download the artifacts the configuration names and record their sha256 in " + download.LockFileName,
		Long: `Downloads the release files of the configured versions (Kubernetes, etcd, containerd, runc, CNI plugins,
crictl) into the cache, checks each against the checksum file its project publishes beside it and the
configuration's sha256 pins, and records the sums in ` + download.LockFileName + ` beside the configuration (commit it).
Later downloads must match that record; -upgrade accepts files that changed and records them anew. plan and
apply do the same when they need to, so init is optional; it is how a lock file is made or renewed on purpose.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := a.loadCluster(cmd.Context(), a.configPath)
			if err != nil {
				return err
			}
			if s := c.Artifacts.Source; s != config.SourceDownload && s != config.SourceMirror {
				_, err := fmt.Fprintf(a.stdout, "Nothing to download: artifacts come from source %q.\n", s)
				return err
			}
			set, err := a.artifactSet(cmd.Context(), c, upgrade)
			if err != nil {
				return err
			}
			_, err = fmt.Fprintf(a.stdout, "Artifacts ready: Kubernetes %s, etcd %s, containerd %s in %s (lock file %s).\n",
				set.Manifest.Kubernetes, set.Manifest.Etcd, set.Manifest.Containerd, set.Dir, filepath.Join(configDirOf(a.configPath), download.LockFileName))
			return err
		},
	}
	cmd.Flags().BoolVar(&upgrade, "upgrade", false, "accept release files whose sha256 differs from the lock file and record the new sums")
	return cmd
}
