cluster "hosts" {
  pod_cidr     = "198.19.0.0/16"
  service_cidr = "198.18.128.0/20"
}

host "cp" {
  address          = "198.18.0.11"
  internal_address = "cp.internal" # ERROR: Invalid internal address
  roles            = ["control-plane", "etcd", "worker"]
  labels           = { "-bad" = "x" } # ERROR: Invalid label
  taints           = ["dedicated=x:NoScheduleX"] # ERROR: Invalid taint
}

host "cp" { # ERROR: Duplicate host name
  address = "198.18.0.12"
  roles   = [] # ERROR: Host without roles
}

host "Worker" { # ERROR: Invalid host name
  address = "198.18.0.13:22" # ERROR: Invalid host address
  roles   = ["worker"]
  ssh {
    port            = 70000 # ERROR: Invalid port
    connect_timeout = "soon" # ERROR: Invalid connect_timeout
    host_key_policy = "insecure" # WARNING: Host key checking is disabled
  }
}

host "w" {
  for_each = "not-a-map" # ERROR: Invalid for_each
  address  = "198.18.0.14"
  roles    = ["worker"]
}
