// Package kubeconfig merges kforge's admin kubeconfig into a user's kubeconfig file, like `kind export kubeconfig`:
// the cluster's entries are added or replaced, everything else in the file is kept as it was.
package kubeconfig

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"reflect"

	"gopkg.in/yaml.v3"
)

// Options changes how Merge treats the user's file.
type Options struct {
	// KeepCurrentContext leaves the file's current-context alone, unless it has none. The zero value switches to
	// the merged cluster, like kind and k3d do, because someone who just created a cluster means to use it.
	KeepCurrentContext bool
}

// Action says what a merge did to one entry.
type Action int

// Unchanged means add's entry equals the existing one in value, which is then kept as it was written.
const (
	Added Action = iota + 1
	Replaced
	Unchanged
)

func (a Action) String() string {
	switch a {
	case Added:
		return "added"
	case Replaced:
		return "replaced"
	case Unchanged:
		return "unchanged"
	}
	return fmt.Sprintf("Action(%d)", int(a))
}

// Change is one cluster, user or context of the merged kubeconfig and what happened to it.
type Change struct {
	Kind   string // "cluster", "user" or "context"
	Name   string
	Action Action
}

// Summary is what a merge did, for the command to tell the user.
type Summary struct {
	Changes         []Change // clusters, then users, then contexts, each in add's order
	CurrentContext  string   // after the merge
	PreviousContext string   // before it; "" when the file had none
}

// Changed reports whether the merge changed anything, so that a re-run can say "already up to date".
func (s Summary) Changed() bool {
	for _, c := range s.Changes {
		if c.Action != Unchanged {
			return true
		}
	}
	return s.CurrentContext != s.PreviousContext
}

// ConflictError refuses to replace a user or cluster that another of the user's contexts pairs with an entry
// the merge does not bring. kubeadm names its admin user "kubernetes-admin" in every cluster, so replacing a
// user of that name would silently hand another context a client certificate its cluster does not trust.
type ConflictError struct {
	Kind    string // "cluster" or "user"
	Name    string
	Context string // the user's context that uses it
}

func (e *ConflictError) Error() string {
	return fmt.Sprintf("%s %q is also used by context %q, which pairs it with a %s this merge does not provide: replacing it would break that context; rename the %s in that context or delete the context first",
		e.Kind, e.Name, e.Context, other(e.Kind), e.Kind)
}

func other(kind string) string {
	if kind == "user" {
		return "cluster"
	}
	return "user"
}

// Merge returns existing with the clusters, users and contexts of add: an entry of add replaces the entry of
// the same name in its place, a new one is appended, and the current-context is set as opts says.
//
// Everything else in existing is kept, in its order, including what kforge does not know (extensions, exec
// users, preferences, other keys), because the file is edited as a YAML node tree rather than decoded into
// structs. It is not kept byte for byte: comments survive only where yaml.v3 attaches them to a node, lists are
// re-indented by two spaces, and a JSON file comes back as YAML. A second merge of the same add gives identical
// bytes.
//
// An empty existing is a fresh kubeconfig. One that is not a kubeconfig (another kind, invalid YAML, duplicate
// names kubectl would reject) is an error, and so is a merge that would break another context (ConflictError):
// callers must then leave the file alone.
func Merge(existing, add []byte, opts Options) ([]byte, Summary, error) {
	base, err := parse(existing)
	if err != nil {
		return nil, Summary{}, fmt.Errorf("existing kubeconfig: %w", err)
	}
	in, err := parse(add)
	if err != nil {
		return nil, Summary{}, fmt.Errorf("kubeconfig to merge: %w", err)
	}
	if err := in.checkComplete(); err != nil {
		return nil, Summary{}, fmt.Errorf("kubeconfig to merge: %w", err)
	}
	if err := base.checkConflicts(in); err != nil {
		return nil, Summary{}, err
	}

	var sum Summary
	for _, s := range sections {
		for _, e := range in.entries[s.list] {
			sum.Changes = append(sum.Changes, Change{Kind: s.item, Name: e.name, Action: base.put(s, e.node)})
		}
	}

	sum.PreviousContext = base.currentContext()
	sum.CurrentContext = sum.PreviousContext
	if want := in.wantedContext(); want != "" && (!opts.KeepCurrentContext || sum.PreviousContext == "") {
		base.setScalar("current-context", want)
		sum.CurrentContext = want
	}

	if base.root.Style&yaml.FlowStyle != 0 {
		// A JSON kubeconfig: written back as JSON-like flow YAML it would be one line mixing both; kubectl
		// reads either, and writes YAML itself.
		toBlockStyle(base.root)
	}
	var buf bytes.Buffer
	enc := yaml.NewEncoder(&buf)
	enc.SetIndent(2)
	if err := enc.Encode(base.file); err != nil {
		return nil, Summary{}, fmt.Errorf("encode merged kubeconfig: %w", err)
	}
	if err := enc.Close(); err != nil {
		return nil, Summary{}, fmt.Errorf("encode merged kubeconfig: %w", err)
	}
	return buf.Bytes(), sum, nil
}

