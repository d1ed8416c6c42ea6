package facts

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/kforge/kforge/internal/golden"
)

// fixtureFiles are the probe outputs in testdata: recorded from real hosts, or synthesized for systems that
// are not available here (each says which in its header).
func fixtureFiles(t *testing.T) []string {
	t.Helper()
	files, err := filepath.Glob("testdata/*.txt")
	if err != nil || len(files) == 0 {
		t.Fatalf("no fixtures: %v", err)
	}
	return files
}

// TestFixtureHeadersSayWhereTheyComeFrom keeps every fixture honest about being recorded or synthesized.
func TestFixtureHeadersSayWhereTheyComeFrom(t *testing.T) {
	for _, file := range fixtureFiles(t) {
		b, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		first, _, _ := strings.Cut(string(b), "\n")
		if !strings.HasPrefix(first, "# RECORDED: ") && !strings.HasPrefix(first, "# SYNTHESIZED, not recorded: ") {
			t.Errorf("%s: the first line must say RECORDED or SYNTHESIZED: %q", file, first)
		}
		if strings.HasPrefix(first, "# SYNTHESIZED") && !strings.Contains(string(b), "invented") {
			t.Errorf("%s: a synthesized fixture must say which values are invented", file)
		}
	}
}

// TestParseFixtures parses every fixture and compares the result with its golden JSON (-update rewrites it).
func TestParseFixtures(t *testing.T) {
	for _, file := range fixtureFiles(t) {
		t.Run(filepath.Base(file), func(t *testing.T) {
			b, err := os.ReadFile(file)
			if err != nil {
				t.Fatal(err)
			}
			f, err := Parse(b)
			if err != nil {
				t.Fatal(err)
			}
			got, err := json.MarshalIndent(f, "", "  ")
			if err != nil {
				t.Fatal(err)
			}
			got = append(got, '\n')
			golden.Check(t, strings.TrimSuffix(file, ".txt")+".json", string(got))
			// JSON is the facts' saved form: reading it back must give the same facts.
			var back Facts
			if err := json.Unmarshal(got, &back); err != nil {
				t.Fatal(err)
			}
			again, _ := json.MarshalIndent(&back, "", "  ")
			if !bytes.Equal(append(again, '\n'), got) {
				t.Errorf("facts do not survive a JSON round trip:\n%s", again)
			}
		})
	}
}

func mustParseFile(t *testing.T, name string) *Facts {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	f, err := Parse(b)
	if err != nil {
		t.Fatal(err)
	}
	return f
}

// TestParseDistributions checks the facts that make the synthesized systems what they stand for.
func TestParseDistributions(t *testing.T) {
	deb := mustParseFile(t, "debian12-cgroup2.txt")
	if deb.Cgroups.Mode != CgroupV2 || !deb.Cgroups.Has("memory") || !deb.Cgroups.Has("io") || deb.Cgroups.V1() {
		t.Errorf("debian cgroups %+v", deb.Cgroups)
	}
	if deb.Overlay.Listed || deb.Overlay.MountTest != MountOK || !deb.Modules.Available("br_netfilter") {
		t.Errorf("debian overlay %+v, modules %+v", deb.Overlay, deb.Modules)
	}
	if _, ok := deb.Sysctls["net.bridge.bridge-nf-call-iptables"]; ok {
		t.Error("debian: bridge sysctls before br_netfilter is loaded")
	}
	if deb.Binaries["iptables"] != "" || deb.Binaries["nft"] != "/usr/sbin/nft" || deb.Time != time.Date(2025, 12, 1, 12, 0, 0, 123456789, time.UTC) {
		t.Errorf("debian binaries %v, time %v", deb.Binaries, deb.Time)
	}

	ubuntu := mustParseFile(t, "ubuntu2404-cgroup2.txt")
	if ubuntu.OS.ID != "ubuntu" || ubuntu.OS.IDLike[0] != "debian" || !ubuntu.Swap.On() || ubuntu.Swap.Devices[0].Path != "/swap.img" {
		t.Errorf("ubuntu os %+v swap %+v", ubuntu.OS, ubuntu.Swap)
	}
	if len(ubuntu.Listeners.Sockets) != 6 || ubuntu.Listeners.Sockets[1].Address != "127.0.0.53%lo" || ubuntu.Listeners.Sockets[5].Process != "sshd" {
		t.Errorf("ubuntu listeners %+v", ubuntu.Listeners.Sockets)
	}

	el := mustParseFile(t, "rhel9.txt")
	if el.OS.ID != "rocky" || !strings.Contains(strings.Join(el.OS.IDLike, " "), "rhel") || el.Disk.FSType != "xfs" || el.Swap.TotalBytes != 4108284*1024 {
		t.Errorf("el9 %+v %+v %+v", el.OS, el.Disk, el.Swap)
	}

	c7 := mustParseFile(t, "centos7.txt")
	if c7.Cgroups.Mode != CgroupV1 || !c7.Cgroups.Has("cpu") || !c7.Cgroups.Has("cpuacct") || !c7.Cgroups.Has("net_prio") || c7.Namespaces.Has("cgroup") || c7.Namespaces.MaxUserNamespaces != 0 {
		t.Errorf("centos7 cgroups %+v ns %+v", c7.Cgroups, c7.Namespaces)
	}
	if c7.Init.SystemdVersion != 219 || len(c7.Listeners.Sockets) != 6 {
		t.Errorf("centos7 init %+v listeners %+v", c7.Init, c7.Listeners)
	}

	pi := mustParseFile(t, "raspios11-armhf.txt")
	if pi.Architecture != "armv7l" || pi.Cgroups.Has("memory") || pi.KernelConfig != nil || pi.ProductUUID != "" || pi.Unavailable["kernel-config"] == "" {
		t.Errorf("pi %+v %+v %v", pi.Cgroups, pi.KernelConfig, pi.Unavailable)
	}
}

