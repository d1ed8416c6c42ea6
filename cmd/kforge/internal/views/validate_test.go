package views

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"

	"github.com/kforge/kforge/config"
)

// TestValidateShowsRegistryMirrors: the summary has a line per registry with mirrors, sorted, in both views.
func TestValidateShowsRegistryMirrors(t *testing.T) {
	c := &config.Cluster{Name: "m", Containerd: config.Containerd{RegistryMirrors: map[string][]string{
		"registry.k8s.io": {"http://198.18.100.1:5000", "https://mirror.example"},
		"docker.io":       {"https://hub.example"},
	}}}
	var out, errs bytes.Buffer
	if err := (&ValidateHuman{Out: &out, Err: &errs}).Result(ValidateResult{Cluster: c}); err != nil {
		t.Fatal(err)
	}
	want := "  image mirror        docker.io → https://hub.example, then the registry\n" +
		"  image mirror        registry.k8s.io → http://198.18.100.1:5000, https://mirror.example, then the registry\n"
	if !strings.Contains(out.String(), want) {
		t.Errorf("human summary:\n%s\nwant the lines:\n%s", out.String(), want)
	}
	out.Reset()
	if err := (&ValidateJSON{Out: &out}).Result(ValidateResult{Cluster: c}); err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Cluster struct {
			RegistryMirrors map[string][]string `json:"registry_mirrors"`
		} `json:"cluster"`
	}
	if err := json.Unmarshal(out.Bytes(), &doc); err != nil || len(doc.Cluster.RegistryMirrors["registry.k8s.io"]) != 2 {
		t.Errorf("JSON summary: %v\n%s", err, out.String())
	}
}
