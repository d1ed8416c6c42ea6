// Package etcdsnapshot takes snapshots of a cluster's etcd from a healthy member and restores every member from
// one, over the hosts' Runners: the operator's copy of all the Kubernetes API stores.
package etcdsnapshot

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/kforge/kforge/provision/desired"
	"github.com/kforge/kforge/provision/remote"
)

// Member is an etcd member, reached through its host.
type Member struct {
	Name   string // the member's name: its host's
	IP     string // the address it serves peers on
	Runner remote.Runner
}

// Snapshot describes a snapshot taken.
type Snapshot struct {
	Member string `json:"member"`
	// Revision is the member's revision just before the snapshot: the snapshot holds at least that.
	Revision int64     `json:"revision"`
	Size     int64     `json:"size"`
	SHA256   string    `json:"sha256"`
	Taken    time.Time `json:"taken"`
}

// statusScript: the member is healthy (it serves, and the cluster has quorum), then its status as JSON.
const statusScript = desired.EtcdHealth + " >&2 && " + desired.Etcdctl + " --command-timeout=5s endpoint status -w json"

// saveScript has the member write a snapshot to a private temporary directory on its host, then streams it.
// Directories left by a run that was killed are removed by the next one, once an hour old.
const saveScript = `set -e
find /var/tmp -maxdepth 1 -name 'kforge-etcd-snapshot.*' -mmin +60 -exec rm -rf {} + 2>/dev/null || true
umask 077
d=$(mktemp -d /var/tmp/kforge-etcd-snapshot.XXXXXX)
trap 'rm -rf "$d"' EXIT
` + desired.Etcdctl + ` snapshot save "$d/snapshot.db" >&2
cat "$d/snapshot.db"`

// Save writes a snapshot of the first member that answers healthy to w, hashing it on the way. Members that do
// not answer are passed over; once bytes have reached w, a failure is the error (w holds a partial snapshot).
func Save(ctx context.Context, members []Member, w io.Writer) (Snapshot, error) {
	if len(members) == 0 {
		return Snapshot{}, errors.New("the cluster has no etcd member")
	}
	var unhealthy []error
	for _, m := range members {
		rev, err := revision(ctx, m)
		if err != nil {
			unhealthy = append(unhealthy, err)
			continue
		}
		h := sha256.New()
		cw := &countingWriter{w: io.MultiWriter(w, h)}
		taken := time.Now().UTC()
		if _, err := m.Runner.Run(ctx, remote.Command{Name: "etcd snapshot save", Script: saveScript, Sudo: true, Stdout: cw}); err != nil {
			return Snapshot{}, err
		}
		if cw.n == 0 {
			return Snapshot{}, fmt.Errorf("host %s: etcd snapshot save: the snapshot is empty", m.Name)
		}
		return Snapshot{Member: m.Name, Revision: rev, Size: cw.n, SHA256: hex.EncodeToString(h.Sum(nil)), Taken: taken}, nil
	}
	return Snapshot{}, fmt.Errorf("no etcd member is healthy: %w", errors.Join(unhealthy...))
}

// revision asks a member whether it is healthy, and for its revision.
func revision(ctx context.Context, m Member) (int64, error) {
	res, err := m.Runner.Run(ctx, remote.Command{Name: "etcd health", Script: statusScript, Sudo: true, Timeout: 30 * time.Second})
	if err != nil {
		return 0, err
	}
	return parseRevision(res.Stdout)
}

// parseRevision reads the revision from `etcdctl endpoint status -w json`.
func parseRevision(out []byte) (int64, error) {
	var status []struct {
		Status struct {
			Header struct {
				Revision int64 `json:"revision"`
			} `json:"header"`
		} `json:"Status"`
	}
	if err := json.Unmarshal(out, &status); err != nil || len(status) != 1 {
		return 0, fmt.Errorf("etcdctl endpoint status: unexpected output %q", truncate(out, 200))
	}
	return status[0].Status.Header.Revision, nil
}

func truncate(b []byte, n int) string {
	if len(b) > n {
		return string(b[:n]) + "…"
	}
	return string(b)
}

type countingWriter struct {
	w io.Writer
	n int64
}

func (c *countingWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
}
