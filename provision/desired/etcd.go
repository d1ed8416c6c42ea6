package desired

import (
	"fmt"
	"net/netip"
	"strings"

	"github.com/kforge/kforge/config"
	"github.com/kforge/kforge/provision/artifacts"
	"github.com/kforge/kforge/provision/resource"
	"github.com/kforge/kforge/templates"
)

const etcdUnit = "unit:etcd.service"

// etcd runs as a user of its own (CIS 1.1.12), owning its data directory; its keys stay root's files, which
// systemd hands it as credentials.
const (
	EtcdUser    = "etcd"
	EtcdDataDir = "/var/lib/etcd"
)

// Etcdctl is etcdctl on an etcd host talking to its own member over TLS, with the health-check client's
// certificate (which the member's client-cert-auth accepts, as any certificate of the etcd CA).
const Etcdctl = "/usr/local/bin/etcdctl --endpoints=https://127.0.0.1:2379 --cacert=" + EtcdPKIDir + "/ca.crt" +
	" --cert=" + EtcdPKIDir + "/healthcheck-client.crt --key=" + EtcdPKIDir + "/healthcheck-client.key"

// EtcdHealth asks the local member: healthy once the member serves and the cluster has quorum.
const EtcdHealth = Etcdctl + " --command-timeout=5s endpoint health"

// etcd adds an etcd member to every etcd host: its user, data directory, binaries and unit; its certificates
// restart it.
func etcd(c *config.Cluster, set *artifacts.Set, out map[string][]resource.Resource) error {
	members := c.HostsWith(config.RoleEtcd)
	var initial []string
	for _, h := range members {
		ip, err := netip.ParseAddr(h.ClusterAddress())
		if err != nil {
			return fmt.Errorf("etcd member %s needs an IP address (%q is a name): set internal_address", h.Name, h.ClusterAddress())
		}
		initial = append(initial, fmt.Sprintf("%s=https://%s", h.Name, netipPort(ip, 2380)))
	}
	version := "etcd " + set.Manifest.Etcd
	for _, h := range members {
		unit, err := templates.Render("etcd.service", templates.Etcd{Name: h.Name, IP: h.ClusterAddress(),
			InitialCluster: strings.Join(initial, ","), Token: "kforge-" + c.Name, TLSCipherSuites: tlsCipherSuites})
		if err != nil {
			return err
		}
		etcdBin, err := set.Binary("bin/etcd", "/usr/local/bin/etcd", version)
		if err != nil {
			return err
		}
		etcdBin.Restarts = []string{etcdUnit}
		etcdctl, err := set.Binary("bin/etcdctl", "/usr/local/bin/etcdctl", "etcdctl "+set.Manifest.Etcd)
		if err != nil {
			return err
		}
		for i, r := range out[h.Name] {
			// The member's own certificates and the CA: a new one takes effect only when etcd restarts.
			if r.Kind == resource.File && strings.HasPrefix(r.Name, EtcdPKIDir+"/") && !strings.Contains(r.Name, "healthcheck") {
				out[h.Name][i].Restarts = append(out[h.Name][i].Restarts, etcdUnit)
			}
		}
		// etcdutl restores snapshots (kforge etcd snapshot restore); sets made before it was added lack it.
		if set.Has("bin/etcdutl") {
			etcdutl, err := set.Binary("bin/etcdutl", "/usr/local/bin/etcdutl", "etcdutl "+set.Manifest.Etcd)
			if err != nil {
				return err
			}
			out[h.Name] = append(out[h.Name], etcdutl)
		}
		snapshots, err := etcdSnapshots(c.Etcd.Snapshots)
		if err != nil {
			return err
		}
		out[h.Name] = append(out[h.Name], snapshots...)
		unitFile := file("/etc/systemd/system/etcd.service", unit, 0o600, false, "")
		unitFile.Diffable, unitFile.Restarts = true, []string{etcdUnit}
		dataDir := dir(EtcdDataDir, 0o700)
		dataDir.Owner, dataDir.Group = EtcdUser, EtcdUser
		out[h.Name] = append(out[h.Name],
			resource.Resource{Kind: resource.User, Name: EtcdUser, Value: EtcdDataDir}, dataDir, etcdBin, etcdctl, unitFile,
			resource.Resource{Kind: resource.Unit, Name: "etcd.service", Enabled: true, Active: true, Health: EtcdHealth})
	}
	return nil
}

func netipPort(ip netip.Addr, port uint16) string { return netip.AddrPortFrom(ip, port).String() }

const snapshotTimer = "kforge-etcd-snapshot.timer"

// etcdSnapshots is a member's scheduled snapshots: a script, a oneshot unit that runs it, a timer, the directory.
func etcdSnapshots(s *config.EtcdSnapshots) ([]resource.Resource, error) {
	if s == nil {
		return nil, nil
	}
	data := templates.EtcdSnapshots{Schedule: s.Schedule, Keep: s.Keep, Dir: s.Dir, Etcdctl: Etcdctl}
	var rs []resource.Resource
	for _, f := range []struct {
		template, path string
		mode           uint32
	}{
		{"kforge-etcd-snapshot.sh", "/usr/local/lib/kforge/etcd-snapshot.sh", 0o755},
		{"kforge-etcd-snapshot.service", "/etc/systemd/system/kforge-etcd-snapshot.service", 0o644},
		{"kforge-etcd-snapshot.timer", "/etc/systemd/system/" + snapshotTimer, 0o644},
	} {
		content, err := templates.Render(f.template, data)
		if err != nil {
			return nil, err
		}
		r := file(f.path, content, f.mode, false, "")
		r.Diffable = true
		if f.template == "kforge-etcd-snapshot.timer" {
			r.Restarts = []string{"unit:" + snapshotTimer}
		}
		rs = append(rs, r)
	}
	return append([]resource.Resource{dir(s.Dir, 0o700), dir("/usr/local/lib/kforge", 0o755)}, append(rs,
		resource.Resource{Kind: resource.Unit, Name: snapshotTimer, Enabled: true, Active: true})...), nil
}
