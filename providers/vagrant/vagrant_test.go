package vagrant

import (
	"context"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hclsyntax"

	"github.com/kforge/kforge/config"
	"github.com/kforge/kforge/config/funcs"
	"github.com/kforge/kforge/providers"
)

// parseProvider parses src as the file filename and returns its provider block as config.Load would.
func parseProvider(t *testing.T, filename, src string) config.Provider {
	t.Helper()
	f, diags := hclsyntax.ParseConfig([]byte(src), filename, hcl.InitialPos)
	if diags.HasErrors() {
		t.Fatalf("parse: %s", diags.Error())
	}
	content, diags := f.Body.Content(&hcl.BodySchema{Blocks: []hcl.BlockHeaderSchema{{Type: "provider", LabelNames: []string{"name"}}}})
	if diags.HasErrors() || len(content.Blocks) != 1 {
		t.Fatalf("want one provider block: %s", diags.Error())
	}
	b := content.Blocks[0]
	dir, err := filepath.Abs(filepath.Dir(filename))
	if err != nil {
		t.Fatal(err)
	}
	home, _ := os.UserHomeDir()
	return config.Provider{Name: b.Labels[0], Body: b.Body, DeclRange: b.DefRange, Paths: funcs.Paths{Dir: dir, Home: home}}
}

// summaries lists diagnostics as "summary@line" so that tests compare what and where in one go.
func summaries(diags hcl.Diagnostics) []string {
	var out []string
	for _, d := range diags {
		line := 0
		if d.Subject != nil {
			line = d.Subject.Start.Line
		}
		out = append(out, fmt.Sprintf("%s@%d", d.Summary, line))
	}
	return out
}

// standIn puts an executable named vagrant with the given sh script first on PATH.
func standIn(t *testing.T, script string) {
	t.Helper()
	bin := t.TempDir()
	writeFile(t, filepath.Join(bin, "vagrant"), "#!/bin/sh\n"+script, 0o755)
	t.Setenv("PATH", bin+":"+os.Getenv("PATH"))
}

func writeFile(t *testing.T, path, content string, mode os.FileMode) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(content), mode); err != nil {
		t.Fatal(err)
	}
}

func TestValidate(t *testing.T) {
	const ok = `
provider "vagrant" {
  host "cp" {
    roles            = ["control-plane", "etcd"]
    internal_address = "192.168.56.11"
  }
}
`
	tests := []struct {
		name, src string
		want      []string
	}{
		{"valid", ok, nil},
		{"every attribute", `
provider "vagrant" {
  dir     = "../vms"
  vagrant = "/opt/vagrant/bin/vagrant"
  host "cp" {
    roles            = ["control-plane", "etcd", "worker"]
    internal_address = "192.168.56.11"
    labels           = { zone = "a" }
    taints           = ["dedicated=infra:NoSchedule"]
  }
}
`, nil},
		{"no host blocks", `
provider "vagrant" {
  dir = "."
}
`, []string{"No machines@2"}},
		{"missing internal_address", `
provider "vagrant" {
  host "cp" {
    roles = ["control-plane", "etcd"]
  }
}
`, []string{"Missing internal_address@3"}},
		{"unknown role", `
provider "vagrant" {
  host "cp" {
    roles            = ["control-plane", "etdc"]
    internal_address = "192.168.56.11"
  }
}
`, []string{"Unknown role@4"}},
		{"invalid internal address", `
provider "vagrant" {
  host "cp" {
    roles            = ["control-plane", "etcd"]
    internal_address = "192.168.56"
  }
}
`, []string{"Invalid internal address@5"}},
		{"machine name that is no node name", `
provider "vagrant" {
  host "Worker_1" {
    roles            = ["worker"]
    internal_address = "192.168.56.21"
  }
}
`, []string{"Invalid host name@3"}},
		{"duplicate host", ok[:len(ok)-3] + `
  host "cp" {
    roles            = ["worker"]
    internal_address = "192.168.56.12"
  }
}
`, []string{"Duplicate host block@7"}},
		{"empty dir and command", `
provider "vagrant" {
  dir     = ""
  vagrant = ""
  host "cp" {
    roles            = ["control-plane", "etcd"]
    internal_address = "192.168.56.11"
  }
}
`, []string{"Empty dir@3", "Empty vagrant command@4"}},
		{"unknown attribute", `
provider "vagrant" {
  box = "debian/bookworm64"
  host "cp" {
    roles            = ["control-plane", "etcd"]
    internal_address = "192.168.56.11"
  }
}
`, []string{"Unsupported argument@3"}},
		{"host without roles", `
provider "vagrant" {
  host "cp" {
    internal_address = "192.168.56.11"
  }
}
`, []string{"Missing required argument@3"}},
	}
	// Validate must not run vagrant: this one would leave a mark.
	mark := filepath.Join(t.TempDir(), "ran")
	standIn(t, "touch "+mark+"\n")
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			diags := Provider{}.Validate(parseProvider(t, "/srv/lab/cluster.hcl", tt.src))
			if got := summaries(diags); !reflect.DeepEqual(got, tt.want) {
				t.Errorf("diagnostics %q, want %q\n%s", got, tt.want, diags.Error())
			}
		})
	}
	if _, err := os.Stat(mark); err == nil {
		t.Error("Validate ran vagrant")
	}
}

