package preflight

import (
	"fmt"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/kforge/kforge/provision/facts"
)

// sameAs lists the other hosts whose value (by key) equals this host's.
func sameAs(t Target, key func(*facts.Facts) string) []string {
	mine := key(t.Facts)
	var dups []string
	for _, o := range t.Others {
		if v := key(o.Facts); v != "" && strings.EqualFold(v, mine) {
			dups = append(dups, o.Name)
		}
	}
	return dups
}

// checkUniqueHostname: every role. An error on kubelet hosts (CNI plugins and tools that name nodes after
// the host name would mix the two up), a warning on etcd-only hosts.
func checkUniqueHostname(t Target) Result {
	name := t.Facts.Hostname
	if name == "" {
		return unknown(t, "the host name", "hostname")
	}
	dups := sameAs(t, func(f *facts.Facts) string { return f.Hostname })
	if len(dups) == 0 {
		return ok("%s", name)
	}
	detail := fmt.Sprintf("%s, as on %s", name, strings.Join(dups, ", "))
	if !t.Host.RunsKubelet() {
		return warning("%s", detail)
	}
	return failure("%s", detail)
}

// checkUniqueMachineID: every role. An error: cloned hosts sharing /etc/machine-id confuse journald, DHCP
// (systemd-networkd derives its client ID from it) and the node identity the kubelet reports.
func checkUniqueMachineID(t Target) Result {
	id := t.Facts.MachineID
	if id == "" {
		return unknown(t, "the machine-id", "machine-id")
	}
	if dups := sameAs(t, func(f *facts.Facts) string { return f.MachineID }); len(dups) > 0 {
		return failure("%s, as on %s", id, strings.Join(dups, ", "))
	}
	return ok("%s", id)
}

// checkUniqueProductUUID: every role. A warning: Kubernetes asks for distinct product_uuids (the kubelet
// reports it as the node's system UUID), but nothing kforge installs breaks on duplicates. Hosts without
// DMI have none, and the check does not apply.
func checkUniqueProductUUID(t Target) Result {
	id := t.Facts.ProductUUID
	if id == "" {
		return skipped("no product_uuid on this host (no DMI: containers and many ARM boards have none)")
	}
	if dups := sameAs(t, func(f *facts.Facts) string { return f.ProductUUID }); len(dups) > 0 {
		return warning("%s, as on %s", id, strings.Join(dups, ", "))
	}
	return ok("%s", id)
}

// maxClockSkew is how far a host's clock may be from the operator's: certificates kforge issues on the
// operator's machine must already be valid on the host, and etcd members must agree on time.
const maxClockSkew = 30 * time.Second

// checkClockSkew: every role. Error when the host's clock is more than 30 s from the operator's.
func checkClockSkew(t Target) Result {
	if t.Facts.Time.IsZero() {
		return unknown(t, "the host's clock", "time")
	}
	if t.Reference.IsZero() {
		return warning("no time of the operator's machine to compare the host's clock with")
	}
	skew := t.Facts.Time.Sub(t.Reference)
	abs, side := skew, "ahead of"
	if skew < 0 {
		abs, side = -skew, "behind"
	}
	detail := fmt.Sprintf("%s %s this machine's", abs.Round(time.Second), side)
	if abs < time.Second {
		detail = "within a second of this machine's"
	}
	if abs > maxClockSkew {
		return failure("%s (more than %s)", detail, maxClockSkew)
	}
	return ok("%s", detail)
}

// foreignSigns lists what on the host shows an installed Kubernetes: static Pod manifests, kubeadm's
// kubeconfigs and certificates, etcd or kubelet data, k3s, RKE2 or MicroK8s directories, Kubernetes unit
// files that kforge did not write, and running Kubernetes components.
func foreignSigns(k *facts.Kubernetes) []string {
	var signs []string
	for _, p := range k.Paths {
		switch {
		case p.Dir && p.Entries == 0:
			// An empty directory is what a package or an earlier cleanup leaves: no sign.
		case p.Path == "/etc/kubernetes/manifests":
			signs = append(signs, fmt.Sprintf("static Pod manifests in %s (%d)", p.Path, p.Entries))
		case p.Path == "/etc/kubernetes/pki":
			signs = append(signs, "certificates in "+p.Path)
		case p.Path == "/var/lib/etcd":
			signs = append(signs, "etcd data in "+p.Path)
		case p.Path == "/var/lib/kubelet":
			signs = append(signs, "kubelet state in "+p.Path)
		case strings.Contains(p.Path, "rancher"):
			signs = append(signs, "k3s or RKE2 files in "+p.Path)
		case strings.Contains(p.Path, "microk8s"):
			signs = append(signs, "MicroK8s in "+p.Path)
		default:
			signs = append(signs, p.Path)
		}
	}
	for _, u := range k.Units {
		if !u.KforgeMarker {
			signs = append(signs, "unit "+u.Path+" (not written by kforge)")
		}
	}
	for _, p := range k.Processes {
		switch p.Name {
		case "containerd", "dockerd", "crio":
			// A container runtime alone is not a Kubernetes.
		default:
			signs = append(signs, fmt.Sprintf("%s running (pid %d)", p.Name, p.PID))
		}
	}
	sort.Strings(signs)
	return signs
}

// checkExistingKubernetes: every role. A host where kforge left its marker (facts.MarkerFile) is kforge's;
// if the marker names another cluster, or the host has no marker but shows signs of a Kubernetes, kforge
// must not install over it: an error.
func checkExistingKubernetes(t Target) Result {
	k := t.Facts.Kubernetes
	if k == nil {
		return unknown(t, "whether Kubernetes is installed already", "kforge-marker")
	}
	signs := foreignSigns(k)
	if k.KforgeManaged {
		if k.KforgeMarker != "" && k.KforgeMarker != t.Cluster.Name {
			return Result{Severity: SeverityError,
				Detail: fmt.Sprintf("kforge installed cluster %q here (%s), not %q", k.KforgeMarker, facts.MarkerFile, t.Cluster.Name),
				Fix:    "Check that the configuration names the right hosts; to reuse this one, remove the other cluster from it first."}
		}
		if len(signs) > 0 {
			return ok("installed by kforge (%s): %s", facts.MarkerFile, strings.Join(signs, "; "))
		}
		return ok("nothing but kforge's marker (%s)", facts.MarkerFile)
	}
	if len(signs) > 0 {
		return failure("a Kubernetes that kforge did not install (no %s): %s", facts.MarkerFile, strings.Join(signs, "; "))
	}
	return ok("none")
}

func sortedCopy(s []string) []string {
	out := slices.Clone(s)
	slices.Sort(out)
	return out
}
