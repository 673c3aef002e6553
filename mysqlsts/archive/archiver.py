"""The archiver: the primary's binary log stream → segments → the store, until stopped.

It resumes from what the store holds (the newest archived GTID per domain, read from the
index), so a restarted archiver, a re-created primary or a new primary after a takeover
continues the same archive: the stream is asked for what follows that position, a transaction
at or before it is dropped as a duplicate, and one that does not follow it is archived and
reported as a gap (named, never skipped; the index shows it to every reader); where a domain's
writer (server id) changes, a line says so (a takeover, or an errant write promoted). A segment is
written before its record; a store write that fails is retried with backoff until it succeeds
or the archiver is stopped, and the position moves only once both are written. Once enough
records are in none of the index's checkpoints, it writes a new one after them, in a thread of
its own beside the archiving (archive/compact.py), so the next start reads a few objects, not a
record per segment.

A large transaction (core/binlog_segment.py) is written as it arrives, chunk by chunk, each
create-only under a content-hashed name, and its record after the last: its memory is a chunk
or two whatever its size. Its GTID is judged at its first chunk: at or before the position, a
duplicate, nothing written; a stream cut short inside it leaves its chunks so far as orphans
(`backup prune` cleans them) and the transaction is streamed again, meeting its own bytes.

A primary that refuses the position because its binary logs no longer hold it (purged, a
partition longer than their retention, a re-created primary: core/purged_past.py) is streamed
from where its oldest binary log begins: the lost range is said once and counted, and the
first transaction after it opens a new segment, so the index names the gap. The archive's
position stays its own until then (reconnects keep the jump); a primary that never had the
position (diverged) is refused on every attempt, and the archiver says so and waits.

With a lock (archive/lock.py), it archives only while it holds the store's archive lease: it
waits for the lease, resumes from the index once it holds it, checks the lease before every
store write, and on losing it stops writing, goes back to waiting, and resumes from the index
again when it holds it once more.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

from mysqlsts.adapters.binlog_stream import BinlogStream, PositionRefused, StreamError
from mysqlsts.archive.compact import Checkpointing
from mysqlsts.archive.lock import ArchiveLock, LockLost, LockStopped, TermOver
from mysqlsts.core import binlog_event as ev
from mysqlsts.core.backoff import backoff
from mysqlsts.core.backup_parts import BackupKeys
from mysqlsts.core.binlog_index import (
    SegmentRecord,
    StoredChunk,
    archived_position,
    breaks,
    make_chunked_record,
    newest_commit,
    position_text,
)
from mysqlsts.core.binlog_segment import (
    CHUNK,
    LARGE,
    Chunk,
    LargeEnd,
    Output,
    Segment,
    Segmenter,
    Transaction,
)
from mysqlsts.core.gtid import MariadbGtid, parse_mariadb
from mysqlsts.core.purged_past import purged_past
from mysqlsts.store.base import ObjectExists, ObjectStore, StoreError
from mysqlsts.store.binlog_archive import (
    load_index,
    seal_chunk,
    seal_segment,
    write_record,
    write_segment,
)

log = logging.getLogger(__name__)
_T = TypeVar("_T")
# How long a resume waits for a checkpoint being written (a month's index is a 180 MB object:
# a minute on a slow link), and a stop (briefly: the pod's grace period is short, and the
# write is whole or absent, so one cut off by the exit costs nothing).
CHECKPOINT_JOIN_SECONDS = 60.0
CHECKPOINT_STOP_SECONDS = 2.0


@dataclass(frozen=True)
class ArchiveSettings:
    max_seconds: float = 1.0
    max_bytes: int = 8 * 1024 * 1024
    large_bytes: int = LARGE  # a transaction past this is written in chunks...
    chunk_bytes: int = CHUNK  # ...of this much segment content each
    # An empty archive starts after this GTID position; "current": the primary's at start;
    # "oldest": from the primary's oldest binary log.
    start_position: str = "current"
    retry_first: float = 0.2
    retry_cap: float = 5.0
    progress_every: float = 60.0  # seconds between "how far" log lines while archiving


@dataclass
class ArchiveState:
    """What the archiver has done, for its log lines and the sidecar's metrics."""

    segments: int = 0
    transactions: int = 0
    duplicates: int = 0
    gaps: int = 0
    store_failures: int = 0
    last_commit: int = 0  # server timestamp of the newest archived transaction


