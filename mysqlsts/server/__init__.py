"""The mysql container's entrypoint, `mysqlsts server`: bootstrap, then mariadbd supervised by
the watchdog for a dead or hung sidecar (docs/takeover.md, "The watchdog")."""
