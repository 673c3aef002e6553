"""The heartbeat row's `gtid` column on a real server: written with the primary's executed GTIDs,
added to a table from before it, and read as unknown until then."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from mysqlsts.adapters.db import LocalConnection, connect
from mysqlsts.core.version import parse_version
from mysqlsts.options import HeartbeatOptions
from mysqlsts.sidecar.heartbeat import (
    HeartbeatWriter,
    table_statements,
    upgrade_statements,
    write_statement,
)
from mysqlsts.sidecar.observe import ServerObserver
from tests.servers import MakeServer

pytestmark = pytest.mark.integration


def test_old_table_reads_as_unknown_then_gets_the_column(
    mariadb: MakeServer, root_password: str, tmp_path: Path
) -> None:
    server = mariadb("hb", server_id=100)
    old = table_statements("mysqlsts")[1].sql.replace(", gtid text DEFAULT NULL", "")
    server.sql("CREATE DATABASE mysqlsts", old,
               "INSERT INTO mysqlsts.heartbeat (ts, server_id) "
               "VALUES ('2026-01-01T00:00:00.000000', 7)")
    observer = ServerObserver(
        connection=LocalConnection(
            lambda: connect(server.host, server.port, "root", root_password)),
        is_primary=False, data_dir=tmp_path, heartbeat_database="mysqlsts")
    try:
        seen = observer.observe(lambda: 1.0)
        assert seen.up, seen.error
        assert (seen.heartbeat_server_id, seen.source_gtid) == (7, None)
        assert seen.heartbeat_ts is not None
        version = parse_version(str(server.value("SELECT VERSION()")))
        for _ in range(2):  # idempotent
            for statement in upgrade_statements("mysqlsts", version):
                server.sql(statement.sql)
        statement = write_statement("mysqlsts", 2.0, 7, "0-7-3")
        conn = server.connect()
        with conn.cursor() as cursor:
            cursor.execute(statement.sql, statement.args)
        conn.close()
        seen = observer.observe(lambda: 3.0)
        assert (seen.heartbeat_server_id, seen.source_gtid) == (7, "0-7-3")
        assert "gtid_binlog_state" in seen.gtid
    finally:
        observer.close()


def test_the_writer_carries_the_servers_binlog_state(mariadb: MakeServer,
                                                     root_password: str) -> None:
    server = mariadb("hbw", server_id=100)
    for statement in table_statements("mysqlsts"):
        server.sql(statement.sql)
    written: list[float] = []
    writer = HeartbeatWriter(
        HeartbeatOptions(heartbeat_database="mysqlsts", heartbeat_interval=1.0),
        connection=LocalConnection(
            lambda: connect(server.host, server.port, "root", root_password)),
        target=lambda: 100, on_written=written.append, clock=lambda: 5.0,
        stop=threading.Event())
    assert writer.beat() and written == [5.0]
    state = server.value("SELECT @@global.gtid_binlog_state")
    row = server.sql("SELECT server_id, gtid FROM mysqlsts.heartbeat")[0]
    assert row["server_id"] == 100
    # The state read just before the write: the write itself is one GTID later.
    before = {g.rsplit("-", 1)[0]: int(g.rsplit("-", 1)[1]) for g in row["gtid"].split(",")}
    after = {g.rsplit("-", 1)[0]: int(g.rsplit("-", 1)[1]) for g in state.split(",")}
    assert before and after["0-100"] == before["0-100"] + 1
