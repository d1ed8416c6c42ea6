# Workers live in their own file: every *.hcl file in the directory is part of the configuration.

host "worker-1" {
  address = "198.18.0.21"
  roles   = ["worker"]
  labels  = { "topology.kubernetes.io/zone" = "a" }
}

host "worker-2" {
  address = "198.18.0.22"
  roles   = ["worker"]
  labels  = { "topology.kubernetes.io/zone" = "b" }
}

host "worker-3" {
  address = "198.18.0.23"
  roles   = ["worker"]
  labels  = { "topology.kubernetes.io/zone" = "c" }
  taints  = ["dedicated=batch:NoSchedule"]
}
