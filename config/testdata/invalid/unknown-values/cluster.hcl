# A wrong variable is reported once, where it is defined, not again everywhere it is used.
variable "octet" {
  type    = number
  default = "one" # ERROR: Invalid value for variable
}

variable "domain" { # ERROR: No value for required variable
  type = string
}

cluster "quiet" {
  pod_cidr       = "198.19.${var.octet}.0/16"
  cluster_domain = var.domain
}

host "w" {
  for_each = range(var.octet)
  address  = "198.18.0.10"
  roles    = ["worker"]
}
