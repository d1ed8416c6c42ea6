package etcdbackend

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"strings"
	"syscall"
	"time"
)

// tlsConfig is the client's side of mutual TLS: its certificate, and the CA it trusts for the servers' (the
// system's roots when CAFile is empty).
func (c *Config) tlsConfig() (*tls.Config, error) {
	pair, err := tls.LoadX509KeyPair(c.CertFile, c.KeyFile)
	if err != nil {
		return nil, fmt.Errorf("etcd client certificate %s with key %s: %w", c.CertFile, c.KeyFile, err)
	}
	conf := &tls.Config{Certificates: []tls.Certificate{pair}, MinVersion: tls.VersionTLS12}
	if c.CAFile != "" {
		pem, err := os.ReadFile(c.CAFile)
		if err != nil {
			return nil, fmt.Errorf("etcd CA: %w", err)
		}
		conf.RootCAs = x509.NewCertPool()
		if !conf.RootCAs.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("etcd CA %s holds no PEM certificate", c.CAFile)
		}
	}
	return conf, nil
}

// probe connects to one endpoint as the gRPC client would: TCP, the TLS handshake, and the HTTP/2 preface,
// whose answer is the first thing to arrive after the server has checked the client's certificate (with TLS
// 1.3 the client's handshake completes before that). The gRPC client itself only ever says "context deadline
// exceeded" when it cannot connect, which is why Open asks this first.
func probe(ctx context.Context, endpoint string, conf *tls.Config) error {
	u, err := url.Parse(endpoint)
	if err != nil {
		return err
	}
	conf = conf.Clone()
	conf.ServerName = u.Hostname()
	conf.NextProtos = []string{"h2"}
	dialer := tls.Dialer{Config: conf}
	conn, err := dialer.DialContext(ctx, "tcp", u.Host)
	if err != nil {
		return explain(ctx, err)
	}
	defer conn.Close()
	if deadline, ok := ctx.Deadline(); ok {
		conn.SetDeadline(deadline)
	}
	// The client preface and an empty SETTINGS frame (RFC 9113, 3.4 and 6.5).
	preface := "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" + "\x00\x00\x00\x04\x00\x00\x00\x00\x00"
	if _, err := conn.Write([]byte(preface)); err != nil {
		return explain(ctx, err)
	}
	if _, err := conn.Read(make([]byte, 1)); err != nil {
		return explain(ctx, err)
	}
	return nil
}

// explain says what went wrong in the words of someone configuring kforge.
func explain(ctx context.Context, err error) error {
	var (
		unknownCA x509.UnknownAuthorityError
		hostname  x509.HostnameError
		invalid   x509.CertificateInvalidError
		opErr     *net.OpError
		netErr    net.Error
	)
	switch {
	case errors.As(err, &unknownCA):
		return errors.New("TLS: the server's certificate is signed by an unknown authority (not by the CA given)")
	case errors.As(err, &hostname):
		return fmt.Errorf("TLS: the server's certificate is not valid for this address: %s", strings.TrimPrefix(hostname.Error(), "x509: "))
	case errors.As(err, &invalid):
		return fmt.Errorf("TLS: the server's certificate is not valid: %s", strings.TrimPrefix(invalid.Error(), "x509: "))
	case errors.As(err, &opErr) && opErr.Op == "remote error":
		// The server ended the handshake with an alert: with client-cert-auth, because it does not trust our
		// certificate. "certificate required" is the same: Go sends no certificate that the server's list of
		// accepted CAs excludes.
		return fmt.Errorf("TLS: the server refused this client's certificate (%v)", opErr.Err)
	case errors.Is(err, syscall.ECONNREFUSED):
		return errors.New("connection refused (is etcd listening there?)")
	case ctx.Err() != nil || errors.As(err, &netErr) && netErr.Timeout():
		return errNoAnswer
	}
	return err
}

// check is Open's first look at the cluster: it succeeds as soon as one endpoint answers, and otherwise says
// what each one did. The context bounds it (DialTimeout).
func check(ctx context.Context, endpoints []string, conf *tls.Config, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	type result struct {
		endpoint string
		err      error
	}
	results := make(chan result, len(endpoints))
	for _, ep := range endpoints {
		go func() { results <- result{ep, probe(ctx, ep, conf)} }()
	}
	failed := map[string]error{}
	for range endpoints {
		r := <-results
		if r.err == nil {
			return nil
		}
		if errors.Is(r.err, errNoAnswer) {
			r.err = fmt.Errorf("no answer within %s (DialTimeout)", timeout)
		}
		failed[r.endpoint] = r.err
	}
	var errs []error
	for _, ep := range endpoints {
		errs = append(errs, fmt.Errorf("etcd %s: %w", ep, failed[ep]))
	}
	return errors.Join(errs...)
}

// errNoAnswer: an endpoint that took the connection but never spoke TLS, or a firewall that drops packets.
var errNoAnswer = errors.New("no answer in time")
