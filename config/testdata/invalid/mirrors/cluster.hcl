cluster "mirrors" {
  pod_cidr     = "198.19.0.0/16"
  service_cidr = "198.18.128.0/20"
  containerd {
    registry_mirrors = {
      "Registry.K8s.io" = ["https://mirror.example"] # ERROR: Invalid registry_mirrors
      "quay.io"         = []                         # ERROR: Invalid registry_mirrors
      "docker.io" = [
        "ftp://mirror.example",                      # ERROR: Invalid registry_mirrors
        "https://user:secret@mirror.example",        # ERROR: Invalid registry_mirrors
        "https://mirror.example/v2/hub",             # ERROR: Invalid registry_mirrors
        "https://mirror.example",
      ]
      "ghcr.io:70000"    = ["https://mirror.example"] # ERROR: Invalid registry_mirrors
      "registry.example" = [
        "http://198.18.0.1:5000",
        "http://198.18.0.1:5000/",                   # ERROR: Invalid registry_mirrors
      ]
    }
  }
}

host "one" {
  address = "198.18.0.10"
  roles   = ["control-plane", "etcd", "worker"]
}
