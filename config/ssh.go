package config

import (
	"fmt"
	"net"
	"os"
	"strconv"
	"time"

	"github.com/hashicorp/hcl/v2"
)

// SSH defaults: what `ssh HOST` would do, with strict host-key checking.
const (
	defaultSSHUser        = "root"
	defaultSSHPort        = 22
	defaultConnectTimeout = 10 * time.Second
)

var hostKeyPolicies = []string{string(HostKeyStrict), string(HostKeyAcceptNew), string(HostKeyInsecure)}

// mergeSSH lays a host's ssh block over the defaults, field by field; a host's bastion block replaces the
// default bastion whole, since its fields only make sense together.
func mergeSSH(defaults sshBlock, host *sshBlock) sshBlock {
	if host == nil {
		return defaults
	}
	m := *host
	if m.User == nil {
		m.User = defaults.User
	}
	if m.Port == nil {
		m.Port, m.PortRange = defaults.Port, defaults.PortRange
	}
	if m.PrivateKeyFile == nil {
		m.PrivateKeyFile, m.PrivateKeyFileRange = defaults.PrivateKeyFile, defaults.PrivateKeyFileRange
	}
	if m.UseAgent == nil {
		m.UseAgent = defaults.UseAgent
	}
	if m.KnownHostsFile == nil {
		m.KnownHostsFile, m.KnownHostsFileRange = defaults.KnownHostsFile, defaults.KnownHostsFileRange
	}
	if m.HostKeyPolicy == nil {
		m.HostKeyPolicy, m.HostKeyPolicyRange = defaults.HostKeyPolicy, defaults.HostKeyPolicyRange
	}
	if m.Sudo == nil {
		m.Sudo = defaults.Sudo
	}
	if m.ConnectTimeout == nil {
		m.ConnectTimeout, m.ConnectTimeoutRange = defaults.ConnectTimeout, defaults.ConnectTimeoutRange
	}
	if m.Bastion == nil {
		m.Bastion = defaults.Bastion
	}
	return m
}

// sshSettings validates merged raw settings and fills in the defaults.
func (b *builder) sshSettings(raw sshBlock) SSH {
	s := SSH{
		User:           str(raw.User, defaultSSHUser),
		Port:           intOr(raw.Port, defaultSSHPort),
		UseAgent:       raw.UseAgent == nil || *raw.UseAgent,
		HostKeyPolicy:  HostKeyPolicy(str(raw.HostKeyPolicy, string(HostKeyStrict))),
		ConnectTimeout: defaultConnectTimeout,
	}
	// A non-root user needs sudo for everything kforge does, unless the config says otherwise.
	s.Sudo = s.User != "root"
	if raw.Sudo != nil {
		s.Sudo = *raw.Sudo
	}
	b.checkPort(s.Port, raw.PortRange)
	b.checkHostKeyPolicy(s.HostKeyPolicy, raw.HostKeyPolicyRange)
	if raw.PrivateKeyFile != nil {
		s.PrivateKeyFile = b.keyFile(*raw.PrivateKeyFile, raw.PrivateKeyFileRange)
	}
	if raw.KnownHostsFile != nil {
		s.KnownHostsFile = b.knownHostsFile(*raw.KnownHostsFile, raw.KnownHostsFileRange, s.HostKeyPolicy)
	}
	if raw.ConnectTimeout != nil {
		d, err := time.ParseDuration(*raw.ConnectTimeout)
		if err != nil || d <= 0 {
			b.errorAt(raw.ConnectTimeoutRange, "Invalid connect_timeout",
				fmt.Sprintf("%q is not a positive duration such as \"10s\" or \"1m\".", *raw.ConnectTimeout))
		} else {
			s.ConnectTimeout = d
		}
	}
	if bb := raw.Bastion; bb != nil {
		s.Bastion = b.bastion(*bb, s)
	}
	return s
}

func (b *builder) bastion(raw bastionBlock, parent SSH) *Bastion {
	bs := &Bastion{
		Address:        raw.Address,
		Port:           intOr(raw.Port, defaultSSHPort),
		User:           str(raw.User, parent.User),
		PrivateKeyFile: parent.PrivateKeyFile,
		UseAgent:       parent.UseAgent,
		KnownHostsFile: parent.KnownHostsFile,
		HostKeyPolicy:  HostKeyPolicy(str(raw.HostKeyPolicy, string(parent.HostKeyPolicy))),
	}
	if h, p, err := net.SplitHostPort(raw.Address); err == nil {
		n, perr := strconv.Atoi(p)
		switch {
		case raw.Port != nil:
			b.errorAt(raw.AddressRange, "Conflicting bastion port", "Give the bastion's port either in address or in port, not both.")
		case perr != nil || n < 1 || n > 65535:
			b.errorAt(raw.AddressRange, "Invalid port", fmt.Sprintf("%q is not a TCP port (1-65535).", p))
		default:
			bs.Address, bs.Port = h, n
		}
	}
	if err := checkHostAddress(bs.Address); err != nil {
		b.errorAt(raw.AddressRange, "Invalid bastion address", err.Error())
	}
	b.checkPort(bs.Port, raw.PortRange)
	if raw.UseAgent != nil {
		bs.UseAgent = *raw.UseAgent
	}
	if raw.PrivateKeyFile != nil {
		bs.PrivateKeyFile = b.keyFile(*raw.PrivateKeyFile, raw.PrivateKeyFileRange)
	}
	if raw.HostKeyPolicy != nil {
		b.checkHostKeyPolicy(bs.HostKeyPolicy, raw.HostKeyPolicyRange)
	}
	if raw.KnownHostsFile != nil {
		bs.KnownHostsFile = b.knownHostsFile(*raw.KnownHostsFile, raw.KnownHostsFileRange, bs.HostKeyPolicy)
	}
	return bs
}

func (b *builder) checkHostKeyPolicy(p HostKeyPolicy, rng hcl.Range) {
	if err := oneOf(string(p), hostKeyPolicies); err != nil {
		b.errorAt(rng, "Invalid host_key_policy", err.Error())
		return
	}
	if p == HostKeyInsecure {
		b.warnAt(rng, "Host key checking is disabled",
			`host_key_policy = "insecure" accepts any host key: anyone between you and the hosts can impersonate them and receive the cluster's keys. Use "accept-new" to trust keys on first use.`)
	}
}

// keyFile resolves a private key path and refuses what ssh itself would refuse: a missing file or one that
// other users can read.
func (b *builder) keyFile(p string, rng hcl.Range) string {
	path := b.path(p, rng)
	st, err := os.Stat(path)
	switch {
	case err != nil:
		b.errorAt(rng, "Private key file not found", fmt.Sprintf("%s: %v.", path, unwrapPathError(err)))
	case st.IsDir():
		b.errorAt(rng, "Private key file is a directory", path+" is a directory, not a key file.")
	case st.Mode().Perm()&0o077 != 0:
		b.errorAt(rng, "Private key file is readable by others",
			fmt.Sprintf("%s has permissions %#o; ssh refuses such keys. Run: chmod 600 %s", path, st.Mode().Perm(), path))
	}
	return path
}

func (b *builder) knownHostsFile(p string, rng hcl.Range, policy HostKeyPolicy) string {
	path := b.path(p, rng)
	if _, err := os.Stat(path); err != nil && policy == HostKeyStrict {
		b.warnAt(rng, "known_hosts file not found",
			fmt.Sprintf("%s does not exist; with host_key_policy = \"strict\" it trusts no host.", path))
	}
	return path
}

func unwrapPathError(err error) error {
	if pe, ok := err.(*os.PathError); ok {
		return pe.Err
	}
	return err
}
