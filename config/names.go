package config

import (
	"fmt"
	"net"
	"net/netip"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"unicode"
)

// Kubernetes' naming rules, as users meet them in node names, labels and taints.
var (
	dnsLabelRe     = regexp.MustCompile(`^[a-z0-9]([-a-z0-9]*[a-z0-9])?$`)
	labelNameRe    = regexp.MustCompile(`^([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]$`)
	hostnameRe     = regexp.MustCompile(`^[A-Za-z0-9]([-A-Za-z0-9]*[A-Za-z0-9])?(\.[A-Za-z0-9]([-A-Za-z0-9]*[A-Za-z0-9])?)*\.?$`)
	taintEffects   = []string{"NoSchedule", "PreferNoSchedule", "NoExecute"}
	artifactKeys   = []string{"cni_plugins", "containerd", "crictl", "etcd", "flannel", "kube_router", "runc"}
	releaseVersion = regexp.MustCompile(`^v?[0-9]+\.[0-9]+\.[0-9]+([-+][0-9A-Za-z.-]+)?$`)
	sha256Hex      = regexp.MustCompile(`^[0-9a-f]{64}$`)
)

// checkRegistryHost accepts a registry as the first part of an image name spells it: a host name or IPv4
// address with an optional port ("registry.k8s.io", "mirror.local:5000"), or containerd's "_default".
func checkRegistryHost(s string) error {
	if s == "_default" {
		return nil
	}
	host, port, hasPort := strings.Cut(s, ":")
	if hasPort {
		if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 || port != strconv.Itoa(n) {
			return fmt.Errorf("%q is not a TCP port", port)
		}
	}
	if host == "" || strings.HasSuffix(host, ".") || !hostnameRe.MatchString(host) || strings.ToLower(host) != host {
		return fmt.Errorf(`want a lower-case registry host as image names write it, such as "registry.k8s.io" or "mirror.example:5000" (or "_default" for every registry)`)
	}
	return nil
}

// checkMirrorURL accepts the base URL of a registry mirror: http or https, a host, nothing else.
func checkMirrorURL(s string) error {
	u, err := url.Parse(s)
	switch {
	case err != nil:
		return err
	case u.Scheme != "http" && u.Scheme != "https":
		return fmt.Errorf(`want an http:// or https:// URL such as "https://mirror.example:5000"`)
	case u.Host == "" || u.Hostname() == "":
		return fmt.Errorf("the URL has no host")
	case !hostnameRe.MatchString(u.Hostname()) && !isIP(u.Hostname()):
		return fmt.Errorf("%q is not a host name or IP address", u.Hostname())
	case u.User != nil:
		return fmt.Errorf("credentials do not belong in a mirror URL (it is written to a file every user on the node can read)")
	case u.Path != "" && u.Path != "/", u.RawQuery != "", u.Fragment != "":
		return fmt.Errorf("want the mirror's base URL without a path, query or fragment (containerd adds /v2/ itself)")
	}
	if p := u.Port(); p != "" {
		if n, err := strconv.Atoi(p); err != nil || n < 1 || n > 65535 {
			return fmt.Errorf("%q is not a TCP port", p)
		}
	}
	return nil
}

func isIP(s string) bool {
	_, err := ParseIP(s)
	return err == nil
}

// ParseIP reads an IP address without an IPv6 zone ("fe80::1%eth0"). A zone names an interface of one machine,
// so it means nothing to the other hosts, and it may hold any character: unit files and shell scripts would
// get it as it is.
func ParseIP(s string) (netip.Addr, error) {
	a, err := netip.ParseAddr(s)
	if err != nil {
		return netip.Addr{}, err
	}
	if a.Zone() != "" {
		return netip.Addr{}, zoneError(s)
	}
	return a, nil
}

func zoneError(s string) error {
	return fmt.Errorf("%q has an IPv6 zone (the part from '%%'), which other hosts cannot use: give the address without it", s)
}

// CheckNodeName accepts what Kubernetes accepts as a node name, for hosts that providers name.
func CheckNodeName(name string) error { return checkDNSSubdomain(name) }

// checkDNSSubdomain accepts what Kubernetes accepts as a node or object name.
func checkDNSSubdomain(s string) error {
	if len(s) == 0 || len(s) > 253 {
		return fmt.Errorf("must be 1 to 253 characters long")
	}
	for _, part := range strings.Split(s, ".") {
		if len(part) > 63 || !dnsLabelRe.MatchString(part) {
			if strings.ToLower(s) != s {
				return fmt.Errorf("must be lower case (did you mean %q?)", strings.ToLower(s))
			}
			return fmt.Errorf("must be lower-case letters, digits, '-' and '.', starting and ending with a letter or digit")
		}
	}
	return nil
}

// checkLabelKey accepts [prefix/]name as Kubernetes label and taint keys are written.
func checkLabelKey(k string) error {
	prefix, name, hasPrefix := strings.Cut(k, "/")
	if hasPrefix {
		if err := checkDNSSubdomain(prefix); err != nil {
			return fmt.Errorf("prefix %q %w", prefix, err)
		}
	} else {
		name = prefix
	}
	if len(name) == 0 || len(name) > 63 || !labelNameRe.MatchString(name) {
		return fmt.Errorf("name %q must be 1 to 63 letters, digits, '-', '_' or '.', starting and ending with a letter or digit", name)
	}
	return nil
}

