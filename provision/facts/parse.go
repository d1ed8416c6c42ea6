package facts

import (
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"time"
)

// section is one "@name" of the probe's output: its lines, and why it could not be read if it could not.
type section struct {
	lines []string
	errs  []string
}

// alwaysEmitted are the sections every probe prints; one missing from the output is recorded as
// unavailable, as the script would have said why.
func alwaysEmitted() []string {
	return []string{
		"time", "uid", "os-release", "kernel-release", "arch", "hostname", "machine-id", "cpu-online", "nproc",
		"meminfo", "swaps", "pid1-comm", "systemd-booted", "cgroup-fstype", "cgroup-mounts", "proc-cgroups",
		"namespaces", "sysctls", "filesystems", "overlay-mount", "kernel-config", "modules-support", "modules-dir",
		"binaries", "disk-path", "disk", "kforge-marker", "k8s-paths", "units", "processes",
	}
}

// Parse reads the output of Script into Facts. It fails only when the output is not a whole probe of this
// format; whatever the probe could not find out is left unknown and listed in Facts.Unavailable.
func Parse(out []byte) (*Facts, error) {
	secs, err := splitSections(out)
	if err != nil {
		return nil, err
	}
	p := &parser{secs: secs, f: &Facts{}}
	for _, name := range alwaysEmitted() {
		if _, ok := secs[name]; !ok {
			p.unavailable(name, "not in the probe output")
		}
	}
	p.basics()
	p.swap()
	p.init()
	p.cgroups()
	p.sysctls()
	p.namespaces()
	p.overlay()
	p.kernelConfig()
	p.modules()
	p.listeners()
	p.binaries()
	p.disk()
	p.kubernetes()
	return p.f, nil
}

func splitSections(out []byte) (map[string]*section, error) {
	secs := map[string]*section{}
	var cur *section
	started, ended := false, false
	for i, line := range strings.Split(string(out), "\n") {
		if !started {
			// A login shell may print before the probe starts; nothing of that is the probe's.
			if line == "@kforge-facts" {
				started = true
				cur = &section{}
				secs["kforge-facts"] = cur
			}
			continue
		}
		if ended || line == "" || line[0] == '#' {
			continue
		}
		switch line[0] {
		case '@':
			name := line[1:]
			if name == "end" {
				ended = true
				continue
			}
			if name == "" {
				return nil, fmt.Errorf("line %d: a section without a name", i+1)
			}
			if _, dup := secs[name]; dup {
				return nil, fmt.Errorf("line %d: section %q appears twice", i+1, name)
			}
			cur = &section{}
			secs[name] = cur
		case '|':
			cur.lines = append(cur.lines, line[1:])
		case '!':
			cur.errs = append(cur.errs, line[1:])
		default:
			return nil, fmt.Errorf("line %d: %q is not part of the probe's output format", i+1, shorten(line, 60))
		}
	}
	if !started {
		return nil, errors.New("not a facts probe's output: the @kforge-facts line is missing")
	}
	if !ended {
		return nil, errors.New("the probe's output ends early (no @end line): the probe was cut short")
	}
	if v := secs["kforge-facts"].lines; len(v) != 1 || v[0] != FormatVersion {
		return nil, fmt.Errorf("probe output format %q, but this kforge reads format %s", strings.Join(v, " "), FormatVersion)
	}
	return secs, nil
}

func shorten(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}

type parser struct {
	secs map[string]*section
	f    *Facts
}

func (p *parser) unavailable(name, why string) {
	if p.f.Unavailable == nil {
		p.f.Unavailable = map[string]string{}
	}
	p.f.Unavailable[name] = why
}

// lines returns a section's lines when it was read completely; otherwise it records why not.
func (p *parser) lines(name string) ([]string, bool) {
	s, ok := p.secs[name]
	if !ok {
		return nil, false
	}
	if len(s.errs) > 0 {
		p.unavailable(name, strings.Join(s.errs, "; "))
		return nil, false
	}
	return s.lines, true
}

// first returns a section's first line, trimmed; "" when there is none.
func (p *parser) first(name string) string {
	ls, ok := p.lines(name)
	if !ok || len(ls) == 0 {
		return ""
	}
	return strings.TrimSpace(ls[0])
}

