cluster "cidrs" {
  pod_cidr           = "198.19.0.1/16"    # ERROR: Invalid pod CIDR
  service_cidr       = "198.18.128.0/30"  # ERROR: Service CIDR too small
}

host "one" {
  address = "198.18.128.1" # ERROR: Address inside a cluster range
  roles   = ["control-plane", "etcd", "worker"]
}
