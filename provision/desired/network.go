package desired

import (
	"fmt"
	"net/netip"
	"path"
	"strings"

	"github.com/kforge/kforge/config"
	"github.com/kforge/kforge/pki"
	"github.com/kforge/kforge/provision/artifacts"
	"github.com/kforge/kforge/provision/plan"
	"github.com/kforge/kforge/provision/resource"
	"github.com/kforge/kforge/templates"
)

// cniConfig is where containerd finds the pod network. The name is the one containerd itself wrote, from a
// template, for clusters of an earlier kforge: theirs is replaced in place rather than left to shadow this one.
const cniConfig = "/etc/cni/net.d/10-containerd-net.conflist"

// The plugins' units, which also tell which plugin a cluster runs (PluginOf).
const (
	routesUnit     = "kforge-routes.service"
	flannelUnit    = "flanneld.service"
	kubeRouterUnit = "kube-router.service"
)

// MTUs of the pods' interfaces: VXLAN takes 50 bytes of a 1500-byte frame, IP-in-IP (kube-router's tunnel to
// nodes on other subnets) 20. Routes leave the host's own.
const (
	flannelMTU    = 1450
	kubeRouterMTU = 1480
)

// podNetwork is how the node's pods reach the others': its CNI config, and the routes kforge writes or the
// plugin that learns them.
func podNetwork(c *config.Cluster, set *artifacts.Set, h config.Host, podCIDRs map[string]netip.Prefix) ([]resource.Resource, error) {
	p, ok := podCIDRs[h.Name]
	if !ok {
		return nil, fmt.Errorf("node %s has no pod CIDR", h.Name)
	}
	cni := templates.CNI{PodCIDR: p.String()}
	var rest []resource.Resource
	var err error
	switch c.Network.Plugin {
	case config.PluginFlannel:
		cni.MTU = flannelMTU
		rest, err = flannel(c, set, h)
	case config.PluginKubeRouter:
		cni.MTU = kubeRouterMTU
		rest, err = kubeRouter(c, set, h)
	default:
		// Without a plugin nothing else masquerades what pods send out of the cluster.
		cni.IPMasq = true
		rest, err = routesTo(c, h, podCIDRs)
	}
	if err != nil {
		return nil, err
	}
	conf, err := templates.Render("cni.conflist", cni)
	if err != nil {
		return nil, err
	}
	// kforge writes it (0600, CIS 1.1.9) from the CIDR it assigned; containerd notices the file and loads it,
	// so nothing restarts.
	f := file(cniConfig, conf, 0o600, false, "")
	f.Diffable = true
	return append([]resource.Resource{f}, rest...), nil
}

// routesTo sends the other nodes' pod traffic to them: a route per node, kept in a oneshot unit so that a reboot
// restores them, and tagged (proto 200) so that the unit replaces exactly its own routes when nodes come and go.
func routesTo(c *config.Cluster, self config.Host, podCIDRs map[string]netip.Prefix) ([]resource.Resource, error) {
	var routes []templates.Route
	for _, h := range c.Hosts {
		p, ok := podCIDRs[h.Name]
		if !ok || h.Name == self.Name {
			continue
		}
		if _, err := netip.ParseAddr(h.ClusterAddress()); err != nil {
			return nil, fmt.Errorf("node %s needs an IP address for the pod routes: set internal_address", h.Name)
		}
		routes = append(routes, templates.Route{Destination: p.String(), Via: h.ClusterAddress()})
	}
	unit, err := templates.Render("kforge-routes.service", templates.Routes{Routes: routes})
	if err != nil {
		return nil, err
	}
	unitFile := file("/etc/systemd/system/"+routesUnit, unit, 0o644, false, "")
	unitFile.Diffable, unitFile.Restarts = true, []string{"unit:" + routesUnit}
	return []resource.Resource{unitFile, {Kind: resource.Unit, Name: routesUnit, Enabled: true, Active: true}}, nil
}

// podNetworkKubeconfig is the plugin's credentials on every node.
var podNetworkKubeconfig = kubeconfigPath(pki.PodNetworkCert)

// PluginUnit is the unit of the cluster's pod-network plugin, "" for routes (a oneshot nothing restarts).
func PluginUnit(n config.Network) string {
	switch n.Plugin {
	case config.PluginFlannel:
		return flannelUnit
	case config.PluginKubeRouter:
		return kubeRouterUnit
	}
	return ""
}