// project is a Vagrant project laid out as the three-machines fixture describes it, under a stand-in home.
type project struct {
	home, dir, stateDir string
	output              string // what `vagrant ssh-config` prints for it
}

const (
	cpID      = "3f6c0e52-9d1b-4a7e-8f21-6b0c5d7e9a14"
	worker1ID = "b8e2a7d4-1c39-4f6e-a0d5-92e7c4b1f380"
)

func newProject(t *testing.T) project {
	t.Helper()
	home := t.TempDir()
	p := project{home: home, dir: filepath.Join(home, "cluster"), stateDir: filepath.Join(home, "state")}
	fixture, err := os.ReadFile(filepath.Join("testdata", "three-machines.txt"))
	if err != nil {
		t.Fatal(err)
	}
	p.output = strings.ReplaceAll(string(fixture), "/home/ana", home)
	writeFile(t, filepath.Join(p.dir, "Vagrantfile"), "# the machines are stood in for\n", 0o644)
	// worker-2's own key is missing (the fixture lists it first), so its first existing key is the ed25519 one.
	for _, key := range []string{
		"cluster/.vagrant/machines/cp/virtualbox/private_key",
		"cluster/.vagrant/machines/worker-1/virtualbox/private_key",
		".vagrant.d/insecure_private_keys/vagrant.key.ed25519",
		".vagrant.d/insecure_private_keys/vagrant.key.rsa",
	} {
		writeFile(t, filepath.Join(home, key), "not a real key\n", 0o600)
	}
	writeFile(t, filepath.Join(p.dir, ".vagrant/machines/cp/virtualbox/id"), cpID, 0o644)
	writeFile(t, filepath.Join(p.dir, ".vagrant/machines/worker-1/virtualbox/id"), worker1ID+"\n", 0o644)
	// worker-2 has been created by no provider yet: no id, so its name stands in.
	if err := os.MkdirAll(filepath.Join(p.dir, ".vagrant/machines/worker-2/virtualbox"), 0o755); err != nil {
		t.Fatal(err)
	}
	return p
}

// script is a stand-in for vagrant that checks it is asked for args in dir and then prints out.
func script(args, dir, out string, t *testing.T) string {
	outFile := filepath.Join(t.TempDir(), "ssh-config.out")
	writeFile(t, outFile, out, 0o644)
	return fmt.Sprintf(`if [ "$*" != %q ]; then echo "stand-in: called with: $*" >&2; exit 2; fi
if [ "$(pwd -P)" != %q ] || [ "$VAGRANT_CWD" != %q ]; then echo "stand-in: run in $(pwd -P), VAGRANT_CWD=$VAGRANT_CWD" >&2; exit 2; fi
cat %q
`, args, dir, dir, outFile)
}

const threeMachines = `
provider "vagrant" {
  dir = "../cluster"

  host "cp" {
    roles            = ["worker", "etcd", "control-plane"]
    internal_address = "192.168.56.11"
    labels           = { tier = "control" }
    taints           = ["node-role.kubernetes.io/control-plane:NoSchedule"]
  }

  host "worker-1" {
    roles            = ["worker"]
    internal_address = "192.168.56.21"
  }

  host "worker-2" {
    roles            = ["worker"]
    internal_address = "192.168.56.22"
  }
}
`

