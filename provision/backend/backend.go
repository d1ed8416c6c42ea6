// Package backend keeps what kforge remembers between runs — the state, the lock that keeps runs apart, and the
// files beside them (the PKI store, known hosts) — in a local directory or in etcd, where a team shares them.
package backend

import (
	"context"
	"fmt"
	"time"

	"github.com/kforge/kforge/provision/state"
)

// Backend is where the state, the lock and the files live.
type Backend interface {
	// Name says where, for messages: "local directory /x/.kforge", "etcd https://10.0.0.1:2379, prefix /kforge/prod/".
	Name() string

	// Lock takes the lock for operation ("apply", "destroy", …), waiting up to wait while another run holds it
	// (zero: not at all). A held lock gives a *state.LockedError naming the holder.
	Lock(ctx context.Context, operation string, wait time.Duration) (Lock, error)
	// Holder is who holds the lock, or last held it without releasing it; a zero PID means nobody.
	Holder(ctx context.Context) (state.LockInfo, error)
	// ForceUnlock removes the lock of a holder that is gone, and says who that was.
	ForceUnlock(ctx context.Context) (state.LockInfo, error)

	// LoadState reads the state; where there is none, an empty one without a lineage.
	LoadState(ctx context.Context) (*state.State, error)
	// SaveState writes s with the next serial, only if the stored state is still the one s was loaded from
	// (same lineage and serial, or none at all for a state without a lineage); otherwise it writes nothing and
	// returns a *ConflictError. On success s carries the new serial (and a new lineage for a first save).
	SaveState(ctx context.Context, s *state.State) error
	// StateDocument is the stored state as it is, nil where there is none: what state pull prints and migrate
	// moves, byte for byte.
	StateDocument(ctx context.Context) ([]byte, error)
	// PutStateDocument stores doc (a valid state) as it is, only if the stored state is still the one the last
	// StateDocument read (else a *ConflictError).
	PutStateDocument(ctx context.Context, doc []byte) error

	// Files is a local directory with the backend's files (the PKI store under pki/, known_hosts): the state
	// directory itself for the local backend, a private copy for a remote one, which Sync writes back.
	Files(ctx context.Context) (string, error)
	// Sync writes what changed in Files back to the backend (nothing to do for the local backend).
	Sync(ctx context.Context) error
	// Close releases connections and removes a private copy of the files (Sync first to keep changes).
	Close() error
}

// Lock is a held lock.
type Lock interface {
	// Previous is the holder recorded by a run that ended without releasing the lock (killed), if any.
	Previous() *state.LockInfo
	// Release clears the holder's record and unlocks.
	Release() error
}

// ConflictError: the stored state moved on since it was loaded (another run wrote it), so a save would lose
// that run's record.
type ConflictError struct {
	Where                string
	Lineage, HaveLineage string // the stored lineage, the one this run loaded
	Serial, HaveSerial   int    // the stored serial, the one this run loaded
}

func (e *ConflictError) Error() string {
	if e.Lineage != e.HaveLineage {
		return fmt.Sprintf("the state in %s is another cluster's history (lineage %s, serial %d) than the one this run loaded (lineage %s, serial %d): nothing written",
			e.Where, orNone(e.Lineage), e.Serial, orNone(e.HaveLineage), e.HaveSerial)
	}
	return fmt.Sprintf("the state in %s is at serial %d, but this run loaded serial %d: another run wrote it meanwhile; nothing written (plan again)",
		e.Where, e.Serial, e.HaveSerial)
}

func orNone(lineage string) string {
	if lineage == "" {
		return "none"
	}
	return lineage
}
