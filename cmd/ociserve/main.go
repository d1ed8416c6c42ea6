// Command ociserve serves the images of OCI image-layout tarballs read-only over the OCI distribution API, as the
// registry mirror containerd on lab nodes pulls through: ociserve -listen ADDR [-log] LAYOUT.tar... (port 0 picks one).
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/kforge/kforge/internal/ociregistry"
)

func main() {
	listen := flag.String("listen", "", "the address to serve on (host:port)")
	logRequests := flag.Bool("log", false, "log each request to stderr")
	flag.Parse()
	if *listen == "" || flag.NArg() == 0 {
		fmt.Fprintln(os.Stderr, "usage: ociserve -listen ADDR [-log] LAYOUT.tar...")
		os.Exit(2)
	}
	if err := run(*listen, *logRequests, flag.Args()); err != nil {
		fmt.Fprintln(os.Stderr, "ociserve:", err)
		os.Exit(1)
	}
}

func run(addr string, logRequests bool, layouts []string) error {
	// Signals are caught from the start, so that one arriving while the layouts load still ends with exit 0.
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	reg, err := ociregistry.Open(layouts...)
	if err != nil {
		return err
	}
	defer reg.Close()
	if logRequests {
		reg.Log = func(r ociregistry.Request) {
			fmt.Fprintf(os.Stderr, "%s %s %s ns=%s %d\n", r.RemoteAddr, r.Method, r.Path, r.NS, r.Status)
		}
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	for _, name := range reg.Images() {
		fmt.Println("serving", name)
	}
	// The bound address, not the flag's: with port 0 the caller learns the port here.
	fmt.Println("listening on", ln.Addr())
	srv := &http.Server{Handler: reg, ReadHeaderTimeout: time.Minute}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	select {
	case err := <-served:
		return err
	case <-ctx.Done():
	}
	// Pulls under way get a moment to finish; a node's containerd retries one cut short.
	sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil && !errors.Is(err, context.DeadlineExceeded) {
		return err
	}
	return srv.Close()
}
