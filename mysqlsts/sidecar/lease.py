"""The primary lease's I/O: renew the lease, and keep the server writable only while it holds.

A worker of its own on the primary (when `--primary-lease` is set): every renew interval it
reads the lease, asks core.lease.claim, writes with compare-and-swap, then acts on
core.lease.guard. Not holding it inside the renew deadline (monotonic clock) fences the server:
a marker file in the data dir first (a restarted sidecar reads it and keeps the server fenced
until it holds the lease again), then `SHUTDOWN`, the only statement that
stops root's writes and outlives the sidecar (docs/takeover.md, "Writable only under a lease").
While fenced every round stops the server again if something started it.

Every server starts read-only (master.cnf); this worker is the one authority that makes the
primary writable. Not holding the lease, it leaves a server that started read-only waiting (a
re-created pod contends for a dead holder's lease without being stopped); the isolation fence
(sidecar/fence.py) may make the server read-only, and then this worker lifts nothing until that
fence lets go. On a graceful stop it makes the server read-only and gives the lease up
(`release`), so the next holder need not wait a lease duration.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pymysql

from mysqlsts.adapters.db import close_quietly
from mysqlsts.adapters.fs import atomic_write, fsync_dir
from mysqlsts.adapters.lease_store import LeaseConflict, LeaseStore, LeaseUnavailable
from mysqlsts.core.lease import (
    FENCE_FILE,
    Claim,
    GuardAction,
    LeaseRecord,
    LeaseTimings,
    Seen,
    claim,
    guard,
    may_write,
    observe,
    read_only_statements,
    released,
)
from mysqlsts.errors import describe
from mysqlsts.sidecar.fence import kill_writers
from mysqlsts.sidecar.worker import Worker

if TYPE_CHECKING:
    from mysqlsts.adapters.db import Connection

log = logging.getLogger(__name__)

SMALLEST_WAIT = 0.05
RELEASE_TIMEOUT = 2.0  # seconds for each step of the release at a graceful stop


class PrimaryLease(Worker):
    def __init__(self, store: LeaseStore, timings: LeaseTimings, *, holder: str,
                 self_fence: Callable[[], float], data_dir: Path,
                 connect: Callable[[], Connection],
                 wall: Callable[[], float] = time.time,
                 monotonic: Callable[[], float] = time.monotonic,
                 is_mysql: bool = False, blocked: Callable[[], bool] = lambda: False,
                 heartbeat: Callable[[], None] = lambda: None,
                 stop: threading.Event) -> None:
        super().__init__("lease", stop)
        self.store = store
        self.timings = timings
        self.holder = holder
        # Asked at every renew and written in its record: how long after a renew began the
        # server may still take a write (core/lease.py, LeaseRecord.self_fence); the controller
        # waits it out. It follows the server's watchdog, which states its bound in a file.
        self.self_fence = self_fence
        self.claimed_self_fence: float | None = None  # in the last record written
        self.fence_file = data_dir / FENCE_FILE
        self._connect = connect
        self._is_mysql = is_mysql
        self._blocked = blocked  # another fence (the isolation fence) holds it read-only
        self._wall = wall
        self._monotonic = monotonic
        self._heartbeat = heartbeat  # the watchdog's: vouches for the server (sidecar/watchdog)
        self._seen: Seen | None = None
        self._renew_started: float | None = None  # none since start: no window inherited
        self._writable = False  # we lifted read_only under the current lease
        self._lifted = False  # we tried to lift it in this run: the server may be writable
        self._read_only_seen = False  # this round's server said read-only (or does not listen)
        # A fence an earlier run persisted holds until we hold the lease again.
        self.fenced = self.fence_file.exists()
        self.holder_seen = ""  # who holds the lease, as last read ("" unknown or free)
        self.reason = "not renewed yet"

    @property
    def held(self) -> bool:
        """Whether the server may be writable now (the lease held inside the deadline)."""
        return may_write(self._monotonic(), self._renew_started, self.timings.renew_deadline)

    def summary(self) -> dict[str, Any]:
        """What /status shows."""
        return {"store": self.store.describe(), "held": self.held, "fenced": self.fenced,
                "holder": self.holder_seen or None, "reason": self.reason,
                "self_fence": self.claimed_self_fence}

    def round(self) -> float:
        self.renew()
        if self.enforce() is not GuardAction.FENCE and (self.held or self._read_only_seen):
            # From this round only (a hung worker lets the watchdog stop the server), and only
            # for a server it may vouch for now: held inside the deadline (checked again after
            # the statements, which take time), or seen read-only this round.
            self._heartbeat()
        pause = self.timings.renew_interval
        if self._renew_started is not None and not self.fenced:
            # Wake at the deadline at the latest, so the fence is not an interval late.
            left = self._renew_started + self.timings.renew_deadline - self._monotonic()
            pause = min(pause, max(SMALLEST_WAIT, left))
        return pause

    def _timeout(self) -> float:
        """How long the store may take: never past the renew deadline."""
        budget = self.timings.renew_interval
        if self._renew_started is not None:
            left = self._renew_started + self.timings.renew_deadline - self._monotonic()
            budget = min(budget, left)
        return max(SMALLEST_WAIT, budget)

    def renew(self) -> Claim | None:
        """One read, decide, compare-and-swap; the claim written, or None."""
        started = self._monotonic()  # a renew counts from before it began
        try:
            record, version = self.store.read(self._timeout())
            now = self._monotonic()
            self._seen = observe(self._seen, record, version, now)
            self_fence = self.self_fence()
            decision = claim(self._seen, self.holder, now, self._wall(),
                             self.timings.duration, self_fence=self_fence)
            self.holder_seen = record.holder if record is not None else ""
            if decision.record is None:
                # Someone else holds it: ours is gone now, not at the deadline.
                self._renew_started = None
                self.reason = decision.reason
                self.failed("primary lease not held", f"held by {self.holder_seen}")
                return None
            self.store.write(decision.record, version, self._timeout())
        except (LeaseConflict, LeaseUnavailable) as exc:
            # Conflict: someone wrote it meanwhile; the next read tells who. Either way the
            # renew did not happen and the deadline runs on.
            self.reason = describe(exc)
            self.failed("primary lease not renewed", self.reason)
            return None
        self._renew_started = started
        self.holder_seen = self.holder
        self.claimed_self_fence = decision.record.self_fence
        self.reason = f"{decision.claim}: {decision.reason}"
        if decision.claim is not Claim.RENEW:
            log.warning("primary lease taken by %s (%s)", self.holder, self.reason)
        self.recovered("primary lease renewed again")
        return decision.claim

    def enforce(self) -> GuardAction:
        read_only = self._read_only() if not self.fenced else None
        self._read_only_seen = read_only is True
        if self.held and self._writable and read_only:
            # Held and lifted, yet read-only: the server restarted (it starts read-only).
            self._writable = False
        action, why = guard(self._monotonic(), renew_started=self._renew_started,
                            renew_deadline=self.timings.renew_deadline, fenced=self.fenced,
                            writable=self._writable, lifted=self._lifted, read_only=read_only)
        if action is GuardAction.WRITABLE:
            self._lift(why)
        elif action is GuardAction.FENCE:
            self._fence(why)
        return action

    def lift_again(self) -> None:
        """The isolation fence let go of its read-only: make the server writable again at the
        next round if the lease is still held (this worker decides, not that fence)."""
        self._writable = False

    def _read_only(self) -> bool | None:
        """What the server says about @@read_only now; True also when nothing listens (a
        server that is down or starting takes no writes); None when it listens but we could
        not learn which (it may be writable)."""
        try:
            conn = self._connect()
        except pymysql.OperationalError as exc:
            return True if _not_listening(exc) else None
        except (pymysql.MySQLError, OSError):
            return None
        try:
            with conn.cursor() as cur:
                cur.execute("SELECT @@global.read_only AS ro")
                row = cur.fetchone()
            return bool(int(row["ro"]))
        except (pymysql.MySQLError, OSError, KeyError, TypeError, ValueError):
            return None
        finally:
            close_quietly(conn)

    def _lift(self, why: str) -> None:
        if self._blocked():
            self.reason = "the lease is held, but the isolation fence holds the server read-only"
            return  # the isolation fence calls lift_again() when it lets go
        self._lifted = True  # from here the server may be writable, even if we never hear back
        if self.fenced:
            self.fence_file.unlink(missing_ok=True)
            fsync_dir(self.fence_file.parent)
            self.fenced = False
            log.warning("primary lease fence lifted: %s", why)
        try:
            conn = self._connect()
            try:
                if not self.held:  # the connect took the rest of the deadline: too late
                    return
                with conn.cursor() as cur:
                    for statement in read_only_statements(False, self._is_mysql):
                        cur.execute(statement)
                    if self._blocked():
                        # The isolation fence came in meanwhile (it sets its flag before its
                        # own statement): its read-only must be the last word.
                        for statement in read_only_statements(True, self._is_mysql):
                            cur.execute(statement)
                        return
            finally:
                conn.close()
        except (pymysql.MySQLError, OSError) as exc:
            log.debug("cannot make the server writable yet: %s", describe(exc))
            return  # retried next round (e.g. the server is still starting)
        self._writable = True
        log.info("primary lease held: server writable")

    def _fence(self, why: str) -> None:
        self._writable = self._lifted = False  # `fenced` covers it from here
        if not self.fenced:
            self.fenced = True
            log.warning("primary lease fence: stopping the server: %s", why)
            try:
                atomic_write(self.fence_file, json.dumps({"fenced_at": self._wall(),
                                                          "reason": why}) + "\n", 0o600)
            except OSError as exc:  # still fence: the marker only outlives this run
                log.warning("cannot persist the lease fence in %s: %s", self.fence_file,
                            exc.strerror)
        try:
            conn = self._connect()
        except (pymysql.MySQLError, OSError):
            return  # down already: nothing takes writes
        try:
            with conn.cursor() as cur:
                # SHUTDOWN alone: `SET GLOBAL read_only = ON` first would wait behind a
                # LOCK TABLES or a long statement, past the deadline, and binds no SUPER.
                cur.execute("SHUTDOWN")
            log.warning("primary lease fence: server shut down (%s)", why)
        except (pymysql.MySQLError, OSError) as exc:
            log.warning("primary lease fence could not stop the server: %s", describe(exc))
        finally:
            close_quietly(conn)

    # -- a graceful stop -----------------------------------------------------------------

    def close(self) -> None:
        """On the worker's thread after its last round (the sidecar stops): give the lease up
        if we hold it, once the server no longer takes writes.

        The order is what makes it safe: read-only first (MySQL: super_read_only), write
        transactions killed, and only then the record freed with compare-and-swap; the next
        holder lifts read-only on ITS server only after reading the free record. A server that
        cannot be made read-only (a statement waiting behind LOCK TABLES) keeps the lease: the
        next holder then waits a lease duration, as after a crash. Root can still write through
        MariaDB's read_only, but the next holder is another incarnation of this pod, which a
        StatefulSet starts only after this one has gone (its server with it), or this pod's own
        restarted sidecar, whose server this is. A server that no longer answers (stopping, or
        stopped) takes no writes either."""
        record, version = self._held_record()
        if record is None:
            return
        freed = released(record, self.holder, self._wall())
        assert freed is not None
        if not self._read_only_for_release():
            log.warning("primary lease kept at stop: the server could not be made read-only; "
                        "the next holder waits %gs", record.duration)
            return
        self._writable = self._lifted = False
        try:
            self.store.write(freed, version, RELEASE_TIMEOUT)
        except (LeaseConflict, LeaseUnavailable) as exc:
            log.warning("primary lease not released at stop: %s", describe(exc))
            return
        log.info("primary lease released at stop: server read-only, the next holder need not "
                 "wait")

    def _held_record(self) -> tuple[LeaseRecord | None, str]:
        """The record and its version if it names us now, else (None, "")."""
        try:
            record, version = self.store.read(RELEASE_TIMEOUT)
        except LeaseUnavailable as exc:
            log.warning("primary lease not released at stop: %s", describe(exc))
            return None, ""
        if record is None or record.holder != self.holder:
            return None, ""
        return record, version

    def _read_only_for_release(self) -> bool:
        """Make the server take no more writes; whether it takes none now."""
        try:
            conn = self._connect()
        except pymysql.OperationalError as exc:
            # Nothing listens (stopped or stopping); anything else may be a live server we
            # cannot reach, which keeps the lease.
            return _not_listening(exc)
        except (pymysql.MySQLError, OSError):
            return False
        try:
            with conn.cursor() as cur:
                cur.execute("SET SESSION lock_wait_timeout = %s", (int(RELEASE_TIMEOUT),))
                for statement in read_only_statements(True, self._is_mysql):
                    cur.execute(statement)
            kill_writers(conn)
            return True
        except (pymysql.MySQLError, OSError) as exc:
            log.warning("cannot make the server read-only at stop: %s", describe(exc))
            return False
        finally:
            close_quietly(conn)


def _not_listening(exc: pymysql.OperationalError) -> bool:
    """2002/2003 refused: no server listens (a timeout may be a live server we cannot reach)."""
    return bool(exc.args) and exc.args[0] in (2002, 2003) and "timed out" not in str(exc)
