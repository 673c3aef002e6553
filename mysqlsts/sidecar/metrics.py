"""Every metric the sidecar exports, in one place (the names are docs/metrics.md's contract).

Gauges are computed at scrape time from the latest immutable state, so a scrape never queries
the server and a down server is `mysqlsts_up 0`, never an HTTP 500. Counters the sidecar itself
increments (scrape errors, donor streams) are prometheus-client Counters. The registry is
injected: several apps (tests) can live in one process.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass

from prometheus_client import CollectorRegistry, Counter
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from mysqlsts.archive.archiver import ArchiveState
from mysqlsts.core.binlog_purge import Backlog
from mysqlsts.core.clone_record import CloneRecord
from mysqlsts.core.clone_window import ChunkCounts
from mysqlsts.core.consistency import Summary
from mysqlsts.core.gtid import count_errant
from mysqlsts.core.health import Verdict, replication_lag
from mysqlsts.sidecar.backup_catalog import CatalogState
from mysqlsts.sidecar.state import LoopState

STREAM_RESULTS = ("ok", "failed", "refused")
CHUNK_ENCODINGS = ("zstd", "raw")


@dataclass(frozen=True)
class MetricsView:
    now: float
    state: LoopState
    ready: Verdict
    role: str
    is_primary: bool
    server_id: int  # the server's own, else the pod's configured one
    flavor: str  # likewise
    heartbeat_written_at: float | None
    clone: CloneRecord | None
    clone_failures: int
    fenced: bool = False
    # Whether the primary lease allows writes now; None without --primary-lease.
    lease_held: bool | None = None
    max_lag: float = 0.0  # --max-lag, exported so dashboards draw the real threshold
    # This replica's transactions the primary never had ([] on the primary, or unknown).
    errant: tuple[str, ...] = ()
    # This pod's checksum table, as the consistency check last read it; None until read.
    consistency: Summary | None = None
    # The binlog archiver's counts, on every pod with --archive-store; else None.
    archive: ArchiveState | None = None
    # Whether this pod's archiver holds the archive lease; None without an archiver.
    archive_held: bool | None = None
    # The archive store's backups, as the last catalog read found them; None off that pod.
    backups: CatalogState | None = None
    # The primary's binary logs as its purger last measured them (--archive-store); else None.
    binlog: Backlog | None = None

    @property
    def errant_count(self) -> int:
        return count_errant(self.flavor == "mariadb", list(self.errant))


class Metrics:
    def __init__(self, registry: CollectorRegistry, view: Callable[[], MetricsView]) -> None:
        self.scrape_errors = Counter(
            "mysqlsts_scrape_errors", "Sidecar checks of the server that failed.",
            registry=registry,
        )
        self.clone_streams = Counter(
            "mysqlsts_clone_streams_served",
            "Backup streams this pod's donor served, by result (ok, failed, refused).",
            ["result"], registry=registry,
        )
        for result in STREAM_RESULTS:
            self.clone_streams.labels(result=result)  # exported at 0 from the start
        self.clone_chunks = Counter(
            "mysqlsts_clone_chunks_served",
            "Chunks of backup streams this pod's donor sent, by encoding (zstd, raw).",
            ["encoding"], registry=registry,
        )
        for encoding in CHUNK_ENCODINGS:
            self.clone_chunks.labels(encoding=encoding)
        registry.register(_StateCollector(view))

    def stream_served(self, result: str, chunks: ChunkCounts) -> None:
        self.clone_streams.labels(result=result).inc()
        self.clone_chunks.labels(encoding="zstd").inc(chunks.compressed)
        self.clone_chunks.labels(encoding="raw").inc(chunks.raw)


def _gauge(name: str, doc: str, value: float) -> GaugeMetricFamily:
    return GaugeMetricFamily(name, doc, value=value)


class _StateCollector(Collector):
    def __init__(self, view: Callable[[], MetricsView]) -> None:
        self._view = view

    def collect(self) -> Iterator[Metric]:
        view = self._view()
        obs = view.state.observation
        yield _gauge("mysqlsts_up", "1 when the last check could connect to the local server.",
                     1 if obs.up else 0)
        yield _gauge("mysqlsts_ready", "1 when /readyz answers 200.", 1 if view.ready.ok else 0)
        info = GaugeMetricFamily(
            "mysqlsts_info", "The pod's role and its server's id, flavor and version.",
            labels=["role", "server_id", "flavor", "version"],
        )
        info.add_metric([view.role, str(view.server_id), view.flavor, obs.version], 1)
        yield info
        if view.is_primary:
            yield _gauge("mysqlsts_isolation_fenced",
                         "1 while the isolation fence holds this primary read-only.",
                         1 if view.fenced else 0)
            if view.lease_held is not None:
                yield _gauge("mysqlsts_primary_lease_held",
                             "1 while this primary holds its lease inside the renew deadline "
                             "(its server may be writable), 0 while the lease fence holds.",
                             1 if view.lease_held else 0)
            if view.heartbeat_written_at is not None:
                yield _gauge("mysqlsts_heartbeat_last_write_timestamp_seconds",
                             "Unix time of the last successful heartbeat write.",
                             view.heartbeat_written_at)
            if view.binlog is not None:
                yield from _binlog(view.binlog)
        elif obs.up:
            yield from _replication(view)
        yield from _clone(view)
        if view.consistency is not None:
            yield from _consistency(view.consistency)
        if view.archive is not None:
            yield from _archive(view.archive, bool(view.archive_held))
        if view.backups is not None:
            yield from _backups(view.backups)


def _replication(view: MetricsView) -> Iterator[Metric]:
    obs = view.state.observation
    status = obs.replica
    lag = replication_lag(view.now, obs.heartbeat_ts)
    if lag is not None:
        yield _gauge("mysqlsts_replication_lag_seconds",
                     "Now minus the newest heartbeat from the primary applied here.", lag)
    if status is not None and status.seconds_behind_source is not None:
        # Absent while the server reports NULL: a NULL shown as 0 hides broken replication.
        yield _gauge("mysqlsts_replication_seconds_behind_source",
                     "The server's Seconds_Behind_Master / Seconds_Behind_Source.",
                     status.seconds_behind_source)
    yield _gauge("mysqlsts_replication_max_lag_seconds",
                 "--max-lag: above this heartbeat lag the replica is not ready.", view.max_lag)
    yield _gauge("mysqlsts_replication_io_running", "1 while the I/O thread runs.",
                 1 if status is not None and status.io_running else 0)
    yield _gauge("mysqlsts_replication_sql_running", "1 while the SQL thread runs.",
                 1 if status is not None and status.sql_running else 0)
    if status is not None and (status.io_running or status.source_unreachable):
        # Absent while the I/O thread is stopped or failing: then reachability is unknown.
        yield _gauge("mysqlsts_replication_source_reachable",
                     "1 while the I/O thread is connected to its source, 0 while it only "
                     "retries a source it cannot reach.", 1 if status.io_running else 0)
    yield _gauge("mysqlsts_replication_errant_transactions",
                 "Transactions executed here that the primary never had (MariaDB: one per "
                 "domain and server).", view.errant_count)
    yield _gauge("mysqlsts_replication_last_errno",
                 "The last I/O or SQL error number; 0 when none.",
                 status.last_errno if status is not None else 0)


def _consistency(summary: Summary) -> Iterator[Metric]:
    yield _gauge("mysqlsts_consistency_checked_chunks",
                 "Chunks in this server's checksum table (the consistency check).",
                 summary.checked)
    yield _gauge("mysqlsts_consistency_diverged_chunks",
                 "Chunks whose rows here differ from the primary's at the same point of the "
                 "replication stream.", summary.diverged)
    if summary.last_pass is not None:
        yield _gauge("mysqlsts_consistency_last_pass_timestamp_seconds",
                     "Unix time the last completed consistency pass finished, as applied here.",
                     summary.last_pass)


def _archive(state: ArchiveState, held: bool) -> Iterator[Metric]:
    yield _gauge("mysqlsts_archive_lease_held",
                 "1 while this pod's archiver holds the store's archive lease (it archives), "
                 "0 while it waits.", 1 if held else 0)
    yield CounterMetricFamily("mysqlsts_archive_segments",
                              "Binlog segments this pod's archiver wrote (with their records).",
                              value=state.segments)
    yield CounterMetricFamily("mysqlsts_archive_transactions",
                              "Transactions in those segments.", value=state.transactions)
    yield CounterMetricFamily("mysqlsts_archive_gaps",
                              "Gaps the archiver saw: in the store's index at its start, and "
                              "in the stream.", value=state.gaps)
    yield CounterMetricFamily("mysqlsts_archive_store_failures",
                              "Store reads and writes of the archiver that failed (retried).",
                              value=state.store_failures)
    if state.last_commit and held:  # a former holder's would only grow old
        yield _gauge("mysqlsts_archive_last_commit_timestamp_seconds",
                     "The primary's timestamp of the newest archived transaction.",
                     state.last_commit)


def _binlog(backlog: Backlog) -> Iterator[Metric]:
    yield _gauge("mysqlsts_binlog_bytes", "Bytes of the primary's binary log files.",
                 backlog.total)
    yield _gauge("mysqlsts_binlog_unarchived_bytes",
                 "Bytes of the primary's binary log files from the first one holding a "
                 "transaction not archived yet (whole files; the newest always counts).",
                 backlog.unarchived)
    yield _gauge("mysqlsts_binlog_purge_blocked",
                 "1 while no archived binary log can be purged until a person acts (a gap in "
                 "the archive, a start position the server cannot tell, a domain or a "
                 "beginning the archive lacks).", 1 if backlog.blocked else 0)


def _backups(state: CatalogState) -> Iterator[Metric]:
    reads = CounterMetricFamily("mysqlsts_backup_catalog_reads",
                                "Reads of the store's backup catalog, by result.",
                                labels=["result"])
    reads.add_metric(["ok"], state.reads_ok)
    reads.add_metric(["failed"], state.reads_failed)
    yield reads
    figures = state.figures
    if figures is None or state.read_at is None:
        return
    yield _gauge("mysqlsts_backup_catalog_read_timestamp_seconds",
                 "Unix time of the last good read of the store's backup catalog.", state.read_at)
    yield _gauge("mysqlsts_backup_count", "Backups with a valid manifest in the store.",
                 figures.count)
    yield _gauge("mysqlsts_backup_damaged_count", "Backup manifests in the store that do not "
                 "parse or do not verify.", figures.damaged)
    optional = (
        ("mysqlsts_backup_last_end_timestamp_seconds", "End time of the newest backup.",
         figures.last_end),
        ("mysqlsts_backup_last_size_bytes", "Size in the store of the newest backup.",
         figures.last_size),
        ("mysqlsts_backup_last_duration_seconds", "The newest backup's run, start to "
         "manifest.", figures.last_duration),
        ("mysqlsts_backup_last_parts", "Parts of the newest backup.", figures.last_parts),
        ("mysqlsts_backup_last_throughput_bytes_per_second", "The newest backup's bytes in "
         "the store per second of its run.", figures.last_throughput),
        ("mysqlsts_backup_last_verification_timestamp_seconds",
         "Time of the newest restore drill (backup verify) of any backup.",
         figures.last_verification),
        ("mysqlsts_backup_last_verification_ok", "1 when the newest restore drill passed, "
         "0 when it failed.", None if figures.last_verification_ok is None
         else int(figures.last_verification_ok)),
        ("mysqlsts_backup_recoverable_from_timestamp_seconds",
         "Oldest point the store can restore: the oldest backup's end.",
         figures.recoverable_from),
        ("mysqlsts_backup_recoverable_to_timestamp_seconds",
         "Newest point the store can restore: the commit time of the last archived "
         "transaction reachable from a backup (a backup's own end without one).",
         figures.recoverable_to),
    )
    for name, doc, value in optional:
        if value is not None:
            yield _gauge(name, doc, value)
    stored = GaugeMetricFamily("mysqlsts_store_bytes", "Bytes in the archive's store by kind "
                               "(base_backups, binlog_segments).", labels=["kind"])
    for kind, size in sorted(figures.store_bytes.items()):
        stored.add_metric([kind], size)
    yield stored


def _clone(view: MetricsView) -> Iterator[Metric]:
    yield CounterMetricFamily("mysqlsts_clone_bytes", "Bytes this pod received by clones.",
                              value=view.clone.bytes if view.clone is not None else 0)
    if view.clone is not None:
        yield _gauge("mysqlsts_clone_duration_seconds",
                     "Duration of the last completed clone into this pod.",
                     view.clone.duration_seconds)
    yield CounterMetricFamily("mysqlsts_clone_failures",
                              "Clones into this pod that failed and were rolled back.",
                              value=view.clone_failures)
