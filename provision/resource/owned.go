package resource

import (
	"fmt"
	"path"
	"regexp"
	"slices"
	"strings"
)

// Places kforge owns, and the names it gives in places it shares with the host. Removal goes by this list, not
// only by the state: a crafted or corrupted state (or saved plan) that names sshd.service, /etc/passwd or a
// user of the host's own must not have an apply remove it. Whatever kforge places must fit here (desired's tests
// check every example's resources); the list grows with what kforge learns to place.
var (
	// Directories that are wholly kforge's: anything beneath them is one of its files.
	ownedTrees = []string{"/etc/kubernetes", "/etc/kforge", "/etc/containerd", "/etc/cni/net.d", "/opt/cni/bin",
		"/var/lib/kubelet", "/var/lib/kube-proxy", "/var/lib/kforge", "/usr/local/lib/kforge"}
	// Components' names, as units, binaries and system users: Kubernetes', etcd's, containerd's, the pod-network
	// plugins' and kforge's own.
	componentName = regexp.MustCompile(`^(kube-apiserver|kube-controller-manager|kube-scheduler|kube-proxy|kubelet|kubectl|flanneld|kube-router|` +
		`etcd|etcdctl|etcdutl|containerd|containerd-shim-runc-v2|ctr|crictl|runc|kforge-[a-z0-9-]+)$`)
	// Drop-in directories the host shares: kforge's files there carry its name.
	dropIns = []string{"/etc/sysctl.d", "/etc/modules-load.d"}
	// Where the host keeps binaries and units beside kforge's.
	binDirs = []string{"/usr/local/bin", "/usr/local/sbin"}
	unitDir = "/etc/systemd/system"
)

// Owned says whether a thing of this kind and name is one kforge may have placed, and so may remove. Directories
// are exempt (kforge removes only empty ones), and so are sysctls and modules (removing one changes nothing).
func Owned(k Kind, name string) error {
	switch k {
	case File, Binary, Symlink:
		dir, base := path.Split(name)
		dir = path.Clean(dir)
		for _, tree := range ownedTrees {
			if strings.HasPrefix(name, tree+"/") {
				return nil
			}
		}
		switch {
		case slices.Contains(dropIns, dir) && strings.Contains(base, "kforge"):
			return nil
		case slices.Contains(binDirs, dir) && componentName.MatchString(base):
			return nil
		case dir == unitDir && componentName.MatchString(unitStem(base)):
			return nil
		}
		return fmt.Errorf("%s is not a file kforge places: it owns %s, and only its components' files in %s, %s and %s",
			name, strings.Join(ownedTrees, ", "), unitDir, strings.Join(binDirs, ", "), strings.Join(dropIns, ", "))
	case Unit:
		if !componentName.MatchString(unitStem(name)) {
			return fmt.Errorf("%s is not a unit kforge makes (those are named after a component: kubelet, etcd, containerd, kforge-…)", name)
		}
	case User:
		if !componentName.MatchString(name) {
			return fmt.Errorf("%s is not a user kforge makes (those are named after the component that runs as one, such as etcd)", name)
		}
	}
	return nil
}

// unitStem is a unit's name without its type and instance: "kubelet" of "kubelet.service", "kforge-x" of
// "kforge-x@a.service".
func unitStem(unit string) string {
	if i := strings.LastIndexByte(unit, '.'); i > 0 {
		unit = unit[:i]
	}
	if i := strings.IndexByte(unit, '@'); i > 0 {
		unit = unit[:i]
	}
	return unit
}
