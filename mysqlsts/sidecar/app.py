"""The sidecar, wired: a control loop, the heartbeat writer, the HTTP endpoints, the donor.

`SidecarApp(settings).start()` runs everything on daemon threads; `stop()` ends them within a
few seconds. The loop observes the server on a fixed cadence (backing off while it is down),
runs the one-time set-up once the server answers, and publishes an immutable `LoopState`;
probes and metrics read only that state and the injected clock.
"""

from __future__ import annotations

import logging
import re
import threading
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import pymysql
from prometheus_client import CollectorRegistry, generate_latest

from mysqlsts.adapters.datadir import read_clone_failures, read_set_record
from mysqlsts.adapters.db import connect
from mysqlsts.adapters.http import Endpoints, HttpServer
from mysqlsts.core.backoff import backoff
from mysqlsts.core.clone_window import ChunkCounts
from mysqlsts.core.health import (
    ReadinessInputs,
    Verdict,
    lag_when_source_lost,
    liveness,
    readiness,
)
from mysqlsts.core.replication import Source
from mysqlsts.core.set_record import root_refused, set_name
from mysqlsts.core.status import Observation, errant_transactions
from mysqlsts.errors import CloneError, MysqlstsError, describe
from mysqlsts.secrets import Secrets
from mysqlsts.settings import Flavor
from mysqlsts.sidecar import setup
from mysqlsts.sidecar.consistency import ConsistencyWorker
from mysqlsts.sidecar.donor import Donor, DonorConfig, DonorStats, completed_clone
from mysqlsts.sidecar.fence import FenceConfig, IsolationFence
from mysqlsts.sidecar.heartbeat import HeartbeatWriter
from mysqlsts.sidecar.metrics import Metrics, MetricsView
from mysqlsts.sidecar.observe import ServerObserver
from mysqlsts.sidecar.report import StatusContext, status_document
from mysqlsts.sidecar.settings import SidecarSettings
from mysqlsts.sidecar.state import LoopState

log = logging.getLogger(__name__)

Clock = Callable[[], float]

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


def _clone_failures(data_dir: Path) -> int:
    """The volume's clone-failure count for the metrics; unreadable, it is 0 and a warning,
    never a sidecar that cannot start."""
    try:
        return read_clone_failures(data_dir)
    except (OSError, ValueError, MysqlstsError) as exc:
        log.warning("ignoring the clone-failure count in %s: %s", data_dir, describe(exc))
        return 0


