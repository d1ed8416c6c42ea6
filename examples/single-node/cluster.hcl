# One host does everything: etcd, the control plane and workloads. The smallest useful cluster.

cluster "single" {
  # Everything else takes kforge's defaults; these ranges keep clear of the host's own network.
  pod_cidr     = "198.19.0.0/16"
  service_cidr = "198.18.128.0/20"
}

host "node" {
  address = "198.18.0.10"
  roles   = ["control-plane", "etcd", "worker"]
}
