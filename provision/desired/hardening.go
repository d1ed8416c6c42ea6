package desired

import (
	"github.com/kforge/kforge/provision/resource"
	"github.com/kforge/kforge/templates"
)

// tlsCipherSuites are what every component serves TLS 1.2 with (TLS 1.3 chooses its own): ECDHE key exchange
// and AEAD ciphers only, as the CIS benchmark asks (1.2.29, 4.2.13).
const tlsCipherSuites = "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384," +
	"TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256,TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256," +
	"TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384,TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256"

// The API server's security configuration files, and where it writes its audit log.
const (
	AuditPolicyFile          = KubernetesDir + "/audit-policy.yaml"
	AuthenticationConfigFile = KubernetesDir + "/authentication-config.yaml"
	AdmissionConfigFile      = KubernetesDir + "/admission-config.yaml"
	AuditLogDir              = "/var/log/kubernetes/audit"
)

// apiServerSecurity are the API server's audit policy, authentication and admission configurations, and the
// audit log's directory: files it reads when it starts, so each restarts it.
func apiServerSecurity(data templates.ControlPlane) ([]resource.Resource, error) {
	out := []resource.Resource{dir("/var/log/kubernetes", 0o755), dir(AuditLogDir, 0o700)}
	for _, f := range []struct{ template, path string }{
		{"audit-policy.yaml", AuditPolicyFile},
		{"authentication-config.yaml", AuthenticationConfigFile},
		{"admission-config.yaml", AdmissionConfigFile},
	} {
		content, err := templates.Render(f.template, data)
		if err != nil {
			return nil, err
		}
		r := file(f.path, content, 0o600, false, "")
		r.Diffable = true
		out = append(out, r)
	}
	return out, nil
}

// Until the configuration says otherwise: namespaces enforce the baseline Pod Security level, and the audit log
// keeps 30 days, at most 10 rotated files of 100 MB.
const podSecurityLevel = "baseline"

var auditLog = templates.AuditLog{MaxAge: 30, MaxBackups: 10, MaxSize: 100}
