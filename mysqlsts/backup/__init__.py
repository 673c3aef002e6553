"""`mysqlsts backup`: take a base backup from a donor into a store; list, prune, restore.

The layout's I/O is in `store` (parts, catalog), the restore in `clone.from_backup`: both are
below the capabilities, so the clone step and the local set can restore too.
"""
