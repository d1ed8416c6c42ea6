package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// hostileConfig is a one-host configuration whose host does not exist (TEST-NET-1): the commands below must
// fail before they would connect.
const hostileConfig = `cluster "hostile" {
  pod_cidr     = "198.19.0.0/17"
  service_cidr = "198.19.128.0/20"
}

artifacts {
  source = "none"
}

host "cp-1" {
  address = "192.0.2.10"
  roles   = ["control-plane", "etcd", "worker"]
}
`

// TestHostileStateIsLeftAlone: plan, apply and destroy on a damaged state.json fail saying which file and what
// is wrong with it, leave it byte for byte as it was, write nothing else into the state directory and release
// the lock.
func TestHostileStateIsLeftAlone(t *testing.T) {
	for _, tc := range []struct{ name, state, want string }{
		{"truncated", `{"version": 1, "lineage": "4f1c`, "cannot be read: it ends early, after 31 bytes"},
		{"garbage", "\x1f\x8b\x08\x00 not json", "cannot be read: it is not valid JSON at line 1, column 1"},
		{"wrong type", `{"version": 1, "serial": "7"}`, `cannot be read: field "serial" at line 1, column 28 is a JSON string`},
		{"crafted", `{"version": 1, "serial": -1}`, "cannot be read: serial -1 is negative"},
	} {
		for _, args := range [][]string{{"plan"}, {"apply", "--auto-approve"}, {"destroy", "--auto-approve"}} {
			t.Run(tc.name+"/"+args[0], func(t *testing.T) {
				dir := t.TempDir()
				if err := os.WriteFile(filepath.Join(dir, "cluster.hcl"), []byte(hostileConfig), 0o644); err != nil {
					t.Fatal(err)
				}
				stateDir := filepath.Join(dir, ".kforge")
				statePath := filepath.Join(stateDir, "state.json")
				if err := os.Mkdir(stateDir, 0o700); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(statePath, []byte(tc.state), 0o600); err != nil {
					t.Fatal(err)
				}
				r := kforge(t, nil, "", append([]string{"-c", dir}, args...)...)
				if r.code != exitError || !strings.Contains(r.stderr, "Error: state "+statePath+" "+tc.want) ||
					!strings.Contains(r.stderr, "kforge leaves it as it is") {
					t.Errorf("exit %d\nstdout: %s\nstderr: %s", r.code, r.stdout, r.stderr)
				}
				if b, _ := os.ReadFile(statePath); !bytes.Equal(b, []byte(tc.state)) {
					t.Errorf("state.json changed: %q", b)
				}
				entries, _ := os.ReadDir(stateDir)
				var names []string
				for _, e := range entries {
					names = append(names, e.Name())
				}
				if strings.Join(names, " ") != "lock.json state.json" {
					t.Errorf("the state directory holds %v", names)
				}
				if b, _ := os.ReadFile(filepath.Join(stateDir, "lock.json")); len(b) != 0 {
					t.Errorf("the lock was not released: %q", b)
				}
			})
		}
	}
}

