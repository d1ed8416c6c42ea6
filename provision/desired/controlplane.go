package desired

import (
	"fmt"
	"net/netip"
	"slices"
	"sort"
	"strings"

	"github.com/kforge/kforge/config"
	"github.com/kforge/kforge/pki"
	"github.com/kforge/kforge/provision/artifacts"
	"github.com/kforge/kforge/provision/resource"
	"github.com/kforge/kforge/templates"
)

// Health checks of the control plane, with what a host has: kubectl and bash (no curl on minimal hosts). The
// API server must say it is ready; controller-manager and scheduler must serve their secure port.
const (
	kubectlAdmin = "/usr/local/bin/kubectl --kubeconfig=/etc/kubernetes/admin.conf --request-timeout=5s "
	// apiServerHealth asks this host's API server, not admin.conf's server: behind an api_endpoint that is a
	// load balancer, which would answer for another, ready API server.
	apiServerHealth = kubectlAdmin + "--server=https://127.0.0.1:%d get --raw=/readyz"
	portHealth      = "timeout 3 bash -c 'exec 3<>/dev/tcp/127.0.0.1/%d'"
)

// apiServerShutdownDelay is --shutdown-delay-duration on several control-plane hosts.
const apiServerShutdownDelay = "10s"

// APIServerHealth is the check that this host's API server, on port, is ready.
func APIServerHealth(port int) string { return fmt.Sprintf(apiServerHealth, port) }

// controlPlane adds the API server, controller-manager, scheduler and kubectl to every control-plane host, after
// etcd on the same host: the controller-manager exits if it starts before the API server is ready.
func controlPlane(c *config.Cluster, set *artifacts.Set, podCIDRs map[string]netip.Prefix, out map[string][]resource.Resource) error {
	var etcdServers []string
	for _, h := range c.HostsWith(config.RoleEtcd) {
		ip, err := netip.ParseAddr(h.ClusterAddress())
		if err != nil {
			return fmt.Errorf("etcd member %s needs an IP address: set internal_address", h.Name)
		}
		etcdServers = append(etcdServers, "https://"+netipPort(ip, 2379))
	}
	version := set.Manifest.Kubernetes
	// Behind a balancer, a stopping API server fails /readyz for a while before it stops listening: enough for
	// a balancer that checks every 2 s and gives up after 3 failures (HAProxy's defaults) to send no new request.
	shutdownDelay := ""
	if _, set := c.APIServer.ExtraArgs["shutdown-delay-duration"]; !set && len(c.HostsWith(config.RoleControlPlane)) > 1 {
		shutdownDelay = apiServerShutdownDelay
	}
	for _, h := range c.HostsWith(config.RoleControlPlane) {
		if _, err := netip.ParseAddr(h.ClusterAddress()); err != nil {
			return fmt.Errorf("control-plane host %s needs an IP address to advertise: set internal_address", h.Name)
		}
		data := templates.ControlPlane{IP: h.ClusterAddress(), Port: c.APIServer.Port, EtcdServers: strings.Join(etcdServers, ","),
			ClusterName: c.Name, ClusterDomain: c.ClusterDomain, ServiceCIDR: c.ServiceCIDR.String(), ShutdownDelay: shutdownDelay}
		securityData(c.Security, &data)
		security, err := apiServerSecurity(data)
		if err != nil {
			return err
		}
		out[h.Name] = append(out[h.Name], security...)
		kubectl, err := set.Binary("bin/kubectl", "/usr/local/bin/kubectl", "kubectl "+version)
		if err != nil {
			return err
		}
		out[h.Name] = append(out[h.Name], kubectl)
		for _, comp := range []struct {
			name   string
			args   map[string]string
			health string
			// inputs are the files whose change restarts the component (path prefixes), but for those in except
			inputs, except []string
		}{
			{"kube-apiserver", c.APIServer.ExtraArgs, fmt.Sprintf(apiServerHealth, c.APIServer.Port),
				[]string{PKIDir + "/", "/etc/kubernetes/encryption-config.yaml", AuditPolicyFile, AuthenticationConfigFile, AdmissionConfigFile},
				[]string{EtcdPKIDir + "/server", EtcdPKIDir + "/peer", ClusterSigningCert, ClusterSigningKey, PKIDir + "/controller-manager-serving.",
					PKIDir + "/scheduler-serving."}},
			{"kube-controller-manager", c.ControllerManager.ExtraArgs, fmt.Sprintf(portHealth, 10257),
				[]string{"/etc/kubernetes/controller-manager.conf", PKIDir + "/ca.", PKIDir + "/sa.", PKIDir + "/front-proxy-ca.", ClusterSigningCert, ClusterSigningKey,
					PKIDir + "/controller-manager-serving."}, nil},
			{"kube-scheduler", c.Scheduler.ExtraArgs, fmt.Sprintf(portHealth, 10259),
				[]string{"/etc/kubernetes/scheduler.conf", PKIDir + "/scheduler-serving."}, nil},
		} {
			unitID := resource.ID(resource.Unit, comp.name+".service")
			data.ExtraArgs = flags(comp.args)
			unit, err := templates.Render(comp.name+".service", data)
			if err != nil {
				return err
			}
			bin, err := set.Binary("bin/"+comp.name, "/usr/local/bin/"+comp.name, comp.name+" "+version)
			if err != nil {
				return err
			}
			bin.Restarts = []string{unitID}
			for i, r := range out[h.Name] {
				if r.Kind == resource.File && hasPrefix(r.Name, comp.inputs) && !hasPrefix(r.Name, comp.except) {
					out[h.Name][i].Restarts = append(out[h.Name][i].Restarts, unitID)
				}
			}
			unitFile := file("/etc/systemd/system/"+comp.name+".service", unit, 0o600, false, "")
			unitFile.Diffable, unitFile.Restarts = true, []string{unitID}
			out[h.Name] = append(out[h.Name], bin, unitFile,
				resource.Resource{Kind: resource.Unit, Name: comp.name + ".service", Enabled: true, Active: true, Health: comp.health})
		}
		objects, err := apiObjects(c, set, podCIDRs)
		if err != nil {
			return err
		}
		out[h.Name] = append(out[h.Name], objects...)
	}
	return nil
}

