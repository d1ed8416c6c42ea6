cluster "pki" {
  pod_cidr     = "198.19.0.0/16"
  service_cidr = "198.18.128.0/20"
  pki {
    key_algorithm = "dsa"   # ERROR: Invalid key_algorithm
  }
}

host "one" {
  address = "198.18.0.10"
  roles   = ["control-plane", "etcd", "worker"]
}
