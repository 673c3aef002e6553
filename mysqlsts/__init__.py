"""mysqlsts: init, crash-safe clone and replication sidecar for MySQL/MariaDB StatefulSets."""

__version__ = "0.1.0"
