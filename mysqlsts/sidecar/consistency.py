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
from typing import TYPE_CHECKING

import pymysql

from mysqlsts.adapters.db import LocalConnection, close_quietly
from mysqlsts.consistency.checksum_pass import ChecksumPass, StopSignal
from mysqlsts.consistency.reader import read_pass_record, read_summary
from mysqlsts.core.consistency import Summary, pass_due
from mysqlsts.errors import MysqlstsError, describe
from mysqlsts.options import ConsistencyOptions
from mysqlsts.sidecar.worker import Worker

if TYPE_CHECKING:
    from mysqlsts.adapters.db import Connection

log = logging.getLogger(__name__)

# After a failed pass, the next attempt waits this long (or the interval, if shorter).
RETRY_FAILED_PASS = 300.0


class ConsistencyWorker(Worker):
    """The primary's passes, and this pod's summary (`summary`, None until read)."""

    def __init__(
        self,
        options: ConsistencyOptions,
        *,
        database: str,
        is_primary: bool,
        connection: LocalConnection,
        pass_connection: Callable[[], Connection],
        server_up: Callable[[], bool],
        pass_blocked: Callable[[], str],
        clock: Callable[[], float],
        stop: threading.Event,
    ) -> None:
        super().__init__("consistency", stop)
        self.options = options
        self._database = database
        self._is_primary = is_primary
        self._conn = connection
        # A pass's own connection: its session logs statements, so it is never reused.
        self._pass_connection = pass_connection
        self._server_up = server_up
        # Why no pass may run now ("" when one may): not set up, read-only, fenced.
        self._pass_blocked = pass_blocked
        self._clock = clock
        self._record: tuple[float | None, float | None] | None = None
        self._read_at: float | None = None
        self._pass_failed_at: float | None = None
        self.summary: Summary | None = None

    def round(self) -> float:
        self.tick()
        # Until the first read, look again soon: metrics and /status wait for it.
        poll = self.options.poll
        return poll if self.summary is not None else min(poll, 1.0)

    def close(self) -> None:
        self._conn.close()

    def tick(self) -> None:
        """Run a pass if one is due (primary), then refresh the summary if it may be stale."""
        if not self._server_up():
            return
        try:
            conn = self._conn.get()
            record = read_pass_record(conn, self._database)
            if self._pass_due(record[1]):
                self._run_pass()
                record = read_pass_record(conn, self._database)
            now = self._clock()
            if (record != self._record or self._read_at is None
                    or now - self._read_at >= self.options.reread):
                self._publish(read_summary(conn, self._database, now), now)
                self._record, self._read_at = record, now
        except (pymysql.MySQLError, OSError, MysqlstsError) as exc:
            self._conn.close()
            self.failed(f"consistency: reading the checksum table failed; retrying every "
                        f"{self.options.poll:g}s", describe(exc))
            return
        self.recovered("consistency: the checksum table reads again")

    def _pass_due(self, last_finished: float | None) -> bool:
        if not self._is_primary or self._pass_blocked():
            return False
        now = self._clock()
        interval = self.options.consistency_check_interval
        failed_at = self._pass_failed_at
        if failed_at is not None and now - failed_at < min(RETRY_FAILED_PASS, interval):
            return False
        return pass_due(last_finished, now, interval)

    def _run_pass(self) -> None:
        o = self.options
        log.info("consistency pass starting: database=%s chunk_rows=%d duty_cycle=%g",
                 self._database, o.consistency_chunk_rows, o.consistency_duty_cycle)
        conn = None
        try:
            conn = self._pass_connection()
            result = ChecksumPass(
                conn, database=self._database, options=o,
                signal=StopSignal(self._stop, reason_to_stop=self._pass_blocked),
            ).run()
        except (pymysql.MySQLError, OSError, MysqlstsError) as exc:
            self._pass_failed_at = self._clock()
            log.warning("consistency pass failed, retrying in %gs: %s",
                        min(RETRY_FAILED_PASS, o.consistency_check_interval), describe(exc))
            return
        finally:
            close_quietly(conn)
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
