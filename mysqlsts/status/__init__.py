"""`mysqlsts status`: one table of a replica set on Kubernetes, from each sidecar's /status."""