func TestHosts(t *testing.T) {
	p := newProject(t)
	standIn(t, script("ssh-config cp worker-1 worker-2", p.dir, p.output, t))
	block := parseProvider(t, filepath.Join(p.home, "kforge", "cluster.hcl"), threeMachines)

	hosts, diags := Provider{}.Hosts(context.Background(), block, providers.Env{StateDir: p.stateDir})
	if diags.HasErrors() || len(diags) > 0 {
		t.Fatalf("diagnostics: %s", diags.Error())
	}
	sshFor := func(port int, key, id string) config.SSH {
		return config.SSH{
			User:           "vagrant",
			Port:           port,
			PrivateKeyFile: filepath.Join(p.home, key),
			UseAgent:       false,
			KnownHostsFile: filepath.Join(p.stateDir, "vagrant", id+".known_hosts"),
			HostKeyPolicy:  config.HostKeyAcceptNew,
			Sudo:           true,
			ConnectTimeout: 10 * time.Second,
		}
	}
	want := []config.Host{
		{
			Name:            "cp",
			Address:         "127.0.0.1",
			InternalAddress: netip.MustParseAddr("192.168.56.11"),
			Roles:           []config.Role{config.RoleControlPlane, config.RoleEtcd, config.RoleWorker},
			Labels:          map[string]string{"tier": "control"},
			Taints:          []config.Taint{{Key: "node-role.kubernetes.io/control-plane", Effect: "NoSchedule"}},
			SSH:             sshFor(2222, "cluster/.vagrant/machines/cp/virtualbox/private_key", cpID),
		},
		{
			Name:            "worker-1",
			Address:         "127.0.0.1",
			InternalAddress: netip.MustParseAddr("192.168.56.21"),
			Roles:           []config.Role{config.RoleWorker},
			SSH:             sshFor(2200, "cluster/.vagrant/machines/worker-1/virtualbox/private_key", worker1ID),
		},
		{
			Name:            "worker-2",
			Address:         "127.0.0.1",
			InternalAddress: netip.MustParseAddr("192.168.56.22"),
			Roles:           []config.Role{config.RoleWorker},
			SSH:             sshFor(2201, ".vagrant.d/insecure_private_keys/vagrant.key.ed25519", "worker-2"),
		},
	}
	wantLines := []int{5, 12, 17}
	if len(hosts) != len(want) {
		t.Fatalf("got %d hosts, want %d: %+v", len(hosts), len(want), hosts)
	}
	for i := range hosts {
		if got := hosts[i].DeclRange.Start.Line; got != wantLines[i] {
			t.Errorf("host %s points at line %d, want its host block at %d", hosts[i].Name, got, wantLines[i])
		}
		hosts[i].DeclRange = hcl.Range{}
		if !reflect.DeepEqual(hosts[i], want[i]) {
			t.Errorf("host %d:\n got %+v\nwant %+v", i, hosts[i], want[i])
		}
	}
}

// TestHostsDefaults leaves dir out (the configuration's directory) and names vagrant by a relative path, with
// no vagrant on PATH.
func TestHostsDefaults(t *testing.T) {
	p := newProject(t)
	bin := t.TempDir()
	t.Setenv("PATH", bin)
	tools := filepath.Join(p.dir, "tools")
	key := filepath.Join(p.dir, ".vagrant/machines/cp/virtualbox/private_key")
	// Nothing but the shell's builtins can run on this PATH, so the stand-in prints with printf.
	writeFile(t, filepath.Join(tools, "vagrant"), fmt.Sprintf(`#!/bin/sh
[ "$*" = "ssh-config cp" ] && [ "$(pwd -P)" = '%s' ] || exit 2
printf '%%s\n' 'Host cp' '  HostName 127.0.0.1' '  User root' '  Port 2222' '  IdentityFile %s'
`, p.dir, key), 0o755)
	block := parseProvider(t, filepath.Join(p.dir, "cluster.hcl"), `
provider "vagrant" {
  vagrant = "tools/vagrant"
  host "cp" {
    roles            = ["control-plane", "etcd", "worker"]
    internal_address = "192.168.56.11"
  }
}
`)
	hosts, diags := Provider{}.Hosts(context.Background(), block, providers.Env{StateDir: p.stateDir})
	if len(diags) > 0 {
		t.Fatalf("diagnostics: %s", diags.Error())
	}
	if len(hosts) != 1 {
		t.Fatalf("hosts: %+v", hosts)
	}
	s := hosts[0].SSH
	if s.User != "root" || s.Sudo || s.Port != 2222 || s.KnownHostsFile != filepath.Join(p.stateDir, "vagrant", cpID+".known_hosts") {
		t.Errorf("ssh settings: %+v", s)
	}
}

