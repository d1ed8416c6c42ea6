cluster "topology" { # ERROR: No control-plane host
  pod_cidr     = "198.19.0.0/16"
  service_cidr = "198.18.128.0/20"
}

host "e1" {
  address = "198.18.0.11"
  roles   = ["etcd"]
}

host "e2" {
  address = "198.18.0.12"
  roles   = ["etcd", "worker"] # WARNING: Even number of etcd members
}
