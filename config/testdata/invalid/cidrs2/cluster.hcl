cluster "sizes" { # ERROR: Pod CIDR too small for the nodes
  pod_cidr           = "198.19.0.0/23"
  service_cidr       = "198.18.0.0/8"     # ERROR: Invalid service CIDR
  node_pod_cidr_size = 24
  api_endpoint       = "198.19.1.1"       # ERROR: Address inside a cluster range
}

host "cp" {
  for_each = toset(["a", "b", "c"])
  address  = "198.18.1.${index(["a", "b", "c"], each.key) + 1}"
  roles    = ["control-plane", "etcd", "worker"]
}