// apiObjects are the API objects kforge manages, applied on every control-plane host by a oneshot unit after the
// API server is ready (server-side apply: the same objects from every host agree), re-run when they change: its
// own objects and the add-ons' manifests. The script names every manifest and every add-on turned off, so that
// turning one on or off changes the script and re-runs the unit.
func apiObjects(c *config.Cluster, set *artifacts.Set, podCIDRs map[string]netip.Prefix) ([]resource.Resource, error) {
	const unitID = "unit:kforge-objects.service"
	var nodes []templates.Node
	for _, h := range c.Hosts {
		if p, ok := podCIDRs[h.Name]; ok {
			nodes = append(nodes, templates.Node{Name: h.Name, PodCIDR: p.String(), Labels: nodeLabels(h), Taints: nodeTaints(h)})
		}
	}
	objects, err := templates.Render("kforge-objects.yaml", templates.Objects{Nodes: nodes, PodNetwork: c.Network.Plugin, PodNetworkUser: pki.PodNetworkUser})
	if err != nil {
		return nil, err
	}
	unit, err := templates.Render("kforge-objects.service", nil)
	if err != nil {
		return nil, err
	}
	add, err := addons(c, set)
	if err != nil {
		return nil, err
	}
	const objectsFile = "/etc/kubernetes/kforge/objects.yaml"
	data := templates.ObjectsScript{Files: []string{objectsFile}}
	var addonFiles []resource.Resource
	for _, a := range add {
		if a.manifest == nil {
			data.Off = append(data.Off, a.name)
			continue
		}
		f := file(a.File(), a.manifest, 0o644, false, "")
		f.Diffable, f.Restarts = true, []string{unitID}
		addonFiles = append(addonFiles, f)
		data.Files = append(data.Files, a.File())
	}
	script, err := templates.Render("kforge-objects.sh", data)
	if err != nil {
		return nil, err
	}
	scriptFile := file("/etc/kubernetes/kforge/apply-objects.sh", script, 0o755, false, "")
	scriptFile.Diffable, scriptFile.Restarts = true, []string{unitID}
	objFile := file(objectsFile, objects, 0o644, false, "")
	objFile.Diffable, objFile.Restarts = true, []string{unitID}
	unitFile := file("/etc/systemd/system/kforge-objects.service", unit, 0o644, false, "")
	unitFile.Diffable, unitFile.Restarts = true, []string{unitID}
	out := []resource.Resource{dir("/etc/kubernetes/kforge", 0o755), objFile}
	if len(addonFiles) > 0 {
		out = append(append(out, dir(AddonsDir, 0o755)), addonFiles...)
	}
	return append(out, scriptFile, unitFile, resource.Resource{Kind: resource.Unit, Name: "kforge-objects.service", Enabled: true, Active: true,
		Health: kubectlAdmin + "get clusterrolebinding kforge:apiserver-kubelet-api"}), nil
}

// hasPrefix reports whether name starts with one of prefixes.
func hasPrefix(name string, prefixes []string) bool {
	return slices.ContainsFunc(prefixes, func(p string) bool { return strings.HasPrefix(name, p) })
}

// unitEscape keeps systemd from reading '%' as a specifier and '$' as a variable in an ExecStart line: a value
// such as memory.available<10% reaches the component as written. (The configuration refuses what cannot be
// escaped there: blanks, quotes, line breaks.)
var unitEscape = strings.NewReplacer("%", "%%", "$", "$$")

// flags turns extra_args into sorted --name=value flags, escaped for a unit's ExecStart line.
func flags(args map[string]string) []string {
	var out []string
	for k, v := range args {
		out = append(out, "--"+k+"="+unitEscape.Replace(v))
	}
	sort.Strings(out)
	return out
}
