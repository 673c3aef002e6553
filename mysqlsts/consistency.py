"""The consistency check's I/O: a pass on the primary, and reading what a server's checksum
table says (the statements and the logic are `core/consistency.py`'s).

Used by the primary's sidecar (a pass every `--consistency-check-interval`), by every sidecar
(its summary, for metrics and /status), and by the on-demand commands (`mysqlsts checksum` in
the primary's sidecar container, `mysqlsts local checksum`), which also wait for the replicas
to apply the pass and then read each pod's result.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import pymysql

from mysqlsts.adapters.db import close_quietly, connect, query
from mysqlsts.core import consistency as core
from mysqlsts.core.replication import Statement
from mysqlsts.core.version import ServerVersion, parse_version
from mysqlsts.errors import MysqlstsError, describe

log = logging.getLogger(__name__)

if TYPE_CHECKING:
    from typing import TypeAlias

    Connection: TypeAlias = pymysql.connections.Connection[Any]

# Lock wait timeout, deadlock: the chunk's transaction is rolled back and tried again.
_RETRY_ERRNOS = frozenset({1205, 1213})
# No such table or database: dropped while the pass walked; the next pass will not see it.
_GONE_ERRNOS = frozenset({1146, 1049})
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


def run(conn: Connection, statements: Sequence[Statement]) -> None:
    with conn.cursor() as cursor:
        for statement in statements:
            cursor.execute(statement.sql, statement.args or None)


def _one(conn: Connection, statement: Statement) -> dict[str, Any] | None:
    rows = query(conn, statement.sql, statement.args or None)
    return rows[0] if rows else None


class StopSignal:
    """What a pass checks between chunks: a stop request, and whether it may go on."""

    def __init__(self, stop: threading.Event | None = None,
                 may_continue: Callable[[], str] | None = None) -> None:
        self.event = stop if stop is not None else threading.Event()
        self._may_continue = may_continue

    def reason(self) -> str:
        if self.event.is_set():
            return "stop requested"
        return self._may_continue() if self._may_continue is not None else ""


class ChecksumPass:
    """One pass over every user table, on the primary, over a connection of its own (the
    session is set to statement logging: close it afterwards)."""

    def __init__(
        self, conn: Connection, *, database: str, chunk_rows: int, duty_cycle: float,
        signal: StopSignal | None = None, clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._conn = conn
        self._database = database
        self._rows = chunk_rows
        self._duty = duty_cycle
        self._signal = signal if signal is not None else StopSignal()
        self._clock = clock
        self._busy = 0.0
        self._unpaused = 0.0  # busy time since the last pause
        self._chunks = self._skipped = self._unsafe = 0

    def run(self) -> PassResult:
        began = self._clock()
        self._check_primary()
        run(self._conn, core.session_statements())
        run(self._conn, core.table_statements(self._database))
        started = query(self._conn, "SELECT UTC_TIMESTAMP(6) AS now")[0]["now"]
        run(self._conn, [core.pass_started_statement(self._database, started)])
        tables = self._tables()
        stopped = ""
        for table in tables:
            stopped = self._table(table)
            if stopped:
                break
        if not stopped:
            run(self._conn, core.pass_finished_statements(
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
        row = self._timed(lambda: _one(self._conn, statement))
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
            if not (exc.args and exc.args[0] in _GONE_ERRNOS):
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
        mine = _one(conn, core.read_back_statement(self._database, table, chunk))
        assert mine is not None, "the chunk's row was just inserted"
        run(conn, [core.master_statement(self._database, table, chunk, mine["this_crc"],
                                         mine["this_cnt"], self._clock() - began)])
        conn.commit()

    def _pause(self) -> None:
        """Rest in proportion to the work since the last rest (the duty cycle)."""
        pause = core.pause_after(self._unpaused, self._duty)
        self._unpaused = 0.0
        if pause > 0:
            self._signal.event.wait(pause)


def read_summary(conn: Connection, database: str, now: float) -> core.Summary | None:
    """What this server's checksum table says; None when no pass has created it here."""
    pass_row, counts, diverged = core.summary_statements(database)
    try:
        record = _one(conn, pass_row)
        totals = _one(conn, counts)
        rows = query(conn, diverged.sql)
    except pymysql.MySQLError as exc:
        if exc.args and exc.args[0] in _GONE_ERRNOS:
            return None
        raise
    return core.summarize(now, record, totals, rows)


