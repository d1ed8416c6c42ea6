# Five different mistakes across two files; each marker names the diagnostic expected on its line.
cluster "lab" { # ERROR: Missing api_endpoint
  kubernetes_version = "v1.30.0"         # ERROR: Unsupported Kubernetes version
  pod_cidr           = "198.19.0.0/16"
  service_cidr       = "198.19.128.0/20" # ERROR: Overlapping CIDRs
  clustr_domain      = "cluster.local"   # ERROR: Unsupported argument
}

ssh {
  host_key_policy = "stric" # ERROR: Invalid host_key_policy
}
