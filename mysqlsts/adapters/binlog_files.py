"""The primary's binary log files and the GTID position each began at (MariaDB), and the
purge of those before one."""

from __future__ import annotations

from typing import TYPE_CHECKING

from mysqlsts.adapters.db import execute, query
from mysqlsts.core.binlog_purge import BinlogFile
from mysqlsts.core.replication import Statement

if TYPE_CHECKING:
    from mysqlsts.adapters.db import Connection


def binlog_files(conn: Connection) -> list[BinlogFile]:
    """`SHOW BINARY LOGS` in order, each with its size and BINLOG_GTID_POS at its first event
    (offset 4)."""
    files = []
    for row in query(conn, "SHOW BINARY LOGS"):
        name = str(row["Log_name"])
        start = query(conn, "SELECT BINLOG_GTID_POS(%s, 4) AS pos", (name,))[0]["pos"]
        # NULL: the server cannot say where the file began; such a file is never purged past.
        files.append(BinlogFile(name, None if start is None else str(start),
                                int(row["File_size"])))
    return files


def purge_before(conn: Connection, name: str) -> None:
    execute(conn, [Statement("PURGE BINARY LOGS TO %s", (name,))])
