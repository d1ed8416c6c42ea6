package etcdbackend

import (
	"context"
	"errors"
	"fmt"

	"go.etcd.io/etcd/api/v3/mvccpb"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/kforge/kforge/provision/backend"
	"github.com/kforge/kforge/provision/plan"
	"github.com/kforge/kforge/provision/state"
)

// stored is what a Backend last saw of the state key: its revision (0: absent) and the document's lineage and
// serial.
type stored struct {
	revision int64
	lineage  string
	serial   int
}

// LoadState implements backend.Backend, and remembers the revision it read for SaveState's compare.
func (b *Backend) LoadState(ctx context.Context) (*state.State, error) {
	key := b.key(stateKey)
	resp, err := b.client.Get(ctx, key)
	if err != nil {
		return nil, fmt.Errorf("%s: read key %s: %w", b.name, key, err)
	}
	if len(resp.Kvs) == 0 {
		b.mu.Lock()
		b.state = stored{}
		b.mu.Unlock()
		return &state.State{Version: state.Version, Hosts: map[string][]plan.Managed{}}, nil
	}
	kv := resp.Kvs[0]
	s, err := state.Parse(kv.Value, b.name+" key "+key)
	if err != nil {
		return nil, err
	}
	b.mu.Lock()
	b.state = stored{revision: kv.ModRevision, lineage: s.Lineage, serial: s.Serial}
	b.mu.Unlock()
	return s, nil
}

// SaveState implements backend.Backend: the write happens only while the key is at the revision this Backend
// last read or wrote, in one transaction, so that of two runs that loaded the same state only one saves.
func (b *Backend) SaveState(ctx context.Context, s *state.State) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	key := b.key(stateKey)
	// s was loaded from elsewhere (another Backend, a file) than what this Backend last saw: the revision
	// could match while the document does not.
	if s.Lineage != b.state.lineage || s.Serial != b.state.serial {
		resp, err := b.client.Get(ctx, key)
		if err != nil {
			return fmt.Errorf("%s: read key %s: %w", b.name, key, err)
		}
		return b.conflict(resp.Kvs, s.Lineage, s.Serial)
	}
	data, err := s.Next()
	if err != nil {
		return err
	}
	resp, err := b.client.Txn(ctx).
		If(clientv3.Compare(clientv3.ModRevision(key), "=", b.state.revision)).
		Then(clientv3.OpPut(key, string(data))).
		Else(clientv3.OpGet(key)).
		Commit()
	if err != nil {
		// Whether a write that timed out happened is unknown; the next save's compare will tell.
		return fmt.Errorf("%s: write key %s: %w", b.name, key, err)
	}
	if !resp.Succeeded {
		return b.conflict(resp.Responses[0].GetResponseRange().Kvs, s.Lineage, s.Serial)
	}
	if err := s.Advance(data); err != nil {
		return err
	}
	b.state = stored{revision: resp.Header.Revision, lineage: s.Lineage, serial: s.Serial}
	return nil
}

// conflict is the error of a save refused because the stored state (kvs: the key, or nothing) is not the one
// this run loaded (haveLineage, haveSerial).
func (b *Backend) conflict(kvs []*mvccpb.KeyValue, haveLineage string, haveSerial int) error {
	e := &backend.ConflictError{Where: b.name, HaveLineage: haveLineage, HaveSerial: haveSerial}
	if len(kvs) > 0 {
		have, err := state.Parse(kvs[0].Value, b.name+" key "+string(kvs[0].Key))
		if err != nil {
			return fmt.Errorf("the state changed since this run loaded it, nothing written, and: %w", err)
		}
		e.Lineage, e.Serial = have.Lineage, have.Serial
	}
	return e
}

// StateDocument implements backend.Backend; like LoadState, it remembers what it read for the next write.
func (b *Backend) StateDocument(ctx context.Context) ([]byte, error) {
	key := b.key(stateKey)
	resp, err := b.client.Get(ctx, key)
	if err != nil {
		return nil, fmt.Errorf("%s: read key %s: %w", b.name, key, err)
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if len(resp.Kvs) == 0 {
		b.state, b.documentRead = stored{}, true
		return nil, nil
	}
	kv := resp.Kvs[0]
	s, err := state.Parse(kv.Value, b.name+" key "+key)
	if err != nil {
		return nil, err
	}
	b.state, b.documentRead = stored{revision: kv.ModRevision, lineage: s.Lineage, serial: s.Serial}, true
	return kv.Value, nil
}

// PutStateDocument implements backend.Backend, with SaveState's compare against what StateDocument read.
func (b *Backend) PutStateDocument(ctx context.Context, doc []byte) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if !b.documentRead {
		return errors.New("PutStateDocument before StateDocument")
	}
	s, err := state.Parse(doc, "the state to store")
	if err != nil {
		return err
	}
	key := b.key(stateKey)
	resp, err := b.client.Txn(ctx).
		If(clientv3.Compare(clientv3.ModRevision(key), "=", b.state.revision)).
		Then(clientv3.OpPut(key, string(doc))).
		Else(clientv3.OpGet(key)).
		Commit()
	if err != nil {
		return fmt.Errorf("%s: write key %s: %w", b.name, key, err)
	}
	if !resp.Succeeded {
		return b.conflict(resp.Responses[0].GetResponseRange().Kvs, b.state.lineage, b.state.serial)
	}
	b.state = stored{revision: resp.Header.Revision, lineage: s.Lineage, serial: s.Serial}
	return nil
}
