"""`mysqlsts clone`: the receiver (init step) and the donor the sidecar serves on port 3307."""
