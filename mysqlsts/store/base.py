"""The interface every store implements, and the errors it raises."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Protocol

from mysqlsts.errors import MysqlstsError

CHUNK = 1024 * 1024  # the size of the pieces a streaming get yields


class StoreError(MysqlstsError):
    """The store could not do what was asked (unreachable, refused, missing bucket...)."""


class ObjectExists(StoreError):
    """A create-only put found the name taken: nothing was written."""


class ObjectMissing(StoreError):
    """No object has that name."""


@dataclass(frozen=True)
class ObjectInfo:
    name: str  # relative to the store's prefix
    size: int


class ObjectStore(Protocol):
    """Names are relative to the store URL's prefix, '/'-separated, never empty."""

    def put_new(self, name: str, data: bytes) -> None:
        """Write `data` as `name`, whole or not at all; ObjectExists if `name` holds other
        bytes (holding these same bytes, it is this write's own earlier attempt: done)."""

    def get(self, name: str) -> Iterator[bytes]:
        """The object's bytes as a stream of chunks; ObjectMissing if there is none."""

    def list(self, prefix: str = "") -> Iterator[ObjectInfo]:
        """Every object whose name starts with `prefix`, in name order, page by page."""

    def delete(self, name: str) -> None:
        """Remove `name`; removing a missing object is not an error."""

    def describe(self) -> str:
        """The store for messages: its URL, never a credential."""


def read_all(store: ObjectStore, name: str) -> bytes:
    return b"".join(store.get(name))


def check_name(name: str) -> str:
    """`name` if it is a plain relative name; a programming error otherwise."""
    if not name or name.startswith("/") or name.endswith("/") or any(
            part in ("", ".", "..") for part in name.split("/")):
        raise ValueError(f"bad object name {name!r}")
    return name
