cluster "blocks" {
  pod_cidr     = "198.19.0.0/16"
  service_cidr = "198.18.128.0/20"
  apiserver {
    prot = 6443 # ERROR: Unsupported argument
  }
}

hots "x" { # ERROR: Unsupported block type
}

host "one" {
  address = "198.18.0.10"
  roles   = ["control-plane", "etcd", "worker"]
}

provider "lab" {
  name = "dev"
}

provider "lab" { # ERROR: Duplicate provider block
}

provider "vagrnat" { # ERROR: Unknown provider
}