// TestHostileShowPlanFiles: kforge show refuses garbage, truncated and crafted plan files, naming the file and
// what is wrong, with nothing on standard output; a real saved plan still shows.
func TestHostileShowPlanFiles(t *testing.T) {
	golden, err := os.ReadFile("../../provision/plan/testdata/rolling-upgrade.json")
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	for _, tc := range []struct{ name, plan, want string }{
		{"empty", "", "not a kforge plan: it is empty"},
		{"truncated", string(golden[:len(golden)/2]), "not a kforge plan: it ends early, after"},
		{"binary", "\x7fELF\x02\x01\x01\x00", "not a kforge plan: it is not valid JSON at line 1, column 1"},
		{"newer", strings.Replace(string(golden), `"format_version": "1.0"`, `"format_version": "3.2"`, 1),
			`plan format "3.2" is newer than this kforge reads ("1.0"): show or apply it with the kforge that made it`},
		{"unknown action", strings.Replace(string(golden), `"action": "update"`, `"action": "rm -rf /"`, 1),
			`not a plan kforge made: host cp-1, change 1 (binary /usr/local/bin/kubelet): unknown action "rm -rf /"`},
		{"negative size", strings.Replace(string(golden), `"size": 62914560`, `"size": -62914560`, 1),
			"not a plan kforge made: host cp-1, change 1 (binary /usr/local/bin/kubelet): negative size -62914560"},
		{"wrong type", strings.Replace(string(golden), `"serial": 3`, `"serial": [3]`, 1),
			`field "state.serial" at line 7, column 15 is a JSON array, where a whole number`},
	} {
		file := filepath.Join(dir, strings.ReplaceAll(tc.name, " ", "-")+".json")
		if err := os.WriteFile(file, []byte(tc.plan), 0o600); err != nil {
			t.Fatal(err)
		}
		for _, args := range [][]string{{"show", file}, {"--json", "show", file}} {
			r := kforge(t, nil, "", args...)
			if r.code != exitError || r.stdout != "" || !strings.HasPrefix(r.stderr, "Error: "+file+": ") || !strings.Contains(r.stderr, tc.want) {
				t.Errorf("%s %v: exit %d\nstdout: %q\nstderr: %s", tc.name, args[:len(args)-1], r.code, r.stdout, r.stderr)
			}
		}
	}
	file := filepath.Join(dir, "real.json")
	if err := os.WriteFile(file, golden, 0o600); err != nil {
		t.Fatal(err)
	}
	if r := kforge(t, nil, "", "--no-color", "show", file); r.code != exitOK || !strings.Contains(r.stdout, "Plan: ") {
		t.Errorf("a real plan: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
}

// TestHostileLockFile: force-unlock removes a damaged lock file and says it named no holder, without the
// warning about a PID that still runs (a damaged file names none; kill(0, 0) would find this process group).
func TestHostileLockFile(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "cluster.hcl"), []byte(hostileConfig), 0o644); err != nil {
		t.Fatal(err)
	}
	lock := filepath.Join(dir, ".kforge", "lock.json")
	for _, garbage := range []string{"{\"pid\": 0", "\x00\x00\x00", `{"pid": 0, "operation": "apply"}`, `{"pid": -1}`} {
		if err := os.MkdirAll(filepath.Dir(lock), 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(lock, []byte(garbage), 0o600); err != nil {
			t.Fatal(err)
		}
		r := kforge(t, nil, "", "-c", dir, "force-unlock")
		if r.code != exitOK || r.stderr != "" || r.stdout != "Lock removed from local directory "+filepath.Join(dir, ".kforge")+" (it was held by a holder the lock file does not name).\n" {
			t.Errorf("%q: exit %d\nstdout: %s\nstderr: %s", garbage, r.code, r.stdout, r.stderr)
		}
		if _, err := os.Stat(lock); !os.IsNotExist(err) {
			t.Errorf("%q: the lock file is still there: %v", garbage, err)
		}
	}
}

// TestHostileValidate: values that try shell or unit-file injection are refused by kforge validate, each shown
// at its file:line:col with the offending text under the caret.
func TestHostileValidate(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "cluster.hcl")
	src := strings.Replace(hostileConfig, `address = "192.0.2.10"`, `address = "fe80::1%$(touch /tmp/kforge-canary)"
  labels  = { tier = "`+"`id`"+`" }`, 1)
	src = strings.Replace(src, `service_cidr = "198.19.128.0/20"`, `service_cidr = "198.19.128.0/20"
  kubelet {
    extra_args = { v = "2\nExecStartPre=/bin/sh -c 'touch /tmp/kforge-canary'" }
  }`, 1)
	if err := os.WriteFile(file, []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	r := kforge(t, nil, "", "validate", dir)
	for _, want := range []string{
		"Error: Invalid extra_args\n\n  on " + file + ":5:18, in cluster \"hostile\":",
		`the value of v "2\nExecStartPre=/bin/sh -c 'touch /tmp/kforge-canary'" has a line break`,
		"Error: Invalid host address\n\n  on " + file + ":14:13, in host \"cp-1\":",
		`"fe80::1%$(touch /tmp/kforge-canary)" has an IPv6 zone`,
		"Error: Invalid label\n\n  on " + file + ":15:13, in host \"cp-1\":",
		"The configuration is invalid: 3 errors, 0 warnings.",
	} {
		if !strings.Contains(r.stdout+r.stderr, want) {
			t.Errorf("exit %d, output without %q:\n%s%s", r.code, want, r.stdout, r.stderr)
		}
	}
	if r.code != exitError {
		t.Errorf("exit %d", r.code)
	}
}
