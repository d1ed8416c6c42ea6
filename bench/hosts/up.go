package hosts

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/pem"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"

	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/knownhosts"

	"github.com/kforge/kforge/internal/atomicfile"
	"github.com/kforge/kforge/provision/remote"
)

// startParallel bounds how many hosts are being made at once. The work is CPU (mounts, writes, a few
// processes each); on 2 cores 4, 8 and 16 at once took the same time.
const startParallel = 8

// Up makes a set of hosts and returns once every host's sshd answers. It is everything or nothing: on an error,
// or when ctx ends, it removes what it made. Whatever a killed run left under the same name is removed first.
//
// Measured here (2 cores, shared with a Kubernetes lab test at load 8–20; image already unpacked): 3 hosts
// answer SSH after ≈0.1 s, 100 hosts after 2.2–3.5 s; Down takes ≈0.13 s for 3 and ≈0.5 s for 100. Most of
// Up's CPU goes to ext4 creating the overlays' files (slow right after a Down deleted many) and to sshd's own
// start. An idle host is one sshd of ≈1.4 MiB (PSS).
func Up(ctx context.Context, opts Options) (*Set, error) {
	if err := opts.check(); err != nil {
		return nil, err
	}
	if err := Preflight(); err != nil {
		return nil, err
	}
	if st, err := load(opts.Name); err == nil {
		for _, p := range st.Procs {
			if p.alive() {
				return nil, fmt.Errorf("bench host set %s is up (%d hosts): Down it first", opts.Name, len(st.Set.Hosts))
			}
		}
	}
	if err := Down(opts.Name); err != nil {
		return nil, fmt.Errorf("removing what an earlier run left of bench host set %s: %w", opts.Name, err)
	}
	lower, err := Prepare(ctx)
	if err != nil {
		return nil, err
	}
	s := newSet(opts)
	if err := s.up(ctx, lower); err != nil {
		if derr := s.Down(); derr != nil {
			err = errors.Join(err, fmt.Errorf("cleaning up: %w", derr))
		}
		return nil, fmt.Errorf("bench host set %s: %w", opts.Name, err)
	}
	return s, nil
}

func (s *Set) up(ctx context.Context, lower string) error {
	if err := os.MkdirAll(filepath.Join(s.Dir, "hosts"), 0o700); err != nil {
		return err
	}
	if err := s.claimSubnet(); err != nil {
		return err
	}
	if err := s.plugHosts(ctx); err != nil {
		return err
	}
	login, err := writeLoginKey(s.KeyFile, "kforge-bench-"+s.Name)
	if err != nil {
		return err
	}
	hostKeys := make([]ssh.PublicKey, len(s.Hosts))
	err = s.forEach(ctx, startParallel, "start", func(_ context.Context, i int) (err error) {
		hostKeys[i], err = s.startHost(i, lower, login)
		return err
	})
	if err != nil {
		return err
	}
	var known strings.Builder
	for i, h := range s.Hosts {
		known.WriteString(knownhosts.Line([]string{knownhosts.Normalize(net.JoinHostPort(h.Address.String(), "22"))}, hostKeys[i]) + "\n")
	}
	if err := atomicfile.Write(s.KnownHostsFile, []byte(known.String()), 0o600); err != nil {
		return err
	}
	// Waiting takes no work, so every host waits at once.
	return s.forEach(ctx, len(s.Hosts), "wait for sshd", s.waitHost)
}

// forEach runs fn for every host through the one fan-out helper; the first failure stops the others, whose
// resulting "context canceled" would only hide it.
func (s *Set) forEach(ctx context.Context, limit int, step string, fn func(context.Context, int) error) error {
	inner, cancel := context.WithCancel(ctx)
	defer cancel()
	index := make([]int, len(s.Hosts))
	for i := range index {
		index[i] = i
	}
	err := remote.ForEach(inner, index, limit, func(i int) string { return s.Hosts[i].Name }, step, func(ctx context.Context, i int) error {
		err := fn(ctx, i)
		if err != nil {
			if ctx.Err() != nil {
				return ctx.Err() // a killed `ip` says "signal: killed"; the cause is the end of ctx
			}
			cancel()
		}
		return err
	})
	if err == nil {
		return nil
	}
	if ctx.Err() != nil {
		return ctx.Err() // the caller's end of ctx, not a host's failure
	}
	var failed []error
	for _, he := range remote.HostErrors(err) {
		if !errors.Is(he.Err, context.Canceled) {
			failed = append(failed, he)
		}
	}
	if len(failed) == 0 {
		return err
	}
	return errors.Join(failed...)
}

// writeLoginKey makes the key root logs in with on every host of the set.
func writeLoginKey(path, comment string) (ssh.PublicKey, error) {
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return nil, err
	}
	block, err := ssh.MarshalPrivateKey(priv, comment)
	if err != nil {
		return nil, err
	}
	if err := atomicfile.Write(path, pem.EncodeToMemory(block), 0o600); err != nil {
		return nil, err
	}
	return ssh.NewPublicKey(pub)
}
