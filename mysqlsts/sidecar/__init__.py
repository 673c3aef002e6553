"""`mysqlsts sidecar`: replication set-up, heartbeat, backup donor, probes and metrics."""
