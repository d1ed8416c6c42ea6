package ssh

import (
	"net"
	"strconv"
	"time"

	"github.com/kforge/kforge/config"
)

// Target is one host to connect to, with everything the connection needs to know.
type Target struct {
	// Name identifies the host in messages and errors.
	Name           string
	Address        string
	Port           int
	User           string
	PrivateKeyFile string // empty: ssh-agent and the default keys
	UseAgent       bool
	Sudo           bool
	HostKeyPolicy  config.HostKeyPolicy
	// KnownHostsFile is checked in addition to the Dialer's files, and is where accept-new records this host.
	KnownHostsFile string
	ConnectTimeout time.Duration
	// Bastion is the jump host the connection goes through, checked with its own host key.
	Bastion *Target
}

// Addr is host:port as dialled and as written in known_hosts.
func (t Target) Addr() string { return net.JoinHostPort(t.Address, strconv.Itoa(t.Port)) }

// TargetFor builds the Target of a configured host.
func TargetFor(h config.Host) Target {
	s := h.SSH
	t := Target{Name: h.Name, Address: h.Address, Port: s.Port, User: s.User, PrivateKeyFile: s.PrivateKeyFile,
		UseAgent: s.UseAgent, Sudo: s.Sudo, HostKeyPolicy: s.HostKeyPolicy, KnownHostsFile: s.KnownHostsFile,
		ConnectTimeout: s.ConnectTimeout}
	if b := s.Bastion; b != nil {
		t.Bastion = &Target{Name: h.Name + " (bastion " + b.Address + ")", Address: b.Address, Port: b.Port, User: b.User,
			PrivateKeyFile: b.PrivateKeyFile, UseAgent: b.UseAgent, HostKeyPolicy: b.HostKeyPolicy,
			KnownHostsFile: b.KnownHostsFile, ConnectTimeout: s.ConnectTimeout}
	}
	return t
}
