# Highly available cluster: three hosts run etcd and the control plane, three run workloads.
# api_endpoint is the load balancer (or DNS name) in front of the three API servers.

cluster "ha" {
  kubernetes_version = "v1.37.2"
  pod_cidr           = "198.19.0.0/16"
  service_cidr       = "198.18.128.0/20"
  api_endpoint       = "k8s.example.internal:6443"
}

# kforge logs in as "ops" with a key from ssh-agent and runs privileged commands through sudo.
ssh {
  user            = "ops"
  use_agent       = true
  host_key_policy = "strict"
}

host "cp-1" {
  address = "198.18.0.11"
  roles   = ["control-plane", "etcd"]
}

host "cp-2" {
  address = "198.18.0.12"
  roles   = ["control-plane", "etcd"]
}

host "cp-3" {
  address = "198.18.0.13"
  roles   = ["control-plane", "etcd"]
}
