cluster "large" {
  pod_cidr           = "198.19.0.0/16"
  service_cidr       = "10.0.0.0/8"  # ERROR: Service CIDR too large
  node_pod_cidr_size = 16            # ERROR: Invalid node pod CIDR size
}

host "one" {
  address = "198.18.0.10"
  roles   = ["control-plane", "etcd"]
}
