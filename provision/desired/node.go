package desired

import (
	"fmt"
	"net/netip"
	"path"
	"sort"
	"strings"

	"github.com/kforge/kforge/config"
	"github.com/kforge/kforge/config/netcalc"
	"github.com/kforge/kforge/provision/artifacts"
	"github.com/kforge/kforge/provision/resource"
	"github.com/kforge/kforge/templates"
)

const (
	kubeletUnit = "unit:kubelet.service"
	imagesUnit  = "unit:kforge-images.service"
	imagesDir   = "/var/lib/kforge/images"
	// The kubelet's health endpoint (HTTP, localhost only).
	kubeletHealth = "timeout 3 bash -c 'exec 3<>/dev/tcp/127.0.0.1/10248'"
)

// node adds the sandbox image and the kubelet to every node, after containerd.
func node(c *config.Cluster, set *artifacts.Set, podCIDRs map[string]netip.Prefix, out map[string][]resource.Resource) error {
	dns, err := netcalc.Host(c.ServiceCIDR, 10) // the tenth service address, as kubeadm's cluster DNS
	if err != nil {
		return err
	}
	version := set.Manifest.Kubernetes
	images, err := imageImports(c, set)
	if err != nil {
		return err
	}
	driver := "systemd"
	if c.Kubelet.CgroupDriver == "cgroupfs" {
		driver = "cgroupfs"
	}
	for _, h := range c.Hosts {
		if !h.RunsKubelet() {
			continue
		}
		data := templates.Kubelet{Name: h.Name, IP: h.ClusterAddress(), CgroupDriver: driver, ClusterDNS: dns.String(),
			ClusterDomain: c.ClusterDomain, FailCgroupV1: c.Kubelet.FailCgroupV1, MaxPods: c.Kubelet.MaxPods,
			TLSCipherSuites: tlsCipherSuites, ProtectKernelDefaults: c.Security.ProtectKernelDefaults, ExtraArgs: flags(c.Kubelet.ExtraArgs)}
		conf, err := templates.Render("kubelet-config.yaml", data)
		if err != nil {
			return err
		}
		unit, err := templates.Render("kubelet.service", data)
		if err != nil {
			return err
		}
		kubelet, err := set.Binary("bin/kubelet", "/usr/local/bin/kubelet", "kubelet "+version)
		if err != nil {
			return err
		}
		kubelet.Restarts = []string{kubeletUnit}
		for i, r := range out[h.Name] {
			if r.Kind == resource.File && r.Name == "/etc/kubernetes/kube-proxy.conf" {
				out[h.Name][i].Restarts = append(out[h.Name][i].Restarts, "unit:kube-proxy.service")
			}
			if u := PluginUnit(c.Network); u != "" && r.Kind == resource.File && r.Name == podNetworkKubeconfig {
				out[h.Name][i].Restarts = append(out[h.Name][i].Restarts, "unit:"+u)
			}
			if r.Kind == resource.File && (r.Name == "/etc/kubernetes/kubelet.conf" || strings.HasPrefix(r.Name, KubeletPKIDir+"/") || r.Name == PKIDir+"/ca.crt") {
				out[h.Name][i].Restarts = append(out[h.Name][i].Restarts, kubeletUnit)
			}
		}
		confFile := file("/var/lib/kubelet/config.yaml", conf, 0o600, false, "")
		confFile.Diffable, confFile.Restarts = true, []string{kubeletUnit}
		unitFile := file("/etc/systemd/system/kubelet.service", unit, 0o600, false, "")
		unitFile.Diffable, unitFile.Restarts = true, []string{kubeletUnit}
		proxy, err := kubeProxy(c, set, h, version)
		if err != nil {
			return err
		}
		out[h.Name] = append(out[h.Name], images...)
		out[h.Name] = append(out[h.Name], kubelet, confFile, unitFile,
			resource.Resource{Kind: resource.Unit, Name: "kubelet.service", Enabled: true, Active: true, Health: kubeletHealth})
		out[h.Name] = append(out[h.Name], proxy...)
		podNet, err := podNetwork(c, set, h, podCIDRs)
		if err != nil {
			return err
		}
		out[h.Name] = append(out[h.Name], podNet...)
	}
	return nil
}

