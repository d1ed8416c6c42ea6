// Package resource describes what kforge manages on a host: files, directories, binaries, symlinks, systemd
// units, sysctls, kernel modules and system users, each as it should be, and each as it was found.
package resource

import (
	"io"
	"io/fs"
)

// Kind is the sort of thing a resource is.
type Kind string

const (
	File      Kind = "file"
	Directory Kind = "directory"
	Binary    Kind = "binary"
	Symlink   Kind = "symlink"
	Unit      Kind = "unit"
	Sysctl    Kind = "sysctl"
	Module    Kind = "module"
	// User is a system account a component runs as (no login, no password), with its own group.
	User Kind = "user"
)

// Resource is one thing on one host in the state it should be in.
type Resource struct {
	Kind Kind
	// Name is the path (files, directories, binaries, symlinks), the unit name, the sysctl key or the module.
	Name string

	// Files and binaries: the content by digest, how to get it, and its metadata.
	SHA256  string
	Size    int64
	Content []byte                        // files: small enough to keep in memory (configs, certificates)
	Open    func() (io.ReadCloser, error) // binaries: streamed when it must be sent
	Mode    fs.FileMode
	Owner   string
	Group   string
	// Secret content is never shown: plans carry its digest only.
	Secret bool
	// Diffable marks text worth reading line by line in a plan (configs, units), unlike certificates.
	Diffable bool
	// Pending content is only known at apply (a certificate to be issued): plans say why instead of a digest.
	Pending string
	// Version says what a binary is ("kubelet v1.37.2"), so that a plan reads as an upgrade, not a digest.
	Version string

	// Target is where a symlink points.
	Target string
	// Enabled and Active are a unit's wanted state.
	Enabled, Active bool
	// Health is a POSIX sh command that succeeds once a unit serves; apply waits for it after a start or restart.
	Health string
	// Value is a sysctl's value, or a user's home directory.
	Value string

	// DependsOn lists resources (IDs) that must be in place before this one.
	DependsOn []string
	// Restarts lists units (IDs) to restart when this resource changes: a config restarts its reader.
	Restarts []string
}

// ID names a resource uniquely on its host: kind and name.
func (r Resource) ID() string { return ID(r.Kind, r.Name) }

// ID builds a resource ID.
func ID(k Kind, name string) string { return string(k) + ":" + name }

// Observed is what a host has for a resource.
type Observed struct {
	Exists bool
	// Type is what is at a path: file, directory, symlink or other.
	Type   string
	SHA256 string
	Size   int64
	Mode   fs.FileMode
	Owner  string
	Group  string
	// Content of a small text file whose desired content differs, for a readable diff; nil otherwise.
	Content []byte
	Target  string
	// Units: systemd's view.
	Enabled bool
	Active  bool
	// Sysctls.
	Value string
	// Version of a binary when kforge recorded it (the state knows what it installed).
	Version string
}