func TestHostsErrors(t *testing.T) {
	p := newProject(t)
	configFile := filepath.Join(p.home, "kforge", "cluster.hcl")
	const args = "ssh-config cp worker-1 worker-2"
	// without removes machine name's section from the three-machine output.
	without := func(name string) string {
		i := strings.Index(p.output, "Host "+name+"\n")
		j := strings.Index(p.output[i+1:], "\nHost ")
		if j < 0 {
			return p.output[:i]
		}
		return p.output[:i] + p.output[i+j+2:]
	}
	tests := []struct {
		name     string
		script   string // "" means no vagrant on PATH
		src      string
		timeout  time.Duration
		want     []string
		inDetail []string
	}{
		{
			name:     "vagrant not installed",
			src:      threeMachines,
			want:     []string{"Vagrant not found@2"},
			inDetail: []string{"no vagrant on PATH (executable file not found in $PATH). Install Vagrant", `vagrant = "/path/to/vagrant"`},
		},
		{
			name:     "vagrant path does not exist",
			src:      strings.Replace(threeMachines, `dir = "../cluster"`, `dir = "../cluster"`+"\n  vagrant = \"/opt/nowhere/vagrant\"", 1),
			want:     []string{"Vagrant not found@4"},
			inDetail: []string{"/opt/nowhere/vagrant is not an executable (stat /opt/nowhere/vagrant: no such file or directory)"},
		},
		{
			name: "machines not created",
			script: `echo "Bringing up nothing." 
echo "Machine 'worker-2' has not been created for this project yet; create it first." >&2
exit 1
`,
			src:  threeMachines,
			want: []string{"vagrant ssh-config failed@2"},
			inDetail: []string{
				"Machine 'worker-2' has not been created for this project yet; create it first.",
				"exit status 1", "run `vagrant up cp worker-1 worker-2`", p.dir,
			},
		},
		{
			name:     "machine missing from the output",
			script:   script(args, p.dir, without("worker-1"), t),
			src:      threeMachines,
			want:     []string{"Machine missing from vagrant ssh-config@12"},
			inDetail: []string{`machine "worker-1"`},
		},
		{
			name:     "machine without port",
			script:   script(args, p.dir, strings.Replace(p.output, "  Port 2200\n", "", 1), t),
			src:      threeMachines,
			want:     []string{"Incomplete vagrant ssh-config@12"},
			inDetail: []string{"no Port", "line 14"},
		},
		{
			name:     "machine without address, user and key",
			script:   script(args, p.dir, "Host cp\n  Port 2222\n"+without("cp"), t),
			src:      threeMachines,
			want:     []string{"Incomplete vagrant ssh-config@5"},
			inDetail: []string{"no HostName, User or IdentityFile"},
		},
		{
			name:     "proxy command",
			script:   script(args, p.dir, strings.Replace(p.output, "  Port 2201\n", "  Port 2201\n  ProxyCommand vagrant-ssm-proxy worker-2\n", 1), t),
			src:      threeMachines,
			want:     []string{"ProxyCommand not supported@17"},
			inDetail: []string{"ProxyCommand `vagrant-ssm-proxy worker-2`", "does not run proxy commands"},
		},
		{
			name:     "no key exists",
			script:   script(args, p.dir, strings.ReplaceAll(p.output, "/insecure_private_keys/", "/gone/"), t),
			src:      threeMachines,
			want:     []string{"No private key for machine@17"},
			inDetail: []string{filepath.Join(p.home, ".vagrant.d/gone/vagrant.key.rsa")},
		},
		{
			name:     "unreadable output",
			script:   script(args, p.dir, strings.Replace(p.output, "Port 2222", "Port twenty-two", 1), t),
			src:      threeMachines,
			want:     []string{"Unreadable vagrant ssh-config output@2"},
			inDetail: []string{`line 4: port "twenty-two" is not a number from 1 to 65535`},
		},
		{
			name:     "dir does not exist",
			script:   script(args, p.dir, p.output, t),
			src:      strings.Replace(threeMachines, "../cluster", "../clutser", 1),
			want:     []string{"Vagrant directory not found@3"},
			inDetail: []string{filepath.Join(p.home, "clutser")},
		},
		{
			name:     "vagrant hangs",
			script:   "exec sleep 30\n",
			src:      threeMachines,
			timeout:  200 * time.Millisecond,
			want:     []string{"vagrant ssh-config did not finish@2"},
			inDetail: []string{"did not finish within 200ms"},
		},
		{
			name:   "block mistakes stop before vagrant runs",
			script: "exit 3\n",
			src: `
provider "vagrant" {
  host "cp" {
    roles = ["control-plane", "etcd"]
  }
}
`,
			want: []string{"Missing internal_address@3"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.script == "" {
				t.Setenv("PATH", t.TempDir())
			} else {
				standIn(t, tt.script)
			}
			start := time.Now()
			hosts, diags := Provider{Timeout: tt.timeout}.Hosts(context.Background(), parseProvider(t, configFile, tt.src), providers.Env{StateDir: p.stateDir})
			if hosts != nil {
				t.Errorf("hosts = %+v, want none", hosts)
			}
			if got := summaries(diags); !reflect.DeepEqual(got, tt.want) {
				t.Fatalf("diagnostics %q, want %q\n%s", got, tt.want, diags.Error())
			}
			for _, s := range tt.inDetail {
				if !strings.Contains(diags[0].Detail, s) {
					t.Errorf("detail lacks %q:\n%s", s, diags[0].Detail)
				}
			}
			if elapsed := time.Since(start); elapsed > 10*time.Second {
				t.Errorf("took %s", elapsed)
			}
		})
	}
}

