# A cluster on kforge's own lab hosts: `make demo` brings up a 3-host lab named "demo", builds the artifacts and
# applies this configuration. Lab hosts are containers (systemd-nspawn) on a cgroup v1 machine, which is why
# the kubelet, containerd and kube-proxy are told to live with what containers cannot change, and cluster DNS
# that the lab has no resolvers.

variable "lab" {
  type    = string
  default = "demo"
}

variable "artifacts" {
  type        = string
  description = "The artifact set make artifacts builds (scripts/build-artifacts.sh --print-set says where)."
  default     = "/var/cache/kforge/artifacts/k8s-v1.37.2-etcd-v3.7.3-containerd-v2.4.2-7"
}

cluster "demo" {
  kubernetes_version = "v1.37.2"
  pod_cidr           = "198.19.0.0/17"
  service_cidr       = "198.19.128.0/20"

  kubelet {
    fail_cgroup_v1 = false
  }

  containerd {
    restrict_oom_score_adj = true
  }

  kube_proxy {
    conntrack_max_per_core = 0
  }

  # How pods on different nodes reach each other: "routes" (kforge's routes on every node), "flannel" (VXLAN)
  # or "kube-router" (BGP routes and NetworkPolicy). The README's "Pod network" compares them.
  network {
    plugin = "routes"
  }

  # The lab has no DNS server to forward to: cluster DNS answers the cluster's names only.
  dns {
    upstream = []
  }
}

# demo-1 runs etcd and the control plane; demo-2 and demo-3 are workers.
provider "lab" {
  name = var.lab
}

artifacts {
  source = "local"
  dir    = var.artifacts
}
