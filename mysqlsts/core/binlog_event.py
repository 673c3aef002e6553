"""Binary log events as values: the v4 header, MariaDB's CRC32 trailer, and the few bodies the
archive reads (GTID, QUERY, FORMAT_DESCRIPTION) (pure).

Every v4 event starts with a 19-byte header, little-endian:

    timestamp u32 | type u8 | server_id u32 | event_size u32 | next_pos u32 | flags u16

and, when the server writes checksums (binlog_checksum=CRC32), ends with the CRC32 of all the
bytes before it. A FORMAT_DESCRIPTION event names the checksum algorithm in its fifth-to-last
byte (then its own CRC), whatever the setting, so a stream says itself whether it is checked.
"""

from __future__ import annotations

import struct
import zlib
from dataclasses import dataclass

from mysqlsts.core.gtid import MariadbGtid
from mysqlsts.errors import MysqlstsError

HEADER = 19
CHECKSUM = 4
MAGIC = b"\xfebin"  # the first bytes of every binary log file

# Event types the archive tells apart (MariaDB's numbering; 0-35 are shared with MySQL).
QUERY = 2
STOP = 3
ROTATE = 4
FORMAT_DESCRIPTION = 15
XID = 16
HEARTBEAT = 27
XA_PREPARE = 38
BINLOG_CHECKPOINT = 161
GTID = 162
GTID_LIST = 163
START_ENCRYPTION = 164
# Events between transactions that say something about the stream, never about the data.
CONTROL = frozenset({STOP, ROTATE, FORMAT_DESCRIPTION, HEARTBEAT, BINLOG_CHECKPOINT, GTID_LIST,
                     START_ENCRYPTION})

FL_STANDALONE = 0x01  # a GTID event's flag: the group is one event with no COMMIT/XID after it
LOG_EVENT_BINLOG_IN_USE = 0x0001  # FDE flag: the file was not closed (the live binlog)
ARTIFICIAL = 0x0020  # made up by the server for a replica (the first ROTATE), never logged
_CHECKSUM_CRC32 = 1
_HEADER = struct.Struct("<IBIIIH")


class EventError(MysqlstsError):
    """Bytes that are not a well-formed binary log event (truncated, wrong checksum)."""


@dataclass(frozen=True)
class Event:
    timestamp: int  # seconds since the epoch, the server's clock
    type: int
    server_id: int
    next_pos: int
    flags: int
    data: bytes  # the whole event: header, body and checksum when there is one
    checksum: bool  # the last 4 bytes of `data` are a CRC32

    @property
    def body(self) -> bytes:
        return self.data[HEADER:len(self.data) - (CHECKSUM if self.checksum else 0)]


def parse_event(data: bytes, checksum: bool) -> Event:
    """One event from its bytes; `checksum`: the stream carries CRC32 trailers (the
    FORMAT_DESCRIPTION event decides for itself). The CRC is checked."""
    if len(data) < HEADER:
        raise EventError(f"binlog event of {len(data)} bytes is shorter than its header")
    timestamp, kind, server_id, size, next_pos, flags = _HEADER.unpack_from(data)
    if size != len(data):
        raise EventError(f"binlog event of type {kind} says {size} bytes, holds {len(data)}")
    if kind == FORMAT_DESCRIPTION:
        checksum = len(data) >= HEADER + 5 and data[-5] == _CHECKSUM_CRC32
    if checksum:
        if len(data) < HEADER + CHECKSUM:
            raise EventError(f"binlog event of type {kind} is too short for its checksum")
        expected = struct.unpack_from("<I", data, len(data) - CHECKSUM)[0]
        if zlib.crc32(data[:-CHECKSUM]) != expected:
            raise EventError(f"binlog event of type {kind} at next_pos {next_pos} fails its "
                             "CRC32 checksum")
    return Event(timestamp, kind, server_id, next_pos, flags, bytes(data), checksum)


