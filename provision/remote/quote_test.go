package remote

import (
	"bytes"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// hostile are words that try to get out of their quoting; CANARY stands for a file that must never be created.
var hostile = []string{
	"$(touch CANARY)",
	"`touch CANARY`",
	"'; touch CANARY; echo '",
	`"; touch CANARY; echo "`,
	`'\''; touch CANARY; '\''`,
	`\'; touch CANARY; \'`,
	"x; touch CANARY",
	"x && touch CANARY",
	"x | touch CANARY",
	"x\ntouch CANARY\n",
	"x\r\ntouch CANARY",
	"${IFS}touch${IFS}CANARY",
	"$((0))$(touch CANARY)",
	"!! !$ ~root * ? [a-z] {a,b} #comment",
	"-e touch CANARY",
	"",
	"'",
	"''",
	`\`,
	"a\tb",
	"héllo wörld ✓",
	"\xff\xfe not UTF-8",
}

// TestShellQuoteThroughRealShells: every hostile word, and thousands of random ones, comes back unchanged from
// bash and dash (sh on Debian), also quoted twice the way the SSH client runs scripts (the login shell runs
// sh -c 'SCRIPT'); the canary is never created.
func TestShellQuoteThroughRealShells(t *testing.T) {
	dir := t.TempDir()
	canary := filepath.Join(dir, "CANARY")
	words := make([]string, 0, len(hostile)+2000)
	for _, w := range hostile {
		words = append(words, strings.ReplaceAll(w, "CANARY", canary))
	}
	rng := rand.New(rand.NewPCG(1, 15))
	alphabet := []rune("'\"`$\\;&|<>(){}[]*?!~#%=,.:/- \t\nabcXYZ019é\x01\x7f")
	for range 2000 {
		w := make([]rune, rng.IntN(24))
		for i := range w {
			w[i] = alphabet[rng.IntN(len(alphabet))]
		}
		words = append(words, string(w))
	}
	// One script prints every word NUL-terminated: NUL is the one byte a word cannot hold (an argument
	// ends there), so ShellQuote is never given one.
	var script strings.Builder
	for _, w := range words {
		script.WriteString("printf '%s\\0' " + ShellQuote(w) + "\n")
	}
	for _, shell := range []string{"/bin/bash", "/bin/dash"} {
		for _, twice := range []bool{false, true} {
			line := script.String()
			if twice {
				line = "sh -c " + ShellQuote(line)
			}
			cmd := exec.Command(shell, "-c", line)
			cmd.Dir = dir
			out, err := cmd.Output()
			if err != nil {
				t.Fatalf("%s: %v", shell, err)
			}
			got := strings.Split(strings.TrimSuffix(string(out), "\x00"), "\x00")
			if len(got) != len(words) {
				t.Fatalf("%s (twice: %v): %d words back, want %d", shell, twice, len(got), len(words))
			}
			for i := range words {
				if got[i] != words[i] {
					t.Errorf("%s (twice: %v): %q came back as %q", shell, twice, words[i], got[i])
				}
			}
		}
	}
	if _, err := os.Stat(canary); err == nil {
		t.Fatal("a quoted word ran a command: the canary exists")
	}
	// The test can tell: the same words unquoted do create it.
	if err := exec.Command("/bin/sh", "-c", "echo "+strings.ReplaceAll(hostile[0], "CANARY", canary)).Run(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(canary); err != nil {
		t.Fatalf("the unquoted canary did not run: %v", err)
	}
}

// TestExcerpt keeps errors about a host's output short whatever the host sent.
func TestExcerpt(t *testing.T) {
	if got := Excerpt([]byte("S\tzz")); got != `"S\tzz"` {
		t.Errorf("short: %s", got)
	}
	long := bytes.Repeat([]byte{0xff}, 5<<20)
	if got := Excerpt(long); len(got) > 110 || !strings.HasSuffix(got, "… (5242880 bytes)") {
		t.Errorf("long: %d bytes: %.100s", len(got), got)
	}
	// Bytes that quote as four characters each count as four (the fuzzer's find: 69 of them made 300 bytes).
	for _, line := range [][]byte{append([]byte("0"), bytes.Repeat([]byte{0x92}, 69)...), bytes.Repeat([]byte("\x00é"), 100)} {
		if got := Excerpt(line); len(got) > 110 || !strings.HasPrefix(got, `"`) {
			t.Errorf("%d bytes quote as %d: %s", len(line), len(got), got)
		}
	}
}
