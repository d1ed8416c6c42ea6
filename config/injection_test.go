package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/hashicorp/hcl/v2"
)

// injectionConfig is a valid configuration with room for hostile text in the cluster block (cluster), the host
// block (host) and at the top level (top).
func injectionConfig(cluster, host, top, hostLine, address string) string {
	if hostLine == "" {
		hostLine = `host "cp-1" {`
	}
	if address == "" {
		address = "198.18.0.11"
	}
	return `cluster "inj" {
  pod_cidr     = "198.19.0.0/17"
  service_cidr = "198.19.128.0/20"
  ` + cluster + `
}

artifacts {
  source = "none"
}
` + top + `
` + hostLine + `
  address = "` + address + `"
  roles   = ["control-plane", "etcd", "worker"]
  ` + host + `
}
`
}

// position is the 1-based line and column where needle first occurs in src.
func position(t *testing.T, src, needle string) hcl.Pos {
	t.Helper()
	i := strings.Index(src, needle)
	if i < 0 {
		t.Fatalf("%q is not in the configuration", needle)
	}
	line := strings.Count(src[:i], "\n") + 1
	return hcl.Pos{Line: line, Column: i - (strings.LastIndex(src[:i], "\n") + 1) + 1}
}

// TestShellInjectionIsRefused: host names, addresses, labels, taints, paths, schedules, flags, images, mirrors and
// resolvers that try shell (or unit-file) injection, with `; rm -rf /`, `$(…)`, backticks or a line break, are
// refused by validation, each with its own error at the file, line and column where the value is written.
// None of these values would be quoted where it lands (a unit file, a sh -c line, a script), so refusing them
// is the only defence.
func TestShellInjectionIsRefused(t *testing.T) {
	for _, tc := range []struct {
		name               string
		cluster, host, top string
		hostLine, address  string // the host block's first line, the host's address
		at                 string // where the error points: the first occurrence of this text
		summary, detail    string
	}{
		{name: "host label ;", hostLine: `host "cp-1; rm -rf /" {`, at: `"cp-1; rm -rf /"`,
			summary: "Invalid host name", detail: `Host name "cp-1; rm -rf /" must be lower-case letters`},
		{name: "host name $()", host: `name = "$(touch /tmp/kforge-canary)"`, at: `"$(touch`,
			summary: "Invalid host name", detail: `Host name "$(touch /tmp/kforge-canary)" must be`},
		{name: "host name backticks", host: "name = \"cp-`id`\"", at: "\"cp-`id`\"",
			summary: "Invalid host name", detail: "Host name \"cp-`id`\" must be"},
		{name: "host name newline", host: `name = "cp-1\nExecStartPre=/bin/sh"`, at: `"cp-1\n`,
			summary: "Invalid host name", detail: `Host name "cp-1\nExecStartPre=/bin/sh" must be lower case`},
		{name: "address ;", address: "198.18.0.11; rm -rf /", at: `"198.18.0.11;`,
			summary: "Invalid host address", detail: `"198.18.0.11; rm -rf /" is neither an IP address nor a host name`},
		{name: "address IPv6 zone $()", address: "fe80::1%$(touch /tmp/kforge-canary)", at: `"fe80::1%$(`,
			summary: "Invalid host address", detail: `"fe80::1%$(touch /tmp/kforge-canary)" has an IPv6 zone`},
		{name: "address IPv6 zone newline", address: `fe80::1%eth0\nExecStartPre=/bin/rm`, at: `"fe80::1%eth0`,
			summary: "Invalid host address", detail: `has an IPv6 zone (the part from '%'), which other hosts cannot use`},
		{name: "internal address zone", host: "internal_address = \"fd00::11%`id`\"", at: `"fd00::11%`,
			summary: "Invalid internal address", detail: "internal_address \"fd00::11%`id`\" has an IPv6 zone"},
		{name: "label key ;", host: `labels = { "tier; rm -rf /" = "web" }`, at: `{ "tier;`,
			summary: "Invalid label", detail: `Label key "tier; rm -rf /": prefix "tier; rm -rf " must be lower-case letters`},
		{name: "label value $()", host: `labels = { tier = "$(touch /tmp/kforge-canary)" }`, at: `{ tier`,
			summary: "Invalid label", detail: `value "$(touch /tmp/kforge-canary)" must be at most 63 letters`},
		{name: "label value newline", host: `labels = { tier = "web\nrm -rf /" }`, at: `{ tier`,
			summary: "Invalid label", detail: `value "web\nrm -rf /" must be`},
		{name: "taint backticks", host: "taints = [\"dedicated=`id`:NoSchedule\"]", at: `["dedicated`,
			summary: "Invalid taint", detail: "taint \"dedicated=`id`:NoSchedule\": value"},
		{name: "taint effect ;", host: `taints = ["dedicated=gpu:NoSchedule; rm -rf /"]`, at: `["dedicated`,
			summary: "Invalid taint", detail: "effect must be one of NoSchedule, PreferNoSchedule, NoExecute"},
		{name: "taint newline", host: `taints = ["dedicated\nx=gpu:NoSchedule"]`, at: `["dedicated`,
			summary: "Invalid taint", detail: `key name "dedicated\nx" must be 1 to 63 letters`},
		{name: "snapshot dir ;", cluster: `etcd {
    snapshots {
      dir = "/var/backups; rm -rf /"
    }
  }`, at: `"/var/backups;`, summary: "Invalid snapshot dir", detail: `"/var/backups; rm -rf /" is not an absolute path of letters`},
		{name: "snapshot dir $()", cluster: `etcd {
    snapshots {
      dir = "/var/$(touch /tmp/kforge-canary)"
    }
  }`, at: `"/var/$(`, summary: "Invalid snapshot dir", detail: `is not an absolute path`},
		{name: "snapshot dir newline", cluster: `etcd {
    snapshots {
      dir = "/var/backups\nExecStartPre=/bin/rm -rf /"
    }
  }`, at: `"/var/backups\n`, summary: "Invalid snapshot dir", detail: `is not an absolute path`},
		{name: "snapshot schedule backticks", cluster: "etcd {\n    snapshots {\n      schedule = \"daily`id`\"\n    }\n  }", at: `"daily`,
			summary: "Invalid snapshot schedule", detail: "\"daily`id`\" is not a systemd calendar expression"},
		{name: "snapshot schedule newline", cluster: `etcd {
    snapshots {
      schedule = "daily\nExecStartPre=/bin/sh -c 'rm -rf /'"
    }
  }`, at: `"daily\n`, summary: "Invalid snapshot schedule", detail: "is not a systemd calendar expression"},
		{name: "extra_args value newline", cluster: `kubelet {
    extra_args = { v = "2\nExecStartPre=/bin/sh -c 'touch /tmp/kforge-canary'" }
  }`, at: `{ v = `, summary: "Invalid extra_args", detail: `kubelet extra_args: the value of v "2\nExecStartPre=/bin/sh -c 'touch /tmp/kforge-canary'" has a line break`},
		{name: "extra_args value $()", cluster: `apiserver {
    extra_args = { "audit-log-path" = "$(touch /tmp/kforge-canary)" }
  }`, at: `{ "audit`, summary: "Invalid extra_args", detail: `apiserver extra_args: the value of audit-log-path "$(touch /tmp/kforge-canary)" has a blank`},
		{name: "extra_args value ;", cluster: `scheduler {
    extra_args = { v = "2 ; rm -rf /" }
  }`, at: `{ v`, summary: "Invalid extra_args", detail: `scheduler extra_args: the value of v "2 ; rm -rf /" has a blank, which would split it`},
		{name: "extra_args key", cluster: "controller_manager {\n    extra_args = { \"v`id`\" = \"2\" }\n  }", at: "{ \"v`",
			summary: "Invalid extra_args", detail: "controller_manager extra_args: flag name \"v`id`\" may only have letters"},
		{name: "sandbox image", cluster: `containerd {
    sandbox_image = "registry.k8s.io/pause:3.10'\nBinaryName = '/tmp/x"
  }`, at: `"registry.k8s.io/pause:3.10'`, summary: "Invalid sandbox_image", detail: "is not a container image reference"},
		{name: "dns image $()", cluster: `dns {
    image = "coredns:$(touch /tmp/kforge-canary)"
  }`, at: `"coredns:`, summary: "Invalid dns image", detail: "is not a container image reference"},
		{name: "dns upstream zone", cluster: `dns {
    upstream = ["[fe80::53%$(touch /tmp/kforge-canary)]:53"]
  }`, at: `["[fe80`, summary: "Invalid dns upstream", detail: `has an IPv6 zone`},
		{name: "mirror registry ;", cluster: `containerd {
    registry_mirrors = { "docker.io; rm -rf /" = ["https://mirror.example"] }
  }`, at: `"docker.io;`, summary: "Invalid registry_mirrors", detail: `Registry "docker.io; rm -rf /": want a lower-case registry host`},
		{name: "mirror URL zone", cluster: `containerd {
    registry_mirrors = { "docker.io" = ["https://[fe80::1%25$(id)]:5000"] }
  }`, at: `"https://[fe80`, summary: "Invalid registry_mirrors", detail: `is not a host name or IP address`},
		{name: "api endpoint", cluster: `api_endpoint = "lb.example$(touch /tmp/kforge-canary)"`, at: `"lb.example`,
			summary: "Invalid API endpoint", detail: `"lb.example$(touch /tmp/kforge-canary)" is neither an IP address nor a host name`},
		{name: "cluster domain", cluster: `cluster_domain = "cluster.local; rm -rf /"`, at: `"cluster.local;`,
			summary: "Invalid cluster domain", detail: `cluster_domain "cluster.local; rm -rf /" must be lower-case letters`},
		{name: "bastion address zone", top: `
ssh {
  bastion {
    address = "fe80::1%$(touch /tmp/kforge-canary)"
  }
}
`, at: `"fe80::1%$(`, summary: "Invalid bastion address", detail: "has an IPv6 zone"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			src := injectionConfig(tc.cluster, tc.host, tc.top, tc.hostLine, tc.address)
			dir := t.TempDir()
			path := filepath.Join(dir, "main.hcl")
			if err := os.WriteFile(path, []byte(src), 0o644); err != nil {
				t.Fatal(err)
			}
			cluster, diags := NewLoader().Load(Options{Path: dir})
			if cluster != nil || !diags.HasErrors() {
				t.Fatalf("accepted:\n%s", src)
			}
			want := position(t, src, tc.at)
			var found bool
			for _, d := range diags {
				if d.Summary != tc.summary {
					continue
				}
				found = true
				if d.Severity != hcl.DiagError || d.Subject == nil || d.Subject.Filename != path ||
					d.Subject.Start.Line != want.Line || d.Subject.Start.Column != want.Column {
					t.Errorf("%s at %v, want %s:%d:%d", d.Summary, d.Subject, path, want.Line, want.Column)
				}
				if !strings.Contains(d.Detail, tc.detail) {
					t.Errorf("detail %q\nwant it to contain %q", d.Detail, tc.detail)
				}
			}
			if !found {
				t.Errorf("no %q error; got %v", tc.summary, diags)
			}
			if len(diags) != 1 {
				t.Errorf("%d diagnostics, want one: %v", len(diags), diags)
			}
		})
	}
}

