"""The object store: one small interface over S3-compatible services and a local directory.

`open_store(url, settings)` returns an `ObjectStore`; everything above it (the backup layout,
backups, restore, retention) sees only names relative to the URL's prefix and whole objects:
create-only puts, streaming gets, listing, deletes. No object is ever overwritten.
"""
