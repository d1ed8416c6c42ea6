package lab

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

// The image every lab host starts from: Debian 12 with what a Kubernetes node needs and cannot download in the
// lab (hosts have no route out). Changing any of this changes the recipe hash, so a new image gets built.
const (
	imageSuite   = "bookworm"
	imageVariant = "minbase"
	// recipeVersion is bumped when the build steps below change in a way the other inputs do not show.
	recipeVersion = "1"
)

var imagePackages = []string{
	"openssh-server", "systemd", "systemd-sysv", "dbus", "iproute2", "ca-certificates", "iptables", "nftables",
	"conntrack", "ipset", "util-linux", "mount", "ethtool", "socat", "procps", "kmod", "python3",
}

// customizeScript runs in the image (chroot) after debootstrap.
const customizeScript = `set -eu
rm -f /var/cache/apt/archives/*.deb /var/cache/apt/*.bin
rm -f /etc/ssh/ssh_host_*           # each host gets its own keys
: > /etc/machine-id                  # and its own machine-id
printf '# the lab has no DNS\n' > /etc/resolv.conf
systemctl enable systemd-networkd
for u in apt-daily.timer apt-daily-upgrade.timer e2scrub_all.timer e2scrub_reap.service fstrim.timer \
         dpkg-db-backup.timer systemd-networkd-wait-online.service systemd-timesyncd.service; do
  systemctl mask "$u"
done
cat > /usr/local/sbin/kforge-lab-cgroups-rw <<'SCRIPT'
#!/bin/sh
# systemd-nspawn mounts the cgroup v1 controllers read-only; each lab host has its own cgroup subtree, so
# making them writable lets systemd, containerd and the kubelet manage cgroups as on a real machine.
for m in $(awk '$3=="cgroup" && $4 ~ /^ro/ {print $2}' /proc/mounts); do
  mount -o remount,bind,rw "$m" || echo "remount $m failed" >&2
done
SCRIPT
chmod 755 /usr/local/sbin/kforge-lab-cgroups-rw
cat > /etc/systemd/system/kforge-lab-cgroups-rw.service <<'UNIT'
[Unit]
Description=Make cgroup v1 controllers writable in a kforge lab host
DefaultDependencies=no
Before=sysinit.target
ConditionVirtualization=systemd-nspawn
[Service]
Type=oneshot
RemainAfterExit=yes
ExecStart=/usr/local/sbin/kforge-lab-cgroups-rw
[Install]
WantedBy=sysinit.target
UNIT
systemctl enable kforge-lab-cgroups-rw.service
`

// recipeHash names the image: the same recipe gives the same cached image.
func recipeHash() string {
	h := sha256.New()
	fmt.Fprintf(h, "%s\n%s\n%s\n%s\n%s", recipeVersion, imageSuite, imageVariant, strings.Join(imagePackages, ","), customizeScript)
	return hex.EncodeToString(h.Sum(nil))[:16]
}

// imagePath is where the image for the current recipe is cached.
func (m *Manager) imagePath() string {
	return filepath.Join(m.Paths.Cache, "images", "debian-"+imageSuite+"-"+recipeHash()+".tar.zst")
}

// EnsureImage builds the image once per recipe; later labs reuse it.
func (m *Manager) EnsureImage(ctx context.Context) (string, error) {
	path := m.imagePath()
	if _, err := os.Stat(path); err == nil {
		return path, nil
	}
	unlock, err := lockFile(filepath.Join(m.Paths.Cache, "images", ".lock"))
	if err != nil {
		return "", err
	}
	defer unlock()
	if _, err := os.Stat(path); err == nil {
		return path, nil // built by another process while this one waited
	}
	for _, tool := range []string{"debootstrap", "zstd", "tar", "chroot"} {
		if _, err := exec.LookPath(tool); err != nil {
			return "", fmt.Errorf("building the lab image needs %s: apt-get install debootstrap zstd (or run make deps)", tool)
		}
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return "", err
	}
	if err := checkFreeSpace(filepath.Dir(path), 1<<30, "the lab image"); err != nil {
		return "", err
	}
	m.progress("building the lab image (debootstrap %s, once per recipe; about a minute)", imageSuite)
	build, err := os.MkdirTemp(filepath.Dir(path), "build-")
	if err != nil {
		return "", err
	}
	defer os.RemoveAll(build)
	rootfs := filepath.Join(build, "rootfs")
	mirror := m.Mirror
	if mirror == "" {
		mirror = debianMirror()
	}
	args := []string{"--variant=" + imageVariant, "--include=" + strings.Join(imagePackages, ","), imageSuite, rootfs}
	if mirror != "" {
		args = append(args, mirror)
	}
	if err := runLogged(ctx, filepath.Join(build, "debootstrap.log"), "debootstrap", args...); err != nil {
		return "", err
	}
	if err := runLogged(ctx, filepath.Join(build, "customize.log"), "chroot", rootfs, "/bin/sh", "-c", customizeScript); err != nil {
		return "", err
	}
	tmp := filepath.Join(build, "image.tar.zst")
	if err := runLogged(ctx, filepath.Join(build, "tar.log"), "sh", "-c",
		`tar -C "$1" --numeric-owner --xattrs --xattrs-include='*' -cf - . | zstd -q -T0 -3 -o "$2" -f`, "_", rootfs, tmp); err != nil {
		return "", err
	}
	if err := os.Rename(tmp, path); err != nil {
		return "", err
	}
	return path, nil
}

// debianMirror is the mirror this machine's apt uses, so the image comes from where packages are reachable.
func debianMirror() string {
	data, err := os.ReadFile("/etc/apt/sources.list.d/debian.sources")
	if err == nil {
		for _, line := range strings.Split(string(data), "\n") {
			if f := strings.Fields(line); len(f) >= 2 && f[0] == "URIs:" {
				return f[1]
			}
		}
	}
	data, err = os.ReadFile("/etc/apt/sources.list")
	if err == nil {
		for _, line := range strings.Split(string(data), "\n") {
			if f := strings.Fields(line); len(f) >= 3 && f[0] == "deb" {
				return f[1]
			}
		}
	}
	return ""
}

// runLogged runs a command with its output in a log file, which the error quotes the end of.
func runLogged(ctx context.Context, logFile, name string, args ...string) error {
	f, err := os.Create(logFile)
	if err != nil {
		return err
	}
	defer f.Close()
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Stdout, cmd.Stderr = f, f
	if err := cmd.Run(); err != nil {
		data, _ := os.ReadFile(logFile)
		return fmt.Errorf("%s: %w: %s", name, err, lastLines(string(data), 10))
	}
	return nil
}

func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
