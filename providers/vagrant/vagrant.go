// Package vagrant is the provider for machines that Vagrant runs: it asks `vagrant ssh-config` how to reach
// each one and adds what only the configuration knows (roles, the address the cluster uses) to make hosts.
package vagrant

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"time"

	"github.com/hashicorp/hcl/v2"

	"github.com/kforge/kforge/config"
	"github.com/kforge/kforge/config/funcs"
	"github.com/kforge/kforge/providers"
)

// DefaultTimeout bounds one `vagrant ssh-config` run: Vagrant takes seconds to start and asks the hypervisor
// about every machine, but a minute means something is stuck.
const DefaultTimeout = 60 * time.Second

// Provider is the `provider "vagrant"` block. The zero value is ready to use.
type Provider struct {
	// Timeout bounds `vagrant ssh-config`; zero means DefaultTimeout.
	Timeout time.Duration
}

var _ providers.Provider = Provider{}

// block is the body of a `provider "vagrant"` block.
type block struct {
	Dir     *string               `hcl:"dir,optional"`
	Vagrant *string               `hcl:"vagrant,optional"`
	Hosts   []providers.HostBlock `hcl:"host,block"`

	DirRange     hcl.Range `hcl:"dir,attr_value_range"`
	VagrantRange hcl.Range `hcl:"vagrant,attr_value_range"`
}

// settings is a decoded, checked block.
type settings struct {
	dir      string    // absolute: where vagrant runs
	dirRange hcl.Range // the dir attribute, or the provider block when dir is not set
	// command is the vagrant attribute resolved against the configuration's directory when it is a path,
	// or a name to look up on PATH.
	command      string
	commandSet   bool
	commandRange hcl.Range
	hosts        []machine // in block order
	declRange    hcl.Range
}

// machine is one host block: a Vagrant machine kforge uses.
type machine struct {
	name string
	providers.HostSettings
}

// Validate decodes the block and reports mistakes in it; it never runs vagrant, so a configuration can be
// checked where Vagrant is not installed.
func (Provider) Validate(b config.Provider) hcl.Diagnostics {
	_, diags := decode(b)
	return diags
}

func decode(b config.Provider) (*settings, hcl.Diagnostics) {
	var raw block
	diags := providers.Decode(b, &raw)
	if diags.HasErrors() {
		return nil, diags
	}
	configDir := b.Paths.Dir
	s := &settings{dir: configDir, dirRange: b.DeclRange, command: "vagrant", commandRange: b.DeclRange, declRange: b.DeclRange}
	if raw.Dir != nil {
		s.dirRange = raw.DirRange
		if *raw.Dir == "" {
			diags = append(diags, errorAt(raw.DirRange, "Empty dir", "Set dir to the directory that holds the Vagrantfile, or leave it out to use the configuration's directory."))
		} else if d, err := b.Paths.Resolve(*raw.Dir); err != nil {
			diags = append(diags, errorAt(raw.DirRange, "Invalid dir", err.Error()+"."))
		} else {
			s.dir = d
		}
	}
	if raw.Vagrant != nil {
		s.commandSet, s.commandRange = true, raw.VagrantRange
		switch v := *raw.Vagrant; {
		case v == "":
			diags = append(diags, errorAt(raw.VagrantRange, "Empty vagrant command", `Set vagrant to the vagrant executable ("/usr/bin/vagrant"), or leave it out to find vagrant on PATH.`))
		case strings.ContainsRune(v, filepath.Separator) || strings.HasPrefix(v, "~"):
			p, err := b.Paths.Resolve(v)
			if err != nil {
				diags = append(diags, errorAt(raw.VagrantRange, "Invalid vagrant command", err.Error()+"."))
			}
			s.command = p
		default:
			s.command = v
		}
	}

	byName, ds := providers.DecodeHostBlocks(raw.Hosts)
	diags = append(diags, ds...)
	if len(raw.Hosts) == 0 {
		diags = append(diags, errorAt(b.DeclRange, "No machines",
			`The vagrant provider needs a host block for each Vagrant machine kforge should use, for example:
  host "cp" {
    roles            = ["control-plane", "etcd"]
    internal_address = "192.168.56.11"
  }`))
	}
	taken := map[string]bool{}
	for _, hb := range raw.Hosts {
		if taken[hb.Name] {
			continue // DecodeHostBlocks has reported the duplicate
		}
		taken[hb.Name] = true
		if hb.InternalAddress == nil {
			// Every VirtualBox machine has 10.0.2.15 on its NAT interface, so the address ssh-config gives
			// (127.0.0.1 and a forwarded port) says nothing about how the machines reach each other.
			diags = append(diags, errorAt(hb.DefRange, "Missing internal_address",
				fmt.Sprintf("Set internal_address in host %q to the machine's private_network address: Vagrant reports only a forwarded port on 127.0.0.1, and every VirtualBox machine has the same NAT address, 10.0.2.15.", hb.Name)))
		}
		s.hosts = append(s.hosts, machine{name: hb.Name, HostSettings: byName[hb.Name]})
	}
	return s, diags
}

