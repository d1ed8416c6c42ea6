package facts_test

import (
	"bytes"
	"context"
	"encoding/json"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/kforge/kforge/config"
	"github.com/kforge/kforge/provision/facts"
	"github.com/kforge/kforge/provision/remote"
	"github.com/kforge/kforge/provision/ssh"
	"github.com/kforge/kforge/provision/ssh/sshdtest"
)

// answeringHost is a real OpenSSH server whose every session, whatever kforge asks, reads its input and prints
// the file answer names, exiting 0: the ForceCommand of a host that answers with something else than it was
// asked (a wrapper, a restricted shell, a broken login script).
func answeringHost(t *testing.T, name string) (c *ssh.Client, answer func([]byte)) {
	t.Helper()
	needRoot(t)
	file := filepath.Join(t.TempDir(), "answer")
	answer = func(b []byte) {
		if err := os.WriteFile(file, b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	answer(nil)
	u := sshdtest.Root(t)
	srv := sshdtest.Start(t, sshdtest.Options{Users: []*sshdtest.User{u}, Extra: "ForceCommand cat >/dev/null; exec cat -- " + file})
	d := &ssh.Dialer{KnownHostsFile: filepath.Join(t.TempDir(), "known_hosts"), UserKnownHostsFile: srv.WriteKnownHosts(t), ConnectAttempts: 2}
	return dial(t, d, ssh.Target{Name: name, Address: srv.Host, Port: srv.Port, User: u.Name, PrivateKeyFile: u.KeyFile,
		HostKeyPolicy: config.HostKeyStrict, ConnectTimeout: 5 * time.Second}), answer
}

// TestGarbageFromTheProbe: a host that answers the facts probe with random bytes, a cut-short probe output, a
// line of megabytes or bytes that are not UTF-8 (and exit status 0) fails the gathering with one error that
// names the host and the step, says what is wrong, and stays short; the host is not cached as probed.
func TestGarbageFromTheProbe(t *testing.T) {
	c, answer := answeringHost(t, "garbage-1")
	real, err := os.ReadFile("testdata/lab-host-1.txt")
	if err != nil {
		t.Fatal(err)
	}
	random := make([]byte, 64<<10)
	rng := rand.New(rand.NewPCG(15, 15))
	for i := range random {
		random[i] = byte(rng.Uint32())
	}
	huge := "@kforge-facts\n|1\n@time\n|" + strings.Repeat("9", 8<<20) + "x\n@end\n"
	for _, tc := range []struct {
		name, answer, want string
	}{
		{"nothing", "", "not a facts probe's output: the @kforge-facts line is missing"},
		{"random bytes", string(random), "not a facts probe's output: the @kforge-facts line is missing"},
		{"cut short", string(real[:len(real)/2]), "the probe's output ends early (no @end line): the probe was cut short"},
		{"huge line", "@kforge-facts\n|1\n" + strings.Repeat("A", 8<<20) + "\n@end\n", `line 3: "AAAAAAAA`},
		{"huge value", huge, ""},
		{"not UTF-8", "@kforge-facts\n|1\n\xff\xfe\xfd not text\n@end\n", `line 3: "\xff\xfe\xfd not text" is not part of the probe's output format`},
		{"another format", "@kforge-facts\n|7\n@end\n", `probe output format "7", but this kforge reads format 1`},
		{"a shell's banner only", "Welcome to a restricted shell.\nThis incident will be reported.\n", "the @kforge-facts line is missing"},
		{"the real probe output", string(real), ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			answer([]byte(tc.answer))
			var cache facts.Cache
			got, err := cache.GatherAll(context.Background(), []remote.Runner{c}, 4)
			if tc.want == "" {
				if err != nil || got["garbage-1"] == nil {
					t.Fatalf("a probe output that parses was refused: %v", err)
				}
				return
			}
			hostErrs := remote.HostErrors(err)
			if len(hostErrs) != 1 || hostErrs[0].Host != "garbage-1" || hostErrs[0].Step != "gather facts" {
				t.Fatalf("want one error of host garbage-1, step gather facts: %#v", err)
			}
			msg := err.Error()
			if !strings.HasPrefix(msg, "host garbage-1: gather facts: read the facts probe's output: ") || !strings.Contains(msg, tc.want) {
				t.Errorf("error %q\nwant it to contain %q", msg, tc.want)
			}
			if len(msg) > 300 {
				t.Errorf("the error is %d bytes long: %.300q…", len(msg), msg)
			}
			if len(got) != 0 {
				t.Errorf("facts of a host that answered garbage: %v", got)
			}
			if _, ok := cache.Get("garbage-1"); ok {
				t.Error("a failed probe stays in the cache")
			}
		})
	}
	if bytes.Contains(random, []byte("\n@kforge-facts\n")) {
		t.Fatal("the random answer happens to hold a probe's first line: change the seed")
	}
}

// TestParseAbsurdClock: a host whose probe reports a time past the year 9999 (found by FuzzParse) has an unknown
// time, not one that the facts' JSON cannot hold.
func TestParseAbsurdClock(t *testing.T) {
	f, err := facts.Parse([]byte("@kforge-facts\n|1\n@time\n|0270000000000\n@end\n"))
	if err != nil {
		t.Fatal(err)
	}
	if !f.Time.IsZero() {
		t.Errorf("time %v", f.Time)
	}
	if _, err := json.Marshal(f); err != nil {
		t.Errorf("the facts cannot be saved: %v", err)
	}
	f, err = facts.Parse([]byte("@kforge-facts\n|1\n@time\n|253402300799.5\n@end\n")) // the last second of 9999
	if err != nil || f.Time.Year() != 9999 {
		t.Errorf("%v %v", f.Time, err)
	}
}
