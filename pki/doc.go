// Package pki issues and keeps the cluster's certificates, keys and kubeconfigs: which ones the cluster needs
// (the catalog), what exists (the store), and what to issue or re-issue, and why (the plan).
package pki