// TestProviderHostsAreHeldToTheSameRules: a provider's hosts (whose names and addresses come from elsewhere:
// vagrant ssh-config, a lab) are refused with the same checks as host blocks, at the provider block.
func TestProviderHostsAreHeldToTheSameRules(t *testing.T) {
	rng := hcl.Range{Filename: "main.hcl", Start: hcl.Pos{Line: 7, Column: 1, Byte: 90}, End: hcl.Pos{Line: 7, Column: 16, Byte: 105}}
	for _, tc := range []struct {
		host Host
		want string
	}{
		{Host{Name: "w-1", Address: "fe80::1%$(touch /tmp/kforge-canary)"}, `address: "fe80::1%$(touch /tmp/kforge-canary)" has an IPv6 zone`},
		{Host{Name: "w-1", Address: "w1.example;rm"}, `address: "w1.example;rm" is neither an IP address nor a host name`},
		{Host{Name: "w-1`id`", Address: "198.18.0.21"}, "the name must be lower-case letters"},
		{Host{Name: "w-1", Address: "198.18.0.21", Labels: map[string]string{"tier": "$(id)"}}, `label "tier": value "$(id)" must be at most 63`},
	} {
		c := &Cluster{Name: "p", Providers: []Provider{{Name: "vagrant", DeclRange: rng}}}
		tc.host.Roles = []Role{RoleControlPlane, RoleEtcd, RoleWorker}
		diags := c.AddProviderHosts(map[string][]Host{"vagrant": {tc.host}})
		if len(diags) != 1 || diags[0].Summary != "Invalid host from provider" || diags[0].Subject == nil || *diags[0].Subject != rng ||
			!strings.Contains(diags[0].Detail, tc.want) {
			t.Errorf("%+v: %v", tc.host, diags)
		}
		if len(c.Hosts) != 0 {
			t.Errorf("%+v was added", tc.host)
		}
	}
}
