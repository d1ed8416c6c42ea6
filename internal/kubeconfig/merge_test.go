package kubeconfig_test

import (
	"errors"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/kforge/kforge/internal/golden"
	"github.com/kforge/kforge/internal/kubeconfig"
)

const server = "https://k8s.example.internal:6443"

// jsonConfig is a kubeconfig written as JSON, with strings that must stay quoted in YAML.
const jsonConfig = `{"apiVersion":"v1","kind":"Config","clusters":[{"name":"a","cluster":{"server":"https://a:6443","tls-server-name":"true"}}],` +
	`"users":[{"name":"a","user":{"token":"t","username":""}}],"contexts":[{"name":"a","context":{"cluster":"a","user":"a"}}],"current-context":"a"}`

func TestMerge(t *testing.T) {
	existing := string(readFile(t, filepath.Join("testdata", "existing.yaml")))
	two := string(admin("other", "https://10.1.0.1:6443", "1"))
	type c = kubeconfig.Change
	tests := []struct {
		name     string
		existing string
		add      []byte
		opts     kubeconfig.Options
		changes  []kubeconfig.Change
		current  string
		previous string
	}{
		{
			name: "missing file", existing: "", add: admin("test", server, "1"),
			changes: []c{{"cluster", "test", kubeconfig.Added}, {"user", "kubernetes-admin", kubeconfig.Added}, {"context", "kubernetes-admin@test", kubeconfig.Added}},
			current: "kubernetes-admin@test",
		},
		{
			name: "only comments and blanks", existing: "# nothing yet\n\n", add: admin("test", server, "1"),
			changes: []c{{"cluster", "test", kubeconfig.Added}, {"user", "kubernetes-admin", kubeconfig.Added}, {"context", "kubernetes-admin@test", kubeconfig.Added}},
			current: "kubernetes-admin@test",
		},
		{
			name: "what kubectl writes for an empty config", add: admin("test", server, "1"),
			existing: "apiVersion: v1\nclusters: null\ncontexts: null\ncurrent-context: \"\"\nkind: Config\npreferences: {}\nusers: null\n",
			changes:  []c{{"cluster", "test", kubeconfig.Added}, {"user", "kubernetes-admin", kubeconfig.Added}, {"context", "kubernetes-admin@test", kubeconfig.Added}},
			current:  "kubernetes-admin@test",
		},
		{
			name: "re-created cluster: CA, server and key changed", existing: existing, add: admin("test", server, "2"),
			changes: []c{{"cluster", "test", kubeconfig.Replaced}, {"user", "kubernetes-admin", kubeconfig.Replaced}, {"context", "kubernetes-admin@test", kubeconfig.Unchanged}},
			current: "kubernetes-admin@test", previous: "prod",
		},
		{
			name: "keep the user's context", existing: existing, add: admin("test", server, "2"), opts: kubeconfig.Options{KeepCurrentContext: true},
			changes: []c{{"cluster", "test", kubeconfig.Replaced}, {"user", "kubernetes-admin", kubeconfig.Replaced}, {"context", "kubernetes-admin@test", kubeconfig.Unchanged}},
			current: "prod", previous: "prod",
		},
		{
			name: "keep, but the file has no context to keep", existing: "", add: admin("test", server, "1"), opts: kubeconfig.Options{KeepCurrentContext: true},
			changes: []c{{"cluster", "test", kubeconfig.Added}, {"user", "kubernetes-admin", kubeconfig.Added}, {"context", "kubernetes-admin@test", kubeconfig.Added}},
			current: "kubernetes-admin@test",
		},
		{
			name: "a second kforge cluster issued by the same CA", existing: two, add: admin("test", server, "1"),
			changes: []c{{"cluster", "test", kubeconfig.Added}, {"user", "kubernetes-admin", kubeconfig.Unchanged}, {"context", "kubernetes-admin@test", kubeconfig.Added}},
			current: "kubernetes-admin@test", previous: "kubernetes-admin@other",
		},
		{
			name: "same cluster again", existing: string(admin("test", server, "1")), add: admin("test", server, "1"),
			changes: []c{{"cluster", "test", kubeconfig.Unchanged}, {"user", "kubernetes-admin", kubeconfig.Unchanged}, {"context", "kubernetes-admin@test", kubeconfig.Unchanged}},
			current: "kubernetes-admin@test", previous: "kubernetes-admin@test",
		},
		{
			name: "JSON kubeconfig", add: admin("test", server, "1"),
			existing: jsonConfig,
			changes:  []c{{"cluster", "test", kubeconfig.Added}, {"user", "kubernetes-admin", kubeconfig.Added}, {"context", "kubernetes-admin@test", kubeconfig.Added}},
			current:  "kubernetes-admin@test", previous: "a",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			merged, sum, err := kubeconfig.Merge([]byte(tt.existing), tt.add, tt.opts)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(sum.Changes, tt.changes) || sum.CurrentContext != tt.current || sum.PreviousContext != tt.previous {
				t.Errorf("summary %+v, want changes %+v, current %q, previous %q", sum, tt.changes, tt.current, tt.previous)
			}
			checkMerged(t, []byte(tt.existing), tt.add, merged, tt.current)
		})
	}
}

