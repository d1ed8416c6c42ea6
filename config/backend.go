package config

import (
	"fmt"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/gohcl"
)

// defaultLockTTL: a killed holder's etcd lock is free again this long after it died; a live holder renews it
// every third of that, so a pause shorter than this (a laptop's network hiccup) does not lose it.
const defaultLockTTL = 15 * time.Second

// backend reads the backend block; without one, the state is local.
func (b *builder) backend(blocks []*hcl.Block) {
	be := &b.cluster.Backend
	be.Type = BackendLocal
	if len(blocks) == 0 {
		return
	}
	block := blocks[0]
	be.DeclRange = block.DefRange
	typ := block.Labels[0]
	if err := oneOf(typ, backendTypes); err != nil {
		b.errorAt(block.LabelRanges[0], "Unknown backend", fmt.Sprintf("There is no backend %q (available: %s).%s", typ, quoteList(backendTypes), didYouMean(typ, backendTypes)))
		return
	}
	be.Type = BackendType(typ)
	var raw backendBlock
	b.add(gohcl.DecodeBody(block.Body, b.ctx, &raw))
	// Each type's attributes only: one that belongs to the other type is a mistake worth pointing at.
	only := func(set bool, rng hcl.Range, name string, want BackendType) {
		if set && be.Type != want {
			b.errorAt(rng, "Unsupported argument", fmt.Sprintf("%s is an argument of backend %q, not of backend %q.", name, want, be.Type))
		}
	}
	only(raw.Dir != nil, raw.DirRange, "dir", BackendLocal)
	for _, a := range []struct {
		set  bool
		rng  hcl.Range
		name string
	}{{raw.Endpoints != nil, raw.EndpointsRange, "endpoints"}, {raw.Prefix != nil, raw.PrefixRange, "prefix"},
		{raw.CAFile != nil, raw.CAFileRange, "ca_file"}, {raw.CertFile != nil, raw.CertFileRange, "cert_file"},
		{raw.KeyFile != nil, raw.KeyFileRange, "key_file"}, {raw.EncryptionKeyFile != nil, raw.EncryptionKeyFileRange, "encryption_key_file"},
		{raw.EncryptFiles != nil, raw.EncryptFilesRange, "encrypt_files"}, {raw.PKI != nil, raw.PKIRange, "pki"},
		{raw.LockTTL != nil, raw.LockTTLRange, "lock_ttl"}} {
		only(a.set, a.rng, a.name, BackendEtcd)
	}
	switch be.Type {
	case BackendLocal:
		if raw.Dir != nil {
			be.Dir = b.path(*raw.Dir, raw.DirRange)
		}
	case BackendEtcd:
		b.etcdBackend(raw, block.DefRange)
	}
}

