// Command mkoci writes container images from directories as one OCI image-layout tarball, for the artifact
// and conformance builds: mkoci -o OUT.tar SPEC.json (the spec: internal/ociimage.Spec).
package main

import (
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"os"

	"github.com/kforge/kforge/internal/atomicfile"
	"github.com/kforge/kforge/internal/ociimage"
)

func main() {
	out := flag.String("o", "", "the tarball to write")
	flag.Parse()
	if *out == "" || flag.NArg() != 1 {
		fmt.Fprintln(os.Stderr, "usage: mkoci -o OUT.tar SPEC.json")
		os.Exit(2)
	}
	if err := run(*out, flag.Arg(0)); err != nil {
		fmt.Fprintln(os.Stderr, "mkoci:", err)
		os.Exit(1)
	}
}

func run(out, specFile string) error {
	data, err := os.ReadFile(specFile)
	if err != nil {
		return err
	}
	var spec ociimage.Spec
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&spec); err != nil {
		return fmt.Errorf("%s: %w", specFile, err)
	}
	var b bytes.Buffer
	if err := ociimage.Write(&b, spec); err != nil {
		return err
	}
	return atomicfile.Write(out, b.Bytes(), 0o644)
}
