cluster "mirrors" {
  pod_cidr     = "198.19.0.0/16"
  service_cidr = "198.18.128.0/20"
  containerd {
    registry_mirrors = ["https://mirror.example"] # ERROR: Unsuitable value type
  }
}

host "one" {
  address = "198.18.0.10"
  roles   = ["control-plane", "etcd", "worker"]
}