class SidecarApp:
    def __init__(
        self,
        settings: SidecarSettings,
        *,
        registry: CollectorRegistry | None = None,
        clock: Clock = time.time,
    ) -> None:
        self.settings = settings
        self._secrets = Secrets(settings.secrets)
        self.registry = registry if registry is not None else CollectorRegistry()
        self._clock = clock
        self._stop = threading.Event()
        now = clock()
        self._state = LoopState(
            started_at=now, loop_tick_at=now,
            observation=Observation(taken_at=now, up=False, error="not observed yet"),
        )
        self._heartbeat_written_at: float | None = None
        self._clone = completed_clone(settings.data_dir)
        self._clone_failures = _clone_failures(settings.data_dir)
        self._donor_stats = DonorStats()
        self.metrics = Metrics(self.registry, self._metrics_view)
        self._observer = ServerObserver(
            connect=lambda: self._connect(settings.read_timeout),
            is_primary=settings.is_primary,
            data_dir=settings.data_dir,
            heartbeat_database=settings.heartbeat_database,
        )
        self._loop_thread = threading.Thread(target=self._loop, name="loop", daemon=True)
        self._http: HttpServer | None = None
        self._donor: Donor | None = None
        self._heartbeat: HeartbeatWriter | None = None
        self._consistency = self._consistency_worker()
        self._fence = self._isolation_fence() if settings.is_primary else None
        self._logged: dict[str, tuple[bool, str]] = {}
        self._down_since: float | None = None
        self._down_logged_at = 0.0
        self._flavor_warned = False
        # Why the sidecar stopped by itself (the command exits non-zero with it), else None.
        self.fatal: str | None = None

    # -- life cycle ----------------------------------------------------------------------

    def start(self) -> None:
        """Bind the ports and start every thread; a port in use fails here, as one line."""
        s = self.settings
        identity = s.identity
        log.info(
            "sidecar starting pod=%s role=%s server_id=%d server=%s:%d primary=%s http=%s:%d",
            identity.pod_name, identity.role, identity.server_id, s.local.host, s.local.port,
            s.primary, s.listen_address, s.http_port,
        )
        where = f"{s.listen_address}:{s.http_port}"
        try:
            self._http = HttpServer(s.listen_address, s.http_port, self.endpoints())
            if s.clone_port is not None:
                where = f"{s.listen_address}:{s.clone_port}"
                self._donor = Donor(self._donor_config(), self._stream_done)
        except OSError as exc:
            self._close_listeners()
            raise MysqlstsError(f"cannot listen on {where}: {exc.strerror or exc}") from exc
        self._http.start()
        if self._donor is not None:
            self._donor.start()
        self._loop_thread.start()
        if s.is_primary:
            self._heartbeat = HeartbeatWriter(
                database=s.heartbeat_database, interval=s.heartbeat_interval,
                connect=lambda: self._connect(s.read_timeout), target=self._heartbeat_target,
                on_written=self._heartbeat_written, clock=self._clock, stop=self._stop,
            )
            self._heartbeat.start()
        self._consistency.start()
        if self._fence is not None:
            self._fence.start()

    def request_stop(self) -> None:
        """Safe from a signal handler: only sets a flag."""
        self._stop.set()

    def wait(self, timeout: float | None = None) -> bool:
        return self._stop.wait(timeout)

    def stop(self, timeout: float = 5.0) -> None:
        self._stop.set()
        deadline = time.monotonic() + timeout
        if self._loop_thread.is_alive():
            self._loop_thread.join(max(0.1, deadline - time.monotonic()))
        if self._heartbeat is not None:
            self._heartbeat.thread.join(max(0.1, deadline - time.monotonic()))
        if self._fence is not None and self._fence.thread.ident:
            self._fence.thread.join(max(0.1, deadline - time.monotonic()))
        if self._consistency.thread.ident:
            # A pass mid-chunk is not waited for: its connection dies with the process and
            # the server rolls the chunk back; the next pass starts over.
            self._consistency.thread.join(max(0.1, deadline - time.monotonic()))
        self._close_listeners(max(0.1, deadline - time.monotonic()))
        if self._loop_thread.is_alive():
            log.warning("sidecar loop still busy at shutdown (a set-up statement?); leaving it")
        elif not self._loop_thread.ident:
            self._observer.close()  # never started: nothing else will close it
        log.info("sidecar stopped pod=%s", self.settings.identity.pod_name)

    def _close_listeners(self, timeout: float = 5.0) -> None:
        if self._donor is not None:
            self._donor.stop(timeout)
        if self._http is not None:
            self._http.stop()

    @property
    def http_port(self) -> int:
        assert self._http is not None, "start() first"
        return self._http.port

    @property
    def clone_port(self) -> int | None:
        return self._donor.port if self._donor is not None else None

    @property
    def state(self) -> LoopState:
        return self._state

    # -- the loop ------------------------------------------------------------------------

    def _connect(self, read_timeout: float) -> pymysql.connections.Connection[Any]:
        s = self.settings
        return connect(
            s.local.host, s.local.port, s.accounts.root_user, self._secrets.root(),
            connect_timeout=s.connect_timeout, read_timeout=read_timeout,
            write_timeout=read_timeout,
        )

    def _loop(self) -> None:
        try:
            self._run_cycles()
        finally:
            self._observer.close()  # the connection belongs to this thread

    def _run_cycles(self) -> None:
        failures = 0
        while not self._stop.is_set():
            started = self._clock()
            try:
                self.cycle()
            except Exception:  # the loop's edge: a bug in one cycle must not end the loop
                log.exception("sidecar cycle failed unexpectedly")
            if self._state.observation.up:
                failures, pause = 0, self.settings.poll_interval
            else:
                failures += 1
                pause = backoff(failures, self.settings.poll_interval, self.settings.max_backoff)
            self._stop.wait(max(0.0, pause - (self._clock() - started)))

    def cycle(self) -> LoopState:
        """Observe once, then decide (set-up, verdicts), then publish and log what changed."""
        observation = self._observer.observe(self._clock)
        previous = self._state
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
        else:
            self.metrics.scrape_errors.inc()
            self._log_waiting(observation)
            self._stop_on_foreign_data()
        self._state = state
        now = self._clock()
        self._log_change("readiness", self.readiness(now))
        self._log_change("liveness", self.liveness(now))
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
        try:
            passwords = (self._secrets.replication(),
                         self._secrets.backup() if s.is_primary else "")
            conn = self._connect(s.setup_timeout)
            try:
                if s.is_primary:
                    return True, setup.set_up_primary(
                        conn, version, s.accounts, *passwords, s.heartbeat_database,
                    )
                source = Source(s.primary.host, s.primary.port, s.accounts.replication_user,
                                passwords[0], s.connect_retry)
                start = None if self._clone is None else self._clone.coordinates
                plan = setup.plan_replica(version, observation, source, start)
                return True, setup.set_up_replica(conn, plan)
            finally:
                conn.close()
        except (pymysql.MySQLError, OSError, MysqlstsError) as exc:
            # The message reaches the log, /readyz and /status: never with a password in it.
            return False, f"set-up failed, retrying next cycle: {describe(exc, passwords)}"

    def _log_waiting(self, observation: Observation) -> None:
        """One sentence per waiting window, not one per attempt."""
        now = observation.taken_at
        if self._down_since is None:
            self._down_since = self._down_logged_at = now
            return  # the readiness change says it
        if now - self._down_logged_at >= self.settings.waiting_log_every:
            self._down_logged_at = now
            log.info("still waiting for the local server at %s:%d for %.0fs: %s",
                     self.settings.local.host, self.settings.local.port,
                     now - self._down_since, observation.error)

    def _log_change(self, what: str, verdict: Verdict) -> None:
        key = _sentence_key(verdict)
        before = self._logged.get(what)
        if before == key:
            return
        self._logged[what] = key
        (log.info if verdict.ok else log.warning)(
            "%s: %s (%s) role=%s server_id=%d server=%s:%d", what,
            "ok" if verdict.ok else "failing", verdict.reason, self.settings.identity.role,
            self._server_id(self._state), self.settings.local.host, self.settings.local.port,
        )

    # -- heartbeat and donor callbacks ---------------------------------------------------

    def _heartbeat_target(self) -> int | None:
        """Write only once set up, on a writable primary that answered lately."""
        state = self._state
        obs = state.observation
        if not (state.setup_done and obs.up and obs.read_only is False):
            return None
        return obs.server_id

    def _consistency_worker(self) -> ConsistencyWorker:
        s = self.settings
        return ConsistencyWorker(
            database=s.heartbeat_database, is_primary=s.is_primary,
            interval=s.consistency_check_interval, chunk_rows=s.consistency_chunk_rows,
            duty_cycle=s.consistency_duty_cycle, connect=self._connect,
            read_timeout=s.setup_timeout, pass_timeout=s.consistency_timeout,
            server_up=lambda: self._state.observation.up, pass_blocked=self._pass_blocked,
            clock=self._clock, stop=self._stop, poll=s.consistency_poll,
            reread=s.consistency_reread,
        )

    def _pass_blocked(self) -> str:
        """Why the primary may not run a consistency pass now; "" when it may: like the
        heartbeat, only once set up, on a writable primary that answered lately, not fenced."""
        if self.fenced:
            return "the isolation fence holds the server read-only"
        if self._heartbeat_target() is None:
            return "the server is not a set-up, writable primary now"
        return ""

    def _heartbeat_written(self, unix_time: float) -> None:
        self._heartbeat_written_at = unix_time

    def _stream_done(self, result: str, count: int, seconds: float, chunks: ChunkCounts) -> None:
        self.metrics.stream_served(result, chunks)
        self._donor_stats.add(result, count, chunks)

    def _isolation_fence(self) -> IsolationFence:
        s = self.settings
        config = FenceConfig(
            window=s.isolation_fence_after, api_endpoint=s.isolation_api_endpoint,
            peers=s.peers, set_size=len(s.peers) + 1, interval=s.poll_interval,
            probe_timeout=min(2.0, s.isolation_fence_after / 4), is_mysql=s.flavor == Flavor.MYSQL,
        )
        return IsolationFence(config, lambda: self._connect(s.setup_timeout), self._clock,
                              self._stop)

    @property
    def fenced(self) -> bool:
        return self._fence is not None and self._fence.fenced

    def _donor_config(self) -> DonorConfig:
        s = self.settings
        assert s.clone_port is not None
        return DonorConfig(
            listen_address=s.listen_address, port=s.clone_port, flavor=s.flavor,
            host=s.local.host, mysql_port=s.local.port, data_dir=s.data_dir,
            user=s.accounts.backup_user, password_file=s.secrets.backup_password,
            token=self._secrets.token, max_rate=s.clone_max_rate,
            compression=s.clone_compression,
        )

    # -- what the endpoints answer -------------------------------------------------------

    def liveness(self, now: float | None = None, state: LoopState | None = None) -> Verdict:
        state = self._state if state is None else state
        return liveness(
            self._clock() if now is None else now,
            loop_tick_at=state.loop_tick_at, threshold=self.settings.liveness_threshold,
        )

    def readiness(self, now: float | None = None, state: LoopState | None = None) -> Verdict:
        state = self._state if state is None else state
        inputs = ReadinessInputs(
            is_primary=self.settings.is_primary, setup_done=state.setup_done,
            setup_message=state.setup_message, max_lag=self.settings.max_lag,
            stale_after=self.settings.stale_after,
            max_staleness_primary_down=self.settings.max_staleness_primary_down,
            lag_when_source_lost=state.lag_when_source_lost,
        )
        if self.fenced:
            return Verdict(False, "isolation fence: read-only until the API or a peer is "
                                  "reachable again")
        return readiness(self._clock() if now is None else now, state.observation, inputs)

    def _server_id(self, state: LoopState) -> int:
        """The server's own server_id once it answered; the pod's configured one until then."""
        reported = state.observation.server_id
        return self.settings.identity.server_id if reported is None else reported

    def _view(self, now: float, state: LoopState) -> MetricsView:
        identity = self.settings.identity
        return MetricsView(
            now=now, state=state, ready=self.readiness(now, state), role=str(identity.role),
            is_primary=identity.is_primary, server_id=self._server_id(state),
            flavor=state.observation.flavor or self.settings.flavor,
            heartbeat_written_at=self._heartbeat_written_at,
            clone=self._clone, clone_failures=self._clone_failures, fenced=self.fenced,
            max_lag=self.settings.max_lag,
            errant=() if identity.is_primary else tuple(errant_transactions(state.observation)),
            consistency=self._consistency.summary,
        )

    def _metrics_view(self) -> MetricsView:
        return self._view(self._clock(), self._state)

    def endpoints(self) -> Endpoints:
        return Endpoints(
            livez=self.liveness, readyz=self.readiness,
            metrics=lambda: generate_latest(self.registry), status=self.status,
        )

    def status(self) -> dict[str, Any]:
        now, state = self._clock(), self._state
        context = StatusContext(
            pod=self.settings.identity.pod_name, live=self.liveness(now, state),
            primary=str(self.settings.primary),
            heartbeat_database=self.settings.heartbeat_database,
            donor={"port": self.clone_port, **self._donor_stats.as_dict()},
            consistency_interval=self.settings.consistency_check_interval,
        )
        return status_document(self._view(now, state), context)