def read_pass_record(conn: Connection, database: str) -> tuple[float | None, float | None]:
    """(started, finished) of the latest pass as applied here; (None, None) without one."""
    try:
        record = _one(conn, core.summary_statements(database)[0])
    except pymysql.MySQLError as exc:
        if exc.args and exc.args[0] in _GONE_ERRNOS:
            return None, None
        raise
    if record is None:
        return None, None
    return core.unix_time(record["started"]), core.unix_time(record["finished"])


def server_version(conn: Connection) -> ServerVersion:
    return parse_version(str(query(conn, "SELECT VERSION() AS v")[0]["v"]))


# -- on demand: a pass, then every pod's result --------------------------------------------


@dataclass(frozen=True)
class Pod:
    name: str
    host: str
    port: int


@dataclass(frozen=True)
class PodResult:
    pod: str
    summary: core.Summary | None = None
    error: str = ""  # why this pod could not be read; "" when it was

    @property
    def diverged(self) -> bool:
        return self.summary is not None and self.summary.diverged > 0

    def line(self) -> str:
        if self.error:
            return f"{self.pod}: not checked: {self.error}"
        assert self.summary is not None
        return f"{self.pod}: {self.summary.sentence()}"


@dataclass(frozen=True)
class SetResult:
    check: PassResult
    pods: tuple[PodResult, ...]

    @property
    def exit_code(self) -> int:
        """0 when every pod was read and none diverged; 1 otherwise."""
        return 1 if any(p.diverged or p.error for p in self.pods) else 0

    def lines(self) -> list[str]:
        return [pod.line() for pod in self.pods]


def check_set(
    primary: Pod, replicas: Sequence[Pod], *, password: str, database: str, chunk_rows: int,
    duty_cycle: float, wait_timeout: float, user: str = "root", connect_timeout: float = 5.0,
) -> SetResult:
    """Run one pass on `primary` now, wait (at most `wait_timeout` per replica) until each
    replica has applied it, then read every pod's checksum table."""

    def open_(pod: Pod, read_timeout: float) -> Connection:
        return connect(pod.host, pod.port, user, password, connect_timeout=connect_timeout,
                       read_timeout=read_timeout, write_timeout=read_timeout)

    try:
        conn = open_(primary, 3600.0)
    except pymysql.MySQLError as exc:
        raise MysqlstsError(f"cannot reach the primary {primary.name}: "
                            f"{describe(exc, (password,))}") from exc
    try:
        check = ChecksumPass(conn, database=database, chunk_rows=chunk_rows,
                             duty_cycle=duty_cycle).run()
        version = server_version(conn)
        row = _one(conn, core.position_statement(version))
        position = str(row["position"] if row else "")
    except pymysql.MySQLError as exc:
        raise MysqlstsError(f"the pass on {primary.name} failed: "
                            f"{describe(exc, (password,))}") from exc
    finally:
        close_quietly(conn)
    results = [_read_pod(primary, open_, database, None)]
    for pod in replicas:
        results.append(_read_pod(pod, open_, database, (version, position, wait_timeout)))
    return SetResult(check, tuple(results))


def _read_pod(
    pod: Pod, open_: Callable[[Pod, float], Connection], database: str,
    wait: tuple[ServerVersion, str, float] | None,
) -> PodResult:
    conn = None
    try:
        conn = open_(pod, 60.0 if wait is None else wait[2] + 60.0)
        if wait is not None:
            version, position, timeout = wait
            row = _one(conn, core.wait_statement(version, position, timeout))
            if row is None or row["waited"] is None or int(row["waited"]) != 0:
                return PodResult(pod.name, error=f"did not apply the pass ({position}) "
                                                 f"within {timeout:.0f}s")
        summary = read_summary(conn, database, time.time())
    except pymysql.MySQLError as exc:
        return PodResult(pod.name, error=describe(exc))
    finally:
        close_quietly(conn)
    if summary is None:
        return PodResult(pod.name, error="no checksum table here")
    return PodResult(pod.name, summary)