func (b *builder) etcdBackend(raw backendBlock, declRange hcl.Range) {
	be := &b.cluster.Backend
	if len(raw.Endpoints) == 0 {
		rng := raw.EndpointsRange
		if raw.Endpoints == nil {
			rng = declRange
		}
		b.errorAt(rng, "Missing etcd endpoints", `backend "etcd" needs endpoints = ["https://HOST:2379", …].`)
	}
	for _, e := range raw.Endpoints {
		u, err := url.Parse(e)
		if err != nil || u.Scheme != "https" || u.Host == "" || (u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.User != nil {
			b.errorAt(raw.EndpointsRange, "Invalid etcd endpoint", fmt.Sprintf("%q is not an etcd client URL such as \"https://10.0.0.5:2379\" (TLS only: the state holds what reaches the hosts).", e))
			continue
		}
		be.Endpoints = append(be.Endpoints, strings.TrimSuffix(e, "/"))
	}
	be.Prefix = "/kforge/" + b.cluster.Name + "/"
	if raw.Prefix != nil {
		be.Prefix = *raw.Prefix
		if !strings.HasPrefix(be.Prefix, "/") || !strings.HasSuffix(be.Prefix, "/") || len(be.Prefix) < 2 ||
			strings.Contains(be.Prefix, "//") || strings.ContainsFunc(be.Prefix, func(r rune) bool { return r < 0x21 || r == 0x7f }) {
			b.errorAt(raw.PrefixRange, "Invalid prefix", fmt.Sprintf("%q is not a key prefix such as \"/kforge/prod/\": it begins and ends with \"/\", with no empty part, blank or control character.", be.Prefix))
		}
	}
	file := func(p *string, rng hcl.Range, name, what string) string {
		if p == nil {
			b.errorAt(declRange, "Missing "+name, fmt.Sprintf(`backend "etcd" needs %s = "…", %s.`, name, what))
			return ""
		}
		path := b.path(*p, rng)
		if st, err := os.Stat(path); err != nil {
			b.errorAt(rng, "File not found", fmt.Sprintf("%s: %v.", path, unwrapPathError(err)))
		} else if st.IsDir() {
			b.errorAt(rng, "Not a file", path+" is a directory.")
		}
		return path
	}
	be.CAFile = file(raw.CAFile, raw.CAFileRange, "ca_file", "the CA that signed the etcd servers' certificates")
	be.CertFile = file(raw.CertFile, raw.CertFileRange, "cert_file", "kforge's client certificate")
	be.KeyFile = file(raw.KeyFile, raw.KeyFileRange, "key_file", "its private key")
	switch pki := str(raw.PKI, "etcd"); pki {
	case "etcd":
	case "local":
		be.LocalPKI = true
	default:
		b.errorAt(raw.PKIRange, "Invalid pki", fmt.Sprintf(`pki is "etcd" (the PKI store and known hosts in etcd, beside the state) or "local" (in the local state directory); not %q.`, pki))
	}
	encrypt := raw.EncryptFiles == nil || *raw.EncryptFiles
	switch {
	case raw.EncryptionKeyFile != nil && !encrypt:
		b.errorAt(raw.EncryptionKeyFileRange, "Encryption key without encryption", "encrypt_files = false stores the files in plain text; leave out encryption_key_file, or encrypt_files.")
	case raw.EncryptionKeyFile != nil:
		be.EncryptionKeyFile = b.path(*raw.EncryptionKeyFile, raw.EncryptionKeyFileRange)
		if st, err := os.Stat(be.EncryptionKeyFile); err != nil {
			b.errorAt(raw.EncryptionKeyFileRange, "Encryption key file not found", fmt.Sprintf("%s: %v.", be.EncryptionKeyFile, unwrapPathError(err)))
		} else if st.Mode().Perm()&0o077 != 0 || st.IsDir() {
			b.errorAt(raw.EncryptionKeyFileRange, "Encryption key file is readable by others",
				fmt.Sprintf("%s has permissions %#o; it unlocks the cluster's CA keys. Run: chmod 600 %s", be.EncryptionKeyFile, st.Mode().Perm(), be.EncryptionKeyFile))
		}
	case encrypt && !be.LocalPKI: // with pki = "local", nothing secret goes to etcd
		b.errorAt(declRange, "Missing encryption_key_file",
			`The files kept in etcd hold the cluster's CA keys: backend "etcd" needs encryption_key_file = "…" (32 random bytes, base64: head -c 32 /dev/urandom | base64 > FILE; chmod 600 FILE), or encrypt_files = false to store them in plain text, or pki = "local" to keep them here.`)
	}
	be.LockTTL = defaultLockTTL
	if raw.LockTTL != nil {
		d, err := time.ParseDuration(*raw.LockTTL)
		if err != nil || d < 5*time.Second || d > time.Hour {
			b.errorAt(raw.LockTTLRange, "Invalid lock_ttl", fmt.Sprintf("%q is not a duration from \"5s\" to \"1h\".", *raw.LockTTL))
		} else {
			be.LockTTL = d
		}
	}
}
