// Package config turns kforge's HCL files into a validated Cluster model.
// Every user mistake comes back as an hcl.Diagnostic that points at the offending source range.
package config
