package etcdbackend

import (
	"net"
	"strings"
	"testing"
	"time"

	"github.com/kforge/kforge/provision/backend/etcdbackend/etcdtest"
)

// TestOpenWithWrongCredentials: a client certificate of another CA, or a CA that did not sign the server's
// certificate, fails Open at once with an error that names the endpoint and says which side refused; nothing
// is written.
func TestOpenWithWrongCredentials(t *testing.T) {
	t.Parallel()
	srv := etcdtest.Start(t)
	const prefix = "/kforge/wrong/"

	intruder := config(srv, prefix)
	intruder.CertFile, intruder.KeyFile = srv.WrongClient(t)
	start := time.Now()
	_, err := Open(testContext(t), intruder)
	if err == nil {
		t.Fatal("Open with a client certificate of another CA succeeded")
	}
	t.Logf("wrong client certificate: %v (%s)", err, time.Since(start))
	if !strings.Contains(err.Error(), srv.Endpoint) || !strings.Contains(err.Error(), "refused this client's certificate") {
		t.Errorf("the error does not name the endpoint and the refused certificate: %v", err)
	}
	if took := time.Since(start); took > 2*time.Second {
		t.Errorf("refusing took %s", took)
	}

	wrongCA := config(srv, prefix)
	wrongCA.CAFile = intruder.CertFile // a certificate that signed nothing of this server's
	_, err = Open(testContext(t), wrongCA)
	t.Logf("wrong CA: %v", err)
	if err == nil || !strings.Contains(err.Error(), srv.Endpoint) || !strings.Contains(err.Error(), "unknown authority") {
		t.Errorf("Open trusting another CA: %v", err)
	}

	if keys := srv.Keys(t, prefix); len(keys) != 0 {
		t.Errorf("keys written: %v", keys)
	}
	openBackend(t, config(srv, prefix)) // the right credentials work
}

// TestOpenUnreachable: an endpoint that refuses connections fails at once; one that accepts them and never
// answers fails within DialTimeout. Both errors name the endpoint.
func TestOpenUnreachable(t *testing.T) {
	t.Parallel()
	srv := etcdtest.Start(t) // for its certificates only

	silent, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer silent.Close()
	closed, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed.Close()

	for _, tc := range []struct{ endpoint, says string }{
		{"https://" + closed.Addr().String(), "connection refused"},
		{"https://" + silent.Addr().String(), "no answer within 1s"},
	} {
		c := config(srv, "/kforge/x/")
		c.Endpoints = []string{tc.endpoint}
		c.DialTimeout = time.Second
		start := time.Now()
		_, err := Open(testContext(t), c)
		took := time.Since(start)
		t.Logf("%s: %v (%s)", tc.endpoint, err, took)
		if err == nil || !strings.Contains(err.Error(), tc.endpoint) || !strings.Contains(err.Error(), tc.says) {
			t.Errorf("Open %s: %v, want an error naming it that says %q", tc.endpoint, err, tc.says)
		}
		if took > c.DialTimeout+500*time.Millisecond {
			t.Errorf("Open %s took %s, DialTimeout is %s", tc.endpoint, took, c.DialTimeout)
		}
	}
}

// TestConfigProblems: every mistake in the configuration is reported at once, before any connection.
func TestConfigProblems(t *testing.T) {
	_, err := Open(testContext(t), Config{
		Endpoints:     []string{"http://10.0.0.1:2379", "10.0.0.2"},
		Prefix:        "kforge/prod",
		EncryptionKey: make([]byte, 16),
	})
	if err == nil {
		t.Fatal("Open accepted a wrong configuration")
	}
	for _, want := range []string{
		`"http://10.0.0.1:2379": kforge talks to etcd over TLS only`,
		`"10.0.0.2"`,
		`prefix "kforge/prod": it starts and ends with "/"`,
		"give a client certificate and its key",
		"it is 16 bytes; AES-256 takes 32",
	} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("the error does not say %q:\n%v", want, err)
		}
	}
	if _, err := Open(testContext(t), Config{}); err == nil || !strings.Contains(err.Error(), "no endpoints given") {
		t.Errorf("an empty configuration: %v", err)
	}
}
