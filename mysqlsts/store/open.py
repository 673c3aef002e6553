"""From a URL to a store."""

from __future__ import annotations

from pathlib import Path

from mysqlsts.core.store_url import parse_store_url
from mysqlsts.store.base import ObjectStore, StoreError
from mysqlsts.store.filestore import FileStore
from mysqlsts.store.settings import S3Settings


def open_store(url: str, s3: S3Settings) -> ObjectStore:
    """The store `url` names (ConfigError for a bad URL). Nothing is contacted yet."""
    parsed = parse_store_url(url)
    if parsed.scheme == "file":
        return FileStore(Path("/" + parsed.prefix))
    try:
        from mysqlsts.store.s3store import S3Store  # obstore loads only for s3:// stores
    except ImportError as error:  # e.g. an image whose wheels are pure-Python only
        raise StoreError(f"store {parsed}: s3:// needs the obstore package, which this "
                         f"installation lacks ({error})") from None
    return S3Store(parsed, s3)
