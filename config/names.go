package config

import (
	"fmt"
	"net/netip"
	"net/url"
	"regexp"
	"strconv"
	"strings"
)

// Kubernetes' naming rules, as users meet them in node names, labels and taints.
var (
	dnsLabelRe     = regexp.MustCompile(`^[a-z0-9]([-a-z0-9]*[a-z0-9])?$`)
	labelNameRe    = regexp.MustCompile(`^([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]$`)
	hostnameRe     = regexp.MustCompile(`^[A-Za-z0-9]([-A-Za-z0-9]*[A-Za-z0-9])?(\.[A-Za-z0-9]([-A-Za-z0-9]*[A-Za-z0-9])?)*\.?$`)
	taintEffects   = []string{"NoSchedule", "PreferNoSchedule", "NoExecute"}
	artifactKeys   = []string{"cni_plugins", "containerd", "crictl", "etcd", "runc"}
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
	_, err := netip.ParseAddr(s)
	return err == nil
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

// checkHostAddress accepts an IP address or a DNS name: something kforge can dial.
func checkHostAddress(s string) error {
	if _, err := netip.ParseAddr(s); err == nil {
		return nil
	}
	if strings.ContainsAny(s, ":/ ") {
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

// checkExtraArgs rejects flag names written with dashes or values, which would be passed on garbled.
func checkExtraArgs(args map[string]string) error {
	for _, k := range sortedKeys(args) {
		switch {
		case k == "":
			return fmt.Errorf("a flag name is empty")
		case strings.HasPrefix(k, "-"):
			return fmt.Errorf("write flag names without leading dashes: %q, not %q", strings.TrimLeft(k, "-"), k)
		case strings.ContainsAny(k, "= "):
			return fmt.Errorf("flag name %q contains '=' or a space: put the value on the right-hand side", k)
		}
	}
	return nil
}
