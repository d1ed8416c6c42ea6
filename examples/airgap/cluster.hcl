# No internet on the hosts or the operator's machine: binaries come from a local directory with a manifest
# (sha256 for every file), uploaded to the hosts over SSH.

cluster "airgap" {
  kubernetes_version = "v1.37.2"
  pod_cidr           = "198.19.0.0/16"
  service_cidr       = "198.18.128.0/20"
}

artifacts {
  source = "local"
  dir    = "artifacts"
}

ssh {
  host_key_policy  = "strict"
  known_hosts_file = "known_hosts"
}

host "cp" {
  address = "198.18.0.11"
  roles   = ["control-plane", "etcd"]
}

host "worker" {
  for_each = toset(["a", "b"])
  address  = each.key == "a" ? "198.18.0.21" : "198.18.0.22"
  roles    = ["worker"]
}