// imageImports places the set's image tarballs on a node and imports them into containerd's k8s.io namespace
// (the kubelet's), before the kubelet starts: the sandbox image must be there, since lab hosts and airgapped
// sites reach no registry. A set without images (downloads) has nothing to import: nodes pull. The set's DNS
// image goes only where it is used: with cluster DNS on and no other image configured.
func imageImports(c *config.Cluster, set *artifacts.Set) ([]resource.Resource, error) {
	images := set.Manifest.ImageTarballs()
	if len(images) == 0 {
		return nil, nil
	}
	out := []resource.Resource{dir("/var/lib/kforge", 0o755), dir(imagesDir, 0o755)}
	var tarballs, checks []string
	for _, img := range images {
		if img.Name == set.Manifest.DNSImage && (!c.DNS.Enabled || c.DNS.Image != "") {
			continue
		}
		dest := path.Join(imagesDir, path.Base(img.Path))
		tarball, err := set.Binary(img.Path, dest, img.Name)
		if err != nil {
			return nil, err
		}
		tarball.Mode, tarball.Restarts = 0o644, []string{imagesUnit}
		out = append(out, tarball)
		tarballs = append(tarballs, dest)
		checks = append(checks, fmt.Sprintf("printf '%%s\\n' \"$l\" | grep -qxF '%s'", img.Name))
	}
	unit, err := templates.Render("kforge-images.service", templates.Images{Tarballs: tarballs})
	if err != nil {
		return nil, err
	}
	unitFile := file("/etc/systemd/system/kforge-images.service", unit, 0o644, false, "")
	unitFile.Diffable, unitFile.Restarts = true, []string{imagesUnit}
	health := "l=$(/usr/local/bin/ctr -n k8s.io images ls -q) && " + strings.Join(checks, " && ")
	return append(out, unitFile, resource.Resource{Kind: resource.Unit, Name: "kforge-images.service", Enabled: true, Active: true, Health: health}), nil
}

// kubeProxy makes Service addresses work on the node; health: its healthz port serves.
func kubeProxy(c *config.Cluster, set *artifacts.Set, h config.Host, version string) ([]resource.Resource, error) {
	const unitID = "unit:kube-proxy.service"
	data := templates.KubeProxy{Name: h.Name, PodCIDR: c.PodCIDR.String(), Mode: c.KubeProxy.Mode, ExtraArgs: flags(c.KubeProxy.ExtraArgs)}
	if n := c.KubeProxy.ConntrackMaxPerCore; n != nil {
		data.ConntrackMaxPerCore = fmt.Sprint(*n)
	}
	conf, err := templates.Render("kube-proxy-config.yaml", data)
	if err != nil {
		return nil, err
	}
	unit, err := templates.Render("kube-proxy.service", data)
	if err != nil {
		return nil, err
	}
	bin, err := set.Binary("bin/kube-proxy", "/usr/local/bin/kube-proxy", "kube-proxy "+version)
	if err != nil {
		return nil, err
	}
	bin.Restarts = []string{unitID}
	confFile := file("/var/lib/kube-proxy/config.yaml", conf, 0o644, false, "")
	confFile.Diffable, confFile.Restarts = true, []string{unitID}
	unitFile := file("/etc/systemd/system/kube-proxy.service", unit, 0o600, false, "")
	unitFile.Diffable, unitFile.Restarts = true, []string{unitID}
	return []resource.Resource{dir("/var/lib/kube-proxy", 0o755), bin, confFile, unitFile,
		{Kind: resource.Unit, Name: "kube-proxy.service", Enabled: true, Active: true,
			Health: "timeout 3 bash -c 'exec 3<>/dev/tcp/127.0.0.1/10256'"}}, nil
}

// nodeLabels are the node's labels from the configuration plus one node-role label per role, as
// `kubectl get nodes` shows them.
func nodeLabels(h config.Host) []templates.Label {
	labels := map[string]string{}
	for _, r := range h.Roles {
		labels["node-role.kubernetes.io/"+string(r)] = ""
	}
	for k, v := range h.Labels {
		labels[k] = v
	}
	out := make([]templates.Label, 0, len(labels))
	for k, v := range labels {
		out = append(out, templates.Label{Key: k, Value: v})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Key < out[j].Key })
	return out
}

// nodeTaints are the host's taints; a control-plane host that runs no workloads also gets the usual one.
func nodeTaints(h config.Host) []templates.Taint {
	var out []templates.Taint
	for _, t := range h.Taints {
		out = append(out, templates.Taint{Key: t.Key, Value: t.Value, Effect: t.Effect})
	}
	if h.Has(config.RoleControlPlane) && !h.Has(config.RoleWorker) {
		out = append(out, templates.Taint{Key: "node-role.kubernetes.io/control-plane", Effect: "NoSchedule"})
	}
	return out
}
