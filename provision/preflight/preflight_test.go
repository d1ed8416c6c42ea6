package preflight

import (
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/kforge/kforge/config"
	"github.com/kforge/kforge/provision/facts"
)

// The fixtures are the facts package's: probe outputs recorded on real hosts here, or synthesized for
// systems that are not available (each file's header says which, and where its values come from).
const fixtureDir = "../facts/testdata"

func loadFacts(t *testing.T, name string) *facts.Facts {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(fixtureDir, name+".txt"))
	if err != nil {
		t.Fatal(err)
	}
	f, err := facts.Parse(b)
	if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	return f
}

func testCluster(hosts ...config.Host) *config.Cluster {
	return &config.Cluster{Name: "tfacts", Security: config.DefaultSecurity(), KubernetesVersion: config.Version{Major: 1, Minor: 37, Patch: 2},
		APIServer: config.APIServer{Port: 6443}, Kubelet: config.Kubelet{FailCgroupV1: true},
		KubeProxy: config.KubeProxy{Mode: "iptables"}, Hosts: hosts}
}

func host(name string, roles ...config.Role) config.Host {
	return config.Host{Name: name, Address: name, Roles: roles}
}

var (
	controlPlane = []config.Role{config.RoleControlPlane, config.RoleEtcd}
	worker       = []config.Role{config.RoleWorker}
	etcdOnly     = []config.Role{config.RoleEtcd}
)

func findingOf(t *testing.T, fs []Finding, host, id string) Finding {
	t.Helper()
	for _, f := range fs {
		if f.Host == host && f.ID == id {
			return f
		}
	}
	t.Fatalf("no finding %s on %s in %+v", id, host, fs)
	return Finding{}
}

// scenario is one host judged by one check: its fixture and roles, what else is in the cluster, and what
// the check must say.
type scenario struct {
	fixture string // "" means the host has no facts
	roles   []config.Role
	tweak   func(*config.Cluster)
	others  []string // fixtures of further hosts (workers), for the checks across hosts
	// clock is the operator's clock minus the host's; 1 s unless set.
	clock  time.Duration
	want   Severity
	detail string // a part of the detail, or of the fix
}

func (s scenario) run(t *testing.T, id string) Finding {
	t.Helper()
	roles := s.roles
	if roles == nil {
		roles = controlPlane
	}
	hosts := []config.Host{host("h1", roles...)}
	all := map[string]*facts.Facts{}
	var f *facts.Facts
	if s.fixture != "" {
		f = loadFacts(t, s.fixture)
		all["h1"] = f
	}
	for i, o := range s.others {
		name := "h" + string(rune('2'+i))
		hosts = append(hosts, host(name, worker...))
		all[name] = loadFacts(t, o)
	}
	c := testCluster(hosts...)
	if s.tweak != nil {
		s.tweak(c)
	}
	clock := s.clock
	if clock == 0 {
		clock = time.Second
	}
	var operator time.Time
	if f != nil {
		operator = f.Time.Add(clock)
	}
	fd := findingOf(t, Run(Input{Cluster: c, Facts: all, OperatorTime: operator}), "h1", id)
	if fd.Severity != s.want {
		t.Errorf("%s on %s: %s (%s), want %s", id, s.fixture, fd.Severity, fd.Detail, s.want)
	}
	if s.detail != "" && !strings.Contains(fd.Detail+"\n"+fd.Fix, s.detail) {
		t.Errorf("%s on %s: %q / fix %q does not say %q", id, s.fixture, fd.Detail, fd.Fix, s.detail)
	}
	if (fd.Severity == SeverityWarning || fd.Severity == SeverityError) != (fd.Fix != "") {
		t.Errorf("%s on %s: %s with fix %q", id, s.fixture, fd.Severity, fd.Fix)
	}
	return fd
}

func version(minor int) func(*config.Cluster) {
	return func(c *config.Cluster) { c.KubernetesVersion = config.Version{Major: 1, Minor: minor, Patch: 0} }
}

func proxy(mode string) func(*config.Cluster) {
	return func(c *config.Cluster) { c.KubeProxy.Mode = mode }
}

