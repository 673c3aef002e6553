"""Where an object store is: `s3://bucket[/prefix]` or `file:///absolute/path` (pure).

One URL names a store for every command (backup, list, restore, the local set's `--store`). A
URL carries no credentials: a `user:password@` part is refused, so a secret can never ride in
on a command line or in a log line that quotes the URL.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import unquote, urlsplit

from mysqlsts.errors import ConfigError

# S3's bucket naming rules (3-63 lowercase letters, digits, dots, hyphens; a letter or digit
# at each end), checked here so a typo is one line rather than a signature error.
_BUCKET = re.compile(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")


@dataclass(frozen=True)
class StoreURL:
    """A parsed store URL: `scheme` is "s3" (with `bucket`) or "file"; `prefix` is the path
    inside the bucket or the directory, without leading or trailing slashes."""

    scheme: str
    bucket: str
    prefix: str

    def __str__(self) -> str:
        if self.scheme == "file":
            return f"file:///{self.prefix}"
        return f"s3://{self.bucket}/{self.prefix}" if self.prefix else f"s3://{self.bucket}"


def parse_store_url(text: str) -> StoreURL:
    """`text` as a StoreURL, or ConfigError naming what is wrong with it."""
    parts = urlsplit(text.strip())
    if parts.scheme not in ("s3", "file"):
        raise ConfigError(f"store URL {_shown(text)}: the scheme must be s3:// or file://")
    if parts.username is not None or parts.password is not None:
        raise ConfigError("store URL: credentials do not belong in the URL (use the secret "
                          "files or the standard credential chain)")
    if parts.query or parts.fragment:
        raise ConfigError(f"store URL {_shown(text)}: no query or fragment is allowed")
    path = unquote(parts.path).strip("/")
    if ".." in path.split("/") or "//" in path:
        raise ConfigError(f"store URL {_shown(text)}: the path must be plain (no '..', no '//')")
    if parts.scheme == "file":
        if parts.netloc not in ("", "localhost"):
            raise ConfigError(f"store URL {_shown(text)}: file:// takes an absolute path "
                              "(file:///dir), not a host")
        if not path:
            raise ConfigError(f"store URL {_shown(text)}: file:// needs a directory")
        return StoreURL("file", "", path)
    if not _BUCKET.match(parts.netloc):
        raise ConfigError(f"store URL {_shown(text)}: {parts.netloc!r} is not a valid bucket "
                          "name")
    return StoreURL("s3", parts.netloc, path)


def _shown(text: str) -> str:
    """The URL as quoted in an error, any `user:password@` masked."""
    return repr(re.sub(r"//[^/]*@", "//***@", text))
