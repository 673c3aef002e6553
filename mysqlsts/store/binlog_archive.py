"""The binlog archive in a store: write a segment and then its index record, list the records,
read a segment back checked (sealed like backup parts: zstd, then AES-256-GCM when keyed). A
chunked segment (a large transaction) is written chunk by chunk, each sealed so, its record
after the last; it is read back chunk by chunk, each checked before its bytes are given.

A segment's bytes depend only on its content and the key (the nonce is derived from both), so
a write repeated after a crash or a lost reply meets its own earlier bytes and is done, and
never a second object for the same transactions under the same name.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Iterator, Mapping
from dataclasses import dataclass

from mysqlsts.core.backup_layout import BINLOG_INDEX, BINLOG_SEGMENTS
from mysqlsts.core.backup_parts import BackupKeys, pack_part, unpack_part
from mysqlsts.core.binlog_checkpoint import Checkpoint, merge
from mysqlsts.core.binlog_index import (
    INDEX_SUFFIX,
    SegmentRecord,
    StoredChunk,
    chunk_name,
    make_record,
    parse_record,
    render_record,
    segment_name,
)
from mysqlsts.core.binlog_segment import Chunk, Segment
from mysqlsts.store.archive_checkpoints import read_chain
from mysqlsts.store.base import ObjectMissing, ObjectStore, StoreError, read_all


class SegmentError(StoreError):
    """A segment missing, corrupt, or not the one its record describes."""


def _seal(name: str, content: bytes, keys: BackupKeys | None) -> bytes:
    nonce = None
    if keys is not None:
        mac = hmac.new(keys.seal_key, name.encode(), hashlib.sha256)
        mac.update(content)  # not concatenated: a chunk is not copied to derive its nonce
        nonce = mac.digest()[:12]
    return pack_part(name, content, keys, nonce)


def seal_segment(segment: Segment, keys: BackupKeys | None) -> tuple[SegmentRecord, bytes]:
    """The segment's record and stored bytes (nothing written)."""
    content = segment.content()
    name = segment_name(segment.transactions[0].gtid, content, keys.key_id if keys else "")
    stored = _seal(name, content, keys)
    return make_record(segment, name, stored, len(content), keys.key_id if keys else ""), stored


def seal_chunk(chunk: Chunk, keys: BackupKeys | None) -> tuple[StoredChunk, bytes]:
    """A large transaction's chunk as its record lists it, and its stored bytes."""
    name = chunk_name(chunk.gtid, chunk.index, chunk.data, keys.key_id if keys else "")
    stored = _seal(name, chunk.data, keys)
    return StoredChunk(name, len(stored), hashlib.sha256(stored).hexdigest(),
                       len(chunk.data)), stored


def write_segment(store: ObjectStore, record: SegmentRecord, stored: bytes,
                  keys: BackupKeys | None) -> None:
    """The segment, then its record: a reader sees both or neither. Create-only; a repeat of
    a write that already succeeded is done, not an error."""
    store.put_new(record.segment, stored)
    write_record(store, record, keys)


def write_record(store: ObjectStore, record: SegmentRecord, keys: BackupKeys | None) -> None:
    """The record alone (a chunked segment's, once its chunks are written), create-only."""
    store.put_new(record.index_name, render_record(record, keys.seal_key if keys else None))


def index_names(store: ObjectStore) -> Iterator[str]:
    for info in store.list(BINLOG_INDEX):
        if info.name.endswith(INDEX_SUFFIX):
            yield info.name


def segment_names(store: ObjectStore) -> list[str]:
    """Every segment object's name (with a record or not)."""
    return [info.name for info in store.list(BINLOG_SEGMENTS)]


def remove_segment(store: ObjectStore, record: SegmentRecord) -> None:
    """Retention's delete: the index record first, so the segment leaves every reader's
    archive before its bytes go (cut short between, it is an orphan, never a hole)."""
    store.delete(record.index_name)
    for name in record.objects:
        store.delete(name)


