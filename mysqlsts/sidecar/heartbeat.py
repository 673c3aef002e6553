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

import pymysql

from mysqlsts.adapters.db import LocalConnection, execute, query
from mysqlsts.core.gtid import gtid_names
from mysqlsts.core.replication import Statement
from mysqlsts.core.sql import quote_identifier
from mysqlsts.core.version import ServerVersion
from mysqlsts.errors import MysqlstsError, describe
from mysqlsts.options import HeartbeatOptions
from mysqlsts.sidecar.worker import Worker

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


class HeartbeatWriter(Worker):
    """The primary's heartbeat row, written every `--heartbeat-interval` seconds.

    `target()` says whether to write now and as which server_id (None: not now, e.g. before
    set-up is done or while the server is read-only). `on_written(unix_time)` records success.
    """

    def __init__(
        self,
        options: HeartbeatOptions,
        *,
        connection: LocalConnection,
        target: Callable[[], int | None],
        on_written: Callable[[float], None],
        clock: Callable[[], float],
        stop: threading.Event,
    ) -> None:
        super().__init__("heartbeat", stop)
        self.options = options
        self._conn = connection
        self._target = target
        self._on_written = on_written
        self._clock = clock

    def round(self) -> float:
        self.beat()
        return self.options.heartbeat_interval

    def beat(self) -> bool:
        """Write one row now if there is a target; True when written."""
        server_id = self._target()
        if server_id is None:
            return False
        now = self._clock()
        database = self.options.heartbeat_database
        try:
            conn = self._conn.get()
            assert self._conn.version is not None
            executed = gtid_names(self._conn.version.is_mariadb).executed
            # Read just before the write: the row carries what the primary had executed.
            gtid = query(conn, f"SELECT @@global.{executed} AS g")[0]["g"]
            execute(conn, [write_statement(database, now, server_id, str(gtid or ""))])
        except (pymysql.MySQLError, OSError, MysqlstsError) as exc:
            # MysqlstsError: an unreadable Secret file; the thread keeps beating once it is back.
            self._conn.close()
            self.failed(f"heartbeat write failed, retrying every "
                        f"{self.options.heartbeat_interval:g}s", describe(exc))
            return False
        self.recovered(f"heartbeat writes succeed again database={database}")
        self._on_written(now)
        return True

    def close(self) -> None:
        self._conn.close()
