package pki

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/rsa"
	"crypto/x509"
	"fmt"
	"net/netip"
	"sort"
	"strings"
	"time"

	"github.com/kforge/kforge/config"
)

// Action is what happens to one certificate.
type Action string

const (
	ActionKeep    Action = "keep"
	ActionIssue   Action = "issue"
	ActionReissue Action = "re-issue"
)

// Change is the plan for one certificate: the action and why.
type Change struct {
	Spec   Spec
	Action Action
	Reason string
	// NotAfter is when the current certificate expires (zero when there is none).
	NotAfter time.Time
}

// Plan compares the catalog with the store. An existing CA is always kept: a new one would invalidate every
// certificate it signed. A CA whose key is gone while certificates it signed remain is an error, not a silent
// new CA.
func Plan(specs []Spec, s *Store, p config.PKI, now time.Time) ([]Change, error) {
	renew, err := s.RenewRequested()
	if err != nil {
		return nil, err
	}
	rotation, err := s.Rotation()
	if err != nil {
		return nil, err
	}
	entries := map[string]Entry{}
	for _, spec := range specs {
		e, err := s.Read(spec.Name)
		if err != nil {
			return nil, err
		}
		entries[spec.Name] = e
	}
	var changes []Change
	newCA := map[string]bool{}
	for _, spec := range specs {
		e := entries[spec.Name]
		ch := Change{Spec: spec, Action: ActionKeep}
		if e.Cert != nil {
			ch.NotAfter = e.Cert.NotAfter
		}
		switch spec.Kind {
		case KindCA:
			switch {
			case e.Cert != nil && e.Key != nil:
				if !sameKey(e.Cert, e.Key) {
					return nil, fmt.Errorf("%s: the key in %s does not belong to the certificate in %s", spec.Name, s.keyPath(spec.Name), s.certPath(spec.Name))
				}
				if left := e.Cert.NotAfter.Sub(now); left < p.RenewBefore {
					ch.Reason = fmt.Sprintf("expires in %d days (%s), inside renew_before (%d days); CAs are not replaced by a plan",
						int(left.Hours()/24), e.Cert.NotAfter.Format(time.DateOnly), int(p.RenewBefore.Hours()/24))
				}
			case e.Cert != nil && e.Key == nil:
				if signed := signedBy(spec.Name, specs, entries); len(signed) > 0 {
					return nil, fmt.Errorf("%s: the CA key %s is missing, but %s were signed with it; restore the key (a new CA would invalidate them), or remove the whole PKI directory %s to start over",
						spec.Name, s.keyPath(spec.Name), strings.Join(signed, ", "), s.Dir)
				}
				ch.Action, ch.Reason = ActionIssue, "CA key missing; nothing was signed with it yet"
				newCA[spec.Name] = true
			default:
				ch.Action, ch.Reason = ActionIssue, "new"
				newCA[spec.Name] = true
			}
		case KindKeyPair:
			if e.Key == nil {
				ch.Action, ch.Reason = ActionIssue, "new"
			}
		case KindCert:
			ca := entries[spec.CA]
			if signer := rotation.Signing(spec.CA); signer != spec.CA {
				// Step 2 of a rotation: the new CA signs, and what it has not signed is re-issued.
				if ca, err = s.Read(signer); err != nil {
					return nil, err
				}
				if ca.Cert == nil {
					return nil, fmt.Errorf("%s: the new CA of the rotation (%s) is missing", spec.Name, s.certPath(signer))
				}
			}
			ch.Action, ch.Reason = certAction(spec, e, ca, newCA[spec.CA], renew[spec.Name], p, now)
			if ch.Action == ActionReissue && rotation.Rotating(spec.CA) == StepSign && strings.HasPrefix(ch.Reason, "CA changed: signed by another CA") {
				ch.Reason = "CA rotation: signed by the new " + spec.CA
			}
		}
		changes = append(changes, ch)
	}
	return changes, nil
}

// Warnings are what a plan says about the CAs inside their renewal window: kept, as every CA is, but due.
func Warnings(changes []Change) []string {
	var out []string
	for _, ch := range changes {
		if ch.Spec.Kind == KindCA && ch.Action == ActionKeep && ch.Reason != "" {
			out = append(out, fmt.Sprintf("CA %s (%s) %s", ch.Spec.Name, ch.Spec.CN, ch.Reason))
		}
	}
	return out
}

// signedBy lists the stored certificates whose spec names ca as their CA.
func signedBy(ca string, specs []Spec, entries map[string]Entry) []string {
	var out []string
	for _, s := range specs {
		if s.CA == ca && entries[s.Name].Cert != nil {
			out = append(out, s.Name)
		}
	}
	return out
}

