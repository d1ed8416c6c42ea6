cluster "artifacts" {
  pod_cidr          = "198.19.0.0/16"
  service_cidr      = "198.18.128.0/20"
  secrets_encryption = "aes" # ERROR: Invalid secrets_encryption
  kubelet {
    cgroup_driver = "system" # ERROR: Invalid cgroup_driver
    extra_args    = { "--v" = "2" } # ERROR: Invalid extra_args
  }
  kube_proxy {
    mode = "userspace" # ERROR: Invalid kube_proxy mode
  }
}

artifacts { # ERROR: Missing mirror URL
  source   = "mirror"
  versions = { etcd = "latest" } # ERROR: Invalid artifact version
  sha256   = { kubelet = "abc" } # ERROR: Invalid sha256
  dir      = "somewhere" # ERROR: dir without local artifacts
}

host "one" {
  address = "198.18.0.10"
  roles   = ["control-plane", "etcd", "worker"]
  ssh {
    private_key_file = "no-such-key" # ERROR: Private key file not found
  }
}
