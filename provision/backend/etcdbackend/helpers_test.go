package etcdbackend

import (
	"bytes"
	"context"
	"crypto/rand"
	"testing"
	"time"

	"github.com/kforge/kforge/provision/backend/etcdbackend/etcdtest"
)

// testTimeout bounds each call of a test; none should come near it.
const testTimeout = 30 * time.Second

func testContext(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	t.Cleanup(cancel)
	return ctx
}

// config is a configuration for srv under prefix.
func config(srv *etcdtest.Server, prefix string) Config {
	return Config{
		Endpoints: []string{srv.Endpoint},
		Prefix:    prefix,
		CAFile:    srv.CAFile,
		CertFile:  srv.ClientCertFile,
		KeyFile:   srv.ClientKeyFile,
	}
}

// openBackend opens c; the test's cleanup closes it.
func openBackend(t *testing.T, c Config) *Backend {
	t.Helper()
	b, err := Open(testContext(t), c)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	return b
}

func newKey(t *testing.T) []byte {
	key := make([]byte, 32)
	if _, err := rand.Read(key); err != nil {
		t.Fatal(err)
	}
	return key
}

func contains(b []byte, s string) bool { return bytes.Contains(b, []byte(s)) }
