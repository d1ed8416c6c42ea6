cluster "dns" {
  pod_cidr     = "198.19.0.0/16"
  service_cidr = "198.18.128.0/20"
  dns {
    replicas = 0                       # ERROR: Invalid dns replicas
    image    = "Registry/CoreDNS:latest" # ERROR: Invalid dns image
    upstream = ["198.18.0.1", "resolver.example"] # ERROR: Invalid dns upstream
  }
}

host "one" {
  address = "198.18.0.10"
  roles   = ["control-plane", "etcd", "worker"]
}