// section is one of the kubeconfig's named lists: "clusters" holds items {name, cluster}.
type section struct{ list, item string }

var sections = [...]section{{"clusters", "cluster"}, {"users", "user"}, {"contexts", "context"}}

type entry struct {
	name string
	node *yaml.Node
}

// document is a parsed kubeconfig: the node tree, which is what gets written back, and an index of its entries.
type document struct {
	file    *yaml.Node // the document node, which carries the head and foot comments
	root    *yaml.Node // its mapping
	entries map[string][]entry
}

func parse(data []byte) (*document, error) {
	var file yaml.Node
	dec := yaml.NewDecoder(bytes.NewReader(data))
	err := dec.Decode(&file)
	if errors.Is(err, io.EOF) {
		return fresh(), nil
	}
	if err != nil {
		return nil, err
	}
	var next yaml.Node
	if err := dec.Decode(&next); !errors.Is(err, io.EOF) {
		return nil, errors.New("more than one YAML document: a kubeconfig is one")
	}
	if len(file.Content) == 0 {
		return fresh(), nil // only comments
	}
	root := resolve(file.Content[0])
	if root.Kind == yaml.ScalarNode && root.Tag == "!!null" {
		return fresh(), nil
	}
	if root.Kind != yaml.MappingNode {
		return nil, fmt.Errorf("line %d: not a kubeconfig: the document is not a mapping", root.Line)
	}
	d := &document{file: &file, root: root, entries: map[string][]entry{}}
	if err := d.check(); err != nil {
		return nil, err
	}
	return d, nil
}

func fresh() *document {
	root := &yaml.Node{Kind: yaml.MappingNode, Tag: "!!map"}
	d := &document{file: &yaml.Node{Kind: yaml.DocumentNode, Content: []*yaml.Node{root}}, root: root, entries: map[string][]entry{}}
	d.setScalar("apiVersion", "v1")
	d.setScalar("kind", "Config")
	return d
}

// check rejects what kubectl would reject or what is plainly another kind of file, and indexes the entries.
func (d *document) check() error {
	seen := map[string]bool{}
	for i := 0; i < len(d.root.Content); i += 2 {
		k := d.root.Content[i]
		if seen[k.Value] {
			return fmt.Errorf("line %d: duplicate key %q", k.Line, k.Value)
		}
		seen[k.Value] = true
	}
	if v := d.value("kind"); v != nil && v.Value != "Config" {
		return fmt.Errorf("line %d: not a kubeconfig: kind is %q, want Config", v.Line, v.Value)
	}
	if v := d.value("apiVersion"); v != nil && v.Value != "v1" {
		return fmt.Errorf("line %d: not a kubeconfig: apiVersion is %q, want v1", v.Line, v.Value)
	}
	if len(d.root.Content) > 0 && !seen["kind"] && !seen["clusters"] && !seen["users"] && !seen["contexts"] && !seen["current-context"] {
		return fmt.Errorf("line %d: not a kubeconfig: no kind, clusters, users or contexts", d.root.Line)
	}
	if v := d.value("current-context"); v != nil && v.Kind != yaml.ScalarNode {
		return fmt.Errorf("line %d: current-context is not a string", v.Line)
	}
	for _, s := range sections {
		list := d.value(s.list)
		if list == nil || isNull(list) {
			continue
		}
		if list.Kind != yaml.SequenceNode {
			return fmt.Errorf("line %d: %s is not a list", list.Line, s.list)
		}
		names := map[string]bool{}
		for _, n := range list.Content {
			item := resolve(n)
			if item.Kind != yaml.MappingNode {
				return fmt.Errorf("line %d: an item of %s is not a mapping", item.Line, s.list)
			}
			name := scalar(item, "name")
			if names[name] {
				return fmt.Errorf("line %d: duplicate %s name %q", item.Line, s.item, name)
			}
			names[name] = true
			d.entries[s.list] = append(d.entries[s.list], entry{name: name, node: n})
		}
	}
	return nil
}

// checkComplete asks of the kubeconfig to merge what the user's file can do without: something to merge, names,
// and a current-context that exists, since it becomes the user's.
func (d *document) checkComplete() error {
	if len(d.entries["contexts"]) == 0 {
		return errors.New("no contexts")
	}
	for _, s := range sections {
		for _, e := range d.entries[s.list] {
			if e.name == "" {
				return fmt.Errorf("line %d: a %s has no name", e.node.Line, s.item)
			}
			if body := field(resolve(e.node), s.item); body == nil || body.Kind != yaml.MappingNode {
				return fmt.Errorf("line %d: %s %q has no %s mapping", e.node.Line, s.item, e.name, s.item)
			}
		}
	}
	if cc := d.currentContext(); cc != "" && d.find("contexts", cc) == nil {
		return fmt.Errorf("current-context %q is not one of its contexts", cc)
	}
	return nil
}

