package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/hcl/v2"
)

// TestBackend: no block is the local backend; an etcd block is read whole, with its defaults (prefix by cluster
// name, a 15 s lock TTL); each mistake is reported at its file:line:col.
func TestBackend(t *testing.T) {
	secrets := t.TempDir()
	for _, f := range []string{"ca.crt", "client.crt", "client.key", "backend.key"} {
		if err := os.WriteFile(filepath.Join(secrets, f), []byte("x"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(secrets, "open.key"), []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	load := func(block string) (*Cluster, hcl.Diagnostics) {
		return NewLoader().Load(Options{Path: writeConfig(t, map[string]string{"main.hcl": "cluster \"prod\" {}\n" + block + "\n" +
			"host \"cp\" {\n  address = \"198.18.0.10\"\n  roles = [\"control-plane\", \"etcd\", \"worker\"]\n}\n"})})
	}
	c, diags := load("")
	if diags.HasErrors() || c.Backend.Type != BackendLocal || c.Backend.Dir != "" {
		t.Fatalf("no block: %+v %v", c.Backend, diags)
	}
	tls := `  ca_file   = "` + secrets + `/ca.crt"
  cert_file = "` + secrets + `/client.crt"
  key_file  = "` + secrets + `/client.key"
`
	c, diags = load(`backend "etcd" {
  endpoints = ["https://198.18.0.5:2379", "https://[fd00::5]:2379/"]
` + tls + `  encryption_key_file = "` + secrets + `/backend.key"
}`)
	if diags.HasErrors() {
		t.Fatal(diags)
	}
	b := c.Backend
	if b.Type != BackendEtcd || strings.Join(b.Endpoints, ",") != "https://198.18.0.5:2379,https://[fd00::5]:2379" || b.Prefix != "/kforge/prod/" ||
		b.CAFile != secrets+"/ca.crt" || b.KeyFile != secrets+"/client.key" || b.EncryptionKeyFile != secrets+"/backend.key" ||
		b.LocalPKI || b.LockTTL != 15*time.Second {
		t.Errorf("etcd: %+v", b)
	}
	c, diags = load("backend \"etcd\" {\n  endpoints = [\"https://e:2379\"]\n" + tls + "  pki = \"local\"\n  prefix = \"/teams/a/\"\n  lock_ttl = \"30s\"\n}")
	if diags.HasErrors() || !c.Backend.LocalPKI || c.Backend.Prefix != "/teams/a/" || c.Backend.LockTTL != 30*time.Second {
		t.Errorf("pki local, no key: %+v %v", c.Backend, diags)
	}
	c, diags = load("backend \"local\" {\n  dir = \"state\"\n}")
	if diags.HasErrors() || c.Backend.Dir != filepath.Join(c.Dir, "state") {
		t.Errorf("local dir: %+v %v", c.Backend, diags)
	}
	for block, want := range map[string]string{
		`backend "s3" {}`: `main.hcl:2,9-13: Unknown backend; There is no backend "s3"`,
		"backend \"etcd\" {\n  endpoints = [\"http://e:2379\"]\n" + tls + "  encrypt_files = false\n}":                               `main.hcl:3,15-32: Invalid etcd endpoint; "http://e:2379" is not an etcd client URL`,
		"backend \"etcd\" {\n  endpoints = [\"https://e:2379\"]\n" + tls + "}":                                                       `main.hcl:2,1-15: Missing encryption_key_file`,
		"backend \"etcd\" {\n  endpoints = [\"https://e:2379\"]\n" + tls + "  encryption_key_file = \"" + secrets + "/open.key\"\n}": `Encryption key file is readable by others`,
		"backend \"etcd\" {\n  endpoints = [\"https://e:2379\"]\n" + tls + "  encrypt_files = false\n  prefix = \"kforge\"\n}":       `main.hcl:8,12-20: Invalid prefix`,
		"backend \"etcd\" {\n  endpoints = [\"https://e:2379\"]\n  encrypt_files = false\n}":                                         `main.hcl:2,1-15: Missing ca_file`,
		"backend \"etcd\" {\n  endpoints = [\"https://e:2379\"]\n  ca_file = \"/nonexistent/ca\"\n" + "  encrypt_files = false\n}":   `main.hcl:4,13-30: File not found; /nonexistent/ca`,
		"backend \"local\" {\n  endpoints = [\"https://e:2379\"]\n}":                                                                 `main.hcl:3,15-33: Unsupported argument; endpoints is an argument of backend "etcd", not of backend "local".`,
		"backend \"etcd\" {\n  endpoints = [\"https://e:2379\"]\n" + tls + "  encrypt_files = false\n  lock_ttl = \"1s\"\n}":         `main.hcl:8,14-18: Invalid lock_ttl`,
		"backend \"local\" {}\nbackend \"local\" {}":                                                                                 `main.hcl:3,1-16: Duplicate backend block`,
	} {
		_, diags := load(block)
		var all []string
		for _, d := range diags {
			all = append(all, d.Error())
		}
		if !diags.HasErrors() || !strings.Contains(strings.Join(all, "\n"), want) {
			t.Errorf("%s:\n%s\nwant %s", block, strings.Join(all, "\n"), want)
		}
	}
}