// TestEveryCheckPassesAndFails gives every check at least one fixture it passes and one it fails, and
// covers how roles and the Kubernetes version change severities.
func TestEveryCheckPassesAndFails(t *testing.T) {
	cases := map[string][]scenario{
		"probe": {
			{fixture: "lab-host-1", want: SeverityOK, detail: "probed as root"},
			{fixture: "", want: SeverityError, detail: "no facts"},
			{fixture: "this-machine", want: SeverityOK, detail: "could not read: pid1-exe"},
		},
		"arch": {
			{fixture: "lab-host-1", want: SeverityOK},
			{fixture: "raspios11-armhf", want: SeverityError, detail: "armv7l"},
		},
		"kernel-version": {
			{fixture: "debian12-cgroup2", want: SeverityOK},
			{fixture: "rhel9", tweak: proxy("nftables"), want: SeverityOK},
			{fixture: "centos7", want: SeverityError, detail: "older than 4.18"},
			{fixture: "centos7", roles: etcdOnly, want: SeverityError, detail: "older than 4.18"},
		},
		"kernel-config": {
			{fixture: "lab-host-1", want: SeverityOK},
			{fixture: "rhel9", tweak: proxy("nftables"), want: SeverityOK},
			{fixture: "lab-host-1", tweak: proxy("ipvs"), want: SeverityError, detail: "CONFIG_IP_VS,"},
			{fixture: "centos7", want: SeverityWarning, detail: "CONFIG_CGROUP_BPF"},
			{fixture: "centos7", tweak: proxy("nftables"), want: SeverityError, detail: "CONFIG_NFT_NUMGEN"},
			{fixture: "raspios11-armhf", want: SeverityWarning, detail: "no readable kernel config"},
			{fixture: "centos7", roles: etcdOnly, want: SeveritySkipped},
		},
		"systemd": {
			{fixture: "lab-host-1", want: SeverityOK, detail: "systemd 252"},
			{fixture: "this-machine", want: SeverityError, detail: `PID 1 is "process_api"`},
		},
		"cgroup-controllers": {
			{fixture: "debian12-cgroup2", want: SeverityOK},
			{fixture: "lab-host-1", want: SeverityOK, detail: "no hugetlb: optional"},
			{fixture: "raspios11-armhf", roles: worker, want: SeverityError, detail: "cgroup_enable=memory"},
			{fixture: "raspios11-armhf", roles: etcdOnly, want: SeveritySkipped},
		},
		"cgroup-v1": {
			{fixture: "ubuntu2404-cgroup2", want: SeverityOK},
			{fixture: "lab-host-1", want: SeverityError, detail: "refuses to start on cgroup v1"},
			{fixture: "lab-host-1", tweak: func(c *config.Cluster) { c.Kubelet.FailCgroupV1 = false }, want: SeverityWarning, detail: "writes failCgroupV1: false"},
			{fixture: "centos7", tweak: version(33), want: SeverityWarning, detail: "maintenance mode"},
			{fixture: "centos7", tweak: version(30), want: SeverityOK},
			{fixture: "lab-host-1", roles: etcdOnly, want: SeveritySkipped},
		},
		"namespaces": {
			{fixture: "lab-host-1", want: SeverityOK},
			{fixture: "centos7", want: SeverityWarning, detail: "user.max_user_namespaces = 0"},
		},
		"overlayfs": {
			{fixture: "lab-host-1", want: SeverityOK},
			{fixture: "debian12-cgroup2", want: SeverityOK, detail: "loaded as a module"},
			{fixture: "lab-host-no-overlay", want: SeverityError, detail: "wrong fs type"},
			{fixture: "lab-host-no-overlay", roles: etcdOnly, want: SeveritySkipped},
		},
		"swap": {
			{fixture: "lab-host-1", want: SeverityOK},
			{fixture: "lab-host-swap", want: SeverityError, detail: "/swap.img (file, 4.0 GiB)"},
			{fixture: "rhel9", roles: worker, want: SeverityError, detail: "/dev/dm-1"},
			{fixture: "lab-host-swap", tweak: func(c *config.Cluster) { c.Kubelet.ExtraArgs = map[string]string{"fail-swap-on": "false"} }, want: SeverityWarning},
			{fixture: "lab-host-swap", roles: etcdOnly, want: SeveritySkipped},
		},
		"ip-forward": {
			{fixture: "lab-host-1", want: SeverityOK, detail: "kforge sets it to 1"},
			{fixture: "lab-host-ro-net", want: SeverityError, detail: "read-only"},
		},
		"bridge-netfilter": {
			{fixture: "lab-host-1", want: SeverityOK},
			{fixture: "debian12-cgroup2", want: SeverityOK, detail: "kforge loads it"},
			{fixture: "lab-host-ro-net", want: SeverityError, detail: "read-only"},
		},
		"ports": {
			{fixture: "lab-host-1", want: SeverityOK, detail: "free: 6443, 10257, 10259, 2379, 2380, 10250"},
			{fixture: "lab-host-managed", want: SeverityOK, detail: "kforge's own: 6443/tcp (kube-apiserver)"},
			{fixture: "lab-host-foreign", want: SeverityError, detail: "6443/tcp (kube-apiserver): socat (pid 789)"},
			// A worker does not need 6443.
			{fixture: "lab-host-foreign", roles: worker, want: SeverityOK},
			{fixture: "lab-host-foreign", tweak: func(c *config.Cluster) { c.APIServer.Port = 8443 }, want: SeverityOK},
		},
		"nodeport-range": {
			{fixture: "lab-host-1", want: SeverityOK},
			{fixture: "lab-host-foreign", roles: worker, want: SeverityWarning, detail: "30080/tcp: socat"},
			{fixture: "lab-host-foreign", roles: etcdOnly, want: SeveritySkipped},
		},
		"resources": {
			{fixture: "lab-host-1", want: SeverityOK, detail: "2 CPUs, 23.5 GiB"},
			{fixture: "raspios11-armhf", want: SeverityWarning, detail: "less than 2 GiB of memory"},
			{fixture: "raspios11-armhf", roles: worker, want: SeverityOK},
		},
		"disk": {
			{fixture: "lab-host-1", want: SeverityOK},
			{fixture: "lab-host-foreign", want: SeverityError, detail: "1.0 GiB available"},
		},
		"binaries": {
			{fixture: "lab-host-1", want: SeverityOK},
			{fixture: "this-machine", want: SeverityError, detail: "missing: iptables"},
			{fixture: "debian12-cgroup2", want: SeverityError, detail: "apt-get install -y iptables conntrack socat ethtool"},
			{fixture: "debian12-cgroup2", tweak: proxy("nftables"), want: SeverityWarning, detail: "apt-get install -y conntrack socat ethtool"},
			{fixture: "rhel9", want: SeverityError, detail: "dnf install -y iptables-nft conntrack-tools socat"},
			{fixture: "centos7", tweak: proxy("ipvs"), want: SeverityError, detail: "yum install -y ipset conntrack-tools socat"},
			{fixture: "this-machine", roles: etcdOnly, want: SeveritySkipped},
		},
		"unique-hostname": {
			{fixture: "lab-host-1", others: []string{"lab-host-2"}, want: SeverityOK},
			{fixture: "lab-host-1", others: []string{"lab-host-1"}, want: SeverityError, detail: "tfacts-1, as on h2"},
			{fixture: "lab-host-1", roles: etcdOnly, others: []string{"lab-host-1"}, want: SeverityWarning},
		},
		"unique-machine-id": {
			{fixture: "lab-host-1", others: []string{"lab-host-2"}, want: SeverityOK},
			// Recorded from the same host twice: as a cloned machine would look.
			{fixture: "lab-host-2", others: []string{"lab-host-swap"}, want: SeverityError, detail: "as on h2"},
		},
		"unique-product-uuid": {
			{fixture: "debian12-cgroup2", others: []string{"rhel9", "lab-host-1"}, want: SeverityOK},
			{fixture: "debian12-cgroup2", others: []string{"debian12-cgroup2"}, want: SeverityWarning},
			{fixture: "lab-host-1", others: []string{"lab-host-2"}, want: SeveritySkipped},
		},
		"clock-skew": {
			{fixture: "lab-host-1", want: SeverityOK, detail: "1s behind"},
			{fixture: "lab-host-1", clock: 10 * time.Millisecond, want: SeverityOK, detail: "within a second"},
			{fixture: "lab-host-1", clock: 2 * time.Minute, want: SeverityError, detail: "2m0s behind"},
			{fixture: "rhel9", clock: -45 * time.Second, want: SeverityError, detail: "45s ahead of"},
		},
		"existing-kubernetes": {
			{fixture: "lab-host-1", want: SeverityOK, detail: "none"},
			{fixture: "lab-host-managed", want: SeverityOK, detail: "installed by kforge"},
			{fixture: "lab-host-foreign", roles: etcdOnly, want: SeverityError, detail: "etcd data in /var/lib/etcd"},
			{fixture: "lab-host-managed", tweak: func(c *config.Cluster) { c.Name = "prod" }, want: SeverityError, detail: `installed cluster "tfacts" here`},
		},
	}
	for _, c := range Checks() {
		scenarios := cases[c.ID]
		var passes, fails int
		for _, s := range scenarios {
			switch s.want {
			case SeverityOK:
				passes++
			case SeverityWarning, SeverityError:
				fails++
			}
		}
		if passes == 0 || fails == 0 {
			t.Errorf("check %s: %d passing and %d failing fixtures, want at least one of each", c.ID, passes, fails)
		}
		t.Run(c.ID, func(t *testing.T) {
			for _, s := range scenarios {
				s.run(t, c.ID)
			}
		})
		delete(cases, c.ID)
	}
	for id := range cases {
		t.Errorf("cases for %s, which is not a check", id)
	}
}

