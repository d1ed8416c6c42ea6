cluster "snapshots" {
  pod_cidr     = "198.19.0.0/16"
  service_cidr = "198.18.128.0/20"
  etcd {
    snapshots {
      schedule = "daily; rm -rf /" # ERROR: Invalid snapshot schedule
      keep     = 0                 # ERROR: Invalid snapshot keep
      dir      = "/var/lib/etcd/snapshots" # ERROR: Invalid snapshot dir
    }
  }
}

host "one" {
  address = "198.18.0.10"
  roles   = ["control-plane", "etcd", "worker"]
}