class Stopped(Exception):  # noqa: N818 (a signal, not an error)
    """The archiver was asked to stop while it waited."""


class Archiver:
    def __init__(self, store: ObjectStore, keys: BackupKeys | None,
                 open_stream: Callable[[], BinlogStream], primary_position: Callable[[], str],
                 settings: ArchiveSettings, stop: threading.Event,
                 clock: Callable[[], float] = time.monotonic,
                 wall: Callable[[], float] = time.time,
                 lock: ArchiveLock | None = None,
                 oldest_position: Callable[[], str] | None = None) -> None:
        self.store, self.keys, self.settings = store, keys, settings
        self._oldest_position = oldest_position
        self.lock = lock
        self._open_stream, self._primary_position = open_stream, primary_position
        self._stop, self._clock, self._wall = stop, clock, wall
        self._reported_at = clock()
        self.state = ArchiveState()
        self.position: dict[int, MariadbGtid] = {}
        # Where the stream goes on past what the primary purged, per domain, until the archive
        # holds a transaction after it (then the position alone says where to resume).
        self._past: dict[int, MariadbGtid] = {}
        self.checkpoints = Checkpointing(store, keys, lock.check if lock else lambda: None)
        self._failures = 0  # stream attempts that failed since one last streamed
        # The large transaction being written: its chunks so far (None: none, or one dropped
        # as a duplicate).
        self._chunks: list[StoredChunk] | None = None

    def resume(self) -> str:
        """The position to ask the primary for, from the store's index (every break in it
        reported), else the start position. A store that cannot be read at start is an error,
        not retried: a wrong URL, bucket or credential is one line, not a loop."""
        self.checkpoints.join(CHECKPOINT_JOIN_SECONDS)
        index = load_index(self.store, self.keys)
        records = index.records
        self.checkpoints.resumed(index)
        for found in breaks(records):
            self.state.gaps += 1
            log.warning("archive: the store's archive is not contiguous: %s", found)
        self.position = archived_position(records)
        self._past = {}
        # What the archive holds, not what this process wrote: an archiver that resumes and
        # cannot stream (its position purged, or a primary that never had it) still shows
        # its lag growing (mysqlsts_archive_last_commit_timestamp_seconds).
        self.state.last_commit = newest_commit(records)
        if self.position:
            text = position_text(self.position)
            log.info("archive: resuming after %s (%d segments in %s)", text, len(records),
                     self.store.describe())
            return text
        start = self.settings.start_position
        if start == "current":
            start = self._primary_position()
        elif start == "oldest":
            # Where the oldest binary log begins; without a way to ask, the empty position
            # (the primary streams from its oldest file, if nothing was purged before it).
            start = self._oldest_position() if self._oldest_position is not None else ""
        self.position = {g.domain: g for g in parse_mariadb(start)}
        log.info("archive: empty archive in %s, starting after %s", self.store.describe(),
                 start or "the oldest binary log")
        return start

    def run(self) -> None:
        """Archive until stopped (holding the lock, when there is one); a stream that breaks
        is reopened from the position."""
        try:
            while not self._stop.is_set():
                if self.lock is not None:
                    self.lock.acquire(self._stop)
                try:
                    self._archive()
                except TermOver as error:
                    log.info("archive: %s", error)
                except LockLost as error:
                    log.warning("archive: %s", error)
                finally:
                    if self.lock is not None:
                        self.lock.release()
        except (Stopped, LockStopped):
            pass
        finally:
            self.checkpoints.join(CHECKPOINT_STOP_SECONDS)
        log.info("archive: stopped after %d segments, %d transactions, position %s",
                 self.state.segments, self.state.transactions,
                 position_text(self.position) or "none")

    def _archive(self) -> None:
        """Resume from the index and archive until stopped (LockLost: the lease is gone)."""
        start = self.resume()
        self._failures = 0
        while not self._stop.is_set():
            stream = self._open_stream()
            try:
                stream.open(self._stream_position() or start)
                self._follow(stream)
            except StreamError as error:
                why = self._refused(error) if isinstance(error, PositionRefused) else ""
                if why is None:
                    continue  # going on past what the primary purged, at once
                self._failures += 1
                log.warning("archive: %s%s; reconnecting", error, why)
                self._stop.wait(backoff(self._failures, self.settings.retry_first,
                                        self.settings.retry_cap))
            finally:
                stream.close()

    def _stream_position(self) -> str:
        """The archive's position, past what the primary purged where it did."""
        position = dict(self.position)
        for domain, gtid in self._past.items():
            if domain not in position or position[domain].seq < gtid.seq:
                position[domain] = gtid
        return position_text(position)

    def _refused(self, error: PositionRefused) -> str | None:
        """On the primary's refusal of the position: None when its oldest binary log begins
        past the archive (the stream goes on from there, the lost range said once and
        counted as a gap); else why it does not, for the warning."""
        if self._oldest_position is None:
            return ""
        try:
            oldest = self._oldest_position()
        except StreamError as failure:
            return f" (and {failure})"
        found = purged_past(self.position, oldest)
        if found is None:
            begins = f"after {oldest}" if oldest else "with its first transaction"
            return (f" (its oldest binary log begins {begins}, not past the archive's "
                    f"{position_text(self.position) or 'empty position'}: not a purge; a "
                    "primary that never had that position waits for a person)")
        beyond = {d: g for d, g in found.start.items()
                  if d not in self.position or g.seq > self.position[d].seq}
        if beyond == self._past:
            return " (refused again past what it purged)"
        # A domain already gone on past is the same gap, further on: counted once.
        self.state.gaps += sum(1 for p in found.purged if p.domain not in self._past)
        held = "".join(f"; domain {g.domain}, which the archive holds none of, from {g}"
                       for g in found.unheld)
        log.warning("archive: the primary no longer holds %s: a gap; going on from %s%s "
                    "(%s)", "; ".join(str(p) for p in found.purged),
                    position_text(found.start), held, error)
        self._past = beyond
        return None

    def _announced(self, last: MariadbGtid, gtid: MariadbGtid) -> bool:
        """Whether `gtid` following `last` jumps the range the primary purged (said and
        counted when the stream went on past it)."""
        past = self._past.get(gtid.domain)
        return past is not None and last.seq < past.seq and gtid.seq == past.seq + 1

    def _follow(self, stream: BinlogStream) -> None:
        settings = self.settings
        segmenter = Segmenter(settings.max_seconds, settings.max_bytes, settings.large_bytes,
                              settings.chunk_bytes)
        self._chunks = None
        try:
            for event in stream.events():
                # Only an event says the primary took the position (it refuses one, error
                # 1236, after the dump request was sent): a refusal on every attempt keeps
                # backing off, and this line is not said before it.
                if self._failures:
                    log.info("archive: streaming again from the primary after %d failures",
                             self._failures)
                    self._failures = 0
                outputs = segmenter.feed(event, self._clock())
                while outputs:  # each let go once written: one chunk held, not two
                    self._output(outputs.pop(0))
                if self._stop.is_set():
                    break
        except ev.EventError as error:
            raise StreamError(f"binlog stream: {error}") from None
        finally:
            # What is pending is whole transactions: written, not lost with the link (a large
            # transaction cut short is streamed again).
            for segment in segmenter.flush():
                self._write(segment)

    def _output(self, output: Output) -> None:
        if isinstance(output, Segment):
            self._write(output)
        elif isinstance(output, Chunk):
            self._chunk(output)
        else:
            self._large_end(output)

    def _judge(self, position: dict[int, MariadbGtid], gtid: MariadbGtid) -> str:
        """How `gtid` meets the position: "duplicate" (at or before it: not again), "gap"
        (said and counted), else "" (it follows)."""
        last = position.get(gtid.domain)
        if last is None:
            return ""
        if gtid.seq <= last.seq:
            self.state.duplicates += 1
            log.info("archive: %s is archived already (up to %s); not again", gtid, last)
            return "duplicate"
        if gtid.server_id != last.server_id:
            log.info("archive: domain %d now written by server %d: %s follows %s (a new "
                     "primary, or a transaction written on a replica before its "
                     "promotion)", gtid.domain, gtid.server_id, gtid, last)
        if gtid.seq != last.seq + 1:
            if not self._announced(last, gtid):
                self.state.gaps += 1
                log.warning("archive: gap in domain %d: seq %d..%d missing between %s and "
                            "%s", gtid.domain, last.seq + 1, gtid.seq - 1, last, gtid)
            return "gap"
        return ""

    def _chunk(self, chunk: Chunk) -> None:
        """A large transaction's chunk written (judged at its first: a duplicate's are not)."""
        if chunk.index == 0:
            duplicate = self._judge(self.position, chunk.gtid) == "duplicate"
            self._chunks = None if duplicate else []
        if self._chunks is None:
            return
        stored, data = seal_chunk(chunk, self.keys)
        self._retry(f"write {stored.name} (chunk {chunk.index} of {chunk.gtid})",
                    lambda: self.store.put_new(stored.name, data))
        self._chunks.append(stored)

    def _large_end(self, end: LargeEnd) -> None:
        """A large transaction's record, after its chunks: the commit marker."""
        chunks, self._chunks = self._chunks, None
        if chunks is None:
            return
        record = make_chunked_record(end.gtid, end.commit_time, chunks, end.plain_size,
                                     end.sha256, self.keys.key_id if self.keys else "")
        self._retry(f"write {record.index_name}",
                    lambda: write_record(self.store, record, self.keys))
        self._written(record, [end.gtid], end.commit_time)

    def _write(self, segment: Segment) -> None:
        """Write the segment's new transactions: duplicates dropped, and the segment split at
        a gap, so that a gap always falls between two index records, where `breaks` names
        it exactly."""
        position = dict(self.position)
        runs: list[list[Transaction]] = [[]]
        for transaction in segment.transactions:
            gtid = transaction.gtid
            judged = self._judge(position, gtid)
            if judged == "duplicate":
                continue
            if judged == "gap" and runs[-1]:
                runs.append([])
            position[gtid.domain] = gtid
            runs[-1].append(transaction)
        for run in runs:
            if run:
                self._store(Segment(segment.description, tuple(run)))

    def _store(self, segment: Segment) -> None:
        record, stored = seal_segment(segment, self.keys)
        self._retry(f"write {record.segment}",
                    lambda: write_segment(self.store, record, stored, self.keys))
        self._written(record, [t.gtid for t in segment.transactions],
                      segment.transactions[-1].commit_time)

    def _written(self, record: SegmentRecord, gtids: list[MariadbGtid], last_commit: int
                 ) -> None:
        """A record and its objects are written: the position moves past its transactions."""
        for gtid in gtids:
            self.position[gtid.domain] = gtid
        self._past = {d: g for d, g in self._past.items()
                      if d not in self.position or self.position[d].seq < g.seq}
        self.state.segments += 1
        self.state.transactions += len(gtids)
        self.state.last_commit = last_commit
        self.checkpoints.stored(record)
        log.debug("archive: wrote %s transactions=%d bytes=%d chunks=%d last=%s",
                  record.segment, len(gtids), record.size, len(record.chunks), gtids[-1])
        now = self._clock()
        if now - self._reported_at >= self.settings.progress_every:
            self._reported_at = now
            # The lag compares the primary's stamp with our clock: a report, not a decision.
            log.info("archive: %d segments, %d transactions archived, position %s, newest "
                     "commit %.1fs ago", self.state.segments, self.state.transactions,
                     position_text(self.position), self._wall() - self.state.last_commit)

    def _retry(self, what: str, action: Callable[[], _T]) -> _T:
        failures = 0
        while True:
            if self.lock is not None:
                self.lock.check()  # never a write outside the lease (LockLost)
            try:
                result = action()
            except ObjectExists:
                raise  # other bytes under a content-hashed name: never retried, never replaced
            except StoreError as error:
                failures += 1
                self.state.store_failures += 1
                pause = backoff(failures, self.settings.retry_first, self.settings.retry_cap)
                log.warning("archive: could not %s (%s); retry %d in %.1fs", what, error,
                            failures, pause)
                if self._stop.wait(pause):
                    raise Stopped from None
                continue
            if failures:
                log.info("archive: %s succeeded after %d failures", what, failures)
            return result
