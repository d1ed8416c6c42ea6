package ssh

import (
	"context"
	"fmt"
	"strings"

	"github.com/kforge/kforge/provision/remote"
)

// Stat implements remote.Runner: one round trip whatever the number of paths.
func (c *Client) Stat(ctx context.Context, paths []string) ([]remote.FileInfo, error) {
	out := make([]remote.FileInfo, len(paths))
	byPath := map[string]*remote.FileInfo{}
	if err := remote.CheckPaths(paths); err != nil {
		return nil, c.hostError("stat", err)
	}
	for i, p := range paths {
		out[i] = remote.FileInfo{Path: p}
		byPath[p] = &out[i]
	}
	if len(paths) == 0 {
		return out, nil
	}
	res, err := c.Run(ctx, remote.Command{Name: fmt.Sprintf("stat %d paths", len(paths)), Script: remote.StatScript, Sudo: true,
		Stdin: strings.NewReader(strings.Join(paths, "\n"))})
	if err != nil {
		return nil, err
	}
	if err := remote.ParseStat(res.Stdout, byPath); err != nil {
		return nil, c.hostError("stat", err)
	}
	return out, nil
}

// ReadFile implements remote.Runner.
func (c *Client) ReadFile(ctx context.Context, path string) ([]byte, error) {
	res, err := c.Run(ctx, remote.Command{Name: "read " + path, Script: "exec cat -- " + remote.ShellQuote(path), Sudo: true})
	if err != nil {
		return nil, err
	}
	return res.Stdout, nil
}
