package desired

import (
	"fmt"
	"path"
	"strings"

	"github.com/kforge/kforge/config"
	"github.com/kforge/kforge/config/netcalc"
	"github.com/kforge/kforge/provision/artifacts"
	"github.com/kforge/kforge/templates"
)

// AddonsDir holds the add-ons' manifests on control-plane hosts, applied with the other API objects.
const AddonsDir = "/etc/kubernetes/kforge/addons"

// OfficialDNSImage is the CoreDNS image kubeadm v1.37.2 deploys (cmd/kubeadm/app/constants: CoreDNSVersion
// v1.14.6), taken when the artifact set ships no DNS image (downloads, mirrors) and dns.image names none.
const OfficialDNSImage = "registry.k8s.io/coredns/coredns:v1.14.6"

// addon is a manifest kforge applies with its own objects, or whose objects it deletes when turned off.
type addon struct {
	name     string // the kforge.io/addon label of its objects
	manifest []byte // nil when turned off
}

// File is where its manifest goes.
func (a addon) File() string { return path.Join(AddonsDir, a.name+".yaml") }

// addons are the add-ons kforge knows, each rendered or turned off by the configuration.
func addons(c *config.Cluster, set *artifacts.Set) ([]addon, error) {
	dns, err := dnsManifest(c, set)
	if err != nil {
		return nil, err
	}
	return []addon{{name: "dns", manifest: dns}}, nil
}

// dnsImage is the CoreDNS image: the configuration's, else the set's, else the official one. A set of local
// artifacts without one would leave nodes pulling from a registry they may not reach: that is an error.
func dnsImage(c *config.Cluster, set *artifacts.Set) (string, error) {
	switch {
	case c.DNS.Image != "":
		return c.DNS.Image, nil
	case set.Manifest.DNSImage != "":
		return set.Manifest.DNSImage, nil
	case len(set.Manifest.ImageTarballs()) > 0:
		return "", fmt.Errorf("artifacts: %s ships images but no DNS image (a set from before CoreDNS: run make artifacts again), and dns.image names none", set.Dir)
	}
	return OfficialDNSImage, nil
}

// dnsManifest renders CoreDNS' objects, or nil when cluster DNS is off.
func dnsManifest(c *config.Cluster, set *artifacts.Set) ([]byte, error) {
	if !c.DNS.Enabled {
		return nil, nil
	}
	ip, err := netcalc.Host(c.ServiceCIDR, 10) // the tenth service address, as kubeadm's cluster DNS
	if err != nil {
		return nil, err
	}
	image, err := dnsImage(c, set)
	if err != nil {
		return nil, err
	}
	forward := "/etc/resolv.conf" // the node's: the pods run with dnsPolicy Default
	if c.DNS.Upstream != nil {
		forward = strings.Join(c.DNS.Upstream, " ")
	}
	return templates.Render("coredns.yaml", templates.DNS{Domain: c.ClusterDomain, ClusterIP: ip.String(),
		Image: image, Replicas: c.DNS.Replicas, MinDomains: min(c.DNS.Replicas, dnsNodes(c)), Forward: forward})
}

// dnsNodes counts the nodes CoreDNS may run on: those without taints beyond the control plane's, which it
// tolerates.
func dnsNodes(c *config.Cluster) int {
	n := 0
	for _, h := range c.Hosts {
		if !h.RunsKubelet() {
			continue
		}
		tolerated := true
		for _, t := range nodeTaints(h) {
			if t.Key != "node-role.kubernetes.io/control-plane" && t.Key != "CriticalAddonsOnly" {
				tolerated = false
			}
		}
		if tolerated {
			n++
		}
	}
	return n
}
