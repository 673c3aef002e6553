"""A store that counts what is read through it, for the tests of how many GETs a reader makes
(the archive index's checkpoints, the backup manifests' cache): any ObjectStore (a file:// one,
moto's S3) wrapped, every call passed through; bench/index_bench.py counts with it too."""

from __future__ import annotations

from collections.abc import Iterator

from mysqlsts.store.base import ObjectInfo, ObjectStore


class CountingStore:
    """`store`, keeping the name of every GET made through it, in order (`gets`), and the
    bytes they returned (`bytes`)."""

    def __init__(self, store: ObjectStore) -> None:
        self.store = store
        self.gets: list[str] = []
        self.bytes = 0

    def put_new(self, name: str, data: bytes) -> None:
        self.store.put_new(name, data)

    def get(self, name: str) -> Iterator[bytes]:
        self.gets.append(name)
        for chunk in self.store.get(name):
            self.bytes += len(chunk)
            yield chunk

    def list(self, prefix: str = "") -> Iterator[ObjectInfo]:
        return self.store.list(prefix)

    def delete(self, name: str) -> None:
        self.store.delete(name)

    def describe(self) -> str:
        return self.store.describe()
