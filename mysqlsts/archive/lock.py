"""One archiver writes at a time: a lease in the archive's own store (`binlog/lock/`).

The decisions are the primary lease's (core/lease.py), taken on this process's monotonic clock:
a contender takes a lease held by someone else only after seeing it unchanged for its whole
`duration`; the holder renews every `renew_interval` in a thread of its own, and may write a
segment only while its last successful renew STARTED less than `renew_deadline` ago
(`renew_deadline < duration`). The archiver asks `check()` before every segment and index
write, so a holder that is paused or cut off from the store stops writing before anyone may
take over. What remains is a write already past `check()` when the holder stalls: a PUT that
reaches the store more than `duration - renew_deadline` seconds after it was checked (docs/
backup.md, "One archiver at a time").
"""

from __future__ import annotations

import logging
import os
import secrets
import socket
import threading
import time
from collections.abc import Callable

from mysqlsts.adapters.lease_store import LeaseConflict, LeaseStore, LeaseUnavailable
from mysqlsts.core.archive_turn import Turn, may_contend, term_over
from mysqlsts.core.lease import Claim, LeaseRecord, LeaseTimings, Seen, claim, may_write, observe
from mysqlsts.errors import MysqlstsError, describe

log = logging.getLogger(__name__)



def lease_timings(duration: float) -> LeaseTimings:
    """The lease's timings from its duration (`--archive-lease-seconds`): the holder writes
    for two thirds of it after a renew began and renews every 2/15 of it (15 s: 10 s, 2 s)."""
    return LeaseTimings(duration=duration, renew_deadline=duration * 2 / 3,
                        renew_interval=duration * 2 / 15)


TIMINGS = lease_timings(15.0)


class LockLost(MysqlstsError):
    """The archiver no longer holds the lease (not renewed inside the deadline)."""


class TermOver(LockLost):
    """The holder's term is over (the primary's archiver): it gives the lease up."""


class LockStopped(Exception):  # noqa: N818 (a signal, not an error)
    """Asked to stop while waiting for the lease."""


def holder_name(label: str = "") -> str:
    """Who holds the lease: a label (the pod), the host, the pid and a random token, so two
    processes never share a name (the names are in the store: no secret, only these)."""
    return f"{label or socket.gethostname()}/{os.getpid()}/{secrets.token_hex(4)}"


class ArchiveLock:
    def __init__(self, store: LeaseStore, holder: str, timings: LeaseTimings = TIMINGS,
                 monotonic: Callable[[], float] = time.monotonic,
                 wall: Callable[[], float] = time.time, turn: Turn | None = None) -> None:
        self.store, self.holder, self.timings = store, holder, timings
        # How this archiver contends (core/archive_turn.py); None: at once, for good.
        self.turn = turn if turn is not None else Turn(timings.duration)
        self._monotonic, self._wall = monotonic, wall
        self._seen: Seen | None = None
        self.waiting = ""  # why the last attempt did not take the lease
        self._renew_started: float | None = None
        self._held_since: float | None = None
        self._renewer: threading.Thread | None = None
        self._renewing = threading.Event()
        self._held_once = False

    # -- taking and keeping -----------------------------------------------------------------

    def _attempt(self) -> bool:
        """One read, decide, write; True when we hold the lease after it."""
        started = self._monotonic()
        record, version = self.store.read(self.timings.renew_interval)
        self._seen = observe(self._seen, record, version, started)
        self.waiting = may_contend(self.turn, self._seen, self.holder, started)
        if self.waiting:
            return False
        decision = claim(self._seen, self.holder, started, self._wall(),
                         self.timings.duration)
        if decision.claim is Claim.WAIT or decision.record is None:
            self.waiting = f"held by {record.holder}" if record is not None else decision.reason
            return False
        new = self.store.write(decision.record, version, self.timings.renew_interval)
        self._seen = Seen(decision.record, new, started)
        if decision.claim is not Claim.RENEW:
            log.info("archive: took the archive lease in %s (%s)", self.store.describe(),
                     decision.reason)
        self._renew_started = started
        return True

    def acquire(self, stop: threading.Event) -> None:
        """Return once we hold the lease (renewed from then on in a thread); LockStopped when
        `stop` is set first. A store that cannot be read or written before the lease was ever
        held is an error (a wrong URL, bucket or credential is one line, not a loop); later,
        a wait."""
        said = ""
        while not stop.is_set():
            try:
                if self._attempt():
                    break
                why = self.waiting
            except LeaseUnavailable as error:
                if not self._held_once:
                    raise
                why = describe(error)
            except LeaseConflict as error:
                why = describe(error)
            if why != said:
                log.info("archive: waiting for the archive lease: %s", why)
                said = why
            stop.wait(self.timings.renew_interval)
        else:
            raise LockStopped
        self._held_once = True
        self._held_since = self._monotonic()
        self._renewing.clear()
        self._renewer = threading.Thread(target=self._renew_loop, name="archive-lease",
                                         daemon=True)
        self._renewer.start()

    def _renew_loop(self) -> None:
        while not self._renewing.wait(self.timings.renew_interval):
            try:
                if not self._attempt():
                    log.warning("archive: the archive lease was taken by another archiver")
                    self._renew_started = None
                    return
            except (LeaseConflict, LeaseUnavailable) as error:
                log.warning("archive: could not renew the archive lease: %s",
                            describe(error))

    def holds(self) -> bool:
        return may_write(self._monotonic(), self._renew_started, self.timings.renew_deadline)

    def check(self) -> None:
        """Raise LockLost unless a write now is inside the lease."""
        if not self.holds():
            raise LockLost("the archive lease is not held inside its renew deadline "
                           f"({self.timings.renew_deadline:g}s); stopping writes")
        if term_over(self.turn, self._held_since, self._monotonic()):
            raise TermOver(f"held for its term ({self.turn.term:g}s): giving the archive lease "
                           "up, for a replica's archiver to take")

    def release(self) -> None:
        """Stop renewing; give the lease up (holder "") when we still hold it, so another
        archiver need not wait out the duration."""
        self._renewing.set()
        if self._renewer is not None:
            self._renewer.join()
            self._renewer = None
        held, self._renew_started, self._held_since = self.holds(), None, None
        if not held or self._seen is None or self._seen.record is None:
            return
        record = self._seen.record
        free = LeaseRecord("", self._wall(), record.duration, record.transitions)
        try:
            self.store.write(free, self._seen.version, self.timings.renew_interval)
            log.info("archive: released the archive lease")
        except (LeaseConflict, LeaseUnavailable) as error:
            log.warning("archive: could not release the archive lease (it expires): %s",
                        describe(error))
        self._seen = None

    def abandon(self) -> None:
        """Stop renewing without releasing (as a killed process would); for tests."""
        self._renewing.set()
        if self._renewer is not None:
            self._renewer.join()
            self._renewer = None