// checkMerged asserts the contract: add's entries are in merged as they are in add; every other entry, top-level
// key and field of existing is in merged with the same value and in the same order.
func checkMerged(t *testing.T, existing, add, merged []byte, current string) {
	t.Helper()
	before, in, after := decode(t, existing), decode(t, add), decode(t, merged)
	if after["apiVersion"] != "v1" || after["kind"] != "Config" || after["current-context"] != current {
		t.Errorf("apiVersion %v, kind %v, current-context %v", after["apiVersion"], after["kind"], after["current-context"])
	}
	for key, v := range before {
		switch key {
		case "clusters", "users", "contexts", "current-context":
		default:
			if !reflect.DeepEqual(after[key], v) {
				t.Errorf("%s changed: %v → %v", key, v, after[key])
			}
		}
	}
	for _, list := range []string{"clusters", "users", "contexts"} {
		old, oldNames := before.entries(list)
		added, addNames := in.entries(list)
		now, nowNames := after.entries(list)
		for name, it := range added {
			if !reflect.DeepEqual(now[name], it) {
				t.Errorf("%s %q is %v, want %v", list, name, now[name], it)
			}
		}
		var kept []string
		for _, name := range oldNames {
			if _, ok := added[name]; ok {
				continue
			}
			kept = append(kept, name)
			if !reflect.DeepEqual(now[name], old[name]) {
				t.Errorf("%s %q changed: %v → %v", list, name, old[name], now[name])
			}
		}
		// Existing entries keep their places; new ones come after them.
		want := slices.Clone(oldNames)
		for _, name := range addNames {
			if !slices.Contains(want, name) {
				want = append(want, name)
			}
		}
		if !slices.Equal(nowNames, want) {
			t.Errorf("%s are %v, want %v (kept %v)", list, nowNames, want, kept)
		}
	}
}

func TestMergeTwiceIsIdempotent(t *testing.T) {
	existing := readFile(t, filepath.Join("testdata", "existing.yaml"))
	for _, opts := range []kubeconfig.Options{{}, {KeepCurrentContext: true}} {
		for _, start := range [][]byte{nil, existing, admin("test", server, "1"), []byte(jsonConfig)} {
			once, _, err := kubeconfig.Merge(start, admin("test", server, "2"), opts)
			if err != nil {
				t.Fatal(err)
			}
			twice, sum, err := kubeconfig.Merge(once, admin("test", server, "2"), opts)
			if err != nil {
				t.Fatal(err)
			}
			if string(twice) != string(once) {
				t.Errorf("second merge changed the bytes:\n--- first\n%s\n--- second\n%s", once, twice)
			}
			if sum.Changed() {
				t.Errorf("second merge reports changes: %+v", sum)
			}
		}
	}
}

func TestMergeGolden(t *testing.T) {
	existing := readFile(t, filepath.Join("testdata", "existing.yaml"))
	merged, _, err := kubeconfig.Merge(existing, admin("test", server, "2"), kubeconfig.Options{})
	if err != nil {
		t.Fatal(err)
	}
	golden.Check(t, filepath.Join("testdata", "merged.golden.yaml"), string(merged))
}