func certAction(spec Spec, e, ca Entry, caIsNew, renew bool, p config.PKI, now time.Time) (Action, string) {
	switch {
	case e.Cert == nil && e.Key == nil:
		return ActionIssue, "new"
	case e.Cert == nil || e.Key == nil:
		return ActionReissue, "certificate or key missing"
	case !sameKey(e.Cert, e.Key):
		return ActionReissue, "key does not match the certificate"
	case caIsNew:
		return ActionReissue, "CA changed"
	case ca.Cert == nil || e.Cert.CheckSignatureFrom(ca.Cert) != nil:
		return ActionReissue, "CA changed: signed by another CA"
	case e.Cert.Subject.CommonName != spec.CN || !sameStrings(e.Cert.Subject.Organization, spec.O):
		return ActionReissue, fmt.Sprintf("subject changed: %s", subject(e.Cert.Subject.CommonName, e.Cert.Subject.Organization))
	}
	if d := sanDiff(e.Cert, spec); d != "" {
		return ActionReissue, "SANs changed: " + d
	}
	if !sameUsages(e.Cert.ExtKeyUsage, spec.Usages) {
		return ActionReissue, "usages changed"
	}
	if alg, size := keyType(e.Key); alg != p.KeyAlgorithm || size != p.KeySize {
		return ActionReissue, fmt.Sprintf("key type changed: %s %d -> %s %d", alg, size, p.KeyAlgorithm, p.KeySize)
	}
	if left := e.Cert.NotAfter.Sub(now); left < p.RenewBefore {
		return ActionReissue, fmt.Sprintf("expires in %d days (renewal window %d days)", int(left.Hours()/24), int(p.RenewBefore.Hours()/24))
	}
	if renew {
		return ActionReissue, "renewal requested"
	}
	return ActionKeep, ""
}

func subject(cn string, o []string) string {
	if len(o) == 0 {
		return "CN=" + cn
	}
	return "CN=" + cn + ", O=" + strings.Join(o, "+")
}

func sameKey(cert *x509.Certificate, key crypto.Signer) bool {
	type equaler interface{ Equal(crypto.PublicKey) bool }
	pub, ok := key.Public().(equaler)
	return ok && pub.Equal(cert.PublicKey)
}

func sameStrings(a, b []string) bool {
	return strings.Join(sortedCopy(a), "\x00") == strings.Join(sortedCopy(b), "\x00")
}

func sortedCopy(xs []string) []string {
	out := append([]string(nil), xs...)
	sort.Strings(out)
	return out
}

// sanDiff says which names a certificate gains and loses: "+198.18.0.14 -old.example".
func sanDiff(cert *x509.Certificate, spec Spec) string {
	have := map[string]bool{}
	for _, d := range cert.DNSNames {
		have[d] = true
	}
	for _, ip := range cert.IPAddresses {
		if a, ok := netip.AddrFromSlice(ip); ok {
			have[a.Unmap().String()] = true
		}
	}
	want := map[string]bool{}
	for _, d := range spec.DNSNames {
		want[d] = true
	}
	for _, a := range spec.IPs {
		want[a.String()] = true
	}
	var diff []string
	for _, n := range sortedKeys(want) {
		if !have[n] {
			diff = append(diff, "+"+n)
		}
	}
	for _, n := range sortedKeys(have) {
		if !want[n] {
			diff = append(diff, "-"+n)
		}
	}
	return strings.Join(diff, " ")
}

func sortedKeys(m map[string]bool) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

func sameUsages(have []x509.ExtKeyUsage, want []Usage) bool {
	var h, w []string
	for _, u := range have {
		switch u {
		case x509.ExtKeyUsageServerAuth:
			h = append(h, string(UsageServer))
		case x509.ExtKeyUsageClientAuth:
			h = append(h, string(UsageClient))
		default:
			h = append(h, fmt.Sprint(u))
		}
	}
	for _, u := range want {
		w = append(w, string(u))
	}
	return sameStrings(h, w)
}

func keyType(k crypto.Signer) (string, int) {
	switch pub := k.Public().(type) {
	case *ecdsa.PublicKey:
		return "ecdsa", pub.Curve.Params().BitSize
	case *rsa.PublicKey:
		return "rsa", pub.N.BitLen()
	}
	return "unknown", 0
}

// Changed reports whether a plan issues or re-issues anything.
func Changed(changes []Change) bool {
	for _, c := range changes {
		if c.Action != ActionKeep {
			return true
		}
	}
	return false
}
