// Package provision turns a validated configuration into changes on hosts; its sub-packages each do one part
// (remote: the Runner interface and fan-out, ssh: the SSH transport, and later facts, plan and apply).
package provision
