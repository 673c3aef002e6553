"""A byte stream to checksummed parts in a store, several in flight, and back, checked.

`PartWriter` cuts what it is given into parts of `part_size` plain bytes, packs each (zstd,
then AES-GCM when keyed: core.backup_parts) and writes it create-only, at most `parallel` at
once, while AHEAD more are packed so that one starts as soon as a write ends (a full
pipeline blocks the producer: memory stays bounded). The first parts are smaller,
FIRST_PART_SIZE doubling up to `part_size` (4, 8, 16, then 32 MiB): the first upload starts
once a few MiB have arrived and been packed, not a whole part, and the parts after it keep
the store busy while the full-size ones fill (docs/backup.md "Figures"). A part is held as
the pieces it arrived in, never joined (immutable bytes kept as they are, anything else
copied once). `finish()` returns the parts' records for the manifest; the manifest itself is
written by `commit`, last. `read_parts` streams a backup back: each part is checked against
the manifest's size and SHA-256 before it is opened, and the next one is fetched while the
current one is consumed.
"""

from __future__ import annotations

import collections
import logging
import threading
import time
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor

from mysqlsts.core.backup_layout import backup_prefix, manifest_name, part_name
from mysqlsts.core.backup_manifest import (
    Manifest,
    ManifestError,
    Part,
    key_problem,
    missing_or_wrong,
    render_manifest,
)
from mysqlsts.core.backup_parts import BackupKeys, pack_chunks, sha256_hex, unpack_part
from mysqlsts.errors import MysqlstsError
from mysqlsts.store.base import ObjectStore, read_all

PART_SIZE = 32 * 1024 * 1024
FIRST_PART_SIZE = 4 * 1024 * 1024  # the first part's plain bytes; each next one twice that
PARALLEL = 4
AHEAD = 1  # parts packed while `parallel` are being written, each written as one of those ends

log = logging.getLogger(__name__)


def mark(step: str) -> None:
    """A step of a backup's timeline, at debug: `step=NAME at=EPOCH_SECONDS` (the backup bench
    reads these to split a backup's wall time; nothing else depends on them)."""
    log.debug("backup timeline step=%s at=%.3f", step, time.time())


class PartsAbandoned(MysqlstsError):
    """A part packed ahead whose writer stopped before it could be written (never raised to
    a caller: `abandon` discards the parts' outcomes)."""


class PartWriter:
    def __init__(self, store: ObjectStore, backup: str, keys: BackupKeys | None,
                 part_size: int = PART_SIZE, parallel: int = PARALLEL,
                 first_part_size: int = FIRST_PART_SIZE, ahead: int = AHEAD) -> None:
        self.store = store
        self.backup = backup
        self.keys = keys
        self.part_size = part_size
        self.parallel = parallel
        self._most = parallel + ahead  # parts packing, waiting or being written
        self._pool = ThreadPoolExecutor(self._most, thread_name_prefix="backup-part")
        self._writes = threading.Semaphore(parallel)
        self._stopped = False
        self._pending: collections.deque[Future[Part]] = collections.deque()
        self._done: list[Part] = []
        self._chunks: list[bytes | memoryview] = []  # the next part's plain bytes
        self._held = 0  # their length
        self._limit = min(first_part_size, part_size)  # the next part's size
        self._number = 0
        self.plain_bytes = 0

    def write(self, data: bytes | memoryview) -> None:
        view = memoryview(data)
        self.plain_bytes += len(view)
        # A view of bytes cannot change under us: kept. A view of a buffer the caller reuses
        # (or of a bytearray) is copied.
        keep = isinstance(view.obj, bytes)
        while view:
            taken = view[:self._limit - self._held]
            self._chunks.append(taken if keep else bytes(taken))
            self._held += len(taken)
            view = view[len(taken):]
            if self._held == self._limit:
                self._cut()

    def _cut(self) -> None:
        chunks, self._chunks, self._held = self._chunks, [], 0
        while len(self._pending) >= self._most:
            self._done.append(self._pending.popleft().result())  # raises the part's failure
        self._number += 1
        self._limit = min(2 * self._limit, self.part_size)
        if self._number == 1:
            mark("first_part_cut")
        self._pending.append(self._pool.submit(self._put, self._number, chunks))

    def _put(self, number: int, chunks: list[bytes | memoryview]) -> Part:
        name = part_name(self.backup, number)
        stored = pack_chunks(name, chunks, self.keys)
        with self._writes:
            if self._stopped:
                raise PartsAbandoned(f"{name} was not written: the backup stopped")
            if number == 1:
                mark("first_part_upload")
            self.store.put_new(name, stored)
        if number == 1:
            mark("first_part_stored")
        return Part(name, len(stored), sha256_hex(stored))

    def finish(self) -> tuple[Part, ...]:
        """Every part written (the last one may be short); raises the first failure."""
        try:
            if self._chunks or self._number == 0:
                self._cut()
            while self._pending:
                self._done.append(self._pending.popleft().result())
            return tuple(self._done)
        finally:
            self._pool.shutdown(wait=True, cancel_futures=True)

    def abandon(self) -> None:
        """Stop: parts being written finish or fail, none is started; no manifest is
        written."""
        self._stopped = True
        self._pool.shutdown(wait=True, cancel_futures=True)


def parts_not_stored(store: ObjectStore, manifest: Manifest) -> list[str]:
    """What the store's listing of the backup lacks or holds at another size than the
    manifest says ([] when every part is there)."""
    listed = {info.name: info.size for info in store.list(backup_prefix(manifest.backup_id))}
    return missing_or_wrong(manifest, listed)


def commit(store: ObjectStore, manifest: Manifest, keys: BackupKeys | None) -> None:
    """Write the manifest, create-only: from now on the backup exists."""
    store.put_new(manifest_name(manifest.backup_id), render_manifest(
        manifest, None if keys is None else keys.seal_key))


def read_parts(store: ObjectStore, manifest: Manifest, keys: BackupKeys | None,
               ahead: int = 2) -> Iterator[bytes]:
    """The backup's plain bytes, part by part, each checked before it is opened."""
    problem = key_problem(manifest, None if keys is None else keys.key_id)
    if problem:
        raise ManifestError(problem)

    def fetch(part: Part) -> bytes:
        stored = read_all(store, part.name)
        if len(stored) != part.size or sha256_hex(stored) != part.sha256:
            raise ManifestError(f"backup {manifest.backup_id}: {part.name} is corrupt "
                                f"({len(stored)} bytes, checksum does not match the manifest)")
        return unpack_part(part.name, stored, keys if manifest.key_id else None)

    with ThreadPoolExecutor(ahead, thread_name_prefix="backup-read") as pool:
        queue: collections.deque[Future[bytes]] = collections.deque()
        parts = iter(manifest.parts)
        for part in parts:
            queue.append(pool.submit(fetch, part))
            if len(queue) >= ahead:
                break
        while queue:
            data = queue.popleft().result()
            nxt = next(parts, None)
            if nxt is not None:
                queue.append(pool.submit(fetch, nxt))
            yield data


def remove_backup(store: ObjectStore, backup: str) -> int:
    """Delete a backup's objects, its manifest first (so it stops existing before its parts
    go); the number of objects deleted."""
    names = [info.name for info in store.list(backup_prefix(backup))]
    names.sort(key=lambda name: name != manifest_name(backup))
    for name in names:
        store.delete(name)
    return len(names)
