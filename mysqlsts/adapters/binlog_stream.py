"""A replication client for MariaDB's binary log, from a GTID position, event by event.

It does what a replica's I/O thread does, on a pymysql connection (as python-mysql-replication
does): announce GTID capability and the position (`@mariadb_slave_capability`,
`@slave_connect_state`), ask for the server's own checksums (`@master_binlog_checksum`) and for a
heartbeat while nothing happens (`@master_heartbeat_period`, so a quiet primary and a dead link
are told apart and the caller's clock keeps ticking), then send COM_BINLOG_DUMP and read one
packet per event. Each event arrives with its bytes exactly as logged, CRC checked.

Chosen over `mariadb-binlog --read-from-remote-server --raw --stop-never`: the tool writes
whole binlog files to disk in its own buffering, names them after the primary's files (which
is what collides after a takeover) and would have to be tailed and re-parsed; here the events
come straight to the segmenter with nothing on disk, and no extra process to own.

The password is passed to pymysql only, never on a command line or in a log line.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pymysql

from mysqlsts.adapters.db import close_quietly, connect
from mysqlsts.core import binlog_event as ev
from mysqlsts.core.binlog_index import position_text
from mysqlsts.core.purged_past import newest_per_domain
from mysqlsts.errors import MysqlstsError, describe

COM_BINLOG_DUMP = 0x12
_GTID_CAPABILITY = 4  # MARIA_SLAVE_CAPABILITY_GTID
# The primary refuses the position: purged binlogs, a GTID it never had (a gap or divergence).
_ER_MASTER_FATAL_READING_BINLOG = 1236


class StreamError(MysqlstsError):
    """The primary's binary log stream failed or refused the position."""


class PositionRefused(StreamError):
    """The primary cannot stream from the position asked for (error 1236): its binary logs no
    longer hold it (purged), or it never had it (diverged)."""


@dataclass(frozen=True)
class StreamSource:
    host: str
    port: int
    user: str
    server_id: int  # the id this client announces: unique among the primary's replicas
    heartbeat: float = 0.5  # seconds of silence after which the primary sends a heartbeat
    read_timeout: float = 10.0  # no packet for this long: the link is dead
    connect_timeout: float = 5.0


class BinlogStream:
    """Open with `open(position)`; iterate `events()`; `close()` at the end."""

    def __init__(self, source: StreamSource, password: str) -> None:
        self.source = source
        self._password = password
        self._conn: Any = None

    def open(self, position: str | None) -> None:
        """Connect and ask for every transaction after `position` (MariaDB GTID list; empty:
        from the oldest binary log the primary holds); None: the oldest binary log from its
        first byte, by file rather than by GTID (what it holds, whatever was purged)."""
        source = self.source
        try:
            conn = connect(source.host, source.port, source.user, self._password,
                           connect_timeout=source.connect_timeout,
                           read_timeout=source.read_timeout, write_timeout=source.read_timeout)
        except pymysql.MySQLError as error:
            raise StreamError(f"cannot connect to the primary {source.host}:{source.port}: "
                              f"{describe(error, (self._password,))}") from None
        self._conn = conn
        try:
            with conn.cursor() as cursor:
                cursor.execute("SELECT @@global.binlog_checksum AS c")
                row = cursor.fetchone()
                self._checksum = row is not None and str(row["c"]).upper() == "CRC32"
                cursor.execute("SET @master_binlog_checksum = @@global.binlog_checksum")
                cursor.execute(f"SET @mariadb_slave_capability = {_GTID_CAPABILITY}")
                if position is not None:
                    cursor.execute("SET @slave_connect_state = %s", (position,))
                cursor.execute("SET @slave_gtid_strict_mode = 0")
                cursor.execute("SET @slave_gtid_ignore_duplicates = 0")
                cursor.execute("SET @master_heartbeat_period = %s",
                               (int(source.heartbeat * 1e9),))
            # binlog position 4 and no file name: the primary starts from the GTID state, or
            # without one from its first binary log.
            payload = struct.pack("<IHI", 4, 0, source.server_id)
            # pymysql has no public call for a raw command (python-mysql-replication uses
            # the same one).
            raw: Any = conn
            raw._execute_command(COM_BINLOG_DUMP, payload)
        except pymysql.MySQLError as error:
            self.close()
            refused = (PositionRefused if error.args[:1] == (_ER_MASTER_FATAL_READING_BINLOG,)
                       else StreamError)
            raise refused(f"the primary {source.host}:{source.port} refused the binlog "
                          f"stream: {describe(error, (self._password,))}") from None

    def events(self) -> Iterator[ev.Event]:
        """Events as they come, forever (a heartbeat at least every `heartbeat` seconds);
        StreamError when the link breaks or the primary ends the stream."""
        conn = self._conn
        if conn is None:
            raise StreamError("the binlog stream is not open")
        checksum = self._checksum
        while True:
            try:
                packet = conn._read_packet()
            except (pymysql.MySQLError, OSError) as error:
                reason = describe(error, (self._password,))
                if getattr(error, "args", (None,))[0] == _ER_MASTER_FATAL_READING_BINLOG:
                    raise PositionRefused(f"the primary {self.source.host}:"
                                          f"{self.source.port} cannot stream from this "
                                          f"position: {reason}") from None
                raise StreamError(f"binlog stream from {self.source.host}:{self.source.port} "
                                  f"broke: {reason}") from None
            data = packet.get_all_data()
            if packet.is_eof_packet():
                raise StreamError(f"the primary {self.source.host}:{self.source.port} ended "
                                  "the binlog stream")
            if not data or data[0] != 0:
                raise StreamError(f"unexpected packet in the binlog stream (first byte "
                                  f"{data[:1].hex()})")
            event = ev.parse_event(data[1:], checksum)
            checksum = event.checksum if event.type == ev.FORMAT_DESCRIPTION else checksum
            yield event

    def close(self) -> None:
        conn, self._conn = self._conn, None
        close_quietly(conn)