// CheckLabel accepts a node label as Kubernetes does, for labels a provider's host blocks set.
func CheckLabel(key, value string) error {
	if err := checkLabelKey(key); err != nil {
		return fmt.Errorf("label key %q: %w", key, err)
	}
	if err := checkLabelValue(value); err != nil {
		return fmt.Errorf("label %q: %w", key, err)
	}
	return nil
}

func checkLabelValue(v string) error {
	if v == "" {
		return nil
	}
	if len(v) > 63 || !labelNameRe.MatchString(v) {
		return fmt.Errorf("value %q must be at most 63 letters, digits, '-', '_' or '.', starting and ending with a letter or digit", v)
	}
	return nil
}

// ParseTaint reads key[=value]:Effect.
func ParseTaint(s string) (Taint, error) {
	kv, effect, ok := strings.Cut(s, ":")
	if !ok {
		return Taint{}, fmt.Errorf("taint %q must look like key=value:Effect or key:Effect", s)
	}
	k, v, _ := strings.Cut(kv, "=")
	if err := checkLabelKey(k); err != nil {
		return Taint{}, fmt.Errorf("taint %q: key %w", s, err)
	}
	if err := checkLabelValue(v); err != nil {
		return Taint{}, fmt.Errorf("taint %q: %w", s, err)
	}
	for _, e := range taintEffects {
		if e == effect {
			return Taint{Key: k, Value: v, Effect: effect}, nil
		}
	}
	return Taint{}, fmt.Errorf("taint %q: effect must be one of %s", s, strings.Join(taintEffects, ", "))
}

// checkHostAddress accepts an IP address (without a zone) or a DNS name: something kforge can dial, and that
// cluster components can use when it is also the cluster address.
func checkHostAddress(s string) error {
	if a, err := netip.ParseAddr(s); err == nil {
		if a.Zone() != "" {
			return zoneError(s)
		}
		return nil
	}
	if _, _, err := net.SplitHostPort(s); err == nil {
		return fmt.Errorf("%q is neither an IP address nor a host name (give the SSH port in ssh { port = … })", s)
	}
	if len(s) == 0 || len(s) > 253 || !hostnameRe.MatchString(s) {
		return fmt.Errorf("%q is neither an IP address nor a host name", s)
	}
	return nil
}

// oneOf checks v against the allowed values and suggests the closest one.
func oneOf(v string, allowed []string) error {
	for _, a := range allowed {
		if v == a {
			return nil
		}
	}
	return fmt.Errorf("%q is not one of %s.%s", v, quoteList(allowed), didYouMean(v, allowed))
}

func quoteList(xs []string) string {
	q := make([]string, len(xs))
	for i, x := range xs {
		q[i] = fmt.Sprintf("%q", x)
	}
	return strings.Join(q, ", ")
}

// flagNameRe is what Kubernetes components' flag names are made of.
var flagNameRe = regexp.MustCompile(`^[A-Za-z0-9][-A-Za-z0-9_.]*$`)

// checkExtraArgs rejects flag names written with dashes or values, which would be passed on garbled, and
// anything a systemd unit's ExecStart line would read otherwise than as part of one argument: the flags are
// written there as --name=value.
func checkExtraArgs(args map[string]string) error {
	for _, k := range sortedKeys(args) {
		switch {
		case k == "":
			return fmt.Errorf("a flag name is empty")
		case strings.HasPrefix(k, "-"):
			return fmt.Errorf("write flag names without leading dashes: %q, not %q", strings.TrimLeft(k, "-"), k)
		case strings.ContainsAny(k, "= "):
			return fmt.Errorf("flag name %q contains '=' or a space: put the value on the right-hand side", k)
		case !flagNameRe.MatchString(k):
			return fmt.Errorf("flag name %q may only have letters, digits, '-', '_' and '.'", k)
		}
		if err := checkUnitWord(args[k]); err != nil {
			return fmt.Errorf("the value of %s %w", k, err)
		}
	}
	return nil
}

// checkUnitWord accepts text that a systemd unit's ExecStart line passes on as (part of) one argument: no line
// breaks or other control characters (a new line is a new directive), no blanks (they split arguments), no
// quotes or backslashes (systemd removes them). '$' and '%' are escaped where the units are written.
func checkUnitWord(v string) error {
	for _, r := range v {
		switch {
		case r == '\n' || r == '\r':
			return fmt.Errorf("%q has a line break, which would end the unit's command line", v)
		case unicode.IsControl(r):
			return fmt.Errorf("%q has the control character %U", v, r)
		case unicode.IsSpace(r):
			return fmt.Errorf("%q has a blank, which would split it into two arguments", v)
		case strings.ContainsRune(`"'\`, r):
			return fmt.Errorf("%q has %q, which the unit's command line would not pass on as written", v, r)
		}
	}
	return nil
}
