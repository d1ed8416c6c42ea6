package bench

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/kforge/kforge/bench/hosts"
	"github.com/kforge/kforge/config"
	"github.com/kforge/kforge/provision/apply"
	"github.com/kforge/kforge/provision/backend"
	"github.com/kforge/kforge/provision/planner"
	"github.com/kforge/kforge/provision/remote"
	"github.com/kforge/kforge/provision/resource"
	"github.com/kforge/kforge/provision/ssh"
	"github.com/kforge/kforge/provision/state"
)

// hostRows: a plan (facts + refresh) on 1, 10, 50 and 100 cheap hosts beside `ansible -m setup` on the same
// hosts, and pushing 20 files (19 configs and a 50 MiB binary) to 10 and 50 hosts beside an Ansible playbook of
// copy tasks, then the no-op re-run of each.
func hostRows(t *testing.T, bin string, planOn, pushOn bool) []Row {
	ctx := context.Background()
	set, err := hosts.Up(ctx, hosts.Options{Name: "kfb", Count: 100})
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		if err := set.Down(); err != nil {
			t.Error(err)
		}
	}()
	var rows []Row
	if planOn {
		for _, n := range []int{1, 10, 50, 100} {
			rows = append(rows, planRow(t, bin, set, n))
		}
	}
	if pushOn {
		payload := files(t)
		for _, n := range []int{10, 50} {
			rows = append(rows, pushRows(t, set, n, payload)...)
		}
	}
	return rows
}

// sessions counts the SSH sessions (one per command or file transfer: a round trip) each host's sshd has
// started so far, from its log.
func sessions(t *testing.T, set *hosts.Set, n int) int {
	t.Helper()
	total := 0
	for _, h := range set.Hosts[:n] {
		data, err := os.ReadFile(filepath.Join(filepath.Dir(h.Root), "sshd.log"))
		if err != nil {
			t.Fatal(err)
		}
		total += strings.Count(string(data), "Starting session:")
	}
	return total
}

