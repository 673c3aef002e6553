"""What a server's checksum table says, as applied there: its summary and its pass record."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pymysql

from mysqlsts.adapters.db import first_row, is_missing_table, query
from mysqlsts.core import consistency as core

if TYPE_CHECKING:
    from mysqlsts.adapters.db import Connection


def read_summary(conn: Connection, database: str, now: float) -> core.Summary | None:
    """What this server's checksum table says; None when no pass has created it here."""
    pass_row, counts, diverged = core.summary_statements(database)
    try:
        record = first_row(conn, pass_row)
        totals = first_row(conn, counts)
        rows = query(conn, diverged.sql)
    except pymysql.MySQLError as exc:
        if is_missing_table(exc):
            return None
        raise
    return core.summarize(now, record, totals, rows)


def read_pass_record(conn: Connection, database: str) -> tuple[float | None, float | None]:
    """(started, finished) of the latest pass as applied here; (None, None) without one."""
    try:
        record = first_row(conn, core.summary_statements(database)[0])
    except pymysql.MySQLError as exc:
        if is_missing_table(exc):
            return None, None
        raise
    if record is None:
        return None, None
    return core.unix_time(record["started"]), core.unix_time(record["finished"])
