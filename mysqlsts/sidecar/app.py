"""The sidecar, wired: the parts are built here once and started and stopped together.

`SidecarApp(settings).start()` runs the control loop (sidecar/loop.py), the heartbeat writer,
the consistency worker and the isolation fence as workers (sidecar/worker.py), the HTTP
endpoints and the clone donor; `stop()` ends them within one deadline. Probes, metrics and
/status read only what the workers publish and the injected clock.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from prometheus_client import CollectorRegistry, generate_latest

from mysqlsts.adapters.binlog_stream import (
    BinlogStream,
    StreamSource,
    oldest_position,
    primary_position,
)
from mysqlsts.adapters.datadir import read_clone_failures
from mysqlsts.adapters.db import LocalConnection, connect
from mysqlsts.adapters.http import Endpoints, HttpServer
from mysqlsts.adapters.kube_lease_store import KubernetesLeaseStore, service_account_namespace
from mysqlsts.adapters.lease_store import FileLeaseStore, LeaseStore
from mysqlsts.archive.archiver import Archiver, ArchiveSettings
from mysqlsts.archive.lock import ArchiveLock, holder_name, lease_timings
from mysqlsts.clone.store_options import keys_from_file
from mysqlsts.core.archive_turn import turn_for
from mysqlsts.core.backup_layout import BINLOG_LOCK
from mysqlsts.core.clone_window import ChunkCounts
from mysqlsts.core.health import Verdict
from mysqlsts.core.status import errant_transactions
from mysqlsts.core.watchdog import self_fence_claim
from mysqlsts.errors import ConfigError, MysqlstsError, describe
from mysqlsts.secrets import Secrets
from mysqlsts.settings import Flavor
from mysqlsts.sidecar.archive import ArchiveWorker
from mysqlsts.sidecar.backup_catalog import BackupCatalogWorker
from mysqlsts.sidecar.consistency import ConsistencyWorker
from mysqlsts.sidecar.donor import Donor, DonorStats, completed_clone
from mysqlsts.sidecar.fence import IsolationFence
from mysqlsts.sidecar.heartbeat import HeartbeatWriter
from mysqlsts.sidecar.lease import RELEASE_TIMEOUT, PrimaryLease
from mysqlsts.sidecar.loop import ControlLoop
from mysqlsts.sidecar.metrics import Metrics, MetricsView
from mysqlsts.sidecar.probes import Probes
from mysqlsts.sidecar.purge import BinlogPurger, store_bases
from mysqlsts.sidecar.report import StatusContext, status_document
from mysqlsts.sidecar.settings import SidecarSettings
from mysqlsts.sidecar.state import LoopState
from mysqlsts.sidecar.watchdog import WatchdogBound, WatchdogHeartbeat
from mysqlsts.sidecar.worker import Worker, join_all
from mysqlsts.store.binlog_archive import IndexCache
from mysqlsts.store.catalog import read_contents
from mysqlsts.store.lease_objects import ObjectLeaseStore
from mysqlsts.store.open import open_store

if TYPE_CHECKING:
    from mysqlsts.adapters.db import Connection

log = logging.getLogger(__name__)

Clock = Callable[[], float]



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
        self, settings: SidecarSettings, *, registry: CollectorRegistry | None = None,
        clock: Clock = time.time,
    ) -> None:
        s = self.settings = settings
        self.registry = registry if registry is not None else CollectorRegistry()
        self._clock = clock
        self._stop = threading.Event()
        self._secrets = Secrets(s.secrets)
        self._heartbeat_written_at: float | None = None
        self._clone = completed_clone(s.data_dir)
        self._clone_failures = _clone_failures(s.data_dir)
        self._donor_stats = DonorStats()
        self.metrics = Metrics(self.registry, self._metrics_view)
        # The watchdog's heartbeat (sidecar/watchdog.py): on a primary with a lease worker only
        # that worker vouches for the server, else the control loop does.
        self.watchdog = WatchdogHeartbeat(s.watchdog.file)
        self.lease = self._primary_lease()
        self.loop = ControlLoop(
            s, connect=self._connect, secrets=self._secrets, clone=self._clone,
            probes=lambda: self.probes, on_down=self.metrics.scrape_errors.inc, clock=clock,
            stop=self._stop, set_up_blocked=self._set_up_blocked,
            heartbeat=self.watchdog.beat if self.lease is None else lambda: None,
        )
        self.fence = IsolationFence(
            s.isolation, peers=s.peers, interval=s.loop.poll_interval,
            is_mysql=s.flavor == Flavor.MYSQL, connect=lambda: self._connect(s.loop.setup_timeout),
            clock=clock, stop=self._stop,
            lift=None if self.lease is None else self.lease.lift_again,
        ) if s.is_primary else None
        self.probes = Probes(s, lambda: self.loop.state, lambda: self.fenced, clock,
                             lease_fence=self._lease_fence, lease_wait=self._lease_wait)
        self.heartbeat = HeartbeatWriter(
            s.heartbeat, connection=self._local(s.loop.read_timeout), target=self._heartbeat_target,
            on_written=self._heartbeat_written, clock=clock, stop=self._stop,
        ) if s.is_primary else None
        self.consistency = ConsistencyWorker(
            s.consistency, database=s.heartbeat.heartbeat_database, is_primary=s.is_primary,
            connection=self._local(s.loop.setup_timeout),
            pass_connection=lambda: self._connect(s.consistency.pass_timeout),
            server_up=lambda: self.loop.state.observation.up, pass_blocked=self._pass_blocked,
            clock=clock, stop=self._stop,
        )
        # The archive's store and key, opened once for the workers that use them (a bad URL or
        # key file fails the start in one line); None when the set does not archive.
        self._archive_store = (
            (open_store(s.archive.archive_store, s.s3),
             keys_from_file(s.archive.archive_encryption_key_file))
            if s.archive.archive_store else None)
        self.archive = self._archive_worker()
        self.backups = self._backup_catalog_worker()
        self.purge = self._purge_worker()
        self._workers: list[Worker] = [w for w in (self.loop, self.heartbeat, self.consistency,
                                                   self.fence, self.lease, self.archive,
                                                   self.backups, self.purge)
                                       if w is not None]
        self._http: HttpServer | None = None
        self._donor: Donor | None = None

    def _connect(self, read_timeout: float) -> Connection:
        s = self.settings
        return connect(
            s.local.host, s.local.port, s.accounts.root_user, self._secrets.root(),
            connect_timeout=s.loop.connect_timeout, read_timeout=read_timeout,
            write_timeout=read_timeout,
        )

    def _primary_lease(self) -> PrimaryLease | None:
        """The lease worker, on a primary whose --primary-lease names a store (none: no lease,
        the set-up makes the primary writable)."""
        s = self.settings
        store = self._primary_lease_store() if s.is_primary else None
        if store is None:
            return None
        bound = WatchdogBound(s.watchdog.bound_file)
        return PrimaryLease(
            store, s.lease.timings(), holder=s.lease.holder(s.identity.pod_name),
            # How long after a renew began its server may still take a write, the sidecar dead
            # or not: the renew deadline, then the stop bound the server's watchdog states
            # (read every renew; never this sidecar's own watchdog settings). No bound stated:
            # a dead sidecar may leave the server writable (0 = none claimed; docs/takeover.md).
            self_fence=lambda: self_fence_claim(s.lease.lease_renew_deadline, bound()),
            # Its statements are quick (a read, SET GLOBAL, SHUTDOWN; the release's lock wait is
            # RELEASE_TIMEOUT): a short read timeout keeps a round, and its heartbeat, on time.
            data_dir=s.data_dir, connect=lambda: self._connect(
                min(s.loop.setup_timeout, max(s.lease.lease_renew_interval, RELEASE_TIMEOUT + 1))),
            is_mysql=s.flavor == Flavor.MYSQL, blocked=lambda: self.fenced,
            heartbeat=self.watchdog.beat, stop=self._stop,
        )

    def _primary_lease_store(self) -> LeaseStore | None:
        """The store --primary-lease names: a file, or a Lease in the pod's namespace."""
        lease = self.settings.lease
        if lease.file is not None:
            return FileLeaseStore(lease.file)
        if lease.kubernetes is not None:
            if not lease.lease_api_url:
                raise ConfigError(f"primary lease {lease.primary_lease!r}: no API server "
                                  "(KUBERNETES_SERVICE_HOST is unset: not in a pod?): set "
                                  "--lease-api-url")
            if not lease.lease_holder_uid:
                # Without it a re-created pod of the same name would renew the old pod's lease
                # at once, while the old server may still be writable.
                raise ConfigError(f"primary lease {lease.primary_lease!r} needs the pod's uid: "
                                  "set POD_UID from the downward API (metadata.uid)")
            return KubernetesLeaseStore(
                lease.kubernetes, lease.lease_namespace or service_account_namespace(),
                api_url=lease.lease_api_url)
        return None

    def _archive_worker(self) -> ArchiveWorker | None:
        """The binlog archiver, on every pod when --archive-store is set, one writing at a time
        under the store's archive lease, a replica's first (core/archive_turn.py); a bad store
        URL or key file fails the sidecar's start, as one line."""
        s = self.settings
        if self._archive_store is None:
            return None
        store, keys = self._archive_store
        source = StreamSource(host=s.primary.host, port=s.primary.port,
                              user=s.accounts.replication_user,
                              server_id=s.archive.archive_server_id)
        # The password is read at each connection, so a rotated Secret takes effect. The
        # store's archive lease keeps a second archiver on the same store from writing. An
        # empty archive starts where the primary's oldest binary log begins: it then holds
        # every transaction the primary still has, and the primary's purger can go on.
        return ArchiveWorker(lambda: Archiver(
            store, keys, lambda: BinlogStream(source, self._secrets.replication()),
            lambda: primary_position(source, self._secrets.replication()),
            ArchiveSettings(start_position="oldest"),
            self._stop, lock=ArchiveLock(
                ObjectLeaseStore(store, BINLOG_LOCK), holder_name(s.identity.pod_name),
                lease_timings(s.archive.archive_lease_seconds),
                turn=turn_for(s.is_primary, s.archive.archive_lease_seconds,
                              s.archive.archive_primary_patience)),
            oldest_position=lambda: oldest_position(source, self._secrets.replication())),
            self._stop)

    def _purge_worker(self) -> BinlogPurger | None:
        """On the primary of a set that archives (--archive-store): the sidecar purges the
        binary logs that are archived, and only those (docs/backup.md, "Nothing purged
        unarchived")."""
        s = self.settings
        if self._archive_store is None or not s.is_primary:
            return None
        from mysqlsts.clone.from_backup import seal_keys  # as the catalog worker does

        index = IndexCache(*self._archive_store)
        store, keys = self._archive_store
        return BinlogPurger(index, lambda: self._connect(s.loop.setup_timeout), self._stop,
                            keep=s.archive.archive_binlog_keep_hours * 3600,
                            interval=s.archive.archive_purge_interval,
                            bases=store_bases(store, seal_keys(keys)))

    def _archiving(self) -> bool:
        """Whether this pod's archiver holds the archive lease (inside its renew deadline)."""
        archiver = None if self.archive is None else self.archive.archiver
        return archiver is not None and archiver.lock is not None and archiver.lock.holds()

    def _backup_catalog_worker(self) -> BackupCatalogWorker | None:
        """The periodic read of the archive store's backups for the metrics, beside the
        archiver (same store and key file): it reads only while this pod's archiver holds the
        lease, so one pod of the set reads and exports it."""
        # Imported here: the restore's module brings the clone receiver, which a sidecar
        # that reads no catalog never loads.
        from mysqlsts.clone.from_backup import seal_keys

        if self._archive_store is None:
            return None
        store, keys = self._archive_store
        index = IndexCache(store, keys)  # the window reaches the archive's last commit
        return BackupCatalogWorker(lambda: read_contents(store, seal_keys(keys), index.records),
                                   self._stop, active=self._archiving)

    def _lease_fence(self) -> str:
        """Why the lease fence holds the server stopped; "" when it does not."""
        if self.lease is None or not self.lease.fenced:
            return ""
        return f"server stopped until the lease is held again ({self.lease.reason})"

    def _set_up_blocked(self) -> str:
        """Why the primary's set-up waits ("" when it may run): one sentence while it waits
        (logged when it changes), whatever the lease worker's reason says meanwhile."""
        if self.lease is None or self.lease.held:
            return ""
        return f"the primary lease is not held yet (holder {self.lease.holder_seen or 'none'})"

    def _lease_wait(self) -> str:
        """Why this primary may not be writable yet: its lease is not held; "" when it is held
        or there is no lease."""
        if self.lease is None or self.lease.held:
            return ""
        return f"the primary lease is not held: {self.lease.reason}"

    def _local(self, read_timeout: float) -> LocalConnection:
        return LocalConnection(lambda: self._connect(read_timeout))

    # -- life cycle ----------------------------------------------------------------------

    def start(self) -> None:
        """Bind the ports and start every worker; a port in use fails here, as one line."""
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
                self._donor = Donor(s, self._secrets.token, self._stream_done)
        except OSError as exc:
            self._close_listeners()
            raise MysqlstsError(f"cannot listen on {where}: {exc.strerror or exc}") from exc
        self._warn_on_watchdog_timing()
        self._http.start()
        if self._donor is not None:
            self._donor.start()
        for worker in self._workers:
            worker.start()

    def _warn_on_watchdog_timing(self) -> None:
        """The control loop vouches once per round: a watchdog timeout shorter than its
        longest round stops a server whose sidecar lives (docs/takeover.md, "The watchdog")."""
        s = self.settings
        if s.watchdog.file is not None and self.lease is None and (
                s.watchdog.watchdog_timeout <= s.loop.stale_after):
            log.warning("watchdog timeout %gs is not longer than the loop's longest round "
                        "(%gs): the server may be stopped while this sidecar lives",
                        s.watchdog.watchdog_timeout, s.loop.stale_after)

    def request_stop(self) -> None:
        """Safe from a signal handler: only sets a flag."""
        self._stop.set()

    def wait(self, timeout: float | None = None) -> bool:
        return self._stop.wait(timeout)

    def stop(self, timeout: float = 5.0) -> None:
        self._stop.set()
        deadline = time.monotonic() + timeout
        # A consistency pass mid-chunk is not waited for: its connection dies with the process
        # and the server rolls the chunk back; the next pass starts over.
        busy = join_all(self._workers, deadline)
        self._close_listeners(max(0.1, deadline - time.monotonic()))
        if busy:
            log.warning("sidecar threads still busy at shutdown, left to end with the process: "
                        "%s", ", ".join(w.name for w in busy))
        if self.loop.thread.ident is None:
            self.loop.close()  # never started: nothing else will close it
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
        return self.loop.state

    @property
    def fatal(self) -> str | None:
        """Why the sidecar stopped by itself (the command exits non-zero with it), else None."""
        return self.loop.fatal

    def cycle(self) -> LoopState:
        return self.loop.cycle()

    # -- what the workers ask and tell ---------------------------------------------------

    def _heartbeat_target(self) -> int | None:
        """Write only once set up, on a writable primary that answered lately."""
        state = self.loop.state
        obs = state.observation
        if not (state.setup_done and obs.up and obs.read_only is False):
            return None
        return obs.server_id

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

    @property
    def fenced(self) -> bool:
        return self.fence is not None and self.fence.fenced

    # -- what the endpoints answer -------------------------------------------------------

    def liveness(self, now: float | None = None, state: LoopState | None = None) -> Verdict:
        return self.probes.liveness(now, state)

    def readiness(self, now: float | None = None, state: LoopState | None = None) -> Verdict:
        return self.probes.readiness(now, state)

    def _view(self, now: float, state: LoopState) -> MetricsView:
        identity = self.settings.identity
        return MetricsView(
            now=now, state=state, ready=self.readiness(now, state), role=str(identity.role),
            is_primary=identity.is_primary, server_id=self.loop.server_id(state),
            flavor=state.observation.flavor or self.settings.flavor,
            heartbeat_written_at=self._heartbeat_written_at,
            clone=self._clone, clone_failures=self._clone_failures, fenced=self.fenced,
            max_lag=self.settings.loop.max_lag,
            errant=() if identity.is_primary else tuple(errant_transactions(state.observation)),
            consistency=self.consistency.summary,
            lease_held=None if self.lease is None else self.lease.held,
            archive=None if self.archive is None or self.archive.archiver is None
            else self.archive.archiver.state,
            archive_held=self._archiving() if self.archive is not None else None,
            backups=None if self.backups is None or not self._archiving()
            else self.backups.state,
            binlog=None if self.purge is None else self.purge.backlog,
        )

    def _metrics_view(self) -> MetricsView:
        return self._view(self._clock(), self.loop.state)

    def endpoints(self) -> Endpoints:
        return Endpoints(
            livez=self.liveness, readyz=self.readiness,
            metrics=lambda: generate_latest(self.registry), status=self.status,
        )

    def status(self) -> dict[str, Any]:
        now, state = self._clock(), self.loop.state
        s = self.settings
        context = StatusContext(
            pod=s.identity.pod_name, live=self.liveness(now, state), primary=str(s.primary),
            heartbeat_database=s.heartbeat.heartbeat_database,
            donor={"port": self.clone_port, **self._donor_stats.as_dict()},
            consistency_interval=s.consistency.consistency_check_interval,
            lease=None if self.lease is None else self.lease.summary(),
        )
        return status_document(self._view(now, state), context)
