package main

import (
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/kforge/kforge/config"
	"github.com/kforge/kforge/provision/backend"
	"github.com/kforge/kforge/provision/backend/etcdbackend"
)

// openBackend opens where the configuration keeps its state: its backend block, else the local directory
// (--state, or .kforge beside the configuration).
func (a *app) openBackend(ctx context.Context, cluster *config.Cluster) (backend.Backend, error) {
	local := a.statePath(a.configPath)
	b := cluster.Backend
	if b.Type != config.BackendEtcd {
		if a.stateDir == "" && b.Dir != "" {
			local = b.Dir
		}
		return &backend.Local{Dir: local}, nil
	}
	cfg := etcdbackend.Config{Endpoints: b.Endpoints, Prefix: b.Prefix, CAFile: b.CAFile, CertFile: b.CertFile, KeyFile: b.KeyFile,
		LockTTL: b.LockTTL}
	if b.EncryptionKeyFile != "" {
		key, err := readBackendKey(b.EncryptionKeyFile)
		if err != nil {
			return nil, err
		}
		cfg.EncryptionKey = key
	}
	e, err := etcdbackend.Open(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("backend: %w", err)
	}
	if b.LocalPKI {
		return backend.LocalFiles(e, local), nil
	}
	return e, nil
}

// backendOnly opens the configuration's backend for a command that needs nothing else (force-unlock, state,
// kubeconfig).
func (a *app) backendOnly(ctx context.Context) (backend.Backend, error) {
	cluster, err := a.load(ctx, a.configPath, false)
	if err != nil {
		return nil, err
	}
	return a.openBackend(ctx, cluster)
}

// readBackendKey reads the key that encrypts the files kept in a remote backend: 32 bytes, base64.
func readBackendKey(path string) ([]byte, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("backend encryption key: %w", err)
	}
	key, err := base64.StdEncoding.DecodeString(string(bytes.TrimSpace(data)))
	if err != nil || len(key) != 32 {
		return nil, fmt.Errorf("backend encryption key %s: want 32 random bytes in base64 (head -c 32 /dev/urandom | base64 > FILE)", path)
	}
	return key, nil
}

// hold is a command's hold on the backend: open, locked for an operation that writes, and released at the end
// with the files written back first (before the next run may take the lock).
type hold struct {
	backend backend.Backend
	lock    backend.Lock
	stderr  io.Writer
}

// holdBackend opens the configuration's backend and, for an operation, takes its lock.
func (a *app) holdBackend(ctx context.Context, cluster *config.Cluster, operation string) (*hold, error) {
	be, err := a.openBackend(ctx, cluster)
	if err != nil {
		return nil, err
	}
	h := &hold{backend: be, stderr: a.stderr}
	if operation != "" {
		if h.lock, err = a.lock(ctx, be, operation); err != nil {
			be.Close()
			return nil, err
		}
	}
	return h, nil
}

func (h *hold) release() {
	if err := syncFiles(context.Background(), h.backend); err != nil {
		fmt.Fprintf(h.stderr, "Error: %v\n", err)
	}
	if h.lock != nil {
		if err := h.lock.Release(); err != nil {
			fmt.Fprintf(h.stderr, "Error: releasing the lock in %s: %v\n", h.backend.Name(), err)
		}
	}
	h.backend.Close()
}

// lock takes the backend's lock for operation, waiting up to --lock-timeout, and says when an earlier run did
// not finish.
func (a *app) lock(ctx context.Context, be backend.Backend, operation string) (backend.Lock, error) {
	l, err := be.Lock(ctx, operation, a.lockTimeout)
	if err != nil {
		return nil, err
	}
	if prev := l.Previous(); prev != nil {
		fmt.Fprintf(a.stderr, "Warning: an earlier run (%s) ended without releasing the lock; the state records what it finished.\n", *prev)
	}
	return l, nil
}

// errLockLost: a remote lock's lease ended under a run (the backend was out of reach for longer than its TTL),
// so another run may hold it now.
var errLockLost = errors.New("the state lock was lost: another run may hold it now, so this one stopped starting changes")

// whileLocked is ctx, ended with errLockLost when a lock that can be lost (etcd's lease) is; the cancel func
// stops watching.
func whileLocked(ctx context.Context, l backend.Lock) (context.Context, context.CancelCauseFunc) {
	ctx, cancel := context.WithCancelCause(ctx)
	if losable, ok := l.(interface{ Lost() <-chan struct{} }); ok {
		go func() {
			select {
			case <-losable.Lost():
				cancel(errLockLost)
			case <-ctx.Done():
			}
		}()
	}
	return ctx, cancel
}

// syncTimeout bounds writing the backend's files back; it outlives an interrupt, as what was issued must be kept.
const syncTimeout = time.Minute

// syncFiles writes the files (certificates issued, known hosts learned) back to the backend.
func syncFiles(ctx context.Context, be backend.Backend) error {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), syncTimeout)
	defer cancel()
	if err := be.Sync(ctx); err != nil {
		return fmt.Errorf("%s: keeping the files: %w", be.Name(), err)
	}
	return nil
}
