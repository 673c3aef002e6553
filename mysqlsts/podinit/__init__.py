"""The pod's init container steps before its server starts: `mysqlsts init` (the role's cnf,
server-id, buffer pool) and `mysqlsts bootstrap` (an empty data dir with a root password)."""
