"""One look at the local server: a few bounded queries turned into an immutable Observation."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pymysql

from mysqlsts.adapters.db import close_quietly, query
from mysqlsts.core.datadir import IN_PROGRESS
from mysqlsts.core.replication import gtid_variables, status_statement
from mysqlsts.core.status import Observation, parse_replica_status
from mysqlsts.core.version import ServerVersion, parse_version
from mysqlsts.errors import MysqlstsError, describe
from mysqlsts.sidecar.heartbeat import parse_ts, read_statement

# "Table doesn't exist", "Unknown database": no heartbeat has reached this server yet.
_NO_HEARTBEAT_TABLE = {1146, 1049}
# "Unknown column": a table from before the `gtid` column.
_UNKNOWN_COLUMN = 1054


@dataclass(frozen=True)
class _Heartbeat:
    """The newest heartbeat row another server wrote, as applied here."""

    ts: float | None = None
    server_id: int | None = None
    gtid: str | None = None


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def clone_in_progress(data_dir: Path) -> bool:
    return (data_dir / IN_PROGRESS).exists()


class ServerObserver:
    """Keeps one connection to the local server and observes it on request."""

    def __init__(
        self,
        *,
        connect: Callable[[], pymysql.connections.Connection[Any]],
        is_primary: bool,
        data_dir: Path,
        heartbeat_database: str,
    ) -> None:
        self._connect = connect
        self._is_primary = is_primary
        self._data_dir = data_dir
        self._heartbeat_database = heartbeat_database
        self._conn: pymysql.connections.Connection[Any] | None = None
        # The server's error number when the last look failed on one (1045: root refused).
        self.errno: int | None = None
        self._version: ServerVersion | None = None
        self._version_text = ""

    @property
    def version(self) -> ServerVersion | None:
        return self._version

    def observe(self, now: Callable[[], float]) -> Observation:
        in_clone = clone_in_progress(self._data_dir)
        self.errno = None
        try:
            return self._observe(now, in_clone)
        # MysqlstsError: an unreadable Secret file (e.g. mid-rotation); ValueError: a heartbeat
        # row we cannot parse. Either is a failed look, retried next cycle, never a dead loop.
        except (pymysql.MySQLError, OSError, MysqlstsError, ValueError) as exc:
            self.close()
            if isinstance(exc, pymysql.MySQLError) and exc.args and isinstance(exc.args[0], int):
                self.errno = exc.args[0]
            return Observation(taken_at=now(), up=False, error=describe(exc),
                               clone_in_progress=in_clone)

    def _observe(self, now: Callable[[], float], in_clone: bool) -> Observation:
        if self._conn is None:
            self._conn = self._connect()
            self._version_text = str(query(self._conn, "SELECT VERSION() AS v")[0]["v"])
            self._version = parse_version(self._version_text)
        conn, version = self._conn, self._version
        assert version is not None
        names = gtid_variables(version)
        selected = ", ".join(f"@@global.{name} AS {name}" for name in names)
        row = query(conn, "SELECT @@global.server_id AS server_id, "
                          f"@@global.read_only AS read_only, {selected}")[0]
        server_id = int(row["server_id"])
        replica, heartbeat = None, _Heartbeat()
        if not self._is_primary:
            rows = query(conn, status_statement(version).sql)
            replica = parse_replica_status(rows[0] if rows else None)
            heartbeat = self._heartbeat(conn, server_id)
        return Observation(
            taken_at=now(),
            up=True,
            version=self._version_text,
            flavor=version.flavor,
            server_id=server_id,
            read_only=bool(int(row["read_only"])),
            gtid={name: str(row[name] or "") for name in names},
            replica=replica,
            heartbeat_ts=heartbeat.ts,
            heartbeat_server_id=heartbeat.server_id,
            source_gtid=heartbeat.gtid,
            clone_in_progress=in_clone,
        )

    def _heartbeat(self, conn: pymysql.connections.Connection[Any], server_id: int) -> _Heartbeat:
        statement = read_statement(self._heartbeat_database, server_id)
        try:
            try:
                rows = query(conn, statement.sql, statement.args)
            except pymysql.MySQLError as exc:
                if not (exc.args and exc.args[0] == _UNKNOWN_COLUMN):
                    raise
                statement = read_statement(self._heartbeat_database, server_id, with_gtid=False)
                rows = query(conn, statement.sql, statement.args)
        except pymysql.MySQLError as exc:
            if exc.args and exc.args[0] in _NO_HEARTBEAT_TABLE:
                return _Heartbeat()
            raise
        if not rows:
            return _Heartbeat()
        row = rows[0]
        gtid = row["gtid"]
        return _Heartbeat(ts=parse_ts(_text(row["ts"])), server_id=int(row["server_id"]),
                          gtid=None if gtid is None else _text(gtid))

    def close(self) -> None:
        close_quietly(self._conn)
        self._conn = None
