package config

import (
	"os"
	"path/filepath"
	"testing"
)

// FuzzLoad feeds arbitrary configuration text (and a variables file) to the loader. It must never panic, and it
// returns a cluster exactly when it reports no error. Seeds: every fixture and example in the repository.
// Run longer with: make fuzz (FUZZTIME=10m).
func FuzzLoad(f *testing.F) {
	seeds, _ := filepath.Glob("testdata/invalid/*/*.hcl")
	examples, _ := filepath.Glob("../examples/*/*.hcl")
	seeds = append(seeds, examples...)
	if len(seeds) < 10 {
		f.Fatalf("too few seeds: %v", seeds)
	}
	for _, path := range seeds {
		src, err := os.ReadFile(path)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(string(src), "")
	}
	f.Add(poolConfig, "workers = 3\nzone = \"z\"\n")
	f.Add(`cluster "x" {}`+"\n"+`host "h" { for_each = var.m address = each.value roles = ["worker"] }`, `m = { a = "198.18.0.1" }`)

	f.Fuzz(func(t *testing.T, config, vars string) {
		dir := t.TempDir()
		if err := os.WriteFile(filepath.Join(dir, "main.hcl"), []byte(config), 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, "values.kfvars"), []byte(vars), 0o644); err != nil {
			t.Fatal(err)
		}
		cluster, diags := NewLoader().Load(Options{Path: dir, Vars: []string{"workers=2"}, Env: []string{"KFORGE_VAR_zone=e"}})
		if (cluster == nil) != diags.HasErrors() {
			t.Fatalf("cluster = %v but errors = %v: %v", cluster != nil, diags.HasErrors(), diags)
		}
		for _, d := range diags {
			if d.Summary == "" {
				t.Fatalf("diagnostic without a summary: %#v", d)
			}
		}
	})
}
