variable "count" {
  type    = number
  default = "three" # ERROR: Invalid value for variable
}

variable "needed" { # ERROR: No value for required variable
  type = string
}

locals {
  a = local.b # ERROR: Cycle in local values
  b = local.a # ERROR: Cycle in local values
}

cluster "vars" {
  cluster_domain = upper("x") # ERROR: Invalid cluster domain
}

host "one" {
  address = "198.18.0.10"
  roles   = ["control-plane", "etcd", "worker"]
}
