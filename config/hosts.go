package config

import (
	"fmt"
	"net/netip"
	"sort"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/gohcl"
	"github.com/zclconf/go-cty/cty"
	"github.com/zclconf/go-cty/cty/convert"
)

// maxForEach bounds one host block's expansion: beyond it a typo (an extra zero) would make a config that takes
// minutes to validate instead of a clear error.
const maxForEach = 10000

var forEachSchema = &hcl.BodySchema{Attributes: []hcl.AttributeSchema{{Name: "for_each"}}}

// hostSource remembers where a host came from, for diagnostics that compare hosts.
type hostSource struct {
	nameRange, addressRange, internalRange, rolesRange hcl.Range
}

// hosts turns one host block into one host, or into one per for_each element (named LABEL-KEY unless the
// block sets name), so that a pool of workers is a few lines.
func (b *builder) hosts(blk *hcl.Block) {
	content, body, ds := blk.Body.PartialContent(forEachSchema)
	b.add(ds)
	attr, ok := content.Attributes["for_each"]
	if !ok {
		b.host(blk, body, b.ctx, "")
		return
	}
	val, ds := attr.Expr.Value(b.ctx)
	b.add(ds)
	if ds.HasErrors() || !val.IsWhollyKnown() {
		return // unknown: built from a variable that is already reported
	}
	instances, err := forEachInstances(val)
	if err == nil && len(instances) > maxForEach {
		err = fmt.Errorf("for_each makes %d hosts; one host block may make at most %d", len(instances), maxForEach)
	}
	if err != nil {
		b.errorAt(attr.Expr.Range(), "Invalid for_each", err.Error())
		return
	}
	for _, inst := range instances {
		ctx := b.ctx.NewChild()
		ctx.Variables = map[string]cty.Value{"each": cty.ObjectVal(map[string]cty.Value{
			"key": cty.StringVal(inst.key), "value": inst.value,
		})}
		b.host(blk, body, ctx, inst.key)
	}
}

type instance struct {
	key   string
	value cty.Value
}

// forEachInstances accepts a map or object (key → value), or a set, list or tuple of strings or numbers
// (each element is both key and value), so that both toset([...]) and range(1, 101) work.
func forEachInstances(v cty.Value) ([]instance, error) {
	if v.IsNull() {
		return nil, fmt.Errorf("for_each must be a map or a set, not null")
	}
	ty := v.Type()
	var out []instance
	switch {
	case ty.IsMapType() || ty.IsObjectType():
		for it := v.ElementIterator(); it.Next(); {
			k, val := it.Element()
			out = append(out, instance{key: k.AsString(), value: val})
		}
	case ty.IsSetType() || ty.IsListType() || ty.IsTupleType():
		seen := map[string]bool{}
		for it := v.ElementIterator(); it.Next(); {
			_, el := it.Element()
			s, err := convert.Convert(el, cty.String)
			if err != nil || s.IsNull() || !el.Type().IsPrimitiveType() {
				return nil, fmt.Errorf("for_each over a list or set needs strings or numbers; use a map for anything else")
			}
			key := s.AsString()
			if seen[key] {
				return nil, fmt.Errorf("for_each has %q twice; host names must be unique", key)
			}
			seen[key] = true
			out = append(out, instance{key: key, value: el})
		}
	default:
		return nil, fmt.Errorf("for_each must be a map or a set, not %s", ty.FriendlyName())
	}
	// Maps iterate in key order already; lists keep the order the user wrote.
	if ty.IsSetType() {
		sort.SliceStable(out, func(i, j int) bool { return out[i].key < out[j].key })
	}
	return out, nil
}

func (b *builder) host(blk *hcl.Block, body hcl.Body, ctx *hcl.EvalContext, key string) {
	var raw hostBlock
	ds := gohcl.DecodeBody(body, ctx, &raw)
	b.add(ds)
	if ds.HasErrors() {
		return
	}
	h := Host{DeclRange: blk.DefRange, Key: key, Labels: raw.Labels}
	src := &h.src
	*src = hostSource{nameRange: blk.LabelRanges[0], addressRange: raw.AddressRange,
		internalRange: raw.InternalAddressRange, rolesRange: raw.RolesRange}
	h.Name = blk.Labels[0]
	if key != "" {
		h.Name = blk.Labels[0] + "-" + key
	}
	if raw.Name != nil {
		h.Name, src.nameRange = *raw.Name, raw.NameRange
	}
	if err := checkDNSSubdomain(h.Name); err != nil {
		b.errorAt(src.nameRange, "Invalid host name", fmt.Sprintf("Host name %q %s; it becomes the Kubernetes node name.", h.Name, err))
	}

	h.Address = raw.Address
	if err := checkHostAddress(raw.Address); err != nil {
		b.errorAt(raw.AddressRange, "Invalid host address", err.Error()+".")
	}
	if raw.InternalAddress != nil {
		a, err := netip.ParseAddr(*raw.InternalAddress)
		switch {
		case err != nil:
			b.errorAt(raw.InternalAddressRange, "Invalid internal address",
				fmt.Sprintf("internal_address %q must be an IP address: cluster components advertise it.", *raw.InternalAddress))
		case a.Zone() != "":
			b.errorAt(raw.InternalAddressRange, "Invalid internal address", fmt.Sprintf("internal_address %s.", zoneError(*raw.InternalAddress)))
			a = netip.Addr{}
		}
		h.InternalAddress = a
	}

	if len(raw.Roles) == 0 {
		b.errorAt(raw.RolesRange, "Host without roles", fmt.Sprintf("Host %q needs at least one role: %s.", h.Name, quoteList(roleNames())))
	}
	seen := map[Role]bool{}
	for _, r := range raw.Roles {
		role, err := ParseRole(r)
		if err != nil {
			b.errorAt(raw.RolesRange, "Unknown role", err.Error())
			continue
		}
		if !seen[role] {
			seen[role] = true
			h.Roles = append(h.Roles, role)
		}
	}
	SortRoles(h.Roles)

	for _, k := range sortedKeys(raw.Labels) {
		if err := checkLabelKey(k); err != nil {
			b.errorAt(raw.LabelsRange, "Invalid label", fmt.Sprintf("Label key %q: %s.", k, err))
		} else if err := checkLabelValue(raw.Labels[k]); err != nil {
			b.errorAt(raw.LabelsRange, "Invalid label", fmt.Sprintf("Label %q: %s.", k, err))
		}
	}
	for _, t := range raw.Taints {
		taint, err := ParseTaint(t)
		if err != nil {
			b.errorAt(raw.TaintsRange, "Invalid taint", err.Error()+".")
			continue
		}
		h.Taints = append(h.Taints, taint)
	}

	h.SSH = b.sshSettings(mergeSSH(b.sshDefaults, raw.SSH))
	b.cluster.Hosts = append(b.cluster.Hosts, h)
}

// ParseRole reads a role name, suggesting the closest one when it is misspelt.
func ParseRole(s string) (Role, error) {
	if err := oneOf(s, roleNames()); err != nil {
		return "", err
	}
	return Role(s), nil
}

func roleNames() []string {
	out := make([]string, len(knownRoles))
	for i, r := range knownRoles {
		out[i] = string(r)
	}
	return out
}