@dataclass(frozen=True)
class Index:
    """The archive's index as read: every listed record, and how it was read."""

    records: list[SegmentRecord]  # every listed record, in name order
    chain: tuple[Checkpoint, ...]  # the checkpoints taken (core/binlog_checkpoint.py)
    held: tuple[int, ...]  # listed records taken from each of them

    @property
    def covered(self) -> int:
        """Records taken from the chain (the rest were read one by one, or known)."""
        return sum(self.held)

    @property
    def checkpoint(self) -> Checkpoint | None:
        """The chain's newest checkpoint, when there is one."""
        return self.chain[-1] if self.chain else None


def load_index(store: ObjectStore, keys: BackupKeys | None,
               known: Mapping[str, SegmentRecord] | None = None, *,
               checkpoint: bool = True) -> Index:
    """Every listed index record: those the chain of checkpoints holds taken from it (unless
    `checkpoint` is false), those in `known` (records read or written before) as they are,
    the rest read one GET each. A record or checkpoint that does not parse is an error
    naming it."""
    names = list(index_names(store))
    taken = read_chain(store, keys) if names and checkpoint else ()
    found, rest, held = merge(names, taken)
    seal_key = keys.seal_key if keys else None
    known = known or {}
    for name in rest:
        found[name] = known[name] if name in known else parse_record(
            name, read_all(store, name), seal_key)
    return Index([found[name] for name in names], taken, held)


def load_records(store: ObjectStore, keys: BackupKeys | None) -> list[SegmentRecord]:
    """Every index record, in name order (through the checkpoints, see
    core/binlog_checkpoint.py); one that does not parse is an error naming it."""
    return load_index(store, keys).records


class IndexCache:
    """The index, read incrementally: records are create-only and never change, so the first
    call reads it through the checkpoints and each later one lists the names and reads
    only those not read before (a purge pass every minute costs a listing, not a GET per
    record)."""

    def __init__(self, store: ObjectStore, keys: BackupKeys | None) -> None:
        self.store, self.keys = store, keys
        self._records: dict[str, SegmentRecord] | None = None

    def records(self) -> list[SegmentRecord]:
        first = self._records is None
        index = load_index(self.store, self.keys, self._records, checkpoint=first)
        self._records = {r.index_name: r for r in index.records}
        return index.records


def read_segment(store: ObjectStore, record: SegmentRecord, keys: BackupKeys | None) -> bytes:
    """The segment's binary log file, checked against its record before it is opened (a
    chunked segment's whole: for a test or a tool; a recovery reads `read_chunks`)."""
    if record.chunks:
        return b"".join(read_chunks(store, record, keys))
    return _opened(store, record.segment, record.size, record.sha256, record.plain_size, keys,
                   f"archive segment {record.segment}")


def read_chunks(store: ObjectStore, record: SegmentRecord, keys: BackupKeys | None
                ) -> Iterator[bytes]:
    """A chunked segment's content, chunk by chunk, each checked against its record entry
    before it is given, and the whole against the record's SHA-256 after the last (the
    caller discards what it wrote from a chunk that failed). One chunk held at a time."""
    whole = hashlib.sha256()
    for n, chunk in enumerate(record.chunks):
        content = _opened(store, chunk.name, chunk.size, chunk.sha256, chunk.plain_size, keys,
                          f"archive segment {record.segment} chunk {n} ({chunk.name})")
        whole.update(content)
        yield content
    if whole.hexdigest() != record.sha256:
        raise SegmentError(f"archive segment {record.segment}: its chunks together are not "
                           "the content its index record describes")


def _opened(store: ObjectStore, name: str, size: int, sha256: str, plain_size: int,
            keys: BackupKeys | None, what: str) -> bytes:
    try:
        stored = read_all(store, name)
    except ObjectMissing:
        raise SegmentError(f"{what} is missing from the store") from None
    if len(stored) != size or hashlib.sha256(stored).hexdigest() != sha256:
        raise SegmentError(f"{what} is not the one its index record describes "
                           f"({len(stored)} bytes, expected {size})")
    content = unpack_part(name, stored, keys)
    if len(content) != plain_size:
        raise SegmentError(f"{what} opens to {len(content)} bytes, expected {plain_size}")
    return content
