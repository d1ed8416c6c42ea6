// Package hosts starts many cheap SSH hosts for scale benchmarks: each one a network namespace on a bridge, an
// overlay of the lab's Debian image as its root, and `sshd -D` as its only process (no systemd).
package hosts
