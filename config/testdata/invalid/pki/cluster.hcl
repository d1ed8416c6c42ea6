cluster "pki" {
  pod_cidr     = "198.19.0.0/16"
  service_cidr = "198.18.128.0/20"
  pki {
    key_algorithm = "rsa"
    key_size      = 1024     # ERROR: Invalid key_size
    ca_validity   = "forever" # ERROR: Invalid ca_validity
    validity      = "720h"
    renew_before  = "720h"   # ERROR: Invalid renew_before
  }
}

host "one" {
  address = "198.18.0.10"
  roles   = ["control-plane", "etcd", "worker"]
}