// TestParseRecordedHosts checks what the recorded fixtures must show, whoever re-records them here.
func TestParseRecordedHosts(t *testing.T) {
	lab := mustParseFile(t, "lab-host-1.txt")
	if !lab.Init.Systemd() || lab.Cgroups.Mode != CgroupHybrid || lab.Modules.Support || len(lab.Unavailable) != 0 {
		t.Errorf("lab host: init %+v cgroups %+v modules %+v unavailable %v", lab.Init, lab.Cgroups, lab.Modules, lab.Unavailable)
	}
	machine := mustParseFile(t, "this-machine.txt")
	if machine.Init.Systemd() || !machine.Root {
		t.Errorf("this machine: init %+v root %v", machine.Init, machine.Root)
	}
	if f := mustParseFile(t, "lab-host-swap.txt"); !f.Swap.On() {
		t.Errorf("swap %+v", f.Swap)
	}
	if f := mustParseFile(t, "lab-host-no-overlay.txt"); f.Overlay.Listed || f.Overlay.MountTest != MountFailed || !strings.Contains(f.Overlay.MountError, "wrong fs type") {
		t.Errorf("overlay %+v", f.Overlay)
	}
}

func TestParseRejectsWhatIsNotAWholeProbe(t *testing.T) {
	whole := "@kforge-facts\n|1\n@hostname\n|a\n@end\n"
	cases := map[string]string{
		"":                                  "@kforge-facts line is missing",
		"hello\n":                           "@kforge-facts line is missing",
		"@kforge-facts\n|1\n@hostname\n|a":  "cut short",
		"@kforge-facts\n|2\n@end\n":         `format "2"`,
		"@kforge-facts\n|1\n@a\n@a\n@end\n": `section "a" appears twice`,
		"@kforge-facts\n|1\nstray\n@end\n":  `"stray" is not part of`,
		"@kforge-facts\n|1\n@\n@end\n":      "without a name",
	}
	for in, want := range cases {
		if _, err := Parse([]byte(in)); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("Parse(%q) = %v, want %q", in, err, want)
		}
	}
	// A login shell's noise before the probe, and comments, are not the probe's.
	f, err := Parse([]byte("Welcome!\n@ not this\n" + whole + "after the end\n"))
	if err != nil || f.Hostname != "a" {
		t.Fatalf("%+v %v", f, err)
	}
	// Everything the probe always prints but did not is recorded as unavailable, and left unknown.
	if len(f.Unavailable) < 20 || f.Swap != nil || f.Cgroups != nil || f.Kubernetes != nil {
		t.Errorf("%+v", f)
	}
}

