host "cp-1" {
  address = "198.18.0.11"
  roles   = ["control-plane", "etcd"]
}

host "cp-2" {
  address = "198.18.0.11"                # ERROR: Duplicate host address
  roles   = ["control-plane", "etdc"]    # ERROR: Unknown role
}
