"""The primary's periodic consistency pass on a real server: scheduled from the last completed
pass recorded in the table (a restarted sidecar keeps the schedule), held while the primary may
not write, refused on a read-only server, stoppable; and the summary every sidecar publishes."""

from __future__ import annotations

import threading
from typing import Any

import pymysql
import pytest

from mysqlsts.adapters.db import LocalConnection, connect
from mysqlsts.consistency.checksum_pass import ChecksumPass, StopSignal
from mysqlsts.consistency.reader import read_pass_record
from mysqlsts.errors import MysqlstsError
from mysqlsts.options import ConsistencyOptions
from mysqlsts.sidecar.consistency import ConsistencyWorker
from tests.servers import MakeServer, Server

pytestmark = pytest.mark.integration


class Clock:
    def __init__(self) -> None:
        self.now = 1_800_000_000.0

    def __call__(self) -> float:
        return self.now


FAST = ConsistencyOptions(consistency_chunk_rows=100, consistency_duty_cycle=1.0)


def worker(server: Server, clock: Clock, *, blocked: str = "", interval: float = 3600,
           ) -> ConsistencyWorker:
    def open_(timeout: float) -> pymysql.connections.Connection[Any]:
        return connect(server.host, server.port, "root", server.root_password,
                       read_timeout=timeout)

    return ConsistencyWorker(
        ConsistencyOptions(consistency_check_interval=interval, consistency_chunk_rows=100,
                           consistency_duty_cycle=1.0),
        database="mysqlsts", is_primary=True, connection=LocalConnection(lambda: open_(10)),
        pass_connection=lambda: open_(60), server_up=lambda: True,
        pass_blocked=lambda: blocked, clock=clock, stop=threading.Event(),
    )


def record(server: Server) -> tuple[float | None, float | None]:
    conn = server.connect()
    try:
        return read_pass_record(conn, "mysqlsts")
    finally:
        conn.close()


def test_passes_follow_the_recorded_schedule_across_restarts(mariadb: MakeServer) -> None:
    server = mariadb("primary", server_id=100)
    server.fill("app.items", 450, payload_bytes=16)
    clock = Clock()
    held = worker(server, clock, blocked="the server is not a set-up, writable primary now")
    held.tick()
    assert record(server) == (None, None), "a pass ran while the primary could not write"
    assert held.summary is not None and held.summary.checked == 0

    first = worker(server, clock)
    first.tick()  # no completed pass recorded: one now
    _, finished = record(server)
    assert finished is not None
    assert first.summary is not None
    assert (first.summary.checked, first.summary.diverged) == (5, 0)  # 450 rows / 100
    assert first.summary.last_pass == finished

    clock.now = finished + 600  # the schedule runs on the server's clock (UTC)
    restarted = worker(server, clock)  # a new sidecar: the schedule is in the table
    restarted.tick()
    assert record(server)[1] == finished

    # Due once the interval has passed since the recorded end (the server's clock).
    clock.now = finished + 3600
    restarted.tick()
    later = record(server)[1]
    assert later is not None and later > finished

    disabled = worker(server, clock, interval=0)
    clock.now += 10 * 86400
    disabled.tick()
    assert record(server)[1] == later


def test_a_pass_refuses_a_read_only_server_and_stops_when_asked(mariadb: MakeServer) -> None:
    server = mariadb("readonly", server_id=100)
    server.fill("app.items", 300, payload_bytes=16)
    server.sql("SET GLOBAL read_only = ON")
    conn = server.connect()
    try:
        with pytest.raises(MysqlstsError, match="read-only"):
            ChecksumPass(conn, database="mysqlsts", options=FAST).run()
        server.sql("SET GLOBAL read_only = OFF")
        stop = threading.Event()
        stop.set()
        result = ChecksumPass(conn, database="mysqlsts", options=FAST,
                              signal=StopSignal(stop)).run()
    finally:
        conn.close()
    assert result.stopped == "stop requested" and result.chunks == 0
    assert record(server)[1] is None  # a pass cut short is not a completed one
    assert server.value("SELECT @@global.binlog_format") == "ROW"  # only the session changed
