"""The binlog archive in a store: write a segment and then its index record, list the records,
read a segment back checked (sealed like backup parts: zstd, then AES-256-GCM when keyed).

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
    make_record,
    parse_record,
    render_record,
    segment_name,
)
from mysqlsts.core.binlog_segment import Segment
from mysqlsts.store.archive_checkpoints import read_chain
from mysqlsts.store.base import ObjectStore, StoreError, read_all


class SegmentError(StoreError):
    """A segment missing, corrupt, or not the one its record describes."""


def seal_segment(segment: Segment, keys: BackupKeys | None) -> tuple[SegmentRecord, bytes]:
    """The segment's record and stored bytes (nothing written)."""
    content = segment.content()
    name = segment_name(segment.transactions[0].gtid, content, keys.key_id if keys else "")
    nonce = None
    if keys is not None:
        nonce = hmac.new(keys.seal_key, name.encode() + content, hashlib.sha256).digest()[:12]
    stored = pack_part(name, content, keys, nonce)
    return make_record(segment, name, stored, len(content), keys.key_id if keys else ""), stored


def write_segment(store: ObjectStore, record: SegmentRecord, stored: bytes,
                  keys: BackupKeys | None) -> None:
    """The segment, then its record: a reader sees both or neither. Create-only; a repeat of
    a write that already succeeded is done, not an error."""
    store.put_new(record.segment, stored)
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
    store.delete(record.segment)


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
    """The segment's binary log file, checked against its record before it is opened."""
    stored = read_all(store, record.segment)
    if len(stored) != record.size or hashlib.sha256(stored).hexdigest() != record.sha256:
        raise SegmentError(f"archive segment {record.segment} is not the one its index "
                           f"record describes ({len(stored)} bytes, expected {record.size})")
    content = unpack_part(record.segment, stored, keys)
    if len(content) != record.plain_size:
        raise SegmentError(f"archive segment {record.segment} opens to {len(content)} bytes, "
                           f"expected {record.plain_size}")
    return content