_NO_PRIVILEGE = 1227  # ER_SPECIFIC_ACCESS_DENIED_ERROR (MariaDB's BINLOG MONITOR)


def oldest_position(source: StreamSource, password: str) -> str:
    """Where the primary's oldest binary log begins (BINLOG_GTID_POS of its first event): an
    empty archive that starts there holds every transaction the primary still has, so the
    primary's purger can go on (a start after it leaves older files only the binlog holds).
    An account without BINLOG MONITOR (the set's replication account) reads it from the
    stream instead (`_oldest_streamed`)."""
    position = _oldest_queried(source, password)
    return _oldest_streamed(source, password) if position is None else position


def _oldest_queried(source: StreamSource, password: str) -> str | None:
    """`SHOW BINARY LOGS` and `BINLOG_GTID_POS`; None without the privilege to ask."""
    conn = None
    try:
        conn = connect(source.host, source.port, source.user, password,
                       connect_timeout=source.connect_timeout, read_timeout=source.read_timeout)
        with conn.cursor() as cursor:
            try:
                cursor.execute("SHOW BINARY LOGS")
            except pymysql.err.OperationalError as error:
                if error.args[0] != _NO_PRIVILEGE:
                    raise
                return None
            first = cursor.fetchone()
            if not first:
                return ""
            cursor.execute("SELECT BINLOG_GTID_POS(%s, 4) AS p", (first["Log_name"],))
            row = cursor.fetchone()
        return str(row["p"]) if row and row["p"] is not None else ""
    except pymysql.MySQLError as error:
        raise StreamError(f"cannot read the primary's oldest binary log position from "
                          f"{source.host}:{source.port}: {describe(error, (password,))}") from None
    finally:
        close_quietly(conn)


_GTID_LIST_WITHIN = 8  # events: ROTATE, FORMAT_DESCRIPTION, then the GTID_LIST (a margin)


def _oldest_streamed(source: StreamSource, password: str) -> str:
    """The oldest binary log's GTID_LIST event (the binlog state where the file begins), read
    over the replication protocol from the file's first byte (REPLICATION SLAVE is enough), as
    the newest GTID per domain, which is what BINLOG_GTID_POS(file, 4) says; "" when the file
    has none."""
    stream = BinlogStream(source, password)
    try:
        stream.open(None)
        for n, event in enumerate(stream.events()):
            if event.type == ev.GTID_LIST:
                return position_text(newest_per_domain(ev.parse_gtid_list(event)))
            if n >= _GTID_LIST_WITHIN:
                break
    except ev.EventError as error:
        raise StreamError(f"cannot read the primary's oldest binary log from {source.host}:"
                          f"{source.port}: {error}") from None
    finally:
        stream.close()
    return ""


def primary_position(source: StreamSource, password: str) -> str:
    """The primary's newest binary log position (`gtid_binlog_pos`): where an empty archive
    starts when no start position is given."""
    conn = None
    try:
        conn = connect(source.host, source.port, source.user, password,
                       connect_timeout=source.connect_timeout, read_timeout=source.read_timeout)
        with conn.cursor() as cursor:
            cursor.execute("SELECT @@global.gtid_binlog_pos AS p")
            row = cursor.fetchone()
        return str(row["p"]) if row else ""
    except pymysql.MySQLError as error:
        raise StreamError(f"cannot read the primary's GTID position from {source.host}:"
                          f"{source.port}: {describe(error, (password,))}") from None
    finally:
        close_quietly(conn)
