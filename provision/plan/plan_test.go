package plan

import (
	"crypto/sha256"
	"encoding/hex"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/kforge/kforge/internal/golden"
	"github.com/kforge/kforge/provision/resource"
)

func sum(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

func file(path, content string, mode int, restarts ...string) resource.Resource {
	return resource.Resource{Kind: resource.File, Name: path, Content: []byte(content), SHA256: sum([]byte(content)),
		Size: int64(len(content)), Mode: os.FileMode(mode), Restarts: restarts}
}

const kubeletUnit = "unit:kubelet.service"

// node is what a test host should have: containerd and a kubelet, with a config, a certificate, a key and a
// binary, in the order apply would place them.
func node(kubeletVersion, kubeletConf, cert string) []resource.Resource {
	conf := file("/etc/kubernetes/kubelet.conf", kubeletConf, 0o644, kubeletUnit)
	conf.Diffable = true
	key := file("/etc/kubernetes/pki/kubelet.key", "-----BEGIN PRIVATE KEY-----\nsecret\n", 0o600, kubeletUnit)
	key.Secret = true
	bin := resource.Resource{Kind: resource.Binary, Name: "/usr/local/bin/kubelet", SHA256: sum([]byte(kubeletVersion)),
		Size: 60 << 20, Mode: 0o755, Version: "kubelet " + kubeletVersion, Restarts: []string{kubeletUnit}}
	unitFile := file("/etc/systemd/system/kubelet.service", "[Service]\nExecStart=/usr/local/bin/kubelet --config=/etc/kubernetes/kubelet.conf\n", 0o644, kubeletUnit)
	unitFile.Diffable = true
	return []resource.Resource{
		{Kind: resource.Directory, Name: "/etc/kubernetes/pki", Mode: 0o700},
		file("/etc/containerd/config.toml", "version = 3\n", 0o644, "unit:containerd.service"),
		{Kind: resource.Unit, Name: "containerd.service", Enabled: true, Active: true},
		{Kind: resource.Sysctl, Name: "net.ipv4.ip_forward", Value: "1"},
		conf,
		file("/etc/kubernetes/pki/kubelet.crt", cert, 0o644, kubeletUnit),
		key,
		bin,
		unitFile,
		{Kind: resource.Unit, Name: "kubelet.service", Enabled: true, Active: true},
	}
}

// observe makes the observed state that matches resources exactly, as after an apply.
func observe(rs []resource.Resource) map[string]resource.Observed {
	out := map[string]resource.Observed{}
	for _, r := range rs {
		o := resource.Observed{Exists: true, SHA256: r.SHA256, Size: r.Size, Mode: r.Mode, Owner: "root", Group: "root",
			Enabled: r.Enabled, Active: r.Active, Value: r.Value, Version: r.Version, Target: r.Target, Content: r.Content}
		switch r.Kind {
		case resource.File, resource.Binary:
			o.Type = "file"
		case resource.Directory:
			o.Type = "directory"
		}
		out[r.ID()] = o
	}
	return out
}

func managed(rs []resource.Resource) []Managed {
	var out []Managed
	for _, r := range rs {
		out = append(out, Managed{ID: r.ID(), Kind: string(r.Kind), Name: r.Name})
	}
	return out
}

const conf1 = "address: 0.0.0.0\nport: 10250\nclusterDomain: cluster.local\nmaxPods: 110\n"

func build(hosts ...HostInput) *Plan {
	p := &Plan{FormatVersion: FormatVersion, Cluster: "test", CreatedAt: time.Date(2026, 11, 28, 12, 0, 0, 0, time.UTC),
		State: StateRef{Lineage: "lineage-1", Serial: 3}}
	for _, h := range hosts {
		p.Hosts = append(p.Hosts, Compute(h))
	}
	return p
}

func TestGoldenPlans(t *testing.T) {
	want := node("v1.37.2", conf1, "CERT-1")
	applied := observe(want)
	scenarios := map[string]*Plan{
		"create-from-nothing": build(
			HostInput{Host: "cp-1", Desired: want, Observed: map[string]resource.Observed{}},
			HostInput{Host: "w-1", Desired: want, Observed: map[string]resource.Observed{}}),
		"no-op": build(
			HostInput{Host: "cp-1", Desired: want, Observed: applied, Managed: managed(want)},
			HostInput{Host: "w-1", Desired: want, Observed: applied, Managed: managed(want)}),
		"drifted-file": func() *Plan {
			drifted := observe(want)
			o := drifted["file:/etc/kubernetes/kubelet.conf"]
			edited := strings.Replace(conf1, "maxPods: 110", "maxPods: 250", 1)
			o.Content, o.SHA256, o.Mode = []byte(edited), sum([]byte(edited)), 0o666
			drifted["file:/etc/kubernetes/kubelet.conf"] = o
			return build(HostInput{Host: "cp-1", Desired: want, Observed: applied, Managed: managed(want)},
				HostInput{Host: "w-1", Desired: want, Observed: drifted, Managed: managed(want)})
		}(),
		"stopped-unit": func() *Plan {
			stopped := observe(want)
			u := stopped["unit:containerd.service"]
			u.Active = false
			stopped["unit:containerd.service"] = u
			return build(HostInput{Host: "cp-1", Desired: want, Observed: stopped, Managed: managed(want)})
		}(),
		"host-added": build(
			HostInput{Host: "cp-1", Desired: want, Observed: applied, Managed: managed(want)},
			HostInput{Host: "w-2", Desired: want, Observed: map[string]resource.Observed{}}),
		"host-removed": build(
			HostInput{Host: "cp-1", Desired: want, Observed: applied, Managed: managed(want)},
			HostInput{Host: "w-1", Observed: applied, Managed: managed(want)}),
		"version-bump": func() *Plan {
			newer := node("v1.37.3", conf1, "CERT-1")
			return build(HostInput{Host: "cp-1", Desired: newer, Observed: applied, Managed: managed(want)})
		}(),
		"certificate-change": func() *Plan {
			renewed := node("v1.37.2", conf1, "CERT-2")
			return build(HostInput{Host: "cp-1", Desired: renewed, Observed: applied, Managed: managed(want)})
		}(),
		"rolling-upgrade": func() *Plan {
			newer := node("v1.37.3", conf1, "CERT-1")
			var hosts []HostInput
			for _, h := range []string{"cp-1", "cp-2", "cp-3", "w-1", "w-2", "w-3"} {
				hosts = append(hosts, HostInput{Host: h, Desired: newer, Observed: applied, Managed: managed(want)})
			}
			p := build(hosts...)
			p.Rollout = []Stage{{Name: "etcd hosts", Hosts: []string{"cp-1", "cp-2", "cp-3"}, AtATime: 1, Drain: []string{"cp-1", "cp-2", "cp-3"}},
				{Name: "other hosts", Hosts: []string{"w-1", "w-2", "w-3"}, AtATime: 2, Drain: []string{"w-1", "w-2", "w-3"}}}
			return p
		}(),
		"ca-expiring": func() *Plan {
			p := build(HostInput{Host: "cp-1", Desired: want, Observed: applied, Managed: managed(want)})
			p.Warnings = []string{"CA ca (kubernetes-ca) expires in 20 days (2026-12-18), inside renew_before (30 days); CAs are not replaced by a plan"}
			return p
		}(),
	}
	for name, p := range scenarios {
		t.Run(name, func(t *testing.T) {
			golden.Check(t, filepath.Join("testdata", name+".txt"), Text(p, false))
			js, err := JSON(p)
			if err != nil {
				t.Fatal(err)
			}
			golden.Check(t, filepath.Join("testdata", name+".json"), string(js))
			back, err := Read(js)
			if err != nil {
				t.Fatal(err)
			}
			if Text(back, false) != Text(p, false) {
				t.Error("a plan read back from JSON renders differently")
			}
		})
	}
	// The assertions that matter most, beyond the golden files.
	if !scenarios["no-op"].Empty() || Text(scenarios["no-op"], false) != NoChanges+"\n" {
		t.Error("no-op plan is not empty")
	}
	if !scenarios["ca-expiring"].Empty() || !strings.Contains(Text(scenarios["ca-expiring"], false), "Warning: CA ca ") {
		t.Error("a plan with only a warning is not an empty plan that shows the warning")
	}
	for name, wantSummary := range map[string]Summary{
		"create-from-nothing": {Add: 14, Change: 6}, // per host: 7 paths created; 2 units and a sysctl changed
		"drifted-file":        {Change: 1, Restart: 1},
		"stopped-unit":        {Change: 1},
		"host-added":          {Add: 7, Change: 3},
		"host-removed":        {Destroy: 10},
		"version-bump":        {Change: 1, Restart: 1},
		"certificate-change":  {Change: 1, Restart: 1},
		"rolling-upgrade":     {Change: 6, Restart: 6},
	} {
		if got := scenarios[name].Summary(); got != wantSummary {
			t.Errorf("%s: summary %+v, want %+v", name, got, wantSummary)
		}
	}
	// Only the kubelet restarts when its certificate changes; containerd does not.
	for _, c := range scenarios["certificate-change"].Hosts[0].Changes {
		if c.Action == Restart && c.Name != "kubelet.service" {
			t.Errorf("restarts %s", c.Name)
		}
	}
	// Secrets: never content, never a diff.
	js, _ := JSON(scenarios["create-from-nothing"])
	if strings.Contains(string(js), "secret\\n") || strings.Contains(Text(scenarios["create-from-nothing"], false), "PRIVATE") {
		t.Error("secret content in a plan")
	}
}

func TestUnifiedDiff(t *testing.T) {
	a := "1\n2\n3\n4\n5\n6\n7\n8\n9\n10\n11\n12\n"
	b := "1\n2\n3\nfour\n5\n6\n7\n8\n9\n10\n11\n12\n13\n"
	want := "@@ -1,7 +1,7 @@\n 1\n 2\n 3\n-4\n+four\n 5\n 6\n 7\n@@ -10,3 +10,4 @@\n 10\n 11\n 12\n+13\n"
	if got := unifiedDiff([]byte(a), []byte(b)); got != want {
		t.Errorf("diff:\n%s\nwant:\n%s", got, want)
	}
	if got := unifiedDiff([]byte("x\x00"), []byte("y")); got != "" {
		t.Errorf("binary diffed: %q", got)
	}
	if got := unifiedDiff(nil, []byte("new\n")); got != "@@ -1,0 +1,1 @@\n+new\n" {
		t.Errorf("from nothing: %q", got)
	}
}

func TestReadRefusesOtherFormats(t *testing.T) {
	if _, err := Read([]byte(`{"format_version":"9.0"}`)); err == nil || !strings.Contains(err.Error(), `plan format "9.0"`) {
		t.Errorf("err = %v", err)
	}
	if _, err := Read([]byte("nonsense")); err == nil {
		t.Error("nonsense accepted")
	}
}

// TestUserAccounts: a missing system user is created, saying what it will be; an existing one is kept whatever
// its home (kforge does not move a component's data); one no longer wanted is removed.
func TestUserAccounts(t *testing.T) {
	etcd := resource.Resource{Kind: resource.User, Name: "etcd", Value: "/var/lib/etcd"}
	hp := Compute(HostInput{Host: "cp-1", Desired: []resource.Resource{etcd}, Observed: map[string]resource.Observed{}})
	if len(hp.Changes) != 1 || hp.Changes[0].Action != Create || strings.Join(hp.Changes[0].Reasons, "; ") != "system account and group, home /var/lib/etcd, no login" {
		t.Errorf("missing user: %+v", hp.Changes)
	}
	if got := Text(&Plan{Hosts: []HostPlan{hp}}, false); !strings.Contains(got, "+   user etcd  (system account and group, home /var/lib/etcd, no login)") {
		t.Errorf("plan text:\n%s", got)
	}
	hp = Compute(HostInput{Host: "cp-1", Desired: []resource.Resource{etcd}, Observed: map[string]resource.Observed{etcd.ID(): {Exists: true, Value: "/home/etcd"}}})
	if len(hp.Changes) != 0 {
		t.Errorf("existing user: %+v", hp.Changes)
	}
	// Recorded after the unit that runs as it (added to a running cluster), it still goes after the unit stops.
	unit := resource.Resource{Kind: resource.Unit, Name: "etcd.service"}
	hp = Compute(HostInput{Host: "cp-1", Managed: []Managed{{ID: unit.ID(), Kind: "unit", Name: unit.Name}, {ID: etcd.ID(), Kind: "user", Name: "etcd"}},
		Observed: map[string]resource.Observed{etcd.ID(): {Exists: true, Value: "/var/lib/etcd"}, unit.ID(): {Exists: true, Active: true}}})
	if len(hp.Changes) != 2 || hp.Changes[0].ID != unit.ID() || hp.Changes[1].ID != etcd.ID() || hp.Changes[1].Action != Delete {
		t.Errorf("user no longer wanted: %+v", hp.Changes)
	}
}
