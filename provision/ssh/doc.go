// Package ssh carries kforge's remote work over one SSH connection per host (golang.org/x/crypto/ssh and
// pkg/sftp): authentication, host-key checking, sudo, and the remote.Runner commands and uploads.
package ssh
