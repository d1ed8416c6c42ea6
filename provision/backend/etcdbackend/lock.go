package etcdbackend

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"sync"
	"time"

	"go.etcd.io/etcd/api/v3/mvccpb"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.etcd.io/etcd/client/v3/concurrency"

	"github.com/kforge/kforge/provision/backend"
	"github.com/kforge/kforge/provision/state"
)

// Lock is a held lock: a key on a lease that this process keeps alive, so that a killed holder's lock ends
// after LockTTL. Beside it, lock/holder names the holder; it has no lease on purpose, so that the next holder
// finds it when a run ended without releasing.
type Lock struct {
	b        *Backend
	session  *concurrency.Session
	mutex    *concurrency.Mutex
	previous *state.LockInfo
	once     sync.Once
}

var _ backend.Lock = (*Lock)(nil)

// releaseTimeout bounds Release, which has no context of its own: a lock left behind ends with its lease.
const releaseTimeout = 10 * time.Second

// Lock implements backend.Backend.
func (b *Backend) Lock(ctx context.Context, operation string, wait time.Duration) (backend.Lock, error) {
	start := time.Now()
	session, err := b.newSession(ctx)
	if err != nil {
		return nil, fmt.Errorf("%s: lock: %w", b.name, err)
	}
	mutex := concurrency.NewMutex(session, b.key(mutexKey))
	if wait <= 0 {
		err = mutex.TryLock(ctx)
	} else {
		wctx, cancel := context.WithTimeout(ctx, wait)
		err = mutex.Lock(wctx)
		if err != nil && wctx.Err() != nil && ctx.Err() == nil {
			err = concurrency.ErrLocked
		}
		cancel()
	}
	if err != nil {
		// Revoking the lease deletes what is on it: this run's place in the queue.
		session.Close()
		if !errors.Is(err, concurrency.ErrLocked) {
			return nil, fmt.Errorf("%s: lock: %w", b.name, err)
		}
		locked := &state.LockedError{Where: b.name}
		if wait > 0 {
			locked.Waited = time.Since(start)
		}
		// Who holds it is for the message; a holder that cannot be read does not change the answer.
		locked.Holder, _ = b.Holder(ctx)
		return nil, locked
	}

	l := &Lock{b: b, session: session, mutex: mutex}
	host, _ := os.Hostname()
	info, err := json.Marshal(state.LockInfo{Operation: operation, PID: os.Getpid(), Hostname: host, Since: time.Now().UTC()})
	if err != nil {
		l.Release()
		return nil, err
	}
	// Read the last holder's record and write ours in one step, and only while the mutex is still ours.
	resp, err := b.client.Txn(ctx).
		If(mutex.IsOwner()).
		Then(clientv3.OpGet(b.key(holderKey)), clientv3.OpPut(b.key(holderKey), string(info))).
		Commit()
	if err == nil && !resp.Succeeded {
		err = errors.New("the lock's lease ended before its holder was recorded")
	}
	if err != nil {
		l.Release()
		return nil, fmt.Errorf("%s: lock: %w", b.name, err)
	}
	if prev, err := parseHolder(resp.Responses[0].GetResponseRange().Kvs); err == nil && prev.PID != 0 {
		l.previous = &prev
	}
	return l, nil
}

// newSession grants the lease with ctx, but keeps it alive with the client's own context: the lock outlives
// the call that took it, until Release or Close.
func (b *Backend) newSession(ctx context.Context) (*concurrency.Session, error) {
	ttl := int(b.cfg.LockTTL.Round(time.Second) / time.Second)
	lease, err := b.client.Grant(ctx, int64(ttl))
	if err != nil {
		return nil, err
	}
	session, err := concurrency.NewSession(b.client, concurrency.WithLease(lease.ID), concurrency.WithTTL(ttl))
	if err != nil {
		rctx, cancel := context.WithTimeout(context.Background(), releaseTimeout)
		b.client.Revoke(rctx, lease.ID)
		cancel()
		return nil, err
	}
	return session, nil
}

// Previous implements backend.Lock.
func (l *Lock) Previous() *state.LockInfo { return l.previous }

// Lost is closed when the lease is no longer kept alive (etcd unreachable, or the Backend closed): from then
// on, at the latest LockTTL later, another run may take the lock. Release closes it too.
func (l *Lock) Lost() <-chan struct{} { return l.session.Done() }

// Release implements backend.Lock: it removes the holder's record (only while the lock is still this one's,
// never another holder's), unlocks, and ends the lease.
func (l *Lock) Release() error {
	var err error
	l.once.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), releaseTimeout)
		defer cancel()
		_, err = l.b.client.Txn(ctx).
			If(l.mutex.IsOwner()).
			Then(clientv3.OpDelete(l.b.key(holderKey))).
			Commit()
		if uerr := l.mutex.Unlock(ctx); err == nil && !errors.Is(uerr, concurrency.ErrLockReleased) {
			err = uerr
		}
		if cerr := l.session.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			err = fmt.Errorf("%s: release the lock: %w", l.b.name, err)
		}
	})
	return err
}

// Holder implements backend.Backend: the record in lock/holder, which stays behind a run that did not release.
func (b *Backend) Holder(ctx context.Context) (state.LockInfo, error) {
	resp, err := b.client.Get(ctx, b.key(holderKey))
	if err != nil {
		return state.LockInfo{}, fmt.Errorf("%s: read the lock's holder: %w", b.name, err)
	}
	return parseHolder(resp.Kvs)
}

// ForceUnlock implements backend.Backend: it deletes the lock's keys, a living holder's too (which keeps
// running without knowing; that is what forcing means).
func (b *Backend) ForceUnlock(ctx context.Context) (state.LockInfo, error) {
	resp, err := b.client.Txn(ctx).
		Then(clientv3.OpGet(b.key(holderKey)), clientv3.OpDelete(b.key(lockPrefix), clientv3.WithPrefix())).
		Commit()
	if err != nil {
		return state.LockInfo{}, fmt.Errorf("%s: force-unlock: %w", b.name, err)
	}
	if resp.Responses[1].GetResponseDeleteRange().Deleted == 0 {
		return state.LockInfo{}, fmt.Errorf("there is no lock in %s", b.name)
	}
	// A damaged record is no reason to keep the lock: it is gone either way.
	info, _ := parseHolder(resp.Responses[0].GetResponseRange().Kvs)
	return info, nil
}

// parseHolder reads the holder's record (kvs: its key, or nothing); a damaged one gives an error and a zero
// LockInfo, never a half-read one, whose PID someone might signal.
func parseHolder(kvs []*mvccpb.KeyValue) (state.LockInfo, error) {
	if len(kvs) == 0 {
		return state.LockInfo{}, nil
	}
	var info state.LockInfo
	if err := json.Unmarshal(kvs[0].Value, &info); err != nil {
		return state.LockInfo{}, fmt.Errorf("the lock's holder record %s is damaged: %w", kvs[0].Key, err)
	}
	if info.PID <= 0 {
		return state.LockInfo{}, fmt.Errorf("the lock's holder record %s is damaged: %d is not a process ID", kvs[0].Key, info.PID)
	}
	return info, nil
}
