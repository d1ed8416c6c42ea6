package backend

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"time"

	"github.com/kforge/kforge/internal/atomicfile"

	"github.com/kforge/kforge/provision/state"
)

// Local keeps everything in a directory (.kforge beside the configuration, or --state): state.json, lock.json
// (an flock, which ends with its holder), pki/ and known_hosts.
type Local struct {
	Dir string

	read *state.State // what the last StateDocument found, for PutStateDocument's check
}

// Name implements Backend.
func (l *Local) Name() string { return "local directory " + l.Dir }

// lockPoll spaces the tries of a waiting Lock: an flock cannot be waited for with a deadline.
const lockPoll = 200 * time.Millisecond

// Lock implements Backend.
func (l *Local) Lock(ctx context.Context, operation string, wait time.Duration) (Lock, error) {
	start := time.Now()
	for {
		lk, err := state.Acquire(l.Dir, operation)
		if err == nil {
			return localLock{lk}, nil
		}
		var locked *state.LockedError
		if !errors.As(err, &locked) || time.Since(start)+lockPoll > wait {
			if locked != nil {
				locked.Waited = time.Since(start)
			}
			return nil, err
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(lockPoll):
		}
	}
}

type localLock struct{ *state.Lock }

func (l localLock) Previous() *state.LockInfo { return l.Lock.Previous }

// Holder implements Backend.
func (l *Local) Holder(context.Context) (state.LockInfo, error) { return state.Holder(l.Dir) }

// ForceUnlock implements Backend.
func (l *Local) ForceUnlock(context.Context) (state.LockInfo, error) { return state.ForceUnlock(l.Dir) }

// LoadState implements Backend.
func (l *Local) LoadState(context.Context) (*state.State, error) { return state.Load(l.Dir) }

// SaveState implements Backend. The lock keeps kforge runs apart; the check catches what it cannot: a run
// given another --state, or a state.json copied in by hand meanwhile.
func (l *Local) SaveState(_ context.Context, s *state.State) error {
	stored, err := state.Load(l.Dir)
	if err != nil {
		return err
	}
	if stored.Lineage != s.Lineage || stored.Serial != s.Serial {
		return &ConflictError{Where: l.Name(), Lineage: stored.Lineage, HaveLineage: s.Lineage, Serial: stored.Serial, HaveSerial: s.Serial}
	}
	return s.Save(l.Dir)
}

// StateDocument implements Backend.
func (l *Local) StateDocument(context.Context) ([]byte, error) {
	s, err := state.Load(l.Dir)
	if err != nil {
		return nil, err
	}
	l.read = s
	data, err := os.ReadFile(filepath.Join(l.Dir, state.FileName))
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	return data, err
}

// PutStateDocument implements Backend.
func (l *Local) PutStateDocument(_ context.Context, doc []byte) error {
	if l.read == nil {
		return errors.New("PutStateDocument before StateDocument")
	}
	if _, err := state.Parse(doc, "the state to store"); err != nil {
		return err
	}
	stored, err := state.Load(l.Dir)
	if err != nil {
		return err
	}
	if stored.Lineage != l.read.Lineage || stored.Serial != l.read.Serial {
		return &ConflictError{Where: l.Name(), Lineage: stored.Lineage, HaveLineage: l.read.Lineage, Serial: stored.Serial, HaveSerial: l.read.Serial}
	}
	if err := os.MkdirAll(l.Dir, 0o700); err != nil {
		return err
	}
	return atomicfile.Write(filepath.Join(l.Dir, state.FileName), doc, 0o600)
}

// Files implements Backend: the directory itself.
func (l *Local) Files(context.Context) (string, error) { return l.Dir, nil }

// Sync implements Backend: the files are where they are kept.
func (l *Local) Sync(context.Context) error { return nil }

// Close implements Backend.
func (l *Local) Close() error { return nil }

// LocalFiles keeps the files in dir while b keeps the state and the lock (an etcd backend with pki = "local":
// the CA keys never leave this machine).
func LocalFiles(b Backend, dir string) Backend { return localFiles{Backend: b, dir: dir} }

type localFiles struct {
	Backend
	dir string
}

func (l localFiles) Name() string                          { return l.Backend.Name() + " (PKI in " + l.dir + ")" }
func (l localFiles) Files(context.Context) (string, error) { return l.dir, nil }
func (l localFiles) Sync(context.Context) error            { return nil }