func TestMachineID(t *testing.T) {
	dot := filepath.Join(t.TempDir(), ".vagrant")
	writeFile(t, filepath.Join(dot, "machines/a/libvirt/id"), "", 0o644)                 // destroyed under libvirt
	writeFile(t, filepath.Join(dot, "machines/a/virtualbox/id"), " 0c9d-e1 \n", 0o644)   // created under virtualbox
	writeFile(t, filepath.Join(dot, "machines/b/virtualbox/id"), "../../etc/x\n", 0o644) // not a file name
	writeFile(t, filepath.Join(dot, "machines/c/virtualbox/private_key"), "k", 0o600)
	for name, want := range map[string]string{"a": "0c9d-e1", "b": "b", "c": "c", "d": "d"} {
		if got := machineID(dot, name); got != want {
			t.Errorf("machineID(%q) = %q, want %q", name, got, want)
		}
	}
}

func TestVagrantRoot(t *testing.T) {
	root := t.TempDir()
	writeFile(t, filepath.Join(root, "lab", "Vagrantfile"), "", 0o644)
	sub := filepath.Join(root, "lab", "sub", "deeper")
	if err := os.MkdirAll(sub, 0o755); err != nil {
		t.Fatal(err)
	}
	if got := vagrantRoot(sub); got != filepath.Join(root, "lab") {
		t.Errorf("vagrantRoot(%s) = %s, want the directory with the Vagrantfile", sub, got)
	}
	if got := vagrantRoot(root); got != root {
		t.Errorf("vagrantRoot without a Vagrantfile = %s, want %s", got, root)
	}
}

// TestExample loads examples/vagrant as kforge does and resolves its hosts through a stand-in vagrant, so the
// example cannot drift from what the provider accepts.
func TestExample(t *testing.T) {
	dir, err := filepath.Abs(filepath.Join("..", "..", "examples", "vagrant"))
	if err != nil {
		t.Fatal(err)
	}
	c, diags := config.NewLoader().Load(config.Options{Path: dir, Providers: []string{"vagrant"}})
	if diags.HasErrors() {
		t.Fatalf("load: %s", diags.Error())
	}
	reg := providers.Registry{"vagrant": Provider{}}
	if diags := reg.Validate(c); len(diags) > 0 {
		t.Fatalf("validate: %s", diags.Error())
	}

	home := t.TempDir()
	var out strings.Builder
	ports := map[string]int{"cp": 2222, "worker-1": 2200, "worker-2": 2201}
	for _, name := range []string{"cp", "worker-1", "worker-2"} {
		key := filepath.Join(home, name, "private_key")
		writeFile(t, key, "not a real key\n", 0o600)
		fmt.Fprintf(&out, "Host %s\n  HostName 127.0.0.1\n  User vagrant\n  Port %d\n  IdentityFile %s\n  IdentitiesOnly yes\n\n", name, ports[name], key)
	}
	standIn(t, script("ssh-config cp worker-1 worker-2", dir, out.String(), t))
	stateDir := filepath.Join(home, "state")
	if diags := reg.Resolve(context.Background(), c, providers.Env{StateDir: stateDir}); len(diags) > 0 {
		t.Fatalf("resolve: %s", diags.Error())
	}
	var got []string
	for _, h := range c.Hosts {
		got = append(got, fmt.Sprintf("%s %s:%d %s %v %s", h.Name, h.Address, h.SSH.Port, h.ClusterAddress(), h.Roles, filepath.Dir(h.SSH.KnownHostsFile)))
	}
	known := filepath.Join(stateDir, "vagrant")
	want := []string{
		"cp 127.0.0.1:2222 192.168.56.11 [control-plane etcd] " + known,
		"worker-1 127.0.0.1:2200 192.168.56.21 [worker] " + known,
		"worker-2 127.0.0.1:2201 192.168.56.22 [worker] " + known,
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("hosts:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}
