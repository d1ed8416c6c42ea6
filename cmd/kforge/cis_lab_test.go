package main

import (
	"crypto/tls"
	"encoding/json"
	"net"
	"net/http"
	"net/netip"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/kforge/kforge/providers/lab"
)

// checkCIS checks the CIS Kubernetes Benchmark items kforge implements on a running lab cluster (host 0: the
// control plane and etcd; the first hosts: nodes), from what the hosts really run and hold: the flags of the running
// processes, the kubelet's live configuration, the files' modes and owners, and how the ports answer. The item
// numbers are the benchmark's (v1.10 numbering); README's "CIS Kubernetes Benchmark" lists them.
func checkCIS(t *testing.T, l *lab.Lab, hosts int) {
	t.Helper()
	cp := l.Hosts[0]

	// 1.2: the API server's flags.
	api := procFlags(t, l, 0, "kube-apiserver")
	wantFlags(t, "kube-apiserver", api, map[string]string{
		"profiling":                     "false",                                      // 1.2.15
		"audit-log-path":                "/var/log/kubernetes/audit/audit.log",        // 1.2.16
		"audit-policy-file":             "/etc/kubernetes/audit-policy.yaml",          // 3.2.1
		"authentication-config":         "/etc/kubernetes/authentication-config.yaml", // 1.2.1 (see the anonymous checks)
		"kubelet-certificate-authority": "/etc/kubernetes/pki/ca.crt",                 // 1.2.5
		"service-account-lookup":        "true",                                       // 1.2.21
		"tls-min-version":               "VersionTLS12",                               // 1.2.29
		"admission-control-config-file": "/etc/kubernetes/admission-config.yaml",      // PodSecurity defaults
	})
	for flag, min := range map[string]int{"audit-log-maxage": 30, "audit-log-maxbackup": 10, "audit-log-maxsize": 100} { // 1.2.17-19
		if n, err := strconv.Atoi(api[flag]); err != nil || n < min {
			t.Errorf("CIS 1.2.17-19: kube-apiserver --%s=%q, want at least %d", flag, api[flag], min)
		}
	}
	if _, set := api["anonymous-auth"]; set {
		t.Errorf("CIS 1.2.1: kube-apiserver has --anonymous-auth=%s; kforge limits anonymous requests in its authentication config", api["anonymous-auth"])
	}
	modes := "," + api["authorization-mode"] + ","
	if !strings.Contains(modes, ",Node,") || !strings.Contains(modes, ",RBAC,") || strings.Contains(modes, ",AlwaysAllow,") { // 1.2.6-8
		t.Errorf("CIS 1.2.6-8: kube-apiserver --authorization-mode=%s", api["authorization-mode"])
	}
	plugins := "," + api["enable-admission-plugins"] + ","
	if !strings.Contains(plugins, ",NodeRestriction,") || !strings.Contains(plugins, ",PodSecurity,") || strings.Contains(plugins, ",AlwaysAdmit,") { // 1.2.9-14
		t.Errorf("CIS 1.2.9-14: kube-apiserver --enable-admission-plugins=%s", api["enable-admission-plugins"])
	}
	for _, flag := range []string{"client-ca-file", "etcd-cafile", "etcd-certfile", "etcd-keyfile", "tls-cert-file", "tls-private-key-file",
		"service-account-key-file", "encryption-provider-config", "kubelet-client-certificate", "kubelet-client-key"} { // 1.2.4, 1.2.22-28
		if api[flag] == "" {
			t.Errorf("CIS 1.2: kube-apiserver has no --%s", flag)
		}
	}
	weakSuites(t, "kube-apiserver", api["tls-cipher-suites"])

	// 1.3 and 1.4: the controller-manager and the scheduler.
	kcm := procFlags(t, l, 0, "kube-controller-manager")
	wantFlags(t, "kube-controller-manager", kcm, map[string]string{
		"profiling":                       "false",     // 1.3.2
		"use-service-account-credentials": "true",      // 1.3.3
		"bind-address":                    "127.0.0.1", // 1.3.7
		"terminated-pod-gc-threshold":     "12500",     // 1.3.1
		"tls-min-version":                 "VersionTLS12",
	})
	for _, flag := range []string{"service-account-private-key-file", "root-ca-file", "tls-cert-file"} { // 1.3.4-5
		if kcm[flag] == "" {
			t.Errorf("CIS 1.3: kube-controller-manager has no --%s", flag)
		}
	}
	sched := procFlags(t, l, 0, "kube-scheduler")
	wantFlags(t, "kube-scheduler", sched, map[string]string{"profiling": "false", "bind-address": "127.0.0.1", "tls-min-version": "VersionTLS12"}) // 1.4.1-2
	// Their HTTPS ports serve kforge's certificates, not ones they made up at start.
	for _, port := range []string{"10257", "10259"} {
		if got := onHost(t, l, 0, "openssl s_client -connect 127.0.0.1:"+port+" </dev/null 2>/dev/null | openssl x509 -noout -issuer"); !strings.Contains(got, "kubernetes-ca") {
			t.Errorf("127.0.0.1:%s serves a certificate issued by %q, not the cluster CA", port, got)
		}
	}

	// 2: etcd.
	etcd := procFlags(t, l, 0, "etcd")
	wantFlags(t, "etcd", etcd, map[string]string{"client-cert-auth": "true", "peer-client-cert-auth": "true", "auto-tls": "false", "peer-auto-tls": "false"}) // 2.2-2.6
	for _, flag := range []string{"cert-file", "key-file", "peer-cert-file", "peer-key-file", "trusted-ca-file"} {                                            // 2.1, 2.4, 2.7
		if etcd[flag] == "" {
			t.Errorf("CIS 2: etcd has no --%s", flag)
		}
	}
	weakSuites(t, "etcd", etcd["cipher-suites"])

	// 1.2.1 and 4.2.1 in practice: without a client certificate the API answers health checks only, and the
	// kubelet nothing; the kubelet's read-only port is closed (4.2.4).
	anon := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}} // status codes only
	for url, want := range map[string]int{
		"https://" + netip.AddrPortFrom(cp.Address, 6443).String() + "/readyz":            http.StatusOK,
		"https://" + netip.AddrPortFrom(cp.Address, 6443).String() + "/api/v1/namespaces": http.StatusUnauthorized,
		"https://" + netip.AddrPortFrom(cp.Address, 6443).String() + "/version":           http.StatusUnauthorized,
		"https://" + netip.AddrPortFrom(l.Hosts[1].Address, 10250).String() + "/pods":     http.StatusUnauthorized,
	} {
		resp, err := anon.Get(url)
		if err != nil {
			t.Errorf("anonymous GET %s: %v", url, err)
			continue
		}
		resp.Body.Close()
		if resp.StatusCode != want {
			t.Errorf("anonymous GET %s: %s, want %d", url, resp.Status, want)
		}
	}
	for _, h := range l.Hosts[:hosts] {
		if c, err := net.DialTimeout("tcp", netip.AddrPortFrom(h.Address, 10255).String(), 3*time.Second); err == nil {
			c.Close()
			t.Errorf("CIS 4.2.4: the kubelet of %s serves its read-only port 10255", h.Name)
		}
	}
	// 1.2.29, 4.2.13, 2: TLS below 1.2, and TLS 1.2 without forward secrecy, are refused on every port.
	for _, port := range []uint16{6443, 10250, 2379, 2380} {
		addr := netip.AddrPortFrom(cp.Address, port).String()
		for name, cfg := range map[string]*tls.Config{
			"TLS 1.1":                  {MaxVersion: tls.VersionTLS11},
			"TLS_RSA_WITH_AES_128_GCM": {MaxVersion: tls.VersionTLS12, CipherSuites: []uint16{tls.TLS_RSA_WITH_AES_128_GCM_SHA256, tls.TLS_RSA_WITH_AES_128_CBC_SHA}},
		} {
			cfg.InsecureSkipVerify = true // the handshake's outcome is all that matters
			c, err := tls.DialWithDialer(&net.Dialer{Timeout: 5 * time.Second}, "tcp", addr, cfg)
			if err == nil {
				c.Close()
				t.Errorf("%s accepts %s", addr, name)
			}
		}
	}

	// 4.2: the kubelet's configuration as it runs, from its /configz.
	for _, h := range l.Hosts[:hosts] {
		raw := onHost(t, l, 0, kubectl+"get --raw /api/v1/nodes/"+h.Name+"/proxy/configz")
		var cz struct {
			Config struct {
				Authentication struct {
					Anonymous struct{ Enabled bool }
					Webhook   struct{ Enabled bool }
					X509      struct{ ClientCAFile string }
				}
				Authorization                  struct{ Mode string }
				ReadOnlyPort                   int
				ProtectKernelDefaults          bool
				MakeIPTablesUtilChains         bool
				EventRecordQPS                 int
				StreamingConnectionIdleTimeout string
				TLSCertFile                    string
				TLSMinVersion                  string
				TLSCipherSuites                []string
			} `json:"kubeletconfig"`
		}
		if err := json.Unmarshal([]byte(raw), &cz); err != nil {
			t.Fatalf("configz of %s: %v\n%s", h.Name, err, raw)
		}
		k := cz.Config
		if k.Authentication.Anonymous.Enabled || !k.Authentication.Webhook.Enabled || k.Authentication.X509.ClientCAFile == "" || // 4.2.1, 4.2.3
			k.Authorization.Mode != "Webhook" || k.ReadOnlyPort != 0 || !k.ProtectKernelDefaults || !k.MakeIPTablesUtilChains || // 4.2.2, 4.2.4, 4.2.6, 4.2.7
			k.EventRecordQPS <= 0 || k.StreamingConnectionIdleTimeout == "0s" || k.TLSCertFile == "" || k.TLSMinVersion != "VersionTLS12" { // 4.2.5, 4.2.8-10
			t.Errorf("CIS 4.2: the kubelet of %s runs with %+v", h.Name, k)
		}
		weakSuites(t, "kubelet of "+h.Name, strings.Join(k.TLSCipherSuites, ","))
	}

	// 1.1 and 4.1: modes and owners. Every file under /etc/kubernetes/pki and every kubeconfig is 0600
	// root:root, the components' units too; etcd's data directory is 0700.
	type want struct {
		pattern string
		mode    uint32
	}
	controlPlane := []want{
		{"/etc/systemd/system/kube-apiserver.service", 0o600}, {"/etc/systemd/system/kube-controller-manager.service", 0o600}, // 1.1.1-4
		{"/etc/systemd/system/kube-scheduler.service", 0o600}, {"/etc/systemd/system/etcd.service", 0o600}, // 1.1.5-8
		{"/etc/kubernetes/admin.conf", 0o600}, {"/etc/kubernetes/scheduler.conf", 0o600}, {"/etc/kubernetes/controller-manager.conf", 0o600}, // 1.1.13-18
		{"/etc/kubernetes/pki/*.crt /etc/kubernetes/pki/etcd/*.crt /etc/kubernetes/pki/*.pub", 0o600}, // 1.1.20
		{"/etc/kubernetes/pki/*.key /etc/kubernetes/pki/etcd/*.key", 0o600},                           // 1.1.21
		{"/etc/kubernetes/audit-policy.yaml /etc/kubernetes/authentication-config.yaml /etc/kubernetes/admission-config.yaml /etc/kubernetes/encryption-config.yaml", 0o600},
		{"/var/log/kubernetes/audit", 0o700},
	}
	node := []want{
		{"/etc/systemd/system/kubelet.service", 0o600}, // 4.1.1-2
		{"/etc/kubernetes/kube-proxy.conf", 0o600},     // 4.1.3-4
		{"/etc/kubernetes/kubelet.conf", 0o600},        // 4.1.5-6
		{"/etc/kubernetes/pki/ca.crt", 0o600},          // 4.1.7-8
		{"/var/lib/kubelet/config.yaml", 0o600},        // 4.1.9-10
		{"/var/lib/kubelet/pki/kubelet.crt /var/lib/kubelet/pki/kubelet.key", 0o600},
		{"/etc/cni/net.d/*", 0o600}, // 1.1.9-10: every CNI config, not only kforge's
	}
	for i, h := range l.Hosts[:hosts] {
		wants := node
		if i == 0 {
			wants = append(append([]want{}, controlPlane...), node...)
		}
		for _, w := range wants {
			out := onHost(t, l, i, "stat -c '%n %a %U:%G' "+w.pattern)
			for _, line := range strings.Split(out, "\n") {
				f := strings.Fields(line)
				if len(f) != 3 {
					t.Errorf("%s: stat %s: %q", h.Name, w.pattern, line)
					continue
				}
				mode, err := strconv.ParseUint(f[1], 8, 32)
				if err != nil || uint32(mode)&^w.mode != 0 || f[2] != "root:root" {
					t.Errorf("CIS 1.1/4.1: %s on %s is %s %s, want %o root:root or stricter", f[0], h.Name, f[1], f[2], w.mode)
				}
			}
		}
		// 1.1.11-12: etcd's data, and etcd itself, are the etcd user's.
		if i == 0 {
			if got := onHost(t, l, 0, "stat -c '%a %U:%G' /var/lib/etcd; find /var/lib/etcd ! -user etcd | head -3; stat -c %U /proc/$(pidof -s etcd)"); got != "700 etcd:etcd\netcd" {
				t.Errorf("CIS 1.1.11-12: /var/lib/etcd mode and owner, files not etcd's, etcd's user: %q", got)
			}
		}
		// 1.1.19: everything under /etc/kubernetes/pki is root's.
		if got := onHost(t, l, i, "find /etc/kubernetes/pki ! -user root -o ! -group root"); got != "" {
			t.Errorf("CIS 1.1.19: not root:root on %s: %s", h.Name, got)
		}
	}

	// 3.2.1: the audit log records a Secret's creation without its data.
	onHost(t, l, 0, kubectl+"create secret generic cis-audit --from-literal=password=kforge-cis-canary")
	defer onHost(t, l, 0, kubectl+"delete secret cis-audit")
	got := ""
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(time.Second) {
		if got = onHost(t, l, 0, "grep -h '\"name\":\"cis-audit\"' /var/log/kubernetes/audit/audit.log | grep '\"verb\":\"create\"' || true"); got != "" {
			break
		}
	}
	if !strings.Contains(got, `"level":"Metadata"`) || strings.Contains(got, "kforge-cis-canary") || strings.Contains(got, "a2ZvcmdlLWNpcy1jYW5hcnk") {
		t.Errorf("CIS 3.2.1: audit log entry of the Secret's creation: %q", got)
	}

	// Pod Security admission: a privileged pod is refused in a namespace without labels (baseline by default).
	if got := onHost(t, l, 0, kubectl+`apply --dry-run=server -f - 2>&1 <<'EOF' || true
apiVersion: v1
kind: Pod
metadata: {name: cis-privileged, namespace: default}
spec:
  containers: [{name: main, image: kforge.local/testbox:busybox, securityContext: {privileged: true}}]
EOF`); !strings.Contains(got, `violates PodSecurity "baseline:latest"`) {
		t.Errorf("a privileged pod in default: %q, want it refused by PodSecurity baseline", got)
	}
}