func (p *parser) basics() {
	f := p.f
	f.Root = p.first("uid") == "0"
	f.Time = parseEpoch(p.first("time"))
	if ls, ok := p.lines("os-release"); ok {
		f.OS = parseOSRelease(ls)
	}
	f.KernelRelease = p.first("kernel-release")
	f.Architecture = p.first("arch")
	f.Hostname = p.first("hostname")
	f.MachineID = p.first("machine-id")
	f.ProductUUID = p.first("product-uuid")
	f.CPUs = countCPUList(p.first("cpu-online"))
	// Read even when not needed, so that a missing getconf is on record.
	nproc, _ := strconv.Atoi(p.first("nproc"))
	if f.CPUs == 0 {
		f.CPUs = nproc
	}
	if ls, ok := p.lines("meminfo"); ok {
		f.MemoryBytes = meminfoBytes(ls, "MemTotal")
	}
}

// parseEpoch reads date's "%s.%N"; a date without %N (busybox) prints something else after the dot, which
// only costs the fraction.
func parseEpoch(s string) time.Time {
	secs, frac, _ := strings.Cut(s, ".")
	n, err := strconv.ParseInt(secs, 10, 64)
	if err != nil || n <= 0 {
		return time.Time{}
	}
	var nanos int64
	if len(frac) > 0 && len(frac) <= 9 && allDigits(frac) {
		nanos, _ = strconv.ParseInt(frac+strings.Repeat("0", 9-len(frac)), 10, 64)
	}
	t := time.Unix(n, nanos).UTC()
	if t.Year() > 9999 {
		return time.Time{} // no clock says that, and the facts' JSON (RFC 3339) could not hold it
	}
	return t
}

func allDigits(s string) bool {
	for _, c := range s {
		if c < '0' || c > '9' {
			return false
		}
	}
	return s != ""
}

// parseOSRelease reads os-release(5): shell-style assignments whose values may be quoted.
func parseOSRelease(lines []string) *OSRelease {
	v := map[string]string{}
	for _, l := range lines {
		l = strings.TrimSpace(l)
		if l == "" || l[0] == '#' {
			continue
		}
		k, val, ok := strings.Cut(l, "=")
		if !ok {
			continue
		}
		v[k] = unquoteShell(val)
	}
	return &OSRelease{ID: v["ID"], IDLike: strings.Fields(v["ID_LIKE"]), VersionID: v["VERSION_ID"],
		VersionCodename: v["VERSION_CODENAME"], PrettyName: v["PRETTY_NAME"]}
}

func unquoteShell(s string) string {
	if len(s) >= 2 && s[0] == '\'' && s[len(s)-1] == '\'' {
		return s[1 : len(s)-1]
	}
	if len(s) >= 2 && s[0] == '"' && s[len(s)-1] == '"' {
		s = s[1 : len(s)-1]
		var b strings.Builder
		for i := 0; i < len(s); i++ {
			if s[i] == '\\' && i+1 < len(s) && strings.IndexByte("\"\\$`", s[i+1]) >= 0 {
				i++
			}
			b.WriteByte(s[i])
		}
		return b.String()
	}
	return s
}

// countCPUList counts a kernel CPU list such as "0-3,6,8-9".
func countCPUList(s string) int {
	if s == "" {
		return 0
	}
	n := 0
	for _, part := range strings.Split(s, ",") {
		lo, hi, isRange := strings.Cut(part, "-")
		a, err := strconv.Atoi(lo)
		if err != nil {
			return 0
		}
		b := a
		if isRange {
			if b, err = strconv.Atoi(hi); err != nil || b < a {
				return 0
			}
		}
		n += b - a + 1
	}
	return n
}

// meminfoBytes reads one "Key:   N kB" line of /proc/meminfo.
func meminfoBytes(lines []string, key string) int64 {
	for _, l := range lines {
		k, rest, ok := strings.Cut(l, ":")
		if !ok || k != key {
			continue
		}
		f := strings.Fields(rest)
		if len(f) == 0 {
			return 0
		}
		n, err := strconv.ParseInt(f[0], 10, 64)
		if err != nil {
			return 0
		}
		if len(f) > 1 && f[1] == "kB" {
			n *= 1024
		}
		return n
	}
	return 0
}

func (p *parser) swap() {
	ls, ok := p.lines("swaps")
	if !ok {
		return
	}
	s := &Swap{Devices: []SwapDevice{}}
	for _, l := range ls {
		f := strings.Fields(l)
		if len(f) < 4 || f[0] == "Filename" {
			continue
		}
		size, err1 := strconv.ParseInt(f[2], 10, 64)
		used, err2 := strconv.ParseInt(f[3], 10, 64)
		if err1 != nil || err2 != nil {
			continue
		}
		s.Devices = append(s.Devices, SwapDevice{Path: unescapeOctal(f[0]), Type: f[1], SizeBytes: size * 1024, UsedBytes: used * 1024})
		s.TotalBytes += size * 1024
	}
	p.f.Swap = s
}

