"""The primary's heartbeat: a row with the time, written at a fixed interval, read on replicas.

The table is pt-heartbeat's (`pt-heartbeat --create-table`), and the row is what
`pt-heartbeat --update --utc --replace` writes: `ts` is UTC with microseconds as
`YYYY-MM-DDTHH:MM:SS.ffffff`, `server_id` the primary's. So `pt-heartbeat --check --utc` (or
`--monitor`) can read our rows, and a replica's lag is `now - ts` of the newest row applied
there, which keeps growing when replication silently stalls.

Our rows also carry the primary's executed GTIDs (`gtid`, an extra column pt-heartbeat ignores),
so a replica can tell which of its own transactions the primary never had (errant ones) without
a connection to the primary.

The time comes from the primary's clock (the sidecar runs beside the server); a replica
compares it with its own, so lag assumes the nodes' clocks are synchronised (NTP).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import pymysql

from mysqlsts.adapters.db import close_quietly, query
from mysqlsts.core.replication import Statement, gtid_variables
from mysqlsts.core.sql import quote_identifier
from mysqlsts.core.version import ServerVersion, parse_version
from mysqlsts.errors import MysqlstsError, describe

log = logging.getLogger(__name__)

_TS_FORMATS = ("%Y-%m-%dT%H:%M:%S.%f", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%d %H:%M:%S.%f",
               "%Y-%m-%d %H:%M:%S")


def table_statements(database: str) -> list[Statement]:
    """pt-heartbeat's own DDL (its --create-table), in our database; `database` is validated."""
    return [
        Statement(f"CREATE DATABASE IF NOT EXISTS {quote_identifier(database)}"),
        Statement(
            f"CREATE TABLE IF NOT EXISTS {quote_identifier(database)}.`heartbeat` ("
            "ts varchar(26) NOT NULL, "
            "server_id int unsigned NOT NULL PRIMARY KEY, "
            "file varchar(255) DEFAULT NULL, "
            "position bigint unsigned DEFAULT NULL, "
            "relay_master_log_file varchar(255) DEFAULT NULL, "
            "exec_master_log_pos bigint unsigned DEFAULT NULL, "
            "gtid text DEFAULT NULL"
            ") ENGINE=InnoDB"
        ),
    ]


def upgrade_statements(database: str, version: ServerVersion) -> list[Statement]:
    """A table created before the `gtid` column gets it (MariaDB only: MySQL has no
    ADD COLUMN IF NOT EXISTS, and its tables were created with the column)."""
    if not version.is_mariadb:
        return []
    return [Statement(f"ALTER TABLE {quote_identifier(database)}.`heartbeat` "
                      "ADD COLUMN IF NOT EXISTS gtid text DEFAULT NULL")]


def executed_gtid_variable(version: ServerVersion) -> str:
    return gtid_variables(version)[0]


def format_ts(unix_time: float) -> str:
    return datetime.fromtimestamp(unix_time, UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")


def parse_ts(text: str) -> float:
    """A heartbeat `ts` (ours or pt-heartbeat's with --utc) as Unix time."""
    for fmt in _TS_FORMATS:
        try:
            return datetime.strptime(text, fmt).replace(tzinfo=UTC).timestamp()
        except ValueError:
            continue
    raise ValueError(f"unrecognised heartbeat timestamp {text!r}")


def write_statement(database: str, unix_time: float, server_id: int, gtid: str) -> Statement:
    # Every value is computed here and bound: the statement replays identically on replicas
    # whatever the binlog format.
    return Statement(
        f"REPLACE INTO {quote_identifier(database)}.`heartbeat` (ts, server_id, gtid) "
        "VALUES (%s, %s, %s)",
        (format_ts(unix_time), server_id, gtid),
    )


def read_statement(database: str, own_server_id: int, *, with_gtid: bool = True) -> Statement:
    """The newest heartbeat another server wrote (ts sorts as text: fixed-width ISO format).

    `with_gtid=False` reads a table an older primary created without the `gtid` column (a
    rolling update replaces the replicas first)."""
    gtid = "gtid" if with_gtid else "NULL AS gtid"
    return Statement(
        f"SELECT ts, server_id, {gtid} FROM {quote_identifier(database)}.`heartbeat` "
        "WHERE server_id <> %s ORDER BY ts DESC LIMIT 1",
        (own_server_id,),
    )


Connect = Callable[[], "pymysql.connections.Connection[Any]"]


class HeartbeatWriter:
    """A thread that writes the primary's heartbeat row every `interval` seconds.

    `target()` says whether to write now and as which server_id (None: not now, e.g. before
    set-up is done or while the server is read-only). `on_written(unix_time)` records success.
    """

    def __init__(
        self,
        *,
        database: str,
        interval: float,
        connect: Connect,
        target: Callable[[], int | None],
        on_written: Callable[[float], None],
        clock: Callable[[], float],
        stop: threading.Event,
    ) -> None:
        self._database = database
        self._interval = interval
        self._connect = connect
        self._target = target
        self._on_written = on_written
        self._clock = clock
        self._stop = stop
        self._conn: pymysql.connections.Connection[Any] | None = None
        self._gtid_variable = ""
        self._failing = ""
        self.thread = threading.Thread(target=self._run, name="heartbeat", daemon=True)

    def start(self) -> None:
        self.thread.start()

    def _run(self) -> None:
        try:
            while not self._stop.is_set():
                started = self._clock()
                self.beat()
                self._stop.wait(max(0.0, self._interval - (self._clock() - started)))
        finally:
            self._close()

    def beat(self) -> bool:
        """Write one row now if there is a target; True when written."""
        server_id = self._target()
        if server_id is None:
            return False
        now = self._clock()
        try:
            if self._conn is None:
                self._conn = self._connect()
                version = str(query(self._conn, "SELECT VERSION() AS v")[0]["v"])
                self._gtid_variable = executed_gtid_variable(parse_version(version))
            # Read just before the write: the row carries what the primary had executed.
            gtid = query(self._conn, f"SELECT @@global.{self._gtid_variable} AS g")[0]["g"]
            statement = write_statement(self._database, now, server_id, str(gtid or ""))
            with self._conn.cursor() as cursor:
                cursor.execute(statement.sql, statement.args)
        except (pymysql.MySQLError, OSError, MysqlstsError) as exc:
            # MysqlstsError: an unreadable Secret file; the thread keeps beating once it is back.
            self._close()
            reason = describe(exc)
            if reason != self._failing:
                log.warning("heartbeat write failed, retrying every %gs: %s",
                            self._interval, reason)
                self._failing = reason
            return False
        if self._failing:
            log.info("heartbeat writes succeed again database=%s", self._database)
            self._failing = ""
        self._on_written(now)
        return True

    def _close(self) -> None:
        close_quietly(self._conn)
        self._conn = None
