package desired

import (
	"path"
	"sort"

	"github.com/kforge/kforge/config"
	"github.com/kforge/kforge/provision/artifacts"
	"github.com/kforge/kforge/provision/resource"
	"github.com/kforge/kforge/templates"
)

const containerdUnit = "unit:containerd.service"

// defaultSandboxImage is what containerd v2.4.2 pins when configured with nothing (`containerd config default`
// of the artifact set); kforge imports it on nodes once it ships a pause image.
const defaultSandboxImage = "registry.k8s.io/pause:3.10.2"

// containerdHealth asks the daemon itself over its socket.
const containerdHealth = "/usr/local/bin/ctr --address /run/containerd/containerd.sock version"

// containerd adds the container runtime to every node: containerd, its shim and ctr, runc, the CNI plugins,
// the config and the unit.
func containerd(c *config.Cluster, set *artifacts.Set, out map[string][]resource.Resource) error {
	sandbox := c.Containerd.SandboxImage
	switch {
	case sandbox != "":
	case set.Manifest.PauseImage != "":
		sandbox = set.Manifest.PauseImage // shipped with the set and imported on every node
	default:
		sandbox = defaultSandboxImage
	}
	mirrors, err := registryHosts(c.Containerd.RegistryMirrors)
	if err != nil {
		return err
	}
	configPath := ""
	if len(mirrors) > 0 {
		configPath = registryConfigPath
	}
	conf, err := templates.Render("containerd-config.toml", templates.Containerd{SandboxImage: sandbox,
		// kforge refuses hosts without systemd as PID 1 (preflight), so "auto" means systemd.
		SystemdCgroup: c.Kubelet.CgroupDriver != "cgroupfs", RestrictOOMScoreAdj: c.Containerd.RestrictOOMScoreAdj,
		RegistryConfigPath: configPath})
	if err != nil {
		return err
	}
	unit, err := templates.Render("containerd.service", nil)
	if err != nil {
		return err
	}
	version := set.Manifest.Containerd
	for _, h := range c.Hosts {
		if !h.RunsKubelet() {
			continue
		}
		rs := []resource.Resource{dir("/etc/containerd", 0o755), dir("/opt/cni", 0o755), dir("/opt/cni/bin", 0o755),
			dir("/etc/cni", 0o755), dir("/etc/cni/net.d", 0o755)}
		for _, b := range []struct{ src, dest, what string }{
			{"bin/containerd", "/usr/local/bin/containerd", "containerd " + version},
			{"bin/containerd-shim-runc-v2", "/usr/local/bin/containerd-shim-runc-v2", "containerd-shim-runc-v2 " + version},
			{"bin/ctr", "/usr/local/bin/ctr", "ctr " + version},
			{"bin/runc", "/usr/local/sbin/runc", "runc"},
			{"cni/bridge", "/opt/cni/bin/bridge", "CNI bridge"},
			{"cni/host-local", "/opt/cni/bin/host-local", "CNI host-local"},
			{"cni/loopback", "/opt/cni/bin/loopback", "CNI loopback"},
			{"cni/portmap", "/opt/cni/bin/portmap", "CNI portmap"},
		} {
			r, err := set.Binary(b.src, b.dest, b.what)
			if err != nil {
				return err
			}
			if path.Dir(b.dest) == "/usr/local/bin" && b.src != "bin/ctr" {
				r.Restarts = []string{containerdUnit}
			}
			rs = append(rs, r)
		}
		confFile := file("/etc/containerd/config.toml", conf, 0o644, false, "")
		confFile.Diffable, confFile.Restarts = true, []string{containerdUnit}
		unitFile := file("/etc/systemd/system/containerd.service", unit, 0o644, false, "")
		unitFile.Diffable, unitFile.Restarts = true, []string{containerdUnit}
		rs = append(rs, mirrors...)
		rs = append(rs, confFile, unitFile,
			resource.Resource{Kind: resource.Unit, Name: "containerd.service", Enabled: true, Active: true, Health: containerdHealth})
		out[h.Name] = append(out[h.Name], rs...)
	}
	return nil
}

// registryConfigPath is where containerd looks for each registry's hosts.toml (its documented default place).
const registryConfigPath = "/etc/containerd/certs.d"

// registryHosts is a hosts.toml per registry with mirrors, in their directories. containerd reads these files at
// every pull, so a change to them restarts nothing; only turning mirrors on or off changes config.toml.
func registryHosts(mirrors map[string][]string) ([]resource.Resource, error) {
	if len(mirrors) == 0 {
		return nil, nil
	}
	rs := []resource.Resource{dir(registryConfigPath, 0o755)}
	registries := make([]string, 0, len(mirrors))
	for r := range mirrors {
		registries = append(registries, r)
	}
	sort.Strings(registries)
	for _, registry := range registries {
		server := "https://" + registry
		switch registry {
		case "_default":
			server = "" // the registry an image names, whichever it is
		case "docker.io":
			server = "https://registry-1.docker.io" // docker.io names images; this host serves them
		}
		content, err := templates.Render("containerd-hosts.toml", templates.ContainerdHosts{Registry: registry, Server: server, Mirrors: mirrors[registry]})
		if err != nil {
			return nil, err
		}
		d := path.Join(registryConfigPath, registry)
		f := file(path.Join(d, "hosts.toml"), content, 0o644, false, "")
		f.Diffable = true
		rs = append(rs, dir(d, 0o755), f)
	}
	return rs, nil
}
