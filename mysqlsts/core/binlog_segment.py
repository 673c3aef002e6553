"""From a stream of binary log events to segments cut at transaction boundaries (pure).

A transaction (an event group) starts with a GTID event and ends with its XID, its COMMIT or
ROLLBACK statement, an XA PREPARE, or, when the GTID event is flagged standalone (DDL), with
the one event after it. Events between groups (ROTATE, FORMAT_DESCRIPTION, GTID_LIST,
BINLOG_CHECKPOINT, heartbeats) describe the stream and are not archived, except the newest
FORMAT_DESCRIPTION, which opens every segment: a segment is a binary log file of its own
(magic, FORMAT_DESCRIPTION, whole transactions), readable by `mariadb-binlog` and a server.

A segment is cut after the transaction that makes it reach `max_bytes`, when its first
transaction arrived `max_seconds` ago (on the caller's monotonic clock, fed through `tick`
between events), and before a FORMAT_DESCRIPTION that differs from the one it opened with.

A transaction is held whole until its events pass `large` bytes; from then on it is a large
transaction, a segment of its own that is never held whole: the pending segment is cut before
it (stream order kept), and its binary log file (the same bytes a small segment's would be:
magic, FORMAT_DESCRIPTION, its events) leaves in `Chunk`s of `chunk` bytes cut at fixed
offsets as its events arrive, then a `LargeEnd` saying what the chunks make together. What is
held is at most one chunk and one event, whatever the transaction's size (an event is whole:
one bigger than a chunk, a row with a huge BLOB, is held whole).
"""

from __future__ import annotations

import hashlib
from collections import deque
from dataclasses import dataclass, field

from mysqlsts.core import binlog_event as ev
from mysqlsts.core.gtid import MariadbGtid

MAX_SECONDS = 1.0
MAX_BYTES = 8 * 1024 * 1024
# A transaction is held whole up to LARGE bytes of events, a few times over in the sidecar
# (events, segment, compressed and sealed copies); past it, CHUNK bytes at a time (each chunk
# a few times over, likewise): the archiver's memory is bounded by these, not by a
# transaction's size.
LARGE = 16 * 1024 * 1024
CHUNK = 16 * 1024 * 1024


@dataclass(frozen=True)
class Transaction:
    gtid: MariadbGtid
    data: bytes  # its events, back to back, as the server sent them
    commit_time: int  # the timestamp of its last event (server clock, seconds)


@dataclass(frozen=True)
class Segment:
    description: ev.Event  # the FORMAT_DESCRIPTION event its transactions were written under
    transactions: tuple[Transaction, ...]

    def content(self) -> bytes:
        """The segment as a binary log file."""
        return ev.file_header(self.description) + b"".join(t.data for t in self.transactions)


@dataclass(frozen=True)
class Part:
    """Events of a large transaction, as they arrive (the first part holds all its events so
    far; `last`: the part that ends it, with its commit time)."""

    gtid: MariadbGtid
    events: tuple[bytes, ...]
    first: bool
    last: bool
    commit_time: int


@dataclass(frozen=True)
class Chunk:
    """`index`th piece of a large transaction's segment content, cut at offset index*chunk."""

    gtid: MariadbGtid
    index: int
    data: bytes


@dataclass(frozen=True)
class LargeEnd:
    """A large transaction ended: its chunks, concatenated, are `plain_size` bytes whose
    SHA-256 is `sha256` (hex)."""

    gtid: MariadbGtid
    commit_time: int
    chunks: int
    plain_size: int
    sha256: str


Output = Segment | Chunk | LargeEnd


@dataclass
class _Group:
    gtid: ev.GtidEvent
    events: list[bytes] = field(default_factory=list)
    size: int = 0
    large: bool = False  # its events leave as Parts


class Grouper:
    """Events in, whole transactions out (or, past `large` bytes, Parts of one); remembers the
    stream's FORMAT_DESCRIPTION. `large` None: every transaction is held whole (a reader of
    one segment's file, which holds it anyway)."""

    def __init__(self, large: int | None = None) -> None:
        self.description: ev.Event | None = None
        self._group: _Group | None = None
        self.large = large

    @property
    def in_transaction(self) -> bool:
        return self._group is not None

    def feed(self, event: ev.Event) -> Transaction | Part | None:
        group = self._group
        if group is None:
            if event.type == ev.GTID:
                if self.description is None:
                    raise ev.EventError("a transaction arrived before any FORMAT_DESCRIPTION "
                                        "event")
                self._group = _Group(ev.parse_gtid(event), [event.data], len(event.data))
                return None
            if event.type == ev.FORMAT_DESCRIPTION:
                self.description = event
                return None
            if event.type in ev.CONTROL:
                return None
            raise ev.EventError(f"binlog event of type {event.type} outside a transaction "
                                f"(next_pos {event.next_pos}): the stream is not understood")
        if event.type in (ev.GTID, ev.FORMAT_DESCRIPTION, ev.ROTATE, ev.STOP):
            raise ev.EventError(f"transaction {group.gtid.gtid} is cut short by an event of "
                                f"type {event.type}")
        if event.type == ev.HEARTBEAT:
            return None
        ends = group.gtid.standalone or ev.ends_group(event)
        if ends:
            self._group = None
        if group.large:
            return Part(group.gtid.gtid, (event.data,), False, ends, event.timestamp)
        group.events.append(event.data)
        group.size += len(event.data)
        if self.large is not None and group.size > self.large:
            group.large = True
            held, group.events = tuple(group.events), []
            return Part(group.gtid.gtid, held, True, ends, event.timestamp)
        if ends:
            return Transaction(group.gtid.gtid, b"".join(group.events), event.timestamp)
        return None


