"""Compacting the archive's index: a new checkpoint (core/binlog_checkpoint.py) holding every
listed record, written when enough records are not in the newest one (the archiver, as it
writes) or whenever any is (`mysqlsts archive compact`).

The records are read before the checkpoint is written, and a checkpoint holds only records
listed then: it never holds one that does not exist. Two writers at once (the archiver and a
person) are harmless: each checkpoint holds only written records, and a reader takes the
newest and reads what it lacks.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from dataclasses import dataclass

from mysqlsts.core.backup_parts import BackupKeys
from mysqlsts.core.binlog_checkpoint import due
from mysqlsts.core.binlog_index import SegmentRecord
from mysqlsts.errors import describe
from mysqlsts.store.archive_checkpoints import write_checkpoint
from mysqlsts.store.base import ObjectStore
from mysqlsts.store.binlog_archive import Index, load_index


@dataclass(frozen=True)
class Compacted:
    index: Index  # the index as read before the checkpoint was written
    written: str | None  # the new checkpoint's name; None: none was due

    def __str__(self) -> str:
        held = len(self.index.records)
        if self.written is None:
            return (f"no checkpoint written: {held - self.index.covered} of {held} records "
                    "are not in the newest checkpoint")
        return f"wrote {self.written} holding {held} records"


def compact(store: ObjectStore, keys: BackupKeys | None,
            known: Mapping[str, SegmentRecord] | None = None, *,
            always: bool = False) -> Compacted:
    """Read the index (records in `known` are not read again) and write a checkpoint of it
    when one is due, or (`always`) when any listed record is not in the newest one."""
    index = load_index(store, keys, known)
    uncovered = len(index.records) - index.covered
    if uncovered == 0 or not (always or due(index.covered, uncovered)):
        return Compacted(index, None)
    serial = index.checkpoint.serial + 1 if index.checkpoint is not None else 1
    return Compacted(index, write_checkpoint(store, keys, serial, index.records))


class CompactionJob(threading.Thread):
    """One `compact` run beside the archiving, so a large index's checkpoint never holds up
    a segment (reading and writing a day's index takes seconds; the archive's lag must
    not). Its owner (the archiver) starts it, reads its outcome once it has ended, and joins
    it before it resumes or stops."""

    def __init__(self, store: ObjectStore, keys: BackupKeys | None,
                 known: Mapping[str, SegmentRecord]) -> None:
        super().__init__(name="archive-checkpoint", daemon=True)
        self.store, self.keys, self.known = store, keys, known
        self.done: Compacted | None = None
        self.error = ""  # why it wrote nothing, when it failed

    def run(self) -> None:
        try:
            self.done = compact(self.store, self.keys, self.known)
        except Exception as error:  # noqa: BLE001 (a thread's edge: its owner reports it)
            self.error = describe(error)  # the store, a damaged record or checkpoint, a bug