// PluginOf tells which pod-network plugin placed a host's resources (as the state records them), "" when none
// did. The caller refuses to switch a running cluster's plugin: each leaves interfaces, routes and firewall
// rules the next does not know, and running pods keep the first one's addresses and routes.
func PluginOf(managed []plan.Managed) string {
	for _, m := range managed {
		if resource.Kind(m.Kind) != resource.Unit {
			continue
		}
		switch m.Name {
		case routesUnit:
			return config.PluginRoutes
		case flannelUnit:
			return config.PluginFlannel
		case kubeRouterUnit:
			return config.PluginKubeRouter
		}
	}
	return ""
}

// flannel runs flanneld, a VXLAN overlay between the nodes; health: it wrote the node's subnet and serves
// its health port.
func flannel(c *config.Cluster, set *artifacts.Set, h config.Host) ([]resource.Resource, error) {
	netConf := path.Join(pluginDir(flannelUnit), "net-conf.json")
	conf, err := templates.Render("flannel-net-conf.json", templates.FlannelNetConf{Network: c.PodCIDR.String(), Backend: "vxlan"})
	if err != nil {
		return nil, err
	}
	return plugin(set, h, "bin/flanneld", "flanneld "+set.Manifest.Flannel, flannelUnit,
		templates.PodNetworkPlugin{Name: h.Name, IP: h.ClusterAddress(), Kubeconfig: podNetworkKubeconfig, NetConf: netConf},
		"test -s /run/flannel/subnet.env && timeout 3 bash -c 'exec 3<>/dev/tcp/127.0.0.1/10267'",
		templates.PodNetworkStop{Chains: "FLANNEL-[A-Z0-9-]+", Links: []string{"flannel.1"}, Dirs: []string{"/run/flannel"}},
		file(netConf, conf, 0o644, false, ""))
}

// kubeRouter runs kube-router: routes to the other nodes' pod CIDRs learnt over BGP, and NetworkPolicy in the
// node's firewall; health: its health port serves.
func kubeRouter(c *config.Cluster, set *artifacts.Set, h config.Host) ([]resource.Resource, error) {
	return plugin(set, h, "bin/kube-router", "kube-router "+set.Manifest.KubeRouter, kubeRouterUnit,
		templates.PodNetworkPlugin{Name: h.Name, Kubeconfig: podNetworkKubeconfig, ServiceCIDR: c.ServiceCIDR.String()},
		"timeout 3 bash -c 'exec 3<>/dev/tcp/127.0.0.1/20244'",
		// Its injected routes carry protocol 17 (it is what `ip route` shows for them).
		templates.PodNetworkStop{Chains: "KUBE-ROUTER-[A-Z]+|KUBE-POD-FW-[A-Z0-9]+|KUBE-NWPLCY-[A-Z0-9]+",
			IPSets: "kube-router-[a-z0-9-]+|KUBE-(SRC|DST)-[A-Z0-9]+", RouteProto: 17})
}

// pluginDir holds a plugin's files: /etc/kubernetes/flanneld, /etc/kubernetes/kube-router.
func pluginDir(unit string) string {
	return path.Join(KubernetesDir, strings.TrimSuffix(unit, ".service"))
}

// plugin is a plugin's binary, its unit (the template of the unit's name, rendered from data), the files it
// reads, each restarting it, and the script that cleans up after it when kforge removes it.
func plugin(set *artifacts.Set, h config.Host, binPath, version, unitName string, data templates.PodNetworkPlugin,
	health string, stop templates.PodNetworkStop, files ...resource.Resource) ([]resource.Resource, error) {
	if _, err := netip.ParseAddr(h.ClusterAddress()); err != nil {
		return nil, fmt.Errorf("node %s needs an IP address for the pod network: set internal_address", h.Name)
	}
	unitID := "unit:" + unitName
	bin, err := set.Binary(binPath, "/usr/local/bin/"+path.Base(binPath), version)
	if err != nil {
		return nil, fmt.Errorf("%w (an artifact set with the pod-network plugins: make artifacts)", err)
	}
	bin.Restarts = []string{unitID}
	stop.Unit = unitName
	script, err := templates.Render("pod-network-stop.sh", stop)
	if err != nil {
		return nil, err
	}
	data.StopScript = path.Join(pluginDir(unitName), "stop.sh")
	unit, err := templates.Render(unitName, data)
	if err != nil {
		return nil, err
	}
	// The script runs only when the unit stops: a new one need not restart it.
	stopFile := file(data.StopScript, script, 0o755, false, "")
	stopFile.Diffable = true
	out := []resource.Resource{bin, dir(pluginDir(unitName), 0o755), stopFile}
	for _, f := range append(files, file("/etc/systemd/system/"+unitName, unit, 0o644, false, "")) {
		f.Diffable, f.Restarts = true, []string{unitID}
		out = append(out, f)
	}
	return append(out, resource.Resource{Kind: resource.Unit, Name: unitName, Enabled: true, Active: true, Health: health}), nil
}