// planRow applies a configuration without components (PKI files and host settings) to the first n hosts once,
// then times a plan that finds nothing to do, and Ansible gathering facts on the same hosts.
func planRow(t *testing.T, bin string, set *hosts.Set, n int) Row {
	dir := t.TempDir()
	src := "cluster \"bench\" {\n  pod_cidr     = \"198.19.0.0/16\"\n  service_cidr = \"198.18.240.0/20\"\n  node_pod_cidr_size = 26\n}\n\nartifacts {\n  source = \"none\"\n}\n"
	for i, h := range set.Hosts[:n] {
		roles := `["worker"]`
		if i == 0 {
			roles = `["control-plane", "etcd"]`
			if n == 1 {
				roles = `["control-plane", "etcd", "worker"]`
			}
		}
		src += fmt.Sprintf("\nhost %q {\n  address = %q\n  roles   = %s\n  ssh {\n    user             = \"root\"\n    private_key_file = %q\n    known_hosts_file = %q\n    host_key_policy  = \"strict\"\n  }\n}\n",
			h.Name, h.Address, roles, set.KeyFile, set.KnownHostsFile)
	}
	if err := os.WriteFile(filepath.Join(dir, "cluster.hcl"), []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	ignore := "--ignore-preflight=" + strings.Join(preflightErrors(t, bin, dir), ",")
	timed(t, nil, bin, "-c", dir, "apply", "--auto-approve", ignore)
	before := sessions(t, set, n)
	plan := timed(t, nil, bin, "-c", dir, "plan", "--detailed-exitcode", ignore)
	perHost := float64(sessions(t, set, n)-before) / float64(n)
	ansible := timed(t, ansibleEnv(t), "ansible", "all", "-i", inventory(t, set, n), "-m", "setup", "--forks", fmt.Sprint(n))
	row := Row{Section: "no-op plan (facts + refresh)", Case: plural(n, "host"), Kforge: plan.took, Other: ansible.took,
		Notes:  fmt.Sprintf("%.1f SSH round trips per host; kforge %s peak RSS, Ansible (-m setup) %s", perHost, mib(plan.peakRSS), mib(ansible.peakRSS)),
		Target: "≤ 2 round trips per host", Met: Met(perHost <= 2)}
	if n == 100 {
		row.Target += "; ≤ 1/10 of Ansible's time"
		row.Met = Met(perHost <= 2 && row.Ratio() <= 0.1)
	}
	return row
}

// preflightErrors are the checks that fail on bench hosts (no systemd, no kubelet prerequisites): a plan there
// must ignore them, as a user would with --ignore-preflight.
func preflightErrors(t *testing.T, bin, dir string) []string {
	t.Helper()
	r, _ := timedAllowFail(nil, bin, "-c", dir, "preflight", "--json")
	var doc struct {
		Findings []struct{ ID, Severity string }
	}
	if err := json.Unmarshal([]byte(r.stdout), &doc); err != nil {
		t.Fatalf("preflight --json: %v\n%s%s", err, r.stdout, r.stderr)
	}
	seen := map[string]bool{}
	var ids []string
	for _, f := range doc.Findings {
		if f.Severity == "error" && !seen[f.ID] {
			seen[f.ID] = true
			ids = append(ids, f.ID)
		}
	}
	if len(ids) == 0 {
		ids = []string{"none"}
	}
	return ids
}

// inventory lists the first n hosts for Ansible, reached as kforge reaches them: root, the set's key, its
// known_hosts checked strictly.
func inventory(t *testing.T, set *hosts.Set, n int) string {
	t.Helper()
	var b strings.Builder
	b.WriteString("[bench]\n")
	for _, h := range set.Hosts[:n] {
		fmt.Fprintf(&b, "%s ansible_host=%s\n", h.Name, h.Address)
	}
	fmt.Fprintf(&b, "\n[bench:vars]\nansible_user=root\nansible_ssh_private_key_file=%s\nansible_python_interpreter=/usr/bin/python3\n"+
		"ansible_ssh_common_args='-o UserKnownHostsFile=%s -o StrictHostKeyChecking=yes'\n", set.KeyFile, set.KnownHostsFile)
	path := filepath.Join(t.TempDir(), "inventory.ini")
	if err := os.WriteFile(path, []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// ansibleEnv is Ansible as installed, with its control sockets and temporary files in the test's own
// directories (its ssh connection masters end with the hosts).
func ansibleEnv(t *testing.T) []string {
	dir := t.TempDir()
	return []string{"ANSIBLE_HOST_KEY_CHECKING=True", "ANSIBLE_SSH_CONTROL_PATH_DIR=" + filepath.Join(dir, "cp"),
		"ANSIBLE_LOCAL_TEMP=" + filepath.Join(dir, "tmp"), "ANSIBLE_NOCOLOR=1", "ANSIBLE_DEPRECATION_WARNINGS=False"}
}

// payload is the 20 files both tools push: 19 configs of a few KiB and a 50 MiB binary.
type payload struct {
	dir   string
	names []string
}

func files(t *testing.T) payload {
	t.Helper()
	p := payload{dir: t.TempDir()}
	for i := range 19 {
		name := fmt.Sprintf("config-%02d.yaml", i)
		content := strings.Repeat(fmt.Sprintf("key%02d: value of config %d\n", i, i), 100)
		if err := os.WriteFile(filepath.Join(p.dir, name), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
		p.names = append(p.names, name)
	}
	bin := make([]byte, 50<<20)
	if _, err := rand.Read(bin); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(p.dir, "component"), bin, 0o755); err != nil {
		t.Fatal(err)
	}
	p.names = append(p.names, "component")
	return p
}

// resources are the payload as kforge resources under dest.
func (p payload) resources(t *testing.T, dest string) []resource.Resource {
	t.Helper()
	rs := []resource.Resource{{Kind: resource.Directory, Name: dest, Mode: 0o755}}
	for _, name := range p.names {
		path := filepath.Join(p.dir, name)
		data, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		sum := sha256.Sum256(data)
		r := resource.Resource{Kind: resource.File, Name: dest + "/" + name, SHA256: hex.EncodeToString(sum[:]), Size: int64(len(data)), Mode: 0o644}
		if name == "component" {
			r.Kind, r.Mode, r.Version = resource.Binary, 0o755, "component v1"
			r.Open = func() (io.ReadCloser, error) { return os.Open(path) }
		} else {
			r.Content = data
		}
		rs = append(rs, r)
	}
	return rs
}

// pushRows pushes the payload to the first n hosts with kforge's engine (refresh, plan, apply) and with an Ansible
// playbook, then re-runs both when there is nothing to do.
func pushRows(t *testing.T, set *hosts.Set, n int, p payload) []Row {
	ctx := context.Background()
	d := &ssh.Dialer{KnownHostsFile: set.KnownHostsFile}
	in := planner.Input{Cluster: "bench", Desired: map[string][]resource.Resource{}, Runners: map[string]remote.Runner{}, Parallelism: n}
	var clients []*ssh.Client
	start := time.Now()
	for _, h := range set.Hosts[:n] {
		c, err := d.Dial(ctx, ssh.Target{Name: h.Name, Address: h.Address.String(), Port: 22, User: "root",
			PrivateKeyFile: set.KeyFile, KnownHostsFile: set.KnownHostsFile, HostKeyPolicy: config.HostKeyStrict})
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		clients = append(clients, c)
		in.Hosts = append(in.Hosts, h.Name)
		in.Runners[h.Name] = c
		in.Desired[h.Name] = p.resources(t, "/srv/kforge-bench")
	}
	stateDir := t.TempDir()
	in.State, _ = state.Load(stateDir)
	engine := &apply.Engine{Runners: in.Runners, State: in.State, Store: &backend.Local{Dir: stateDir}, Parallelism: n}
	push := func() (time.Duration, int) {
		var before int64
		for _, c := range clients {
			before += c.Sessions()
		}
		start := time.Now()
		pl, err := planner.Make(ctx, in)
		if err != nil {
			t.Fatal(err)
		}
		if err := engine.Apply(ctx, pl, in.Desired); err != nil {
			t.Fatal(err)
		}
		took := time.Since(start)
		var after int64
		for _, c := range clients {
			after += c.Sessions()
		}
		return took, int(after - before)
	}
	connect := time.Since(start)
	first, firstSessions := push()
	again, againSessions := push()
	first += connect // connecting is part of the work, as it is for Ansible
	again += connect

	playbook := filepath.Join(t.TempDir(), "push.yaml")
	var items strings.Builder
	for _, name := range p.names {
		mode := "0644"
		if name == "component" {
			mode = "0755"
		}
		fmt.Fprintf(&items, "        - {name: %s, mode: \"%s\"}\n", name, mode)
	}
	book := fmt.Sprintf("- hosts: all\n  gather_facts: false\n  tasks:\n    - file: {path: /srv/ansible-bench, state: directory, mode: \"0755\"}\n"+
		"    - copy: {src: \"%s/{{ item.name }}\", dest: \"/srv/ansible-bench/{{ item.name }}\", mode: \"{{ item.mode }}\"}\n      loop:\n%s", p.dir, items.String())
	if err := os.WriteFile(playbook, []byte(book), 0o644); err != nil {
		t.Fatal(err)
	}
	inv, env := inventory(t, set, n), ansibleEnv(t)
	ansibleFirst := timed(t, env, "ansible-playbook", "-i", inv, "--forks", fmt.Sprint(n), playbook)
	ansibleAgain := timed(t, env, "ansible-playbook", "-i", inv, "--forks", fmt.Sprint(n), playbook)
	if !strings.Contains(ansibleAgain.stdout, "changed=0") {
		t.Errorf("Ansible's re-run changed something:\n%s", tail(ansibleAgain.stdout, 5))
	}
	return []Row{
		{Section: "push 20 files (19 configs, 50 MiB binary)", Case: fmt.Sprintf("%d hosts", n), Kforge: first, Other: ansibleFirst.took,
			Notes: fmt.Sprintf("kforge: %.1f SSH round trips per host", float64(firstSessions)/float64(n))},
		{Section: "push 20 files (19 configs, 50 MiB binary)", Case: fmt.Sprintf("no-op re-run, %d hosts", n), Kforge: again, Other: ansibleAgain.took,
			Notes: fmt.Sprintf("kforge: %.1f SSH round trips per host", float64(againSessions)/float64(n))},
	}
}

func plural(n int, what string) string {
	if n == 1 {
		return "1 " + what
	}
	return fmt.Sprintf("%d %ss", n, what)
}
