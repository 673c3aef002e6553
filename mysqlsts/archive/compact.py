"""Compacting the archive's index: a new checkpoint (core/binlog_checkpoint.py) at the level
the due rule says (a delta holding the records since the checkpoint it is on, or a new base
holding every listed record), written when enough records are in none of the chain's (the
archiver, as it writes: `Checkpointing`) or whenever any is (`mysqlsts archive compact`).

The records are read before the checkpoint is written, and a checkpoint holds only records
listed then: it never holds one that does not exist. Two writers at once (the archiver and a
person) are harmless: each checkpoint holds only written records, and a reader takes the
newest chain and reads what it lacks.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from mysqlsts.core.backup_parts import BackupKeys
from mysqlsts.core.binlog_checkpoint import level_due
from mysqlsts.core.binlog_index import SegmentRecord
from mysqlsts.errors import describe
from mysqlsts.store.archive_checkpoints import write_checkpoint
from mysqlsts.store.base import ObjectStore
from mysqlsts.store.binlog_archive import Index, load_index

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Compacted:
    index: Index  # the index as read before the checkpoint was written
    written: str | None  # the new checkpoint's name; None: none was due
    held: tuple[int, ...] = ()  # listed records each checkpoint of the new chain holds

    def __str__(self) -> str:
        total = len(self.index.records)
        if self.written is None:
            return (f"no checkpoint written: {total - self.index.covered} of {total} records "
                    "are not in the newest checkpoints")
        kind = "a base" if len(self.held) == 1 else f"a level-{len(self.held) - 1} delta"
        return f"wrote {self.written} holding {self.held[-1]} records ({kind})"


def compact(store: ObjectStore, keys: BackupKeys | None,
            known: Mapping[str, SegmentRecord] | None = None, *,
            always: bool = False) -> Compacted:
    """Read the index (records in `known` are not read again) and write a checkpoint of it
    when one is due, or (`always`) when any listed record is in none of the chain's."""
    index = load_index(store, keys, known)
    level = level_due(index.held, len(index.records) - index.covered, always=always)
    if level is None:
        return Compacted(index, None)
    above = {r.index_name for c in index.chain[:level] for r in c.records}
    records = [r for r in index.records if r.index_name not in above]
    serial = index.chain[level].serial + 1 if level < len(index.chain) else 1
    on = index.chain[level - 1].name if level else ""
    return Compacted(index, write_checkpoint(store, keys, serial, records, on),
                     (*index.held[:level], len(records)))


class CompactionJob(threading.Thread):
    """One `compact` run beside the archiving, so a large index's checkpoint never holds up
    a segment (reading and writing a day's index takes seconds; the archive's lag must
    not). Its owner starts it, reads its outcome once it has ended, and joins it before it
    resumes or stops."""

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


class Checkpointing:
    """The archiver's index checkpoints: it tells this what the index held at a resume and
    each record it stores, and joins it at a stop or before a resume; a checkpoint is written
    (a CompactionJob, beside the archiving) once one is due. It keeps how many listed records
    each checkpoint of the chain holds, how many none does, and those (read or written here,
    so never read again to write one). `check` is called before a job starts (the archive
    lease's check: never a write outside it)."""

    def __init__(self, store: ObjectStore, keys: BackupKeys | None,
                 check: Callable[[], None] = lambda: None) -> None:
        self.store, self.keys, self.check = store, keys, check
        self._held: tuple[int, ...] = ()
        self._uncovered = 0
        self._pending: dict[str, SegmentRecord] = {}
        self._job: CompactionJob | None = None

    def resumed(self, index: Index) -> None:
        """The index as a resume read it (after `join`)."""
        held = {r.index_name for c in index.chain for r in c.records}
        self._pending = {r.index_name: r for r in index.records if r.index_name not in held}
        self._held, self._uncovered = index.held, len(self._pending)

    def stored(self, record: SegmentRecord) -> None:
        """After each record written: settle a job that has ended, and start one when one is
        due. The records it holds are written before it starts, so it never holds one that
        does not exist."""
        self._pending[record.index_name] = record
        self._uncovered += 1
        job = self._job
        if job is not None:
            if job.is_alive():
                return
            self._settle(job)
        if level_due(self._held, self._uncovered) is not None:
            self.check()
            self._job = CompactionJob(self.store, self.keys, dict(self._pending))
            self._job.start()

    def join(self, timeout: float) -> None:
        """Wait for a running job (before a resume reads the index, and at stop): its one
        write is whole or absent, so a job that outlives the deadline is left to its daemon
        thread."""
        if self._job is not None:
            self._job.join(timeout=timeout)
            if not self._job.is_alive():
                self._settle(self._job)
            self._job = None

    def _settle(self, job: CompactionJob) -> None:
        """Take an ended job's outcome: the records it held leave the pending ones; one that
        failed is tried again once as many records more are written (the archive went on
        meanwhile: readers read the rest one by one)."""
        self._job = None
        since = len(self._pending) - len(job.known)  # written while it ran
        if job.done is None:
            log.warning("archive: could not write an index checkpoint (%s); trying again "
                        "when as many more segments are written", job.error)
            self._uncovered = since
            return
        log.info("archive: %s", job.done)
        index = job.done.index
        if job.done.written is None:
            self._held = index.held
            self._uncovered = len(index.records) - index.covered + since
            return
        self._pending = {n: r for n, r in self._pending.items() if n not in job.known}
        self._held, self._uncovered = job.done.held, len(self._pending)
