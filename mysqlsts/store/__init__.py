"""The object store: one small interface over S3-compatible services and a local directory.

`open_store(url, settings)` returns an `ObjectStore`; everything above it (the backup layout,
backups, restore, retention) sees only names relative to the URL's prefix and whole objects:
create-only puts, streaming gets, listing, deletes. No object is ever overwritten.

Beside the stores, the backup layout's I/O that every reader and writer shares: `parts` (a
stream to checksummed, sealed parts and back) and `catalog` (which backups a store holds). They
live here, below `clone`, because a restore is a clone whose source is the store
(`clone.from_backup`), and the backup command, the clone step and the local set all use them.
"""
