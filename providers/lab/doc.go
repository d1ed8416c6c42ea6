// Package lab makes kforge's local lab: real machines (systemd as PID 1, sshd, their own address, filesystem
// and cgroups) as systemd-nspawn containers on a bridge, and the provider that turns a running lab into hosts.
package lab
