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
"""

from __future__ import annotations

from dataclasses import dataclass, field

from mysqlsts.core import binlog_event as ev
from mysqlsts.core.gtid import MariadbGtid

MAX_SECONDS = 1.0
MAX_BYTES = 8 * 1024 * 1024
# A transaction is held whole until it ends, and in the sidecar three or four times over
# (events, segment, compressed and sealed copies): the bound keeps that inside its 1 GiB, and
# under the 256 MiB a part may open to (core.backup_parts.MAX_PART).
MAX_TRANSACTION = 128 * 1024 * 1024


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


@dataclass
class _Group:
    gtid: ev.GtidEvent
    events: list[bytes] = field(default_factory=list)
    size: int = 0


class Grouper:
    """Events in, whole transactions out; remembers the stream's FORMAT_DESCRIPTION."""

    def __init__(self, max_transaction: int = MAX_TRANSACTION) -> None:
        self.description: ev.Event | None = None
        self._group: _Group | None = None
        self.max_transaction = max_transaction

    @property
    def in_transaction(self) -> bool:
        return self._group is not None

    def feed(self, event: ev.Event) -> Transaction | None:
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
        group.events.append(event.data)
        group.size += len(event.data)
        if group.size > self.max_transaction:
            # Held whole until it ends (a segment never splits one): refuse it in a sentence
            # rather than be OOM-killed on it at every restart.
            raise ev.EventError(f"transaction {group.gtid.gtid} is over "
                                f"{self.max_transaction >> 20} MiB, more than the archive holds "
                                "in one segment")
        if group.gtid.standalone or ev.ends_group(event):
            self._group = None
            return Transaction(group.gtid.gtid, b"".join(group.events), event.timestamp)
        return None


class Segmenter:
    """Events in (with the caller's monotonic `now`), segments out, in stream order."""

    def __init__(self, max_seconds: float = MAX_SECONDS, max_bytes: int = MAX_BYTES,
                 max_transaction: int = MAX_TRANSACTION) -> None:
        self.max_seconds, self.max_bytes = max_seconds, max_bytes
        self._grouper = Grouper(max_transaction)
        self._pending: list[Transaction] = []
        self._pending_bytes = 0
        self._opened_at = 0.0
        self._description: ev.Event | None = None  # the pending segment's

    def feed(self, event: ev.Event, now: float) -> list[Segment]:
        cut: list[Segment] = []
        if (event.type == ev.FORMAT_DESCRIPTION and self._description is not None
                and event.body != self._description.body):
            cut.extend(self.flush())
        transaction = self._grouper.feed(event)
        if transaction is not None:
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
