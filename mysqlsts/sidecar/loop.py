"""The sidecar's control loop: observe the local server once per cycle, decide (the one-time
set-up, a replica's reconnect after an outage), publish an immutable `LoopState`, and log what
changed as one sentence."""

from __future__ import annotations

import logging
import re
import threading
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

import pymysql

from mysqlsts.adapters.datadir import read_set_record
from mysqlsts.adapters.db import (
    LocalConnection,
    accepts_connections,
    close_quietly,
    connect,
    execute,
    query,
)
from mysqlsts.core.backoff import backoff
from mysqlsts.core.clone_record import CloneRecord
from mysqlsts.core.health import Verdict, lag_when_source_lost, replication_lag
from mysqlsts.core.replication import (
    Source,
    io_restart_due,
    restart_io_statements,
    restored_primary_statements,
)
from mysqlsts.core.set_record import root_refused, set_name
from mysqlsts.core.status import Observation
from mysqlsts.errors import CloneError, MysqlstsError, describe
from mysqlsts.secrets import Secrets
from mysqlsts.sidecar import setup
from mysqlsts.sidecar.observe import ServerObserver
from mysqlsts.sidecar.probes import Probes
from mysqlsts.sidecar.settings import SidecarSettings
from mysqlsts.sidecar.state import LoopState
from mysqlsts.sidecar.worker import Worker

if TYPE_CHECKING:
    from mysqlsts.adapters.db import Connection

log = logging.getLogger(__name__)

# Durations in a reason ("lag 1.2s") change every cycle; the verdict did not.
_DURATION = re.compile(r"\d+(\.\d+)?s\b")


def _sentence_key(verdict: Verdict) -> tuple[bool, str]:
    return verdict.ok, _DURATION.sub("#s", verdict.reason)


def _set_record(data_dir: Path) -> str | None:
    try:
        return read_set_record(data_dir)
    except CloneError as exc:
        log.warning("ignoring the set record: %s", exc)
        return None


