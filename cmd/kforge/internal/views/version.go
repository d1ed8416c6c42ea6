package views

import (
	"fmt"
	"io"
)

// VersionInfo describes this build of kforge.
type VersionInfo struct {
	Version                  string `json:"version"`
	GoVersion                string `json:"go_version"`
	Platform                 string `json:"platform"`
	DefaultKubernetesVersion string `json:"default_kubernetes_version"`
}

// Version shows `kforge version`.
type Version interface {
	Show(VersionInfo) error
}

var (
	_ Version = (*VersionHuman)(nil)
	_ Version = (*VersionJSON)(nil)
)

// VersionHuman prints two lines.
type VersionHuman struct{ Out io.Writer }

func (v *VersionHuman) Show(i VersionInfo) error {
	_, err := fmt.Fprintf(v.Out, "kforge %s (%s, %s)\ndefault Kubernetes version: %s\n", i.Version, i.GoVersion, i.Platform, i.DefaultKubernetesVersion)
	return err
}

// VersionJSON prints the info as JSON.
type VersionJSON struct{ Out io.Writer }

func (v *VersionJSON) Show(i VersionInfo) error { return writeJSON(v.Out, i) }