// Hosts runs `vagrant ssh-config` for the machines of the block and returns one host per host block, in
// block order.
func (p Provider) Hosts(ctx context.Context, b config.Provider, env providers.Env) ([]config.Host, hcl.Diagnostics) {
	s, diags := decode(b)
	if diags.HasErrors() {
		return nil, diags
	}
	if env.StateDir == "" {
		return nil, append(diags, errorAt(s.declRange, "No state directory",
			"kforge keeps the host keys of Vagrant machines in its state directory, and none is set."))
	}
	stateDir, err := filepath.Abs(env.StateDir)
	if err != nil {
		return nil, append(diags, errorAt(s.declRange, "No state directory", fmt.Sprintf("%s: %v.", env.StateDir, err)))
	}
	if st, err := os.Stat(s.dir); err != nil || !st.IsDir() {
		detail := fmt.Sprintf("%s is not a directory.", s.dir)
		if err != nil {
			detail = fmt.Sprintf("%v.", err)
		}
		return nil, append(diags, errorAt(s.dirRange, "Vagrant directory not found", detail+" Set dir to the directory that holds the Vagrantfile."))
	}
	exe, d := s.lookPath()
	if d != nil {
		return nil, append(diags, d)
	}
	out, d := p.sshConfig(ctx, exe, s)
	if d != nil {
		return nil, append(diags, d)
	}
	entries, err := parseSSHConfig(out)
	if err != nil {
		return nil, append(diags, errorAt(s.declRange, "Unreadable vagrant ssh-config output",
			fmt.Sprintf("%s ssh-config in %s printed what kforge cannot read: %v.", exe, s.dir, err)))
	}
	byName := map[string]sshEntry{}
	for _, e := range entries {
		byName[e.Name] = e
	}
	dotVagrant := filepath.Join(vagrantRoot(s.dir), ".vagrant")
	var hosts []config.Host
	for _, m := range s.hosts {
		e, ok := byName[m.name]
		if !ok {
			diags = append(diags, errorAt(m.DeclRange, "Machine missing from vagrant ssh-config",
				fmt.Sprintf("vagrant ssh-config in %s printed nothing for machine %q; check that the Vagrantfile defines it (`vagrant status`).", s.dir, m.name)))
			continue
		}
		h, d := hostFor(m, e, funcs.Paths{Dir: s.dir, Home: b.Paths.Home}, dotVagrant, stateDir)
		if d != nil {
			diags = append(diags, d)
			continue
		}
		hosts = append(hosts, h)
	}
	if diags.HasErrors() {
		return nil, diags
	}
	return hosts, diags
}