class ControlLoop(Worker):
    """Owns the observer's connection (on its own thread); `state` is what it last published."""

    def __init__(
        self, settings: SidecarSettings, *, connect: Callable[[float], Connection],
        secrets: Secrets, clone: CloneRecord | None, probes: Callable[[], Probes],
        on_down: Callable[[], None], clock: Callable[[], float], stop: threading.Event,
        heartbeat: Callable[[], None] = lambda: None,
        set_up_blocked: Callable[[], str] = lambda: "",
    ) -> None:
        super().__init__("loop", stop)
        # Why the primary may not be set up yet ("" when it may): with a primary lease, its
        # set-up writes wait until the lease is held.
        self._set_up_blocked = set_up_blocked
        self.settings = settings
        self._connect = connect
        self._secrets = secrets
        self._clone = clone
        self._probes = probes
        self._on_down = on_down
        self._clock = clock
        self._heartbeat = heartbeat  # the watchdog's, when no lease worker vouches instead
        self._observer = ServerObserver(
            connection=LocalConnection(lambda: connect(settings.loop.read_timeout)),
            is_primary=settings.is_primary, data_dir=settings.data_dir,
            heartbeat_database=settings.heartbeat.heartbeat_database,
        )
        now = clock()
        self.state = LoopState(
            started_at=now, loop_tick_at=now,
            observation=Observation(taken_at=now, up=False, error="not observed yet"),
        )
        self._failures = 0
        self._logged: dict[str, tuple[bool, str]] = {}
        self._down_since: float | None = None
        self._down_logged_at = 0.0
        self._flavor_warned = False
        # Why the sidecar stopped by itself (the command exits non-zero with it), else None.
        self.fatal: str | None = None

    def round(self) -> float:
        try:
            self.cycle()
        except Exception:  # the loop's edge: a bug in one cycle must not end the loop
            log.exception("sidecar cycle failed unexpectedly")
        self._heartbeat()
        loop = self.settings.loop
        if self.state.observation.up:
            self._failures, pause = 0, loop.poll_interval
        else:
            self._failures += 1
            pause = backoff(self._failures, loop.poll_interval, loop.max_backoff)
        return pause

    def close(self) -> None:
        self._observer.close()  # the connection belongs to this thread

    def cycle(self) -> LoopState:
        """Observe once, then decide (set-up, reconnect), then publish and log what changed."""
        observation = self._observer.observe(self._clock)
        previous = self.state
        state = replace(
            previous, loop_tick_at=observation.taken_at, observation=observation,
            last_answer_at=observation.taken_at if observation.up else previous.last_answer_at,
            lag_when_source_lost=lag_when_source_lost(previous.lag_when_source_lost, observation),
        )
        if observation.up:
            self._down_since = None
            if not state.setup_done:
                done, message = self._set_up(observation)
                if message != state.setup_message:
                    (log.info if done else log.warning)("%s", message)
                state = replace(state, setup_done=done, setup_message=message)
            elif not self.settings.is_primary:
                self._reconnect_if_source_back(observation)
                state = replace(state, source_read_only=_still_read_only(
                    previous, observation, self._source_read_only(observation)))
        else:
            self._on_down()
            self._log_waiting(observation)
            self._stop_on_foreign_data()
        self.state = state
        now = self._clock()
        probes = self._probes()
        self._log_change("readiness", probes.readiness(now))
        self._log_change("liveness", probes.liveness(now))
        return state

    def _stop_on_foreign_data(self) -> None:
        """A server that refuses this set's root password holds data that is not this set's
        (or a password changed in the Secret only): say which, once, and stop; retrying
        cannot help, and nothing here touches the data."""
        verdict = root_refused(self._observer.errno, _set_record(self.settings.data_dir),
                               set_name(self.settings.identity))
        if verdict is not None:
            self.fatal = verdict
            self._stop.set()

    def _set_up(self, observation: Observation) -> tuple[bool, str]:
        s = self.settings
        version = self._observer.version
        assert version is not None
        if version.flavor != s.flavor and not self._flavor_warned:
            log.warning("server is %s but --flavor is %s; using the server's SQL dialect",
                        version.flavor, s.flavor)
            self._flavor_warned = True
        passwords: tuple[str, ...] = ()
        blocked = self._set_up_blocked() if s.is_primary else ""
        if blocked:
            return False, f"set-up waits: {blocked}"
        try:
            passwords = (self._secrets.replication(),
                         self._secrets.backup() if s.is_primary else "")
            conn = self._connect(s.loop.setup_timeout)
            try:
                if s.is_primary:
                    restored = restored_primary_statements(
                        version, setup.binlog_state(version, observation),
                        None if self._clone is None else self._clone.coordinates)
                    return True, setup.set_up_primary(
                        conn, version, s.accounts, *passwords, s.heartbeat.heartbeat_database,
                        restored, lift_read_only=not s.lease.enabled,
                    )
                source = Source(s.primary.host, s.primary.port, s.accounts.replication_user,
                                passwords[0], s.replication.connect_retry)
                start = None if self._clone is None else self._clone.coordinates
                plan = setup.plan_replica(version, observation, source, start)
                return True, setup.set_up_replica(conn, plan)
            finally:
                conn.close()
        except (pymysql.MySQLError, OSError, MysqlstsError) as exc:
            # The message reaches the log, /readyz and /status: never with a password in it.
            return False, f"set-up failed, retrying next cycle: {describe(exc, passwords)}"

    def _source_read_only(self, observation: Observation) -> bool | None:
        """Ask the source whether it is read-only once its heartbeat is half-way to max lag
        while the I/O thread is connected: a primary waiting for its lease writes none
        (core.health uses the answer; asked early, the answer is there before the lag passes
        max lag between two cycles). One short connection with the replication account."""
        s = self.settings
        lag = replication_lag(observation.taken_at, observation.heartbeat_ts)
        status = observation.replica
        if (lag is None or lag <= s.loop.max_lag / 2 or status is None or not status.io_running
                or status.source_unreachable):
            return None
        try:
            conn = connect(s.primary.host, s.primary.port, s.accounts.replication_user,
                           self._secrets.replication(), connect_timeout=s.loop.connect_timeout,
                           read_timeout=s.loop.read_timeout, write_timeout=s.loop.read_timeout)
        except (pymysql.MySQLError, OSError, MysqlstsError):
            return None
        try:
            return bool(int(query(conn, "SELECT @@global.read_only AS ro")[0]["ro"]))
        except (pymysql.MySQLError, OSError, KeyError, ValueError):
            return None
        finally:
            close_quietly(conn)

    def _reconnect_if_source_back(self, observation: Observation) -> None:
        """While the I/O thread waits to retry an unreachable primary, look whether the primary
        listens again; if it does, restart the I/O thread now rather than at its next retry."""
        status, primary = observation.replica, self.settings.primary
        if status is None or not status.source_unreachable:
            return
        reachable = accepts_connections(primary.host, primary.port,
                                        self.settings.loop.connect_timeout)
        if not io_restart_due(status, reachable):
            return
        version = self._observer.version
        assert version is not None
        try:
            conn = self._connect(self.settings.loop.setup_timeout)
            try:
                execute(conn, restart_io_statements(version))
            finally:
                conn.close()
        except (pymysql.MySQLError, OSError, MysqlstsError) as exc:
            log.warning("primary %s listens again, but restarting the I/O thread failed "
                        "(it retries on its own): %s", primary, describe(exc))
            return
        log.info("primary %s listens again: I/O thread restarted rather than waiting up to "
                 "%ds for its next retry", primary, self.settings.replication.connect_retry)

    def _log_waiting(self, observation: Observation) -> None:
        """One sentence per waiting window, not one per attempt."""
        now = observation.taken_at
        if self._down_since is None:
            self._down_since = self._down_logged_at = now
            return  # the readiness change says it
        if now - self._down_logged_at >= self.settings.loop.waiting_log_every:
            self._down_logged_at = now
            log.info("still waiting for the local server at %s:%d for %.0fs: %s",
                     self.settings.local.host, self.settings.local.port,
                     now - self._down_since, observation.error)

    def _log_change(self, what: str, verdict: Verdict) -> None:
        key = _sentence_key(verdict)
        if self._logged.get(what) == key:
            return
        self._logged[what] = key
        (log.info if verdict.ok else log.warning)(
            "%s: %s (%s) role=%s server_id=%d server=%s:%d", what,
            "ok" if verdict.ok else "failing", verdict.reason, self.settings.identity.role,
            self.server_id(self.state), self.settings.local.host, self.settings.local.port,
        )

    def server_id(self, state: LoopState) -> int:
        """The server's own server_id once it answered; the pod's configured one until then."""
        reported = state.observation.server_id
        return self.settings.identity.server_id if reported is None else reported


def _still_read_only(previous: LoopState, observation: Observation,
                     answer: bool | None) -> bool | None:
    """A source seen read-only stays so for readiness until a newer heartbeat arrives: once it
    turns writable its first heartbeat takes a moment to come, and the staleness until then is
    still the read-only spell's (bounded by the primary-down window)."""
    if answer is not False or not previous.source_read_only:
        return answer
    newer = (observation.heartbeat_ts is not None
             and observation.heartbeat_ts > (previous.observation.heartbeat_ts or 0.0))
    return None if newer else True
