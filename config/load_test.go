package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/hashicorp/hcl/v2"
)

// writeConfig writes files (name → content) into a fresh directory and returns it.
func writeConfig(t *testing.T, files map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	for name, content := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func mustLoad(t *testing.T, opts Options) *Cluster {
	t.Helper()
	c, diags := NewLoader().Load(opts)
	if diags.HasErrors() {
		t.Fatalf("load: %s", diags.Error())
	}
	return c
}

const poolConfig = `
variable "workers" {
  type    = number
  default = 100
}
variable "zone" {
  type    = string
  default = "from-default"
}
cluster "pool" {
  pod_cidr     = "198.19.0.0/16"
  service_cidr = "198.18.128.0/20"
}
host "cp" {
  address = "198.18.0.2"
  roles   = ["control-plane", "etcd"]
}
host "worker" {
  for_each = { for i in range(var.workers) : format("%03d", i + 1) => cidrhost("198.18.4.0/22", i + 10) }
  address  = each.value
  roles    = ["worker"]
  labels   = { zone = var.zone }
}
`

func TestForEachExpandsAPoolOf100Workers(t *testing.T) {
	c := mustLoad(t, Options{Path: writeConfig(t, map[string]string{"main.hcl": poolConfig})})
	workers := c.HostsWith(RoleWorker)
	if len(workers) != 100 {
		t.Fatalf("workers = %d, want 100", len(workers))
	}
	first, last := workers[0], workers[99]
	if first.Name != "worker-001" || first.Address != "198.18.4.10" || first.Key != "001" {
		t.Errorf("first worker = %s %s key %q", first.Name, first.Address, first.Key)
	}
	// 198.18.4.0/22 + 109 = 198.18.4.109.
	if last.Name != "worker-100" || last.Address != "198.18.4.109" {
		t.Errorf("last worker = %s %s", last.Name, last.Address)
	}
	seen := map[string]bool{}
	for _, w := range workers {
		if seen[w.Address] {
			t.Errorf("address %s used twice", w.Address)
		}
		seen[w.Address] = true
		if w.Labels["zone"] != "from-default" || w.SSH.Port != 22 || w.SSH.HostKeyPolicy != HostKeyStrict {
			t.Errorf("%s: labels %v, ssh %+v", w.Name, w.Labels, w.SSH)
		}
	}
}

func TestForEachOverSetsAndLists(t *testing.T) {
	c := mustLoad(t, Options{Path: writeConfig(t, map[string]string{"main.hcl": `
cluster "x" { api_endpoint = "lb.example.internal" }
host "cp" {
  for_each = toset(["c", "a", "b"])
  address  = "198.18.0.${index(["a", "b", "c"], each.key) + 1}"
  roles    = ["control-plane", "etcd"]
}
host "w" {
  for_each = range(2, 4)
  name     = "node${each.value}"
  address  = "198.18.1.${each.value}"
  roles    = ["worker"]
}
`})})
	var got []string
	for _, h := range c.Hosts {
		got = append(got, h.Name+"="+h.Address)
	}
	want := "cp-a=198.18.0.1 cp-b=198.18.0.2 cp-c=198.18.0.3 node2=198.18.1.2 node3=198.18.1.3"
	if strings.Join(got, " ") != want {
		t.Errorf("hosts = %s\nwant    %s", strings.Join(got, " "), want)
	}
}

// TestVariablePrecedence: default < *.kfvars (sorted) < --var-file < KFORGE_VAR_ < -var (last wins).
func TestVariablePrecedence(t *testing.T) {
	dir := writeConfig(t, map[string]string{
		"main.hcl":      poolConfig,
		"a.kfvars":      `zone = "from-a-kfvars"` + "\nworkers = 3\n",
		"b.kfvars":      `zone = "from-b-kfvars"` + "\n",
		"extra.vars":    `zone = "from-var-file"` + "\n",
		"ignored.other": `zone = "never"` + "\n",
	})
	zone := func(opts Options) string {
		opts.Path = dir
		c := mustLoad(t, opts)
		return c.HostsWith(RoleWorker)[0].Labels["zone"]
	}
	env := []string{"KFORGE_VAR_zone=from-env", "PATH=/bin"}
	varFile := []string{filepath.Join(dir, "extra.vars")}
	for _, tc := range []struct {
		name string
		opts Options
		want string
	}{
		{"kfvars files, later name wins", Options{}, "from-b-kfvars"},
		{"var-file beats kfvars", Options{VarFiles: varFile}, "from-var-file"},
		{"environment beats var files", Options{VarFiles: varFile, Env: env}, "from-env"},
		{"-var beats environment", Options{VarFiles: varFile, Env: env, Vars: []string{"zone=from-flag"}}, "from-flag"},
		{"last -var wins", Options{Env: env, Vars: []string{"zone=first", "zone=second"}}, "second"},
	} {
		if got := zone(tc.opts); got != tc.want {
			t.Errorf("%s: zone = %q, want %q", tc.name, got, tc.want)
		}
	}
	// A number from the environment is parsed, and 3 workers from a.kfvars become 5.
	c := mustLoad(t, Options{Path: dir, Env: []string{"KFORGE_VAR_workers=5"}})
	if n := len(c.HostsWith(RoleWorker)); n != 5 {
		t.Errorf("workers from the environment = %d, want 5", n)
	}
}

func TestVariableErrorsWithoutLocation(t *testing.T) {
	dir := writeConfig(t, map[string]string{"main.hcl": poolConfig})
	_, diags := NewLoader().Load(Options{Path: dir, Vars: []string{"wokers=3", "workers=many", "zone"},
		Env: []string{"KFORGE_VAR_unrelated=1"}})
	var got []string
	for _, d := range diags {
		got = append(got, d.Summary+": "+d.Detail)
	}
	want := []string{
		`Undeclared variable: -var "wokers=3" sets "wokers", which no variable block declares. Did you mean "workers"?`,
		`Invalid value for variable: -var "workers=many": "many" is not a valid number value`,
		`Invalid -var option: -var "zone": expected NAME=VALUE.`,
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("diagnostics:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

func TestSSHSettingsMergeAndDefaults(t *testing.T) {
	dir := writeConfig(t, map[string]string{"main.hcl": `
cluster "x" {}
ssh {
  user             = "ops"
  port             = 2222
  private_key_file = "keys/id"
  connect_timeout  = "3s"
  bastion {
    address = "198.18.0.1:2200"
  }
}
host "cp" {
  address = "198.18.0.10"
  roles   = ["control-plane", "etcd"]
}
host "w" {
  address = "198.18.0.11"
  roles   = ["worker"]
  ssh {
    user            = "root"
    host_key_policy = "accept-new"
    bastion {
      address = "jump.example.internal"
      user    = "jumper"
    }
  }
}
`})
	if err := os.MkdirAll(filepath.Join(dir, "keys"), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "keys", "id"), []byte("key"), 0o600); err != nil {
		t.Fatal(err)
	}
	c := mustLoad(t, Options{Path: dir})
	cp, w := c.Hosts[0].SSH, c.Hosts[1].SSH
	key := filepath.Join(dir, "keys", "id")
	if cp.User != "ops" || cp.Port != 2222 || !cp.Sudo || cp.PrivateKeyFile != key || cp.ConnectTimeout.String() != "3s" ||
		cp.HostKeyPolicy != HostKeyStrict || !cp.UseAgent {
		t.Errorf("cp ssh = %+v", cp)
	}
	if cp.Bastion == nil || cp.Bastion.Address != "198.18.0.1" || cp.Bastion.Port != 2200 || cp.Bastion.User != "ops" || cp.Bastion.PrivateKeyFile != key {
		t.Errorf("cp bastion = %+v", cp.Bastion)
	}
	// root needs no sudo; the host's bastion replaces the default one and inherits the host's settings.
	if w.User != "root" || w.Sudo || w.Port != 2222 || w.HostKeyPolicy != HostKeyAcceptNew {
		t.Errorf("w ssh = %+v", w)
	}
	if w.Bastion == nil || w.Bastion.Address != "jump.example.internal" || w.Bastion.Port != 22 || w.Bastion.User != "jumper" ||
		w.Bastion.HostKeyPolicy != HostKeyAcceptNew {
		t.Errorf("w bastion = %+v", w.Bastion)
	}
}

func TestKeyFilePermissions(t *testing.T) {
	for _, tc := range []struct {
		mode os.FileMode
		want string
	}{
		{0o600, ""},
		{0o400, ""},
		{0o640, "Private key file is readable by others"},
		{0o644, "Private key file is readable by others"},
	} {
		dir := writeConfig(t, map[string]string{"main.hcl": `
cluster "x" {}
ssh {
  private_key_file = "id"
}
host "cp" {
  address = "198.18.0.10"
  roles   = ["control-plane", "etcd", "worker"]
}
`})
		key := filepath.Join(dir, "id")
		if err := os.WriteFile(key, []byte("k"), tc.mode); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(key, tc.mode); err != nil { // umask must not decide the test
			t.Fatal(err)
		}
		_, diags := NewLoader().Load(Options{Path: dir})
		got := ""
		if len(diags) > 0 {
			got = diags[0].Summary
			if !strings.Contains(diags[0].Detail, "chmod 600 "+key) {
				t.Errorf("%#o: detail %q does not say how to fix it", tc.mode, diags[0].Detail)
			}
		}
		if got != tc.want || len(diags) > 1 {
			t.Errorf("mode %#o: diagnostics %v, want %q", tc.mode, diags, tc.want)
		}
	}
}

func TestHomeExpansion(t *testing.T) {
	home := t.TempDir()
	if err := os.WriteFile(filepath.Join(home, "id"), []byte("k"), 0o600); err != nil {
		t.Fatal(err)
	}
	dir := writeConfig(t, map[string]string{"main.hcl": `
cluster "x" {}
ssh { private_key_file = "~/id" }
host "cp" {
  address = "198.18.0.10"
  roles   = ["control-plane", "etcd", "worker"]
}
`})
	c := mustLoad(t, Options{Path: dir, Home: home})
	if got := c.Hosts[0].SSH.PrivateKeyFile; got != filepath.Join(home, "id") {
		t.Errorf("key = %s", got)
	}
}

func TestDefaults(t *testing.T) {
	c := mustLoad(t, Options{Path: writeConfig(t, map[string]string{"main.hcl": `
cluster "x" {}
host "cp" {
  address = "cp.example.internal"
  roles   = ["etcd", "control-plane", "worker", "etcd"]
}
`})})
	if c.KubernetesVersion.String() != DefaultKubernetesVersion || c.ClusterDomain != "cluster.local" ||
		c.PodCIDR.String() != "10.244.0.0/16" || c.ServiceCIDR.String() != "10.96.0.0/12" || c.NodePodCIDRSize != 24 ||
		c.APIServer.Port != 6443 || c.Kubelet.MaxPods != 110 || !c.Kubelet.FailCgroupV1 || c.KubeProxy.Mode != "iptables" ||
		c.SecretsEncryption != "secretbox" || c.Artifacts.Source != SourceDownload || c.APIEndpoint != nil {
		t.Errorf("defaults: %+v", c)
	}
	h := c.Hosts[0]
	if got := h.Roles; len(got) != 3 || got[0] != RoleControlPlane || got[1] != RoleEtcd || got[2] != RoleWorker {
		t.Errorf("roles = %v (want sorted, without duplicates)", got)
	}
	if h.SSH.User != "root" || h.SSH.Sudo || h.ClusterAddress() != "cp.example.internal" {
		t.Errorf("host = %+v", h)
	}
}

func TestAPIEndpointPortFollowsAPIServerPort(t *testing.T) {
	c := mustLoad(t, Options{Path: writeConfig(t, map[string]string{"main.hcl": `
cluster "x" {
  api_endpoint = "lb.example.internal"
  apiserver { port = 8443 }
}
host "cp" {
  address = "198.18.0.10"
  roles   = ["control-plane", "etcd", "worker"]
}
`})})
	if c.APIEndpoint.String() != "lb.example.internal:8443" {
		t.Errorf("endpoint = %s", c.APIEndpoint)
	}
}

func TestSyntaxErrorStopsBeforeDecoding(t *testing.T) {
	dir := writeConfig(t, map[string]string{"a.hcl": "cluster \"x\" {\n  pod_cidr = \n}\n", "b.hcl": "host {"})
	_, diags := NewLoader().Load(Options{Path: dir})
	if !diags.HasErrors() {
		t.Fatal("no error")
	}
	for _, d := range diags {
		if d.Subject == nil || (!strings.HasSuffix(d.Subject.Filename, "a.hcl") && !strings.HasSuffix(d.Subject.Filename, "b.hcl")) {
			t.Errorf("diagnostic without a file: %s", d)
		}
		if d.Summary == "Missing cluster block" || strings.Contains(d.Summary, "host") {
			t.Errorf("follow-on error after a syntax error: %s", d)
		}
	}
}

func TestMissingPath(t *testing.T) {
	_, diags := NewLoader().Load(Options{Path: filepath.Join(t.TempDir(), "nope")})
	if !diags.HasErrors() || !strings.Contains(diags.Error(), "no such file or directory") {
		t.Errorf("diags = %v", diags)
	}
	_, diags = NewLoader().Load(Options{Path: t.TempDir()})
	if !diags.HasErrors() || !strings.Contains(diags.Error(), "no *.hcl files") {
		t.Errorf("diags = %v", diags)
	}
}

func TestProviderHostsAreCheckedWithTheRest(t *testing.T) {
	dir := writeConfig(t, map[string]string{"main.hcl": `
cluster "x" {}
provider "lab" {
  name = "dev"
}
host "extra" {
  address = "198.18.0.50"
  roles   = ["worker"]
}
`})
	load := func() *Cluster {
		c, diags := NewLoader().Load(Options{Path: dir, Providers: []string{"lab"}})
		if diags.HasErrors() {
			t.Fatalf("load: %v", diags)
		}
		return c
	}
	c := load()
	if len(c.Providers) != 1 || c.Providers[0].EvalContext == nil {
		t.Fatalf("providers: %+v", c.Providers)
	}
	// The provider's hosts lack a control plane: reported at the provider block.
	diags := c.AddProviderHosts(map[string][]Host{"lab": {{Name: "h1", Address: "198.18.0.11", Roles: []Role{RoleWorker}}}})
	if len(diags) != 2 || diags[0].Summary != "No control-plane host" || diags[0].Subject.Start.Line != 2 {
		t.Errorf("diags = %v", diags)
	}
	// An address used twice across a provider and a host block.
	c = load()
	diags = c.AddProviderHosts(map[string][]Host{"lab": {
		{Name: "h1", Address: "198.18.0.11", Roles: []Role{RoleEtcd, RoleControlPlane}},
		{Name: "h2", Address: "198.18.0.50", Roles: []Role{RoleWorker}, SSH: SSH{Port: 22}},
	}})
	if len(diags) != 1 || diags[0].Summary != "Duplicate host address" || diags[0].Subject.Start.Line != 3 {
		t.Errorf("diags = %v", diags)
	}
	if got := c.Hosts[1].Roles; got[0] != RoleControlPlane {
		t.Errorf("roles not sorted: %v", got)
	}
}

func TestRegistryMirrors(t *testing.T) {
	c := mustLoad(t, Options{Path: writeConfig(t, map[string]string{"main.hcl": `
variable "mirror" {
  type    = string
  default = "http://198.18.0.1:5000/"
}
cluster "x" {
  containerd {
    registry_mirrors = {
      "registry.k8s.io"  = [var.mirror, "https://mirror.example"]
      "mirror.local:5000" = ["https://mirror.example:8443"]
      _default           = ["https://cache.example"]
    }
  }
}
host "cp" {
  address = "198.18.0.10"
  roles   = ["control-plane", "etcd", "worker"]
}
`})})
	got := c.Containerd.RegistryMirrors
	if len(got) != 3 || strings.Join(got["registry.k8s.io"], " ") != "http://198.18.0.1:5000 https://mirror.example" ||
		strings.Join(got["mirror.local:5000"], " ") != "https://mirror.example:8443" || strings.Join(got["_default"], " ") != "https://cache.example" {
		t.Errorf("registry mirrors (in order, trailing slash dropped): %q", got)
	}
	if c := mustLoad(t, Options{Path: writeConfig(t, map[string]string{"main.hcl": "cluster \"x\" {\n  containerd {}\n}\n" +
		"host \"cp\" {\n  address = \"198.18.0.10\"\n  roles = [\"control-plane\", \"etcd\", \"worker\"]\n}\n"})}); c.Containerd.RegistryMirrors != nil {
		t.Errorf("no registry_mirrors: %q, want nil", c.Containerd.RegistryMirrors)
	}
}

func TestEtcdSnapshots(t *testing.T) {
	load := func(block string) *Cluster {
		return mustLoad(t, Options{Path: writeConfig(t, map[string]string{"main.hcl": "cluster \"x\" {\n" + block + "\n}\n" +
			"host \"cp\" {\n  address = \"198.18.0.10\"\n  roles = [\"control-plane\", \"etcd\", \"worker\"]\n}\n"})})
	}
	if s := load("").Etcd.Snapshots; s != nil {
		t.Errorf("no snapshots block: %+v", s)
	}
	if s := load("etcd {\n  snapshots {}\n}"); s.Etcd.Snapshots == nil || *s.Etcd.Snapshots != (EtcdSnapshots{Schedule: "daily", Keep: 7, Dir: "/var/lib/etcd-snapshots"}) {
		t.Errorf("defaults: %+v", s.Etcd.Snapshots)
	}
	s := load("etcd {\n  snapshots {\n    schedule = \"*-*-* 02:30:00\"\n    keep = 30\n    dir = \"/srv/etcd-backups\"\n  }\n}").Etcd.Snapshots
	if *s != (EtcdSnapshots{Schedule: "*-*-* 02:30:00", Keep: 30, Dir: "/srv/etcd-backups"}) {
		t.Errorf("set: %+v", s)
	}
}

// TestSecurity: without a security block every CIS item kforge implements is on and nothing is relaxed; each
// relaxation is listed with the CIS item and where the configuration says it; bad values point at themselves.
func TestSecurity(t *testing.T) {
	load := func(block string) (*Cluster, hcl.Diagnostics) {
		return NewLoader().Load(Options{Path: writeConfig(t, map[string]string{"main.hcl": "cluster \"x\" {\n" + block + "\n}\n" +
			"host \"cp\" {\n  address = \"198.18.0.10\"\n  roles = [\"control-plane\", \"etcd\", \"worker\"]\n}\n"})})
	}
	c, diags := load("")
	if diags.HasErrors() {
		t.Fatal(diags)
	}
	if s := c.Security; s.PodSecurity != "baseline" || !s.AnonymousHealthChecks || s.Profiling || !s.ProtectKernelDefaults ||
		s.AuditLog != (AuditLog{Enabled: true, MaxAge: 30, MaxBackups: 10, MaxSize: 100}) || len(s.Relaxations()) != 0 {
		t.Errorf("defaults: %+v, relaxations %v", s, s.Relaxations())
	}
	c, diags = load(`  security {
    pod_security            = "privileged"
    profiling               = true
    protect_kernel_defaults = false
    anonymous_health_checks = false
    audit_log {
      max_age = 7
    }
  }`)
	if diags.HasErrors() {
		t.Fatal(diags)
	}
	var got []string
	for _, r := range c.Security.Relaxations() {
		got = append(got, r.String())
	}
	file := filepath.Join(c.Dir, "main.hcl")
	want := []string{
		`security pod_security relaxes CIS 5.2: namespaces without pod-security labels admit privileged pods (pod_security = "privileged") (` + file + `:3:31)`,
		`security profiling relaxes CIS 1.2.15, 1.3.2, 1.4.1: the API server, controller-manager and scheduler serve /debug/pprof (` + file + `:4:31)`,
		`security protect_kernel_defaults relaxes CIS 4.2.6: the kubelet changes kernel settings it disagrees with instead of refusing to start (` + file + `:5:31)`,
		`security audit_log relaxes CIS 1.2.17-1.2.19: the audit log keeps less than 30 days, 10 files of 100 MB (7, 10, 100) (` + file + `:8:17)`,
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("relaxations:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if c.Security.AnonymousHealthChecks {
		t.Error("anonymous_health_checks = false (stricter, no warning) was not taken")
	}
	c, _ = load("  security {\n    audit_log {\n      enabled = false\n    }\n  }")
	if r := c.Security.Relaxations(); len(r) != 1 || r[0].Setting != "audit_log" || r[0].Item != "1.2.16, 3.2.1" || r[0].Range.Start.Line != 4 {
		t.Errorf("audit log off: %+v", r)
	}
	for block, want := range map[string]string{
		"  security {\n    pod_security = \"strict\"\n  }":              `main.hcl:3,20-28: Invalid pod_security; pod_security must be one of "privileged", "baseline", "restricted", not "strict".`,
		"  security {\n    audit_log {\n      max_size = 0\n    }\n  }": `main.hcl:4,18-19: Invalid audit_log max_size; max_size must be at least 1, not 0`,
	} {
		if _, diags := load(block); !diags.HasErrors() || !strings.Contains(diags.Error(), want) {
			t.Errorf("%s: %v, want %s", block, diags, want)
		}
	}
}

// TestNetworkPlugin: routes unless the configuration names a plugin; a misspelt one points at itself and
// suggests the nearest.
func TestNetworkPlugin(t *testing.T) {
	load := func(block string) (*Cluster, hcl.Diagnostics) {
		return NewLoader().Load(Options{Path: writeConfig(t, map[string]string{"main.hcl": "cluster \"x\" {\n" + block + "\n}\n" +
			"host \"cp\" {\n  address = \"198.18.0.10\"\n  roles = [\"control-plane\", \"etcd\", \"worker\"]\n}\n"})})
	}
	for block, want := range map[string]string{"": "routes", "network {}": "routes", "network {\n  plugin = \"flannel\"\n}": "flannel",
		"network {\n  plugin = \"kube-router\"\n}": "kube-router"} {
		c, diags := load(block)
		if diags.HasErrors() {
			t.Fatalf("%q: %v", block, diags)
		}
		if c.Network.Plugin != want {
			t.Errorf("%q: plugin %q, want %q", block, c.Network.Plugin, want)
		}
		if c.Network.RoutesItself() != (want != "routes") {
			t.Errorf("%q: routes itself %v", block, c.Network.RoutesItself())
		}
	}
	_, diags := load("network {\n  plugin = \"flanel\"\n}")
	if len(diags) != 1 || diags[0].Summary != "Invalid network plugin" || diags[0].Subject.Start.Line != 3 || diags[0].Subject.Start.Column != 12 ||
		!strings.Contains(diags[0].Detail, `"routes", "flannel"`) || !strings.Contains(diags[0].Detail, `"flannel"?`) {
		t.Errorf("misspelt plugin: %v", diags)
	}
}