// lookPath finds the vagrant executable.
func (s *settings) lookPath() (string, *hcl.Diagnostic) {
	exe, err := exec.LookPath(s.command)
	if err == nil {
		return exe, nil
	}
	var ee *exec.Error
	if errors.As(err, &ee) {
		err = ee.Err // the command is named in the message already
	}
	if !s.commandSet {
		return "", errorAt(s.commandRange, "Vagrant not found",
			fmt.Sprintf("kforge runs `vagrant ssh-config` to find the machines, and there is no vagrant on PATH (%v). Install Vagrant, or set vagrant = \"/path/to/vagrant\" in this block.", err))
	}
	return "", errorAt(s.commandRange, "Vagrant not found",
		fmt.Sprintf("%s is not an executable (%v). Set vagrant to the path of the vagrant executable, or leave it out to find vagrant on PATH.", s.command, err))
}

// maxStderr bounds how much of vagrant's error output a diagnostic quotes.
const maxStderr = 4000

// sshConfig runs `vagrant ssh-config NAME...` in the block's directory and returns what it prints.
func (p Provider) sshConfig(ctx context.Context, exe string, s *settings) ([]byte, *hcl.Diagnostic) {
	timeout := p.Timeout
	if timeout <= 0 {
		timeout = DefaultTimeout
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	names := make([]string, len(s.hosts))
	for i, m := range s.hosts {
		names[i] = m.name
	}
	cmd := exec.CommandContext(ctx, exe, append([]string{"ssh-config"}, names...)...)
	cmd.Dir = s.dir
	// An inherited VAGRANT_CWD would make vagrant look for the Vagrantfile elsewhere than dir says, and an
	// inherited PWD would name kforge's directory. The version check is a network call on every run whose
	// notices would land in the output kforge parses.
	cmd.Env = append(os.Environ(), "PWD="+s.dir, "VAGRANT_CWD="+s.dir, "VAGRANT_CHECKPOINT_DISABLE=1", "VAGRANT_NO_COLOR=1")
	// vagrant starts helpers (VBoxManage) that can outlive it holding the pipes; do not wait on them forever.
	cmd.WaitDelay = 5 * time.Second
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	if err == nil {
		return stdout.Bytes(), nil
	}
	run := fmt.Sprintf("%s ssh-config %s", exe, strings.Join(names, " "))
	if ctx.Err() != nil {
		reason := fmt.Sprintf("did not finish within %s", timeout)
		if !errors.Is(ctx.Err(), context.DeadlineExceeded) {
			reason = "was interrupted"
		}
		return nil, errorAt(s.declRange, "vagrant ssh-config did not finish",
			fmt.Sprintf("`%s` in %s %s. Check that `vagrant status` answers there.", run, s.dir, reason))
	}
	msg := strings.TrimSpace(stderr.String())
	if len(msg) > maxStderr {
		msg = "…" + strings.ToValidUTF8(msg[len(msg)-maxStderr:], "")
	}
	if msg == "" {
		msg = "(it printed no error)"
	}
	return nil, errorAt(s.declRange, "vagrant ssh-config failed",
		fmt.Sprintf("`%s` in %s: %v:\n%s\n\nThe machines must be created and running: run `vagrant up %s` there (`vagrant status` shows their state).",
			run, s.dir, err, msg, strings.Join(names, " ")))
}

// hostFor makes the host for machine m from what ssh-config said about it.
func hostFor(m machine, e sshEntry, runDir funcs.Paths, dotVagrant, stateDir string) (config.Host, *hcl.Diagnostic) {
	if e.ProxyCommand != "" && !strings.EqualFold(e.ProxyCommand, "none") {
		return config.Host{}, errorAt(m.DeclRange, "ProxyCommand not supported",
			fmt.Sprintf("Vagrant reaches machine %q through ProxyCommand `%s`; kforge connects to hosts directly and does not run proxy commands. Use a Vagrant provider or network that makes sshd reachable from this machine.", m.name, e.ProxyCommand))
	}
	var missing []string
	for _, f := range []struct {
		name string
		set  bool
	}{{"HostName", e.HostName != ""}, {"User", e.User != ""}, {"Port", e.Port != 0}, {"IdentityFile", len(e.IdentityFiles) > 0}} {
		if !f.set {
			missing = append(missing, f.name)
		}
	}
	if len(missing) > 0 {
		return config.Host{}, errorAt(m.DeclRange, "Incomplete vagrant ssh-config",
			fmt.Sprintf("vagrant ssh-config gives no %s for machine %q (line %d of its output); kforge needs the address, user, port and key that `vagrant ssh` uses.", orList(missing), m.name, e.Line))
	}
	key := ""
	for _, f := range e.IdentityFiles {
		// Vagrant prints absolute paths; a relative one would be relative to where vagrant ran.
		p, err := runDir.Resolve(f)
		if err != nil {
			continue
		}
		if st, err := os.Stat(p); err == nil && st.Mode().IsRegular() {
			key = p
			break
		}
	}
	if key == "" {
		return config.Host{}, errorAt(m.DeclRange, "No private key for machine",
			fmt.Sprintf("None of the IdentityFile paths vagrant ssh-config gives for machine %q exists: %s.", m.name, strings.Join(e.IdentityFiles, ", ")))
	}
	roles := append([]config.Role(nil), m.Roles...)
	config.SortRoles(roles)
	return config.Host{
		Name:            m.name,
		Address:         e.HostName,
		InternalAddress: m.InternalAddress,
		Roles:           roles,
		Labels:          m.Labels,
		Taints:          m.Taints,
		SSH: config.SSH{
			User:           e.User,
			Port:           e.Port,
			PrivateKeyFile: key,
			UseAgent:       false,
			KnownHostsFile: filepath.Join(stateDir, "vagrant", machineID(dotVagrant, m.name)+".known_hosts"),
			HostKeyPolicy:  config.HostKeyAcceptNew,
			Sudo:           e.User != "root",
			ConnectTimeout: 10 * time.Second,
		},
		DeclRange: m.DeclRange,
	}, nil
}

// orList joins words as a sentence lists alternatives: "a", "a or b", "a, b or c".
func orList(words []string) string {
	if len(words) < 2 {
		return strings.Join(words, "")
	}
	return strings.Join(words[:len(words)-1], ", ") + " or " + words[len(words)-1]
}

// machineID names the known_hosts file of a machine after the id its Vagrant provider gave it. Every machine is
// reached at 127.0.0.1 on a forwarded port that the next machine reuses, and a destroyed and re-created box has
// new host keys: keyed by address or by name, kforge would refuse the new machine as a changed key. The id
// changes exactly when the machine is a new one, so its keys are trusted afresh then and checked otherwise.
// Without an id file (a provider that keeps none) the name stands in.
func machineID(dotVagrant, name string) string {
	dir := filepath.Join(dotVagrant, "machines", name)
	entries, err := os.ReadDir(dir) // sorted, so the choice is stable when several providers left a directory
	if err != nil {
		return name
	}
	for _, e := range entries {
		if !e.IsDir() {
			continue
		}
		data, err := os.ReadFile(filepath.Join(dir, e.Name(), "id"))
		if err != nil {
			continue
		}
		if id := strings.TrimSpace(string(data)); idRe.MatchString(id) {
			return id
		}
	}
	return name
}

// idRe keeps the id usable as a file name: VirtualBox, libvirt and Hyper-V ids are UUIDs, Docker's are hex.
var idRe = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]*$`)

// vagrantRoot is the directory whose .vagrant holds the machines' state: like vagrant, the nearest directory
// from dir upwards with a Vagrantfile, or dir itself.
func vagrantRoot(dir string) string {
	for d := dir; ; d = filepath.Dir(d) {
		for _, name := range []string{"Vagrantfile", "vagrantfile"} {
			if st, err := os.Stat(filepath.Join(d, name)); err == nil && st.Mode().IsRegular() {
				return d
			}
		}
		if filepath.Dir(d) == d {
			return dir
		}
	}
}

func errorAt(rng hcl.Range, summary, detail string) *hcl.Diagnostic {
	r := rng
	return &hcl.Diagnostic{Severity: hcl.DiagError, Summary: summary, Detail: detail, Subject: &r}
}
