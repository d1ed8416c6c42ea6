package main

import "strings"

// singleDashFlags are long flags that Terraform users type with one dash (-var, -var-file, -json …);
// pflag would read "-var" as "-v -a -r", so they are rewritten to their two-dash form before parsing.
var singleDashFlags = []string{"var", "var-file", "json", "no-color", "config", "state", "check", "recursive", "out",
	"detailed-exitcode", "auto-approve", "parallelism", "ignore-preflight"}

func normalizeArgs(args []string) []string {
	out := make([]string, 0, len(args))
	for i, a := range args {
		if a == "--" {
			return append(out, args[i:]...)
		}
		if strings.HasPrefix(a, "-") && !strings.HasPrefix(a, "--") {
			name, _, _ := strings.Cut(a[1:], "=")
			for _, f := range singleDashFlags {
				if name == f {
					a = "-" + a
					break
				}
			}
		}
		out = append(out, a)
	}
	return out
}
