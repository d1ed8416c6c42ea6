package kubeconfig_test

import (
	"fmt"
	"os"
	"testing"

	"gopkg.in/yaml.v3"

	"github.com/kforge/kforge/pki"
)

// admin renders the admin kubeconfig exactly as kforge writes it (pki.RenderKubeconfig), so that these tests
// follow its format. The PEM is fake, which is all kubectl needs to read the file; serial stands for one issue
// of the CA and client certificate, so two calls with the same serial have equal CA and user data.
func admin(cluster, server, serial string) []byte {
	pem := func(what, id string) []byte {
		return fmt.Appendf(nil, "-----BEGIN %s-----\n%s-%s\n-----END %s-----\n", what, id, serial, what)
	}
	return pki.RenderKubeconfig(cluster, "kubernetes-admin", server, pem("CERTIFICATE", "ca"),
		pki.Pair{CertPEM: pem("CERTIFICATE", "admin"), KeyPEM: pem("PRIVATE KEY", "admin")})
}

// kubeconfig is the decoded meaning of a file, to compare content rather than spelling.
type decoded map[string]any

func decode(t *testing.T, data []byte) decoded {
	t.Helper()
	var k map[string]any // not decoded: yaml.v3 would decode every nested mapping into that type too
	if err := yaml.Unmarshal(data, &k); err != nil {
		t.Fatalf("%v in:\n%s", err, data)
	}
	return k
}

// entries maps name → item of one of the lists, and gives the names in order.
func (k decoded) entries(list string) (map[string]any, []string) {
	byName := map[string]any{}
	var names []string
	items, _ := k[list].([]any)
	for _, it := range items {
		name, _ := it.(map[string]any)["name"].(string)
		byName[name] = it
		names = append(names, name)
	}
	return byName, names
}

func readFile(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