func TestTableIsWellFormed(t *testing.T) {
	seen := map[string]bool{}
	for _, c := range Checks() {
		if c.ID == "" || c.ID != strings.ToLower(c.ID) || strings.ContainsAny(c.ID, " ,") || seen[c.ID] || c.ID == IgnoreAll || c.ID == unknownIgnoreID {
			t.Errorf("bad or duplicate ID %q", c.ID)
		}
		seen[c.ID] = true
		if c.Title == "" || c.Fix == "" || c.Run == nil {
			t.Errorf("%s: title %q, fix %q", c.ID, c.Title, c.Fix)
		}
	}
}

// TestProbeCollectsWhatChecksNeed: every kernel option and program a check asks about is one the probe
// reports, or the check would always see it missing.
func TestProbeCollectsWhatChecksNeed(t *testing.T) {
	probed := facts.KernelOptions()
	for _, v1 := range []bool{true, false} {
		for _, mode := range []string{"iptables", "nftables", "ipvs"} {
			for _, plugin := range config.NetworkPlugins {
				for _, o := range append(requiredKernelOptions(v1, mode, plugin), recommendedKernelOptions(v1)...) {
					for _, alt := range strings.Split(o, "|") {
						if !slices.Contains(probed, alt) {
							t.Errorf("kernel option %s is not probed", alt)
						}
					}
				}
				req, rec := neededBinaries(mode, plugin)
				for _, b := range append(req, rec...) {
					if !slices.Contains(facts.BinaryNames(), b) {
						t.Errorf("program %s is not probed", b)
					}
				}
			}
		}
	}
	for _, p := range neededPorts(testCluster(), host("x", config.RoleControlPlane, config.RoleEtcd, config.RoleWorker)) {
		if !slices.Contains(facts.ProcessNames(), p.process) {
			t.Errorf("process %s (port %d) is not probed", p.process, p.number)
		}
	}
}

