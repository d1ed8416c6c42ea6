package desired

import (
	"github.com/kforge/kforge/config"
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

// apiServerSecurity are the API server's admission configuration and, as the configuration's security block
// has them, its audit policy and log directory and its authentication configuration: files it reads when it
// starts, so each restarts it.
func apiServerSecurity(data templates.ControlPlane) ([]resource.Resource, error) {
	files := []struct{ template, path string }{{"admission-config.yaml", AdmissionConfigFile}}
	var out []resource.Resource
	if data.Audit.Enabled {
		out = append(out, dir("/var/log/kubernetes", 0o755), dir(AuditLogDir, 0o700))
		files = append(files, struct{ template, path string }{"audit-policy.yaml", AuditPolicyFile})
	}
	if data.AnonymousHealthChecks {
		files = append(files, struct{ template, path string }{"authentication-config.yaml", AuthenticationConfigFile})
	}
	for _, f := range files {
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

// securityData is what the control plane's templates take from the configuration's security block.
func securityData(s config.Security, data *templates.ControlPlane) {
	data.TLSCipherSuites, data.PodSecurity = tlsCipherSuites, s.PodSecurity
	data.AnonymousHealthChecks, data.Profiling = s.AnonymousHealthChecks, s.Profiling
	a := s.AuditLog
	data.Audit = templates.AuditLog{Enabled: a.Enabled, MaxAge: a.MaxAge, MaxBackups: a.MaxBackups, MaxSize: a.MaxSize}
}
