"""One look at the local server: a few bounded queries turned into an immutable Observation."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pymysql

from mysqlsts.adapters.db import LocalConnection, is_missing_table, query
from mysqlsts.core.datadir import IN_PROGRESS
from mysqlsts.core.gtid import gtid_names
from mysqlsts.core.replication import status_statement
from mysqlsts.core.status import Observation, parse_replica_status
from mysqlsts.core.version import ServerVersion
from mysqlsts.errors import MysqlstsError, describe
from mysqlsts.sidecar.heartbeat import parse_ts, read_statement

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
        connection: LocalConnection,
        is_primary: bool,
        data_dir: Path,
        heartbeat_database: str,
    ) -> None:
        self._conn = connection
        self._is_primary = is_primary
        self._data_dir = data_dir
        self._heartbeat_database = heartbeat_database
        # The server's error number when the last look failed on one (1045: root refused).
        self.errno: int | None = None

    @property
    def version(self) -> ServerVersion | None:
        return self._conn.version

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
        conn = self._conn.get()
        version = self._conn.version
        assert version is not None
        names = gtid_names(version.is_mariadb).reported
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
            version=self._conn.version_text,
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
            if is_missing_table(exc):  # no heartbeat has reached this server yet
                return _Heartbeat()
            raise
        if not rows:
            return _Heartbeat()
        row = rows[0]
        gtid = row["gtid"]
        return _Heartbeat(ts=parse_ts(_text(row["ts"])), server_id=int(row["server_id"]),
                          gtid=None if gtid is None else _text(gtid))

    def close(self) -> None:
        self._conn.close()