func TestMergeRejects(t *testing.T) {
	good := admin("test", server, "1")
	tests := []struct {
		name, existing string
		add            []byte
		want           string // in the error
	}{
		{"a pod", "apiVersion: v1\nkind: Pod\nmetadata:\n  name: x\n", good, `line 2: not a kubeconfig: kind is "Pod"`},
		{"invalid YAML", "apiVersion: v1\nkind: Config\nclusters: [\n", good, "yaml:"},
		{"tabs", "apiVersion: v1\n\tkind: Config\n", good, "yaml:"},
		{"another apiVersion", "apiVersion: v2\nkind: Config\n", good, `apiVersion is "v2"`},
		{"two documents", "kind: Config\n---\nkind: Config\n", good, "more than one YAML document"},
		{"a list", "- a\n- b\n", good, "not a mapping"},
		{"a string", "hello\n", good, "not a mapping"},
		{"some other YAML", "services:\n  web:\n    image: nginx\n", good, "not a kubeconfig: no kind, clusters"},
		{"clusters not a list", "kind: Config\nclusters:\n  a: {}\n", good, "line 3: clusters is not a list"},
		{"an entry not a mapping", "kind: Config\nusers:\n- alice\n", good, "an item of users is not a mapping"},
		{"duplicate names kubectl rejects", "kind: Config\nclusters:\n- name: a\n- name: a\n", good, `line 4: duplicate cluster name "a"`},
		{"duplicate keys", "kind: Config\nclusters: []\nclusters: []\n", good, `duplicate key "clusters"`},
		{"current-context a list", "kind: Config\ncurrent-context: [a]\n", good, "current-context is not a string"},
		{"nothing to merge", "", []byte("apiVersion: v1\nkind: Config\n"), "kubeconfig to merge: no contexts"},
		{"current-context missing from add", "", []byte("kind: Config\ncontexts:\n- name: a\n  context: {cluster: a, user: a}\ncurrent-context: b\n"), `current-context "b" is not one`},
		{"unnamed entry in add", "", []byte("kind: Config\ncontexts:\n- context: {cluster: a, user: a}\n"), "line 3: a context has no name"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			merged, _, err := kubeconfig.Merge([]byte(tt.existing), tt.add, kubeconfig.Options{})
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("error %v, want one containing %q", err, tt.want)
			}
			if merged != nil {
				t.Error("output despite the error")
			}
		})
	}
}

func TestMergeConflict(t *testing.T) {
	kubeadm := admin("kubernetes", "https://10.9.0.1:6443", "kubeadm")
	tests := []struct {
		name     string
		existing []byte
		want     *kubeconfig.ConflictError // nil: no conflict
	}{
		{"kubeadm's admin.conf merged earlier", kubeadm, &kubeconfig.ConflictError{Kind: "user", Name: "kubernetes-admin", Context: "kubernetes-admin@kubernetes"}},
		{"another kforge cluster", admin("other", "https://10.1.0.1:6443", "1"), &kubeconfig.ConflictError{Kind: "user", Name: "kubernetes-admin", Context: "kubernetes-admin@other"}},
		{"another tool's cluster named like ours", []byte("kind: Config\nclusters:\n- name: test\n  cluster: {server: https://x}\nusers:\n- name: me\n  user: {token: t}\ncontexts:\n- name: mine\n  context: {cluster: test, user: me}\n"),
			&kubeconfig.ConflictError{Kind: "cluster", Name: "test", Context: "mine"}},
		{"a namespace variant of our own context", readFile(t, filepath.Join("testdata", "existing.yaml")), nil},
		// A user equal in value is not replaced, so the other context keeps working.
		{"the same user for another cluster", admin("other", "https://10.1.0.1:6443", "2"), nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, _, err := kubeconfig.Merge(tt.existing, admin("test", server, "2"), kubeconfig.Options{})
			var ce *kubeconfig.ConflictError
			switch {
			case tt.want == nil && err != nil:
				t.Fatal(err)
			case tt.want != nil && !errors.As(err, &ce):
				t.Fatalf("error %v, want a ConflictError", err)
			case tt.want != nil && *ce != *tt.want:
				t.Errorf("%+v, want %+v", *ce, *tt.want)
			}
		})
	}
}

func TestMergeWritesJSONBackAsBlockYAML(t *testing.T) {
	merged, _, err := kubeconfig.Merge([]byte(jsonConfig), admin("test", server, "1"), kubeconfig.Options{})
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"apiVersion: v1\nkind: Config\nclusters:\n  - name: a\n", `tls-server-name: "true"`, `username: ""`} {
		if !strings.Contains(string(merged), want) {
			t.Errorf("no %q in:\n%s", want, merged)
		}
	}
}
