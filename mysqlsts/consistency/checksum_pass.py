"""One consistency pass on the primary: every user table, chunk by chunk, each chunk one
transaction logged as statements that every replica re-executes on its own rows."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import pymysql

from mysqlsts.adapters.db import execute, first_row, is_missing_table, query
from mysqlsts.core import consistency as core
from mysqlsts.errors import MysqlstsError, describe
from mysqlsts.options import ConsistencyOptions

if TYPE_CHECKING:
    from mysqlsts.adapters.db import Connection

log = logging.getLogger(__name__)

# Lock wait timeout, deadlock: the chunk's transaction is rolled back and tried again.
_RETRY_ERRNOS = frozenset({1205, 1213})
# The server's warning for a statement unsafe for statement-based logging.
_UNSAFE_WARNING = 1592
_CHUNK_ATTEMPTS = 3


@dataclass(frozen=True)
class PassResult:
    tables: int
    chunks: int
    skipped: int  # chunks given up after lock waits; their old rows were dropped as stale
    seconds: float
    busy_seconds: float  # in chunk transactions and boundary look-ups, without the pauses
    unsafe_warnings: int = 0
    stopped: str = ""  # why the pass ended early; "" when it completed

    def sentence(self) -> str:
        share = 100 * self.busy_seconds / self.seconds if self.seconds > 0 else 100.0
        text = (f"{self.tables} tables, {self.chunks} chunks in {self.seconds:.1f}s "
                f"(busy {self.busy_seconds:.1f}s, {share:.0f}%), {self.skipped} skipped")
        if self.unsafe_warnings:
            text += f", {self.unsafe_warnings} statements unsafe for statement logging"
        return f"stopped after {text}: {self.stopped}" if self.stopped else text


class StopSignal:
    """What a pass checks between chunks: a stop request, and `reason_to_stop()`, which says
    why the pass may not go on ("" while it may)."""

    def __init__(self, stop: threading.Event | None = None,
                 reason_to_stop: Callable[[], str] | None = None) -> None:
        self.event = stop if stop is not None else threading.Event()
        self._reason_to_stop = reason_to_stop

    def reason(self) -> str:
        if self.event.is_set():
            return "stop requested"
        return self._reason_to_stop() if self._reason_to_stop is not None else ""


class ChecksumPass:
    """One pass over every user table, on the primary, over a connection of its own (the
    session is set to statement logging: close it afterwards)."""

    def __init__(
        self, conn: Connection, *, database: str, options: ConsistencyOptions,
        signal: StopSignal | None = None, clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._conn = conn
        self._database = database
        self._rows = options.consistency_chunk_rows
        self._duty = options.consistency_duty_cycle
        self._signal = signal if signal is not None else StopSignal()
        self._clock = clock
        self._busy = 0.0
        self._unpaused = 0.0  # busy time since the last pause
        self._chunks = self._skipped = self._unsafe = 0

    def run(self) -> PassResult:
        began = self._clock()
        self._check_primary()
        execute(self._conn, core.session_statements())
        execute(self._conn, core.table_statements(self._database))
        started = query(self._conn, "SELECT UTC_TIMESTAMP(6) AS now")[0]["now"]
        execute(self._conn, [core.pass_started_statement(self._database, started)])
        tables = self._tables()
        stopped = ""
        for table in tables:
            stopped = self._table(table)
            if stopped:
                break
        if not stopped:
            execute(self._conn, core.pass_finished_statements(
                self._database, started, len(tables), self._chunks, self._skipped))
        return PassResult(len(tables), self._chunks, self._skipped, self._clock() - began,
                          self._busy, self._unsafe, stopped)

    def _check_primary(self) -> None:
        row = query(self._conn, "SELECT @@global.read_only AS ro, @@global.log_bin AS log_bin")[0]
        if int(row["ro"]):
            raise MysqlstsError("the server is read-only: a consistency pass runs on the "
                                "primary only")
        if not int(row["log_bin"]):
            raise MysqlstsError("the server has no binary log: replicas would never see the pass")

    def _tables(self) -> list[core.TableInfo]:
        columns = core.columns_statement(self._database)
        keys = core.keys_statement(self._database)
        return core.tables_from(query(self._conn, columns.sql, columns.args),
                                query(self._conn, keys.sql, keys.args))

    def _timed(self, work: Callable[[], Any]) -> Any:
        began = self._clock()
        try:
            return work()
        finally:
            self._spent(self._clock() - began)

    def _spent(self, seconds: float) -> None:
        self._busy += seconds
        self._unpaused += seconds

    def _boundary(self, table: core.TableInfo, lower: Any, offset: int) -> Any:
        statement = core.boundary_statement(table, lower, offset)
        row = self._timed(lambda: first_row(self._conn, statement))
        return None if row is None else row["k"]

    def _table(self, table: core.TableInfo) -> str:
        """Every chunk of one table; the reason to stop the pass, or ""."""
        try:
            for chunk in core.plan_chunks(
                table, self._rows, lambda lower, offset: self._boundary(table, lower, offset)
            ):
                reason = self._signal.reason()
                if reason:
                    return reason
                self._chunk(table, chunk)
        except pymysql.MySQLError as exc:
            if not is_missing_table(exc):
                raise
            log.info("consistency: %s went away during the pass: %s", table, describe(exc))
        return ""

    def _chunk(self, table: core.TableInfo, chunk: core.Chunk) -> None:
        for attempt in range(1, _CHUNK_ATTEMPTS + 1):
            try:
                self._timed(lambda: self._checksum(table, chunk))
            except pymysql.MySQLError as exc:
                self._conn.rollback()
                if not (exc.args and exc.args[0] in _RETRY_ERRNOS):
                    raise
                if attempt == _CHUNK_ATTEMPTS:
                    log.warning("consistency: skipping %s chunk %d after %d lock waits: %s",
                                table, chunk.number, attempt, describe(exc))
                    self._skipped += 1
                    self._pause()
                    return
                self._pause()
                continue
            self._chunks += 1
            self._pause()
            return

    def _checksum(self, table: core.TableInfo, chunk: core.Chunk) -> None:
        """One transaction: replicas apply the chunk's rows all at once, never a checksum
        without the primary's values beside it."""
        began = self._clock()
        conn = self._conn
        conn.begin()
        with conn.cursor() as cursor:
            for statement in core.chunk_statements(self._database, table, chunk):
                cursor.execute(statement.sql, statement.args)
        warnings = query(conn, "SHOW WARNINGS")
        self._unsafe += sum(1 for w in warnings if int(w["Code"]) == _UNSAFE_WARNING)
        mine = first_row(conn, core.read_back_statement(self._database, table, chunk))
        assert mine is not None, "the chunk's row was just inserted"
        execute(conn, [core.master_statement(self._database, table, chunk, mine["this_crc"],
                                         mine["this_cnt"], self._clock() - began)])
        conn.commit()

    def _pause(self) -> None:
        """Rest in proportion to the work since the last rest (the duty cycle)."""
        pause = core.pause_after(self._unpaused, self._duty)
        self._unpaused = 0.0
        if pause > 0:
            self._signal.event.wait(pause)
