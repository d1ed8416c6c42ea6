// Package etcdbackend keeps kforge's state, lock and files in etcd, where a team shares them: the state by
// compare-and-swap, the lock on a lease that ends with its holder, the files sealed with AES-256-GCM.
package etcdbackend

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"os"
	"strings"
	"sync"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"

	"github.com/kforge/kforge/provision/backend"
)

// Config says which etcd, where in it, and how to talk to it.
type Config struct {
	// Endpoints are the etcd members' client URLs, https:// only.
	Endpoints []string
	// Prefix is where kforge's keys live ("/kforge/prod/"): it starts and ends with "/".
	Prefix string
	// CAFile is the CA of the members' certificates (empty: the system's roots); CertFile and KeyFile are this
	// client's certificate and key, which the members check (--client-cert-auth).
	CAFile, CertFile, KeyFile string
	// EncryptionKey (32 bytes) seals the files with AES-256-GCM; nil stores them unencrypted, as the user chose.
	EncryptionKey []byte
	// LockTTL is the lease of the lock: how long a killed holder keeps it (default 15s).
	LockTTL time.Duration
	// DialTimeout bounds Open's check of the connection (default 5s).
	DialTimeout time.Duration
}

// Defaults of Config.
const (
	DefaultLockTTL     = 15 * time.Second
	DefaultDialTimeout = 5 * time.Second
)

// Key names under the prefix.
const (
	stateKey   = "state"
	lockPrefix = "lock/"
	holderKey  = lockPrefix + "holder"
	mutexKey   = lockPrefix + "mutex"
	filePrefix = "files/"
)

// Backend is a backend.Backend on etcd. Each one remembers the revisions of what it read, which is what its
// writes compare against: two runs each open their own.
type Backend struct {
	cfg    Config
	client *clientv3.Client
	name   string

	mu           sync.Mutex
	state        stored    // the state key as last read or written
	documentRead bool      // StateDocument read it, as PutStateDocument requires
	files        *fileCopy // nil until Files
}

var _ backend.Backend = (*Backend)(nil)

// Describe names a backend on etcd as messages do, before or without connecting (kforge validate).
func Describe(endpoints []string, prefix string) string {
	return fmt.Sprintf("etcd %s, prefix %s", strings.Join(endpoints, ","), prefix)
}

// Open connects and checks the connection, so that a wrong certificate or CA, or endpoints that cannot be
// reached, are one clear error within DialTimeout. It writes nothing.
func Open(ctx context.Context, c Config) (*Backend, error) {
	if c.LockTTL == 0 {
		c.LockTTL = DefaultLockTTL
	}
	if c.DialTimeout == 0 {
		c.DialTimeout = DefaultDialTimeout
	}
	if err := c.validate(); err != nil {
		return nil, err
	}
	conf, err := c.tlsConfig()
	if err != nil {
		return nil, err
	}
	endpoints := strings.Join(c.Endpoints, ",")
	if err := check(ctx, c.Endpoints, conf, c.DialTimeout); err != nil {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		return nil, err
	}
	client, err := clientv3.New(clientv3.Config{
		Endpoints:   c.Endpoints,
		TLS:         conf,
		DialTimeout: c.DialTimeout,
		// The client logs to stderr by default; kforge reports through its errors.
		Logger: zap.NewNop(),
	})
	if err != nil {
		return nil, fmt.Errorf("etcd %s: %w", endpoints, err)
	}
	// The endpoint answered TLS; this asks etcd itself (a read, which also needs permission on the prefix).
	cctx, cancel := context.WithTimeout(ctx, c.DialTimeout)
	defer cancel()
	if _, err := client.Get(cctx, c.Prefix, clientv3.WithPrefix(), clientv3.WithCountOnly()); err != nil {
		client.Close()
		if errors.Is(err, context.DeadlineExceeded) && ctx.Err() == nil {
			err = fmt.Errorf("no answer within %s (DialTimeout)", c.DialTimeout)
		}
		return nil, fmt.Errorf("etcd %s: %w", endpoints, err)
	}
	return &Backend{
		cfg:    c,
		client: client,
		name:   Describe(c.Endpoints, c.Prefix),
	}, nil
}

// validate reports every problem of the configuration at once.
func (c *Config) validate() error {
	var errs []error
	if len(c.Endpoints) == 0 {
		errs = append(errs, errors.New("etcd: no endpoints given"))
	}
	for _, ep := range c.Endpoints {
		u, err := url.Parse(ep)
		switch {
		case err != nil:
			errs = append(errs, fmt.Errorf("etcd endpoint %q: %w", ep, err))
		case u.Scheme != "https":
			errs = append(errs, fmt.Errorf("etcd endpoint %q: kforge talks to etcd over TLS only: give an https:// URL", ep))
		case u.Host == "" || u.Port() == "":
			errs = append(errs, fmt.Errorf("etcd endpoint %q: give a host and a port (https://10.0.0.1:2379)", ep))
		case u.Path != "" && u.Path != "/" || u.RawQuery != "" || u.User != nil:
			errs = append(errs, fmt.Errorf("etcd endpoint %q: give only https://host:port", ep))
		}
	}
	if !strings.HasPrefix(c.Prefix, "/") || !strings.HasSuffix(c.Prefix, "/") {
		errs = append(errs, fmt.Errorf("etcd prefix %q: it starts and ends with \"/\" (/kforge/prod/)", c.Prefix))
	}
	if c.CertFile == "" || c.KeyFile == "" {
		errs = append(errs, errors.New("etcd: give a client certificate and its key (etcd checks clients' certificates)"))
	}
	if c.EncryptionKey != nil && len(c.EncryptionKey) != 32 {
		errs = append(errs, fmt.Errorf("etcd encryption key: it is %d bytes; AES-256 takes 32", len(c.EncryptionKey)))
	}
	if c.LockTTL < time.Second {
		errs = append(errs, fmt.Errorf("etcd lock TTL %s: it is at least 1s (a lease counts whole seconds)", c.LockTTL))
	}
	if c.DialTimeout < 0 {
		errs = append(errs, fmt.Errorf("etcd dial timeout %s is negative", c.DialTimeout))
	}
	return errors.Join(errs...)
}

// Name implements backend.Backend.
func (b *Backend) Name() string { return b.name }

// key is name's key under the prefix.
func (b *Backend) key(name string) string { return b.cfg.Prefix + name }

// Close implements backend.Backend: it closes the connection (a held lock's lease then ends too) and removes
// the private copy of the files.
func (b *Backend) Close() error {
	err := b.client.Close()
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.files != nil {
		if rerr := os.RemoveAll(b.files.dir); err == nil {
			err = rerr
		}
		b.files = nil
	}
	return err
}
