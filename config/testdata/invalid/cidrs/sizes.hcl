cluster "sizes" { # ERROR: Duplicate cluster block
  pod_cidr = "nonsense"
}