// checkConflicts finds the user's contexts that would be left pairing a replaced user or cluster with one that
// in does not provide (see ConflictError). A context that in replaces too, or whose cluster and user both come
// from in (a namespace variant the user made), is fine.
func (d *document) checkConflicts(in *document) error {
	for _, ctx := range d.entries["contexts"] {
		if in.find("contexts", ctx.name) != nil {
			continue
		}
		body := field(resolve(ctx.node), "context")
		if body == nil {
			continue
		}
		refs := []struct{ kind, list, name string }{
			{"cluster", "clusters", scalar(body, "cluster")},
			{"user", "users", scalar(body, "user")},
		}
		for i, r := range refs {
			o := refs[1-i]
			if o.name == "" || in.find(o.list, o.name) != nil {
				continue
			}
			mine, theirs := d.find(r.list, r.name), in.find(r.list, r.name)
			if mine != nil && theirs != nil && !sameValue(mine, theirs) {
				return &ConflictError{Kind: r.kind, Name: r.name, Context: ctx.name}
			}
		}
	}
	return nil
}

// put replaces the entry of the same name, keeping its place in the list, or appends a new one. An entry equal
// in value is kept as it is, comments and quoting included.
func (d *document) put(s section, n *yaml.Node) Action {
	name := scalar(resolve(n), "name")
	list := d.value(s.list)
	if list == nil || isNull(list) {
		list = &yaml.Node{Kind: yaml.SequenceNode, Tag: "!!seq"}
		d.set(s.list, list)
	}
	for i, e := range d.entries[s.list] {
		if e.name != name {
			continue
		}
		if sameValue(e.node, n) {
			return Unchanged
		}
		idx := indexOf(list.Content, e.node)
		list.Content[idx] = n
		d.entries[s.list][i].node = n
		return Replaced
	}
	list.Content = append(list.Content, n)
	d.entries[s.list] = append(d.entries[s.list], entry{name: name, node: n})
	return Added
}

func (d *document) find(list, name string) *yaml.Node {
	for _, e := range d.entries[list] {
		if e.name == name {
			return e.node
		}
	}
	return nil
}

func (d *document) currentContext() string {
	if v := d.value("current-context"); v != nil && !isNull(v) {
		return v.Value
	}
	return ""
}

// wantedContext is the context a merge switches to: add's current-context, or its only context.
func (d *document) wantedContext() string {
	if cc := d.currentContext(); cc != "" {
		return cc
	}
	if cs := d.entries["contexts"]; len(cs) == 1 {
		return cs[0].name
	}
	return ""
}

func (d *document) value(key string) *yaml.Node { return field(d.root, key) }

func (d *document) set(key string, v *yaml.Node) {
	for i := 0; i < len(d.root.Content); i += 2 {
		if d.root.Content[i].Value == key {
			d.root.Content[i+1] = v
			return
		}
	}
	d.root.Content = append(d.root.Content, &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: key}, v)
}

func (d *document) setScalar(key, value string) {
	d.set(key, &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: value})
}

// field is the value of key in mapping m, or nil.
func field(m *yaml.Node, key string) *yaml.Node {
	if m == nil || m.Kind != yaml.MappingNode {
		return nil
	}
	for i := 0; i+1 < len(m.Content); i += 2 {
		if m.Content[i].Value == key {
			return resolve(m.Content[i+1])
		}
	}
	return nil
}

func scalar(m *yaml.Node, key string) string {
	if v := field(m, key); v != nil && v.Kind == yaml.ScalarNode {
		return v.Value
	}
	return ""
}

// resolve follows an alias, so that a file using anchors is read like kubectl reads it.
func resolve(n *yaml.Node) *yaml.Node {
	for n != nil && n.Kind == yaml.AliasNode {
		n = n.Alias
	}
	return n
}

func isNull(n *yaml.Node) bool { return n.Kind == yaml.ScalarNode && n.Tag == "!!null" }

// sameValue compares what two entries mean, not how they are written, so that a re-merge leaves the user's
// spelling of an unchanged entry alone.
func sameValue(a, b *yaml.Node) bool {
	var va, vb any
	if a.Decode(&va) != nil || b.Decode(&vb) != nil {
		return false
	}
	return reflect.DeepEqual(va, vb)
}

// toBlockStyle turns flow collections ({...} and [...]) into block ones and drops the quotes JSON puts on every
// string; the encoder quotes those that need it ("true", "") again.
func toBlockStyle(n *yaml.Node) {
	switch {
	case n.Kind == yaml.MappingNode || n.Kind == yaml.SequenceNode:
		n.Style &^= yaml.FlowStyle
	case n.Kind == yaml.ScalarNode && n.Tag == "!!str":
		n.Style &^= yaml.DoubleQuotedStyle
	}
	for _, c := range n.Content {
		toBlockStyle(c)
	}
}

func indexOf(list []*yaml.Node, n *yaml.Node) int {
	for i, c := range list {
		if c == n {
			return i
		}
	}
	return -1
}
