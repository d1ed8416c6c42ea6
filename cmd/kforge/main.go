// Command kforge turns HCL files that describe hosts into a Kubernetes cluster over SSH.
// This package wires flags to commands and commands to views; the work happens in config, provision and pki.
package main

import (
	"io"
	"os"
)

// version is set at build time with -ldflags "-X main.version=…".
var version = "dev"

func main() {
	os.Exit(run(os.Args[1:], os.Stdin, os.Stdout, os.Stderr, os.Environ()))
}

// run is main without the process: tests call it with their own streams and environment.
func run(args []string, stdin io.Reader, stdout, stderr io.Writer, env []string) int {
	app := newApp(stdin, stdout, stderr, env)
	return app.execute(normalizeArgs(args))
}