@dataclass(frozen=True)
class GtidEvent:
    gtid: MariadbGtid
    standalone: bool  # DDL and the like: the group ends with its one event


def parse_gtid(event: Event) -> GtidEvent:
    body = event.body
    if event.type != GTID or len(body) < 13:
        raise EventError(f"not a GTID event (type {event.type}, {len(body)} body bytes)")
    seq, domain, flags2 = struct.unpack_from("<QIB", body)
    return GtidEvent(MariadbGtid(domain, event.server_id, seq), bool(flags2 & FL_STANDALONE))


def parse_gtid_list(event: Event) -> tuple[MariadbGtid, ...]:
    """A GTID_LIST event's GTIDs: the server's binlog state where its file begins (the newest
    GTID per domain and server id): count u32 (its top 4 bits flags), then per entry domain
    u32, server_id u32, seq u64."""
    body = event.body
    if event.type != GTID_LIST or len(body) < 4:
        raise EventError(f"not a GTID_LIST event (type {event.type}, {len(body)} body bytes)")
    count = struct.unpack_from("<I", body)[0] & 0x0FFFFFFF
    if len(body) < 4 + 16 * count:
        raise EventError(f"a GTID_LIST event of {count} GTIDs in {len(body)} body bytes")
    return tuple(MariadbGtid(*struct.unpack_from("<IIQ", body, 4 + 16 * n)) for n in range(count))


def query_text(event: Event) -> bytes:
    """The statement of a QUERY event (post-header of 13 bytes, status variables, the
    default schema and its NUL, then the statement)."""
    body = event.body
    if event.type != QUERY or len(body) < 13:
        raise EventError(f"not a QUERY event (type {event.type}, {len(body)} body bytes)")
    schema_len = body[8]
    status_len = struct.unpack_from("<H", body, 11)[0]
    start = 13 + status_len + schema_len + 1
    if start > len(body):
        raise EventError("QUERY event shorter than its own lengths say")
    return body[start:]


def ends_group(event: Event) -> bool:
    """A transaction's last event when the group did not start standalone: its XID, its
    COMMIT or ROLLBACK statement, or an XA PREPARE."""
    if event.type in (XID, XA_PREPARE):
        return True
    if event.type == QUERY:
        return query_text(event).strip().upper() in (b"COMMIT", b"ROLLBACK")
    return False


def with_header(event: Event, *, flags: int, next_pos: int) -> bytes:
    """The event's bytes with other header flags and next_pos, its CRC recomputed."""
    data = bytearray(event.data)
    struct.pack_into("<I", data, 13, next_pos)
    struct.pack_into("<H", data, 17, flags)
    if event.checksum:
        struct.pack_into("<I", data, len(data) - CHECKSUM, zlib.crc32(data[:-CHECKSUM]))
    return bytes(data)


def file_header(description: Event) -> bytes:
    """The start of a binary log file that opens with this FORMAT_DESCRIPTION event: the magic,
    then the event marked closed (not "in use", so readers do not warn of a crashed file),
    at its place right after the magic."""
    if description.type != FORMAT_DESCRIPTION:
        raise EventError(f"a file starts with a FORMAT_DESCRIPTION event, not type "
                         f"{description.type}")
    fde = with_header(description, flags=description.flags & ~LOG_EVENT_BINLOG_IN_USE,
                      next_pos=len(MAGIC) + len(description.data))
    return MAGIC + fde


def make_event(kind: int, body: bytes, *, timestamp: int = 0, server_id: int = 1,
               next_pos: int = 0, flags: int = 0, checksum: bool = True) -> bytes:
    """An event's bytes (tests and made-up events): header, body, CRC32 when `checksum`."""
    size = HEADER + len(body) + (CHECKSUM if checksum else 0)
    data = _HEADER.pack(timestamp, kind, server_id, size, next_pos, flags) + body
    return data + struct.pack("<I", zlib.crc32(data)) if checksum else data
