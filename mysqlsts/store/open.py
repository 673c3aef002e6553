"""From a URL to a store."""

from __future__ import annotations

from pathlib import Path

from mysqlsts.core.store_url import parse_store_url
from mysqlsts.store.base import ObjectStore
from mysqlsts.store.filestore import FileStore
from mysqlsts.store.settings import S3Settings


def open_store(url: str, s3: S3Settings) -> ObjectStore:
    """The store `url` names (ConfigError for a bad URL). Nothing is contacted yet."""
    parsed = parse_store_url(url)
    if parsed.scheme == "file":
        return FileStore(Path("/" + parsed.prefix))
    from mysqlsts.store.s3store import S3Store  # obstore loads only for s3:// stores

    return S3Store(parsed, s3)