func TestRunReportsEveryCheckForEveryHostInOrder(t *testing.T) {
	c := testCluster(host("cp", controlPlane...), host("etcd", etcdOnly...), host("w", worker...), host("gone", worker...))
	all := map[string]*facts.Facts{"cp": loadFacts(t, "lab-host-1"), "etcd": loadFacts(t, "debian12-cgroup2"), "w": loadFacts(t, "lab-host-2"),
		"stranger": loadFacts(t, "rhel9")}
	fs := Run(Input{Cluster: c, Facts: all, OperatorTime: all["cp"].Time})
	checks := Checks()
	if len(fs) != len(c.Hosts)*len(checks) {
		t.Fatalf("%d findings for %d hosts and %d checks", len(fs), len(c.Hosts), len(checks))
	}
	for i, f := range fs {
		h, ck := c.Hosts[i/len(checks)], checks[i%len(checks)]
		if f.Host != h.Name || f.ID != ck.ID || f.Title != ck.Title || f.Severity < SeverityOK || f.Severity > SeverityError {
			t.Errorf("finding %d: %+v, want %s on %s", i, f, ck.ID, h.Name)
		}
	}
	// The host whose probe failed: one error, the rest skipped.
	for _, f := range fs[3*len(checks):] {
		want := SeveritySkipped
		if f.ID == probeID {
			want = SeverityError
		}
		if f.Severity != want {
			t.Errorf("%+v", f)
		}
	}
	if !HasErrors(fs) {
		t.Error("no errors")
	}
	// Facts of hosts outside the cluster are not judged, nor compared with.
	for _, f := range fs {
		if f.Host == "stranger" || strings.Contains(f.Detail, "stranger") {
			t.Errorf("%+v", f)
		}
	}
	if Run(Input{}) != nil {
		t.Error("findings without a cluster")
	}
}

