package views

import (
	"fmt"
	"io"
	"strings"
	"text/tabwriter"

	"github.com/kforge/kforge/pki"
)

// CertRow is one certificate (or key) in `kforge certs list`; no key material, ever.
type CertRow struct {
	Name     string   `json:"name"`
	Kind     string   `json:"kind"`
	Subject  string   `json:"subject,omitempty"`
	SANs     []string `json:"sans,omitempty"`
	NotAfter string   `json:"not_after,omitempty"`
	DaysLeft *int     `json:"days_left,omitempty"`
	// Status is "ok", or what the next issue will do: "issue", "re-issue".
	Status string   `json:"status"`
	Reason string   `json:"reason,omitempty"`
	Hosts  []string `json:"hosts,omitempty"`
}

// Certs shows the certificate commands' results.
type Certs interface {
	List(rows []CertRow) error
	Issued(rows []CertRow, kubeconfigs []string) error
	Renew(marked []string) error
	// RotationStarted says which CAs a rotation replaces, and what the next applies do.
	RotationStarted(r *pki.Rotation) error
}

var (
	_ Certs = (*CertsHuman)(nil)
	_ Certs = (*CertsJSON)(nil)
)

// CertsHuman prints tables.
type CertsHuman struct{ Out io.Writer }

// sansShown keeps a row readable; --json has them all.
const sansShown = 3

func (v *CertsHuman) List(rows []CertRow) error {
	tw := tabwriter.NewWriter(v.Out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "NAME\tSUBJECT\tSANS\tNOT AFTER\tDAYS LEFT\tSTATUS")
	for _, r := range rows {
		sans := strings.Join(r.SANs, ",")
		if len(r.SANs) > sansShown {
			sans = strings.Join(r.SANs[:sansShown], ",") + fmt.Sprintf(",… (%d)", len(r.SANs))
		}
		days := "-"
		if r.DaysLeft != nil {
			days = fmt.Sprint(*r.DaysLeft)
		}
		status := r.Status
		if r.Reason != "" {
			status += ": " + r.Reason
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", r.Name, orDash(r.Subject), orDash(sans), orDash(r.NotAfter), days, status)
	}
	return tw.Flush()
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func (v *CertsHuman) Issued(rows []CertRow, kubeconfigs []string) error {
	var b strings.Builder
	counts := map[string]int{}
	for _, r := range rows {
		counts[r.Status]++
		if r.Status != "ok" {
			fmt.Fprintf(&b, "  %-9s %s (%s)\n", r.Status, r.Name, r.Reason)
		}
	}
	summary := fmt.Sprintf("Certificates: %d issued, %d re-issued, %d unchanged.\n", counts["issue"], counts["re-issue"], counts["ok"])
	if len(kubeconfigs) > 0 {
		summary += fmt.Sprintf("Kubeconfigs in %s (admin: %s).\n", dirOf(kubeconfigs[0]), kubeconfigs[0])
	}
	_, err := io.WriteString(v.Out, b.String()+summary)
	return err
}

func dirOf(p string) string {
	if i := strings.LastIndex(p, "/"); i > 0 {
		return p[:i]
	}
	return p
}

func (v *CertsHuman) RotationStarted(r *pki.Rotation) error {
	_, err := fmt.Fprintf(v.Out, "New CAs made for %s (the old ones stay until the rotation ends).\n"+
		"Apply twice: the first apply has every host trust the old and the new CAs, the second re-issues every\n"+
		"certificate with the new ones; a third removes the old CAs from the hosts. Pods that talk to the API server\n"+
		"read the CA when they start: restart yours after the first apply (kforge restarts cluster DNS).\n",
		strings.Join(r.CAs, ", "))
	return err
}

func (v *CertsHuman) Renew(marked []string) error {
	_, err := fmt.Fprintf(v.Out, "Marked for re-issue: %s.\nkforge certs issue (or the next apply) re-issues them; apply also distributes them and restarts what uses them.\n",
		strings.Join(marked, ", "))
	return err
}

// CertsJSON prints JSON documents.
type CertsJSON struct{ Out io.Writer }

func (v *CertsJSON) List(rows []CertRow) error {
	return writeJSON(v.Out, map[string]any{"certificates": nonNil(rows)})
}
func (v *CertsJSON) Issued(rows []CertRow, kubeconfigs []string) error {
	return writeJSON(v.Out, map[string]any{"certificates": nonNil(rows), "kubeconfigs": kubeconfigs})
}
func (v *CertsJSON) RotationStarted(r *pki.Rotation) error {
	return writeJSON(v.Out, map[string]any{"rotation": r})
}
func (v *CertsJSON) Renew(marked []string) error {
	return writeJSON(v.Out, map[string]any{"marked": marked})
}

func nonNil(rows []CertRow) []CertRow {
	if rows == nil {
		return []CertRow{}
	}
	return rows
}