func TestParseKeepsOddValuesVerbatim(t *testing.T) {
	f, err := Parse([]byte("@kforge-facts\n|1\n@hostname\n|@end |odd! #x\n@os-release\n|PRETTY_NAME=\"a \\\"b\\\" $c\"\n|ID='x y'\n@end\n"))
	if err != nil {
		t.Fatal(err)
	}
	if f.Hostname != "@end |odd! #x" || f.OS.PrettyName != `a "b" $c` || f.OS.ID != "x y" {
		t.Errorf("%q %+v", f.Hostname, f.OS)
	}
}

func TestSectionErrorsMakeFactsUnknown(t *testing.T) {
	f, err := Parse([]byte("@kforge-facts\n|1\n@swaps\n!cannot read /proc/swaps\n@time\n|1700000000.N\n@nproc\n|3\n@cpu-online\n!x\n@end\n"))
	if err != nil {
		t.Fatal(err)
	}
	if f.Swap != nil || f.Unavailable["swaps"] != "cannot read /proc/swaps" {
		t.Errorf("swap %+v unavailable %v", f.Swap, f.Unavailable)
	}
	// busybox date prints no nanoseconds: the seconds still count.
	if !f.Time.Equal(time.Unix(1700000000, 0)) || f.CPUs != 3 {
		t.Errorf("time %v cpus %d", f.Time, f.CPUs)
	}
}

func TestHelpers(t *testing.T) {
	for in, want := range map[string]int{"0": 1, "0-3": 4, "0-3,6,8-9": 7, "": 0, "x": 0, "3-1": 0} {
		if got := countCPUList(in); got != want {
			t.Errorf("countCPUList(%q) = %d, want %d", in, got, want)
		}
	}
	if got := unescapeOctal(`/swap\040file\134x\04`); got != `/swap file\x\04` {
		t.Errorf("unescapeOctal = %q", got)
	}
	ss := []struct {
		line string
		want Listener
		ok   bool
	}{
		{`tcp LISTEN 0 4096 *:22 *:* users:(("sshd",pid=1104,fd=3),("systemd",pid=1,fd=117))`, Listener{Proto: "tcp", Address: "*", Port: 22, Process: "sshd", PID: 1104}, true},
		{`tcp LISTEN 0 128 [::ffff:127.0.0.1]:6443 [::]:*`, Listener{Proto: "tcp", Address: "::ffff:127.0.0.1", Port: 6443}, true},
		{`udp UNCONN 0 0 127.0.0.53%lo:53 0.0.0.0:*`, Listener{Proto: "udp", Address: "127.0.0.53%lo", Port: 53}, true},
		{`Netid State Recv-Q Send-Q Local Address:Port Peer Address:Port`, Listener{}, false},
		{`tcp LISTEN 0 128 nonsense 0.0.0.0:*`, Listener{}, false},
	}
	for _, c := range ss {
		got, ok := parseSSLine(c.line)
		if ok != c.ok || got != c.want {
			t.Errorf("parseSSLine(%q) = %+v %v", c.line, got, ok)
		}
	}
	procs := []struct {
		line string
		want Listener
	}{
		{"tcp 00000000:0016", Listener{Proto: "tcp", Address: "0.0.0.0", Port: 22}},
		{"tcp 0100007F:192B", Listener{Proto: "tcp", Address: "127.0.0.1", Port: 6443}},
		{"tcp6 00000000000000000000000001000000:2800", Listener{Proto: "tcp", Address: "::1", Port: 10240}},
		{"udp6 0000000000000000FFFF00000100007F:0035", Listener{Proto: "udp", Address: "127.0.0.1", Port: 53}},
	}
	for _, c := range procs {
		if got, ok := parseProcNetLine(c.line); !ok || got != c.want {
			t.Errorf("parseProcNetLine(%q) = %+v %v", c.line, got, ok)
		}
	}
}

// FuzzParse: any input either parses or is refused, never a panic.
func FuzzParse(f *testing.F) {
	files, _ := filepath.Glob("testdata/*.txt")
	for _, file := range files {
		if b, err := os.ReadFile(file); err == nil {
			f.Add(b)
		}
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		if facts, err := Parse(b); err == nil {
			if _, err := json.Marshal(facts); err != nil {
				t.Fatal(err)
			}
		}
	})
}
