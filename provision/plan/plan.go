// Package plan compares what each host should have with what it has and produces a Plan: a plain,
// JSON-serialisable value that apply executes and renderers draw, without either recomputing anything.
package plan

import (
	"time"
)

// FormatVersion is the version of the Plan's JSON form; it changes when a reader would misread a new plan.
const FormatVersion = "1.0"

// Action is what happens to one resource.
type Action string

const (
	Create  Action = "create"
	Update  Action = "update"
	Delete  Action = "delete"
	Replace Action = "replace"
	Restart Action = "restart"
	NoOp    Action = "no-op"
)

// Plan is every change on every host.
type Plan struct {
	FormatVersion string     `json:"format_version"`
	Cluster       string     `json:"cluster"`
	CreatedAt     time.Time  `json:"created_at"`
	State         StateRef   `json:"state"`
	Hosts         []HostPlan `json:"hosts"`
	// Warnings are what the operator should know that no change of the plan addresses, such as a CA inside its
	// renewal window (CAs are never replaced by a plan).
	Warnings []string `json:"warnings,omitempty"`
	// Rollout is the order in which apply works through the hosts that have changes.
	Rollout []Stage `json:"rollout,omitempty"`
}

// Stage is one step of a rollout: hosts that apply changes together, at most AtATime at once, those in Drain
// drained of their pods first. A stage finishes before the next starts.
type Stage struct {
	Name    string   `json:"name"`
	Hosts   []string `json:"hosts"`
	AtATime int      `json:"at_a_time"`
	Drain   []string `json:"drain,omitempty"`
}

// Rolling says whether the rollout is worth showing: some stage takes its hosts in turn or drains nodes.
func Rolling(stages []Stage) bool {
	for _, st := range stages {
		if st.AtATime < len(st.Hosts) || len(st.Drain) > 0 {
			return true
		}
	}
	return false
}

// StateRef identifies the local state a plan was made against, so that apply can refuse a stale plan.
type StateRef struct {
	Lineage string `json:"lineage"`
	Serial  int    `json:"serial"`
}

// HostPlan is one host's changes.
type HostPlan struct {
	Host string `json:"host"`
	// ObservedDigest sums up everything read from the host; apply reads again and refuses the plan if it differs.
	ObservedDigest string   `json:"observed_digest"`
	Changes        []Change `json:"changes"`
}

// Change is one resource's action, with why and what changes.
type Change struct {
	ID      string      `json:"id"`
	Kind    string      `json:"kind"`
	Name    string      `json:"name"`
	Action  Action      `json:"action"`
	Reasons []string    `json:"reasons,omitempty"`
	Before  *Attributes `json:"before,omitempty"`
	After   *Attributes `json:"after,omitempty"`
	// Diff is a unified diff of a small text file's content; never for secrets.
	Diff string `json:"diff,omitempty"`
}

// Attributes are what a plan shows of a resource: digests and metadata, never secret content.
type Attributes struct {
	SHA256  string `json:"sha256,omitempty"`
	Size    int64  `json:"size,omitempty"`
	Mode    string `json:"mode,omitempty"`
	Owner   string `json:"owner,omitempty"`
	Version string `json:"version,omitempty"`
	Target  string `json:"target,omitempty"`
	Value   string `json:"value,omitempty"`
	Enabled *bool  `json:"enabled,omitempty"`
	Active  *bool  `json:"active,omitempty"`
	Secret  bool   `json:"secret,omitempty"`
	// Pending says the content is made at apply (a certificate to issue), so no digest is known yet.
	Pending bool `json:"pending,omitempty"`
}

// Summary counts the changes the way the last line of a plan says them.
type Summary struct {
	Add     int `json:"add"`
	Change  int `json:"change"`
	Destroy int `json:"destroy"`
	Restart int `json:"restart"`
}

// Summary counts the plan's changes; a replacement counts as one to add and one to destroy.
func (p *Plan) Summary() Summary {
	var s Summary
	for _, h := range p.Hosts {
		for _, c := range h.Changes {
			switch c.Action {
			case Create:
				s.Add++
			case Update:
				s.Change++
			case Delete:
				s.Destroy++
			case Replace:
				s.Add++
				s.Destroy++
			case Restart:
				s.Restart++
			}
		}
	}
	return s
}

// Empty reports whether the plan changes nothing.
func (p *Plan) Empty() bool { return p.Summary() == (Summary{}) }