// unescapeOctal undoes the kernel's \ooo escapes of spaces and the like in paths (/proc/swaps, mountinfo).
func unescapeOctal(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+4 <= len(s) {
			if n, err := strconv.ParseUint(s[i+1:i+4], 8, 8); err == nil {
				b.WriteByte(byte(n))
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

func (p *parser) init() {
	comm := p.first("pid1-comm")
	if comm == "" {
		return
	}
	in := &Init{PID1: comm, PID1Path: p.first("pid1-exe"), SystemdBooted: p.first("systemd-booted") == "yes"}
	if line := p.first("systemd-version"); strings.HasPrefix(line, "systemd ") {
		in.SystemdVersionText = line
		f := strings.Fields(line)
		digits := f[1]
		for i, c := range digits {
			if c < '0' || c > '9' {
				digits = digits[:i]
				break
			}
		}
		in.SystemdVersion, _ = strconv.Atoi(digits)
	}
	p.f.Init = in
}

// knownControllers stand in for /proc/cgroups when it cannot be read.
func knownControllers() []string {
	return []string{"blkio", "cpu", "cpuacct", "cpuset", "devices", "freezer", "hugetlb", "io", "memory", "misc",
		"net_cls", "net_prio", "perf_event", "pids", "rdma"}
}

func (p *parser) cgroups() {
	fstype := p.first("cgroup-fstype")
	mounts, _ := p.lines("cgroup-mounts")
	type mount struct{ point, fstype, opts string }
	var ms []mount
	for _, l := range mounts {
		left, right, ok := strings.Cut(l, " - ")
		lf, rf := strings.Fields(left), strings.Fields(right)
		if !ok || len(lf) < 5 || len(rf) < 3 {
			continue
		}
		ms = append(ms, mount{point: unescapeOctal(lf[4]), fstype: rf[0], opts: rf[2]})
	}
	var kernel []string
	if ls, ok := p.lines("proc-cgroups"); ok {
		for _, l := range ls {
			f := strings.Fields(l)
			if len(f) == 4 && !strings.HasPrefix(f[0], "#") && f[3] == "1" {
				kernel = append(kernel, f[0])
			}
		}
	}
	mode := CgroupMode("")
	switch fstype {
	case "cgroup2fs":
		mode = CgroupV2
	case "tmpfs":
		mode = CgroupV1
	case "":
		// No stat: the mount table tells the same.
		for _, m := range ms {
			if m.point == "/sys/fs/cgroup" && m.fstype == "cgroup2" {
				mode = CgroupV2
			}
			if m.fstype == "cgroup" && mode == "" {
				mode = CgroupV1
			}
		}
	}
	if mode == "" {
		return
	}
	cg := &Cgroups{Mode: mode, FSType: fstype, Controllers: []string{}, KernelControllers: kernel}
	if mode == CgroupV2 {
		cg.Controllers = append(cg.Controllers, strings.Fields(p.first("cgroup-controllers"))...)
	} else {
		names := kernel
		if names == nil {
			names = knownControllers()
		}
		for _, m := range ms {
			switch {
			case m.fstype == "cgroup2" && m.point == "/sys/fs/cgroup/unified":
				cg.Mode = CgroupHybrid
				cg.UnifiedControllers = strings.Fields(p.first("cgroup-unified-controllers"))
			case m.fstype == "cgroup":
				for _, o := range strings.Split(m.opts, ",") {
					if slices.Contains(names, o) && !slices.Contains(cg.Controllers, o) {
						cg.Controllers = append(cg.Controllers, o)
					}
				}
			}
		}
	}
	slices.Sort(cg.Controllers)
	slices.Sort(cg.KernelControllers)
	p.f.Cgroups = cg
}

func (p *parser) sysctls() {
	ls, ok := p.lines("sysctls")
	if !ok {
		return
	}
	m := map[string]Sysctl{}
	for _, l := range ls {
		access, rest, _ := strings.Cut(l, " ")
		key, value, _ := strings.Cut(rest, " ")
		if key == "" || access == "-" {
			continue
		}
		m[strings.ReplaceAll(key, "/", ".")] = Sysctl{Value: strings.TrimSpace(value), Writable: access == "rw"}
	}
	p.f.Sysctls = m
}

func (p *parser) namespaces() {
	ls, ok := p.lines("namespaces")
	if !ok {
		return
	}
	ns := &Namespaces{Available: []string{}, MaxUserNamespaces: -1}
	for _, l := range ls {
		if l = strings.TrimSpace(l); l != "" {
			ns.Available = append(ns.Available, l)
		}
	}
	if s, ok := p.f.Sysctls["user.max_user_namespaces"]; ok {
		if n, err := strconv.Atoi(s.Value); err == nil {
			ns.MaxUserNamespaces = n
		}
	}
	p.f.Namespaces = ns
}

func (p *parser) overlay() {
	fs, fsOK := p.lines("filesystems")
	mount := p.secs["overlay-mount"]
	if !fsOK && mount == nil {
		return
	}
	o := &Overlay{}
	for _, l := range fs {
		if f := strings.Fields(l); len(f) > 0 && f[len(f)-1] == "overlay" {
			o.Listed = true
		}
	}
	switch {
	case mount == nil:
		o.NotRun = "not in the probe output"
	case len(mount.errs) > 0:
		o.NotRun = strings.Join(mount.errs, "; ")
	case len(mount.lines) >= 1 && (mount.lines[0] == MountOK || mount.lines[0] == MountFailed):
		o.MountTest = mount.lines[0]
		if len(mount.lines) > 1 {
			o.MountDir = mount.lines[1]
		}
		if len(mount.lines) > 2 {
			o.MountError = strings.TrimSpace(strings.Join(mount.lines[2:], "\n"))
		}
	default:
		o.NotRun = "unreadable result"
	}
	p.f.Overlay = o
}

func (p *parser) kernelConfig() {
	ls, ok := p.lines("kernel-config")
	if !ok || len(ls) == 0 || !strings.HasPrefix(ls[0], "source ") {
		return
	}
	kc := &KernelConfig{Source: strings.TrimPrefix(ls[0], "source "), Options: map[string]string{}}
	for _, l := range ls[1:] {
		k, v, ok := strings.Cut(l, "=")
		if !ok || !strings.HasPrefix(k, "CONFIG_") {
			continue
		}
		kc.Options[strings.TrimPrefix(k, "CONFIG_")] = strings.Trim(v, `"`)
	}
	p.f.KernelConfig = kc
}

func (p *parser) modules() {
	support, dir := p.first("modules-support"), p.first("modules-dir")
	if support == "" && dir == "" {
		return
	}
	loaded, _ := p.lines("modules-loaded")
	m := &Modules{Support: support == "yes", Dir: dir == "yes", Loaded: names(loaded),
		Builtin: names(p.secs["modules-builtin"].linesOrNil()), Loadable: names(p.secs["modules-loadable"].linesOrNil())}
	p.f.Modules = m
}

func (s *section) linesOrNil() []string {
	if s == nil || len(s.errs) > 0 {
		return nil
	}
	return s.lines
}

// names sorts and de-duplicates module names, spelling them with "_" as the kernel does.
func names(ls []string) []string {
	out := []string{}
	for _, l := range ls {
		n := strings.ReplaceAll(strings.TrimSpace(l), "-", "_")
		if n != "" && !slices.Contains(out, n) {
			out = append(out, n)
		}
	}
	slices.Sort(out)
	return out
}

func (p *parser) listeners() {
	if ls, ok := p.lines("listen-ss"); ok {
		l := &Listeners{Source: "ss", Sockets: []Listener{}}
		for _, line := range ls {
			if s, ok := parseSSLine(line); ok {
				l.Sockets = append(l.Sockets, s)
			}
		}
		p.f.Listeners = l
		return
	}
	if ls, ok := p.lines("listen-proc"); ok {
		l := &Listeners{Source: "proc", Sockets: []Listener{}}
		for _, line := range ls {
			if s, ok := parseProcNetLine(line); ok {
				l.Sockets = append(l.Sockets, s)
			}
		}
		p.f.Listeners = l
	}
}

// parseSSLine reads one line of `ss -tulnp`: netid, state, queues, local address, peer, and the owners as
// users:(("name",pid=N,fd=M),…) when ss may see them.
func parseSSLine(line string) (Listener, bool) {
	f := strings.Fields(line)
	if len(f) < 5 || f[0] == "Netid" || (f[0] != "tcp" && f[0] != "udp") {
		return Listener{}, false
	}
	local := f[4]
	i := strings.LastIndexByte(local, ':')
	if i < 0 {
		return Listener{}, false
	}
	port, err := strconv.Atoi(local[i+1:])
	if err != nil {
		return Listener{}, false
	}
	addr := strings.TrimSuffix(strings.TrimPrefix(local[:i], "["), "]")
	l := Listener{Proto: f[0], Address: addr, Port: port}
	if j := strings.Index(line, `users:(("`); j >= 0 {
		rest := line[j+len(`users:(("`):]
		if k := strings.IndexByte(rest, '"'); k >= 0 {
			l.Process = rest[:k]
			if m := strings.Index(rest, "pid="); m >= 0 {
				digits := rest[m+4:]
				if e := strings.IndexFunc(digits, func(r rune) bool { return r < '0' || r > '9' }); e >= 0 {
					digits = digits[:e]
				}
				l.PID, _ = strconv.Atoi(digits)
			}
		}
	}
	return l, true
}

// parseProcNetLine reads "tcp6 HEXADDR:HEXPORT" as the probe prints rows of /proc/net/{tcp,udp}{,6}: the
// address is the kernel's in-memory bytes, 32 bits at a time in host (little-endian) order.
func parseProcNetLine(line string) (Listener, bool) {
	proto, local, ok := strings.Cut(line, " ")
	hexAddr, hexPort, ok2 := strings.Cut(local, ":")
	if !ok || !ok2 {
		return Listener{}, false
	}
	port, err := strconv.ParseUint(hexPort, 16, 16)
	if err != nil {
		return Listener{}, false
	}
	raw := make([]byte, 0, 16)
	for i := 0; i+8 <= len(hexAddr); i += 8 {
		w, err := strconv.ParseUint(hexAddr[i:i+8], 16, 32)
		if err != nil {
			return Listener{}, false
		}
		raw = append(raw, byte(w), byte(w>>8), byte(w>>16), byte(w>>24))
	}
	addr, ok := netip.AddrFromSlice(raw)
	if !ok {
		return Listener{}, false
	}
	return Listener{Proto: strings.TrimSuffix(proto, "6"), Address: addr.Unmap().String(), Port: int(port)}, true
}

func (p *parser) binaries() {
	ls, ok := p.lines("binaries")
	if !ok {
		return
	}
	m := map[string]string{}
	for _, l := range ls {
		name, path, _ := strings.Cut(l, " ")
		if name != "" {
			m[name] = strings.TrimSpace(path)
		}
	}
	p.f.Binaries = m
}

func (p *parser) disk() {
	ls, ok := p.lines("disk")
	if !ok {
		return
	}
	for _, l := range ls {
		f := strings.Fields(l)
		// From the right, because a filesystem's name may contain spaces: SIZE USED AVAIL NN% MOUNTPOINT.
		for i := 3; i < len(f); i++ {
			if !strings.HasSuffix(f[i], "%") || !allDigits(strings.TrimSuffix(f[i], "%")) {
				continue
			}
			total, err1 := strconv.ParseInt(f[i-3], 10, 64)
			avail, err2 := strconv.ParseInt(f[i-1], 10, 64)
			if err1 != nil || err2 != nil {
				continue
			}
			p.f.Disk = &Disk{Path: p.first("disk-path"), FSType: p.first("disk-fstype"), TotalBytes: total * 1024, AvailableBytes: avail * 1024}
			return
		}
	}
	p.unavailable("disk", "no figures in df's output")
}

func (p *parser) kubernetes() {
	marker, ok := p.lines("kforge-marker")
	if !ok || len(marker) == 0 {
		return
	}
	k := &Kubernetes{KforgeManaged: marker[0] == "present"}
	if k.KforgeManaged && len(marker) > 1 {
		k.KforgeMarker = strings.TrimSpace(marker[1])
	}
	paths, _ := p.lines("k8s-paths")
	for _, l := range paths {
		f := strings.SplitN(l, " ", 3)
		if len(f) != 3 {
			continue
		}
		n, _ := strconv.Atoi(f[1])
		k.Paths = append(k.Paths, PathInfo{Path: f[2], Dir: f[0] == "dir", Entries: n})
	}
	units, _ := p.lines("units")
	for _, l := range units {
		kind, path, ok := strings.Cut(l, " ")
		if ok {
			k.Units = append(k.Units, UnitFile{Path: path, KforgeMarker: kind == "kforge"})
		}
	}
	procs, _ := p.lines("processes")
	for _, l := range procs {
		pid, name, ok := strings.Cut(l, " ")
		n, err := strconv.Atoi(pid)
		if ok && err == nil {
			k.Processes = append(k.Processes, Process{PID: n, Name: name})
		}
	}
	p.f.Kubernetes = k
}