func TestIgnoreTurnsNamedErrorsIntoWarnings(t *testing.T) {
	c := testCluster(host("h1", controlPlane...))
	in := Input{Cluster: c, Facts: map[string]*facts.Facts{"h1": loadFacts(t, "lab-host-swap")}}
	in.OperatorTime = in.Facts["h1"].Time
	before := Run(in)
	if findingOf(t, before, "h1", "swap").Severity != SeverityError || findingOf(t, before, "h1", "cgroup-v1").Severity != SeverityError {
		t.Fatalf("%+v", before)
	}

	in.Ignore = []string{" SWAP ", "swpa", "cgroup-v1", "swpa"}
	after := Run(in)
	if len(after) != len(before)+1 || after[0].ID != unknownIgnoreID || after[0].Host != "" || after[0].Severity != SeverityWarning ||
		!strings.Contains(after[0].Detail, `"swpa"`) || !strings.Contains(after[0].Detail, `Did you mean "swap"?`) {
		t.Fatalf("the unknown ID is reported once, first: %+v", after[0])
	}
	swap := findingOf(t, after, "h1", "swap")
	if swap.Severity != SeverityWarning || !swap.Ignored || !strings.Contains(swap.Detail, "ignored with --ignore-preflight") || swap.Fix == "" {
		t.Errorf("%+v", swap)
	}
	if HasErrors(after) {
		t.Errorf("errors left: %+v", after)
	}
	// Warnings and passes are left alone.
	if f := findingOf(t, after, "h1", "systemd"); f.Ignored || f.Severity != SeverityOK {
		t.Errorf("%+v", f)
	}

	in.Ignore = []string{IgnoreAll}
	if fs := Run(in); HasErrors(fs) || len(fs) != len(before) {
		t.Errorf("all: %+v", fs)
	}
}

func TestFindingsAreJSON(t *testing.T) {
	f := Finding{ID: "swap", Host: "h1", Title: "Swap", Severity: SeverityError, Detail: "on", Fix: "off", Ignored: true}
	b, err := json.Marshal(f)
	if err != nil {
		t.Fatal(err)
	}
	if string(b) != `{"id":"swap","host":"h1","title":"Swap","severity":"error","detail":"on","fix":"off","ignored":true}` {
		t.Errorf("%s", b)
	}
	var back Finding
	if err := json.Unmarshal(b, &back); err != nil || back != f {
		t.Errorf("%+v %v", back, err)
	}
	if _, err := json.Marshal(Finding{}); err == nil {
		t.Error("a finding without a severity was written")
	}
	var s Severity
	if err := s.UnmarshalText([]byte("fatal")); err == nil {
		t.Error("unknown severity read")
	}
}

func TestKernelVersion(t *testing.T) {
	for rel, want := range map[string][2]int{"6.1.0-18-amd64": {6, 1}, "3.10.0-1160.el7.x86_64": {3, 10}, "6.1.21-v7+": {6, 1},
		"5.14.0-427.13.1.el9_4.x86_64": {5, 14}, "6.8-rc1": {6, 8}} {
		major, minor, ok := kernelVersion(rel)
		if !ok || major != want[0] || minor != want[1] {
			t.Errorf("%s: %d.%d %v", rel, major, minor, ok)
		}
	}
	if _, _, ok := kernelVersion("linux"); ok {
		t.Error("nonsense parsed")
	}
}
