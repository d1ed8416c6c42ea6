// Command summary turns the JUnit report of a conformance run (ginkgo --junit-report) into summary.md: the
// counts of passed, failed and skipped specs, the duration, and one row per failure with its message.
package main

import (
	"flag"
	"fmt"
	"os"

	"github.com/kforge/kforge/internal/atomicfile"
)

func main() {
	junit := flag.String("junit", "junit.xml", "ginkgo's JUnit report")
	out := flag.String("o", "", "markdown file to write (default: standard output)")
	flag.Parse()
	if err := run(*junit, *out); err != nil {
		fmt.Fprintln(os.Stderr, "summary:", err)
		os.Exit(1)
	}
}

// run writes the markdown to out (or stdout) and the one-line tally to stdout, for run.sh's versions.txt.
func run(junit, out string) error {
	f, err := os.Open(junit)
	if err != nil {
		return err
	}
	defer f.Close()
	s, err := Parse(f)
	if err != nil {
		return fmt.Errorf("%s: %w", junit, err)
	}
	md := Markdown(s)
	if out == "" {
		_, err := os.Stdout.WriteString(md)
		return err
	}
	if err := atomicfile.Write(out, []byte(md), 0o644); err != nil {
		return err
	}
	fmt.Println(s.Tally())
	return nil
}