class _Chunker:
    """A large transaction's segment content, cut into chunks as its parts arrive: what is
    held is the pieces (events, and the rest of one cut) not yet in a chunk, under a chunk and
    an event, and a chunk as it is joined."""

    def __init__(self, gtid: MariadbGtid, description: ev.Event, chunk: int) -> None:
        self.gtid, self.chunk = gtid, chunk
        self._held: deque[bytes | memoryview] = deque([ev.file_header(description)])
        self._held_size = len(self._held[0])
        self._index, self._size = 0, 0
        self._hash = hashlib.sha256()

    def add(self, events: tuple[bytes, ...]) -> list[Output]:
        out: list[Output] = []
        for data in events:
            self._held.append(data)
            self._held_size += len(data)
            while self._held_size >= self.chunk:
                out.append(self._cut())
        return out

    def _cut(self) -> Chunk:
        taken: list[bytes | memoryview] = []
        wanted = self.chunk
        while wanted:
            piece = self._held.popleft()
            if len(piece) > wanted:
                self._held.appendleft(memoryview(piece)[wanted:])
                piece = memoryview(piece)[:wanted]
            taken.append(piece)
            wanted -= len(piece)
        self._held_size -= self.chunk
        return self._emit(b"".join(taken))

    def end(self, commit_time: int) -> list[Output]:
        out: list[Output] = [self._emit(b"".join(self._held))] if self._held_size else []
        self._held, self._held_size = deque(), 0
        return [*out, LargeEnd(self.gtid, commit_time, self._index, self._size,
                               self._hash.hexdigest())]

    def _emit(self, data: bytes) -> Chunk:
        self._hash.update(data)
        self._size += len(data)
        self._index += 1
        return Chunk(self.gtid, self._index - 1, data)


class Segmenter:
    """Events in (with the caller's monotonic `now`), segments (and a large transaction's
    chunks, then its end) out, in stream order."""

    def __init__(self, max_seconds: float = MAX_SECONDS, max_bytes: int = MAX_BYTES,
                 large: int = LARGE, chunk: int = CHUNK) -> None:
        if chunk <= 0 or large <= 0:
            raise ValueError("a large transaction's threshold and chunk size are positive")
        self.max_seconds, self.max_bytes, self.chunk = max_seconds, max_bytes, chunk
        self._grouper = Grouper(large)
        self._chunker: _Chunker | None = None
        self._pending: list[Transaction] = []
        self._pending_bytes = 0
        self._opened_at = 0.0
        self._description: ev.Event | None = None  # the pending segment's

    def feed(self, event: ev.Event, now: float) -> list[Output]:
        cut: list[Output] = []
        if (event.type == ev.FORMAT_DESCRIPTION and self._description is not None
                and event.body != self._description.body):
            cut.extend(self.flush())
        transaction = self._grouper.feed(event)
        if isinstance(transaction, Part):
            if transaction.first:
                cut.extend(self.flush())  # what came before it, first
                assert self._grouper.description is not None, "a group follows one"
                self._chunker = _Chunker(transaction.gtid, self._grouper.description,
                                         self.chunk)
            assert self._chunker is not None, "a large transaction's parts follow its first"
            cut.extend(self._chunker.add(transaction.events))
            if transaction.last:
                cut.extend(self._chunker.end(transaction.commit_time))
                self._chunker = None
        elif transaction is not None:
            if not self._pending:
                self._opened_at = now
                self._description = self._grouper.description
            self._pending.append(transaction)
            self._pending_bytes += len(transaction.data)
            if self._pending_bytes >= self.max_bytes:
                cut.extend(self.flush())
        cut.extend(self.tick(now))
        return cut

    def tick(self, now: float) -> list[Segment]:
        """The pending segment when it has waited long enough."""
        if self._pending and now - self._opened_at >= self.max_seconds:
            return self.flush()
        return []

    def flush(self) -> list[Segment]:
        """The pending segment now, whatever its age (at a clean stop)."""
        if not self._pending or self._description is None:
            return []
        segment = Segment(self._description, tuple(self._pending))
        self._pending, self._pending_bytes, self._description = [], 0, None
        return [segment]