// procFlags are the --name=value flags a running process of the host was started with.
func procFlags(t *testing.T, l *lab.Lab, i int, process string) map[string]string {
	t.Helper()
	out := onHost(t, l, i, "tr '\\0' '\\n' < /proc/$(pidof -s "+process+")/cmdline")
	flags := map[string]string{}
	for _, arg := range strings.Split(out, "\n")[1:] {
		name, value, hasValue := strings.Cut(strings.TrimPrefix(arg, "--"), "=")
		if !hasValue {
			value = "true" // a boolean flag given bare
		}
		flags[name] = value
	}
	if len(flags) == 0 {
		t.Fatalf("%s on %s: no flags (is it running?)", process, l.Hosts[i].Name)
	}
	return flags
}

func wantFlags(t *testing.T, process string, got, want map[string]string) {
	t.Helper()
	for name, value := range want {
		if got[name] != value {
			t.Errorf("%s --%s=%q, want %q", process, name, got[name], value)
		}
	}
}

// weakSuites fails on a TLS 1.2 cipher suite list that is empty (Go's defaults) or has a suite without ECDHE
// key exchange and an AEAD cipher.
func weakSuites(t *testing.T, what, list string) {
	t.Helper()
	if list == "" {
		t.Errorf("%s: no TLS cipher suite list", what)
	}
	for _, s := range strings.Split(list, ",") {
		if !strings.HasPrefix(s, "TLS_ECDHE_") || !(strings.Contains(s, "_GCM_") || strings.Contains(s, "CHACHA20_POLY1305")) {
			t.Errorf("%s serves the weak cipher suite %s", what, s)
		}
	}
}
