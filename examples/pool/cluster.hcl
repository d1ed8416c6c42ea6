# A pool of workers from one host block: for_each over range(1, N + 1) makes worker-1 … worker-N,
# addressed from a subnet with cidrhost. Change the pool size with -var workers=50, KFORGE_VAR_workers=50
# or a *.kfvars file.

variable "workers" {
  type        = number
  default     = 10
  description = "How many worker hosts the pool has."
}

variable "node_subnet" {
  type    = string
  default = "198.18.0.0/22"
}

locals {
  # Control-plane hosts take .11-.13; workers start at .100.
  first_worker = 100
}

cluster "pool" {
  pod_cidr           = "198.19.0.0/16"
  service_cidr       = "198.18.128.0/20"
  node_pod_cidr_size = 24
  api_endpoint       = cidrhost(var.node_subnet, 10)
}

host "cp" {
  for_each = toset(["1", "2", "3"])
  address  = cidrhost(var.node_subnet, 10 + tonumber(each.key))
  roles    = ["control-plane", "etcd"]
}

host "worker" {
  for_each = range(1, var.workers + 1)
  address  = cidrhost(var.node_subnet, local.first_worker + each.value)
  roles    = ["worker"]
  labels   = { pool = "general" }
}
