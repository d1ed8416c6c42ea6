# One control plane and two workers on the Vagrant machines of the Vagrantfile beside this file.
# Vagrant says how to reach each machine (vagrant ssh-config); the host blocks say what each one does.

cluster "vagrant" {
  pod_cidr     = "198.19.0.0/16"
  service_cidr = "198.18.128.0/20"
}

provider "vagrant" {
  # dir (where the Vagrantfile is) defaults to this directory; vagrant is found on PATH.

  host "cp" {
    roles            = ["control-plane", "etcd"]
    internal_address = "192.168.56.11"
  }

  host "worker-1" {
    roles            = ["worker"]
    internal_address = "192.168.56.21"
  }

  host "worker-2" {
    roles            = ["worker"]
    internal_address = "192.168.56.22"
  }
}
