"""An ObjectStore wrapper that counts the GETs made through it and the bytes they returned
(the checkpoint tests and bench/index_bench.py: what a reader of the archive's index costs)."""

from __future__ import annotations

from collections.abc import Iterator

from mysqlsts.store.base import ObjectInfo, ObjectStore


class Counting:
    def __init__(self, store: ObjectStore) -> None:
        self.store, self.gets, self.bytes = store, 0, 0

    def put_new(self, name: str, data: bytes) -> None:
        self.store.put_new(name, data)

    def get(self, name: str) -> Iterator[bytes]:
        self.gets += 1
        for chunk in self.store.get(name):
            self.bytes += len(chunk)
            yield chunk

    def list(self, prefix: str = "") -> Iterator[ObjectInfo]:
        return self.store.list(prefix)

    def delete(self, name: str) -> None:
        self.store.delete(name)

    def describe(self) -> str:
        return self.store.describe()
