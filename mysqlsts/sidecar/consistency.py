"""The consistency check in the sidecar (docs/sidecar.md, "Consistency check").

On the primary, a pass over every user table every `--consistency-check-interval` seconds,
counted from the last completed pass recorded in the checksum table (so a restarted sidecar
keeps the schedule), only while the server is set up, writable and not fenced. On every pod, a
summary of its own checksum table as applied there, which metrics and /status show: the pass
record is read every few seconds, the whole table when the record changed or once a minute.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Any

import pymysql

from mysqlsts.adapters.db import close_quietly
from mysqlsts.consistency import ChecksumPass, StopSignal, read_pass_record, read_summary
from mysqlsts.core.consistency import Summary, pass_due
from mysqlsts.errors import MysqlstsError, describe

log = logging.getLogger(__name__)

Connect = Callable[[float], "pymysql.connections.Connection[Any]"]
# After a failed pass, the next attempt waits this long (or the interval, if shorter).
RETRY_FAILED_PASS = 300.0


class ConsistencyWorker:
    """A thread: the primary's passes, and this pod's summary (`summary`, None until read)."""

    def __init__(
        self,
        *,
        database: str,
        is_primary: bool,
        interval: float,
        chunk_rows: int,
        duty_cycle: float,
        connect: Connect,
        read_timeout: float,
        pass_timeout: float,
        server_up: Callable[[], bool],
        pass_blocked: Callable[[], str],
        clock: Callable[[], float],
        stop: threading.Event,
        poll: float = 5.0,
        reread: float = 60.0,
    ) -> None:
        self._database = database
        self._is_primary = is_primary
        self._interval = interval
        self._chunk_rows = chunk_rows
        self._duty_cycle = duty_cycle
        self._connect = connect
        self._read_timeout = read_timeout
        self._pass_timeout = pass_timeout
        self._server_up = server_up
        # Why no pass may run now ("" when one may): not set up, read-only, fenced.
        self._pass_blocked = pass_blocked
        self._clock = clock
        self._stop = stop
        self._poll = poll
        self._reread = reread
        self._conn: pymysql.connections.Connection[Any] | None = None
        self._record: tuple[float | None, float | None] | None = None
        self._read_at: float | None = None
        self._failing = ""
        self._pass_failed_at: float | None = None
        self.summary: Summary | None = None
        self.thread = threading.Thread(target=self._run, name="consistency", daemon=True)

    def start(self) -> None:
        self.thread.start()

    def _run(self) -> None:
        try:
            while not self._stop.is_set():
                self.tick()
                # Until the first read, look again soon: metrics and /status wait for it.
                self._stop.wait(self._poll if self.summary is not None else min(self._poll, 1.0))
        finally:
            close_quietly(self._conn)
            self._conn = None

    def tick(self) -> None:
        """Run a pass if one is due (primary), then refresh the summary if it may be stale."""
        if not self._server_up():
            return
        try:
            if self._conn is None:
                self._conn = self._connect(self._read_timeout)
            record = read_pass_record(self._conn, self._database)
            if self._pass_due(record[1]):
                self._run_pass()
                record = read_pass_record(self._conn, self._database)
            now = self._clock()
            if (record != self._record or self._read_at is None
                    or now - self._read_at >= self._reread):
                self._publish(read_summary(self._conn, self._database, now), now)
                self._record, self._read_at = record, now
        except (pymysql.MySQLError, OSError, MysqlstsError) as exc:
            close_quietly(self._conn)
            self._conn = None
            self._log_failure(f"reading the checksum table failed: {describe(exc)}")
            return
        if self._failing:
            log.info("consistency: the checksum table reads again")
            self._failing = ""

    def _pass_due(self, last_finished: float | None) -> bool:
        if not self._is_primary or self._pass_blocked():
            return False
        now = self._clock()
        failed_at = self._pass_failed_at
        if failed_at is not None and now - failed_at < min(RETRY_FAILED_PASS, self._interval):
            return False
        return pass_due(last_finished, now, self._interval)

    def _run_pass(self) -> None:
        log.info("consistency pass starting: database=%s chunk_rows=%d duty_cycle=%g",
                 self._database, self._chunk_rows, self._duty_cycle)
        conn = None
        try:
            conn = self._connect(self._pass_timeout)
            result = ChecksumPass(
                conn, database=self._database, chunk_rows=self._chunk_rows,
                duty_cycle=self._duty_cycle, signal=StopSignal(self._stop, self._pass_blocked),
            ).run()
        except (pymysql.MySQLError, OSError, MysqlstsError) as exc:
            self._pass_failed_at = self._clock()
            log.warning("consistency pass failed, retrying in %gs: %s",
                        min(RETRY_FAILED_PASS, self._interval), describe(exc))
            return
        finally:
            close_quietly(conn)  # its session logs statements: never reused
        self._pass_failed_at = None
        (log.warning if result.stopped else log.info)("consistency pass %s: %s",
                                                      "stopped" if result.stopped else "done",
                                                      result.sentence())

    def _publish(self, summary: Summary | None, now: float) -> None:
        if summary is None:  # no pass has reached this server: nothing checked, nothing wrong
            summary = Summary(read_at=now, last_pass=None, pass_started=None, checked=0,
                              diverged=0)
        before = self.summary
        self.summary = summary
        if summary.diverged and (before is None or before.diverged != summary.diverged):
            log.warning("consistency: %d chunk(s) differ from the primary's: %s",
                        summary.diverged, summary.sentence())
        elif not summary.diverged and before is not None and before.diverged:
            log.info("consistency: no chunk differs from the primary's any more")

    def _log_failure(self, reason: str) -> None:
        if reason != self._failing:
            log.warning("consistency: %s; retrying every %gs", reason, self._poll)
            self._failing = reason
