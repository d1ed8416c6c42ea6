// Package etcdtest runs a real etcd server for tests, from kforge's artifact set, with mutual TLS: a throwaway
// CA, a server certificate for 127.0.0.1 and a client certificate, all in the test's temporary directory.
package etcdtest

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"

	"github.com/kforge/kforge/providers/lab/labtest"
)

// Server is a running etcd that accepts clients with a certificate of CAFile's CA.
type Server struct {
	Endpoint                      string // https://127.0.0.1:<port>
	CAFile                        string // the CA of the server's and the client's certificates
	ClientCertFile, ClientKeyFile string

	dir    string
	client *clientv3.Client
}

// readyTimeout bounds the wait for etcd to answer; a single member elects itself within a second or two, but
// this machine may be busy.
const readyTimeout = 30 * time.Second

// Start starts etcd; the test's cleanup kills it.
func Start(t testing.TB) *Server {
	t.Helper()
	bin := filepath.Join(labtest.ArtifactSet(t), "bin", "etcd")
	dir := t.TempDir()
	ca := newAuthority(t, "kforge etcdtest CA")
	s := &Server{CAFile: filepath.Join(dir, "ca.crt"), dir: dir}
	ca.write(t, s.CAFile)
	serverCert, serverKey := ca.issue(t, dir, "server",
		[]x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth}, []net.IP{net.IPv4(127, 0, 0, 1)})
	s.ClientCertFile, s.ClientKeyFile = ca.issue(t, dir, "client", []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}, nil)

	// A port picked by listening on :0 may be taken again before etcd binds it: then try other ports.
	var err error
	for range 3 {
		if err = s.start(t, bin, serverCert, serverKey); err == nil || !strings.Contains(err.Error(), "address already in use") {
			break
		}
	}
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func (s *Server) start(t testing.TB, bin, serverCert, serverKey string) error {
	clientPort, peerPort := freePort(t), freePort(t)
	s.Endpoint = "https://127.0.0.1:" + clientPort
	peer := "http://127.0.0.1:" + peerPort
	data := filepath.Join(s.dir, "data-"+clientPort)
	logFile := filepath.Join(s.dir, "etcd-"+clientPort+".log")
	log, err := os.Create(logFile)
	if err != nil {
		t.Fatal(err)
	}
	defer log.Close()
	cmd := exec.Command(bin,
		"--name", "etcdtest",
		"--data-dir", data,
		"--listen-client-urls", s.Endpoint,
		"--advertise-client-urls", s.Endpoint,
		"--listen-peer-urls", peer,
		"--initial-advertise-peer-urls", peer,
		"--initial-cluster", "etcdtest="+peer,
		"--client-cert-auth",
		"--trusted-ca-file", s.CAFile,
		"--cert-file", serverCert,
		"--key-file", serverKey,
		"--tls-min-version", "TLS1.2",
		"--log-level", "warn",
		// The data is thrown away with the test, so there is nothing to keep safe on disk.
		"--unsafe-no-fsync",
	)
	cmd.Stdout, cmd.Stderr = log, log
	tlsConfig := s.tlsConfig(t)
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start %s: %w", bin, err)
	}
	exited := make(chan struct{})
	go func() {
		cmd.Wait()
		close(exited)
	}()
	stop := func() {
		cmd.Process.Kill()
		<-exited
	}

	client, err := clientv3.New(clientv3.Config{
		Endpoints: []string{s.Endpoint},
		TLS:       tlsConfig,
		Logger:    zap.NewNop(),
	})
	if err != nil {
		stop()
		t.Fatal(err)
	}
	deadline := time.Now().Add(readyTimeout)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		_, err = client.Get(ctx, "/")
		cancel()
		if err == nil {
			break
		}
		select {
		case <-exited:
			client.Close()
			out, _ := os.ReadFile(logFile)
			return fmt.Errorf("etcd exited before it answered:\n%s", out)
		default:
		}
		if time.Now().After(deadline) {
			client.Close()
			stop()
			out, _ := os.ReadFile(logFile)
			return fmt.Errorf("etcd did not answer within %s (%v):\n%s", readyTimeout, err, out)
		}
		time.Sleep(100 * time.Millisecond)
	}
	s.client = client
	t.Cleanup(func() {
		client.Close()
		stop()
	})
	return nil
}

func (s *Server) tlsConfig(t testing.TB) *tls.Config {
	t.Helper()
	pair, err := tls.LoadX509KeyPair(s.ClientCertFile, s.ClientKeyFile)
	if err != nil {
		t.Fatal(err)
	}
	pem, err := os.ReadFile(s.CAFile)
	if err != nil {
		t.Fatal(err)
	}
	roots := x509.NewCertPool()
	roots.AppendCertsFromPEM(pem)
	return &tls.Config{Certificates: []tls.Certificate{pair}, RootCAs: roots, MinVersion: tls.VersionTLS12}
}

func freePort(t testing.TB) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return strconv.Itoa(l.Addr().(*net.TCPAddr).Port)
}

// WrongClient is a client certificate and key from another CA, which the server refuses.
func (s *Server) WrongClient(t testing.TB) (certFile, keyFile string) {
	t.Helper()
	dir := t.TempDir()
	return newAuthority(t, "another CA").issue(t, dir, "intruder", []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}, nil)
}

// Keys is every key under prefix with its raw value, as stored.
func (s *Server) Keys(t testing.TB, prefix string) map[string][]byte {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	resp, err := s.client.Get(ctx, prefix, clientv3.WithPrefix())
	if err != nil {
		t.Fatal(err)
	}
	keys := map[string][]byte{}
	for _, kv := range resp.Kvs {
		keys[string(kv.Key)] = kv.Value
	}
	return keys
}

// Get is the raw value of key; ok is false when there is none.
func (s *Server) Get(t testing.TB, key string) (value []byte, ok bool) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	resp, err := s.client.Get(ctx, key)
	if err != nil {
		t.Fatal(err)
	}
	if len(resp.Kvs) == 0 {
		return nil, false
	}
	return resp.Kvs[0].Value, true
}

// Put stores a raw value, as another run (or someone with etcdctl) would.
func (s *Server) Put(t testing.TB, key string, value []byte) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := s.client.Put(ctx, key, string(value)); err != nil {
		t.Fatal(err)
	}
}

// Delete removes key.
func (s *Server) Delete(t testing.TB, key string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := s.client.Delete(ctx, key); err != nil {
		t.Fatal(err)
	}
}
