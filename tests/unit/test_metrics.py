"""Metrics rendered from state snapshots: names and labels as docs/metrics.md fixes them."""

from __future__ import annotations

import re
from dataclasses import replace
from pathlib import Path

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families
from test_status import MARIADB_ROW

from mysqlsts.core.clone_record import CloneRecord, DonorAddress
from mysqlsts.core.clone_window import ChunkCounts
from mysqlsts.core.consistency import ChunkRow, Summary
from mysqlsts.core.coordinates import Coordinates
from mysqlsts.core.health import Verdict
from mysqlsts.core.status import Observation, parse_replica_status
from mysqlsts.sidecar.metrics import Metrics, MetricsView
from mysqlsts.sidecar.state import LoopState

NOW = 1_700_000_000.0
DOC = Path(__file__).resolve().parents[2] / "docs" / "metrics.md"

REPLICA_OBS = Observation(
    taken_at=NOW, up=True, version="10.11.6-MariaDB-0+deb12u1", flavor="mariadb",
    server_id=101, read_only=True, replica=parse_replica_status(MARIADB_ROW),
    heartbeat_ts=NOW - 2.5,
)
CLONE = CloneRecord(
    donor=DonorAddress(0, "mysql-0.mysql", 3307), flavor="mariadb",
    coordinates=Coordinates("0-100-9", "mysql-bin.000001", 4), coordinates_origin="binlog_info",
    donor_binlog=None, bytes=123456789, duration_seconds=42.5, completed_at="2024-05-01T10:00Z",
)
DIVERGED = Summary(
    read_at=NOW - 5, last_pass=NOW - 3600, pass_started=NOW - 3700, checked=12, diverged=1,
    first_diverged=(ChunkRow("app", "items", 3, 999, 1, 1000, 2),),
)
REPLICA_VIEW = MetricsView(
    now=NOW, state=LoopState(started_at=NOW - 60, loop_tick_at=NOW, observation=REPLICA_OBS,
                             last_answer_at=NOW, setup_done=True, setup_message="ok"),
    ready=Verdict(True, "ready"), role="replica", is_primary=False, server_id=101,
    flavor="mariadb", heartbeat_written_at=None, clone=CLONE, clone_failures=2,
    consistency=DIVERGED,
)
PRIMARY_VIEW = replace(
    REPLICA_VIEW, role="primary", is_primary=True, server_id=100, clone=None,
    heartbeat_written_at=NOW - 0.4, lease_held=True,
    consistency=replace(DIVERGED, diverged=0, first_diverged=()),
    state=replace(REPLICA_VIEW.state, observation=replace(
        REPLICA_OBS, server_id=100, read_only=False, replica=None, heartbeat_ts=None)),
)


def render(view: MetricsView) -> tuple[dict[str, float], Metrics, str]:
    registry = CollectorRegistry()
    metrics = Metrics(registry, lambda: view)
    text = generate_latest(registry).decode()
    return samples(text), metrics, text


def samples(text: str) -> dict[str, float]:
    out: dict[str, float] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            labels = ",".join(f'{k}="{v}"' for k, v in sorted(sample.labels.items()))
            out[f"{sample.name}{{{labels}}}" if labels else sample.name] = sample.value
    return out


def test_replica_metrics() -> None:
    got, _, _ = render(REPLICA_VIEW)
    assert got["mysqlsts_up"] == 1 and got["mysqlsts_ready"] == 1
    assert got["mysqlsts_replication_lag_seconds"] == 2.5
    assert got["mysqlsts_replication_seconds_behind_source"] == 0
    assert got["mysqlsts_replication_io_running"] == 1
    assert got["mysqlsts_replication_sql_running"] == 1
    assert got["mysqlsts_replication_last_errno"] == 0
    assert got['mysqlsts_info{flavor="mariadb",role="replica",server_id="101",'
               'version="10.11.6-MariaDB-0+deb12u1"}'] == 1
    assert got["mysqlsts_clone_bytes_total"] == 123456789
    assert got["mysqlsts_clone_duration_seconds"] == 42.5
    assert got["mysqlsts_clone_failures_total"] == 2
    for result in ("ok", "failed", "refused"):
        assert got[f'mysqlsts_clone_streams_served_total{{result="{result}"}}'] == 0
    for encoding in ("zstd", "raw"):
        assert got[f'mysqlsts_clone_chunks_served_total{{encoding="{encoding}"}}'] == 0
    assert got["mysqlsts_scrape_errors_total"] == 0
    assert "mysqlsts_heartbeat_last_write_timestamp_seconds" not in got


def test_null_seconds_behind_is_absent_never_zero() -> None:
    stopped = parse_replica_status({**MARIADB_ROW, "Slave_SQL_Running": "No",
                                    "Seconds_Behind_Master": None, "Last_SQL_Errno": 1062,
                                    "Last_SQL_Error": "dup"})
    view = replace(REPLICA_VIEW, ready=Verdict(False, "stopped"), state=replace(
        REPLICA_VIEW.state, observation=replace(REPLICA_OBS, replica=stopped)))
    got, _, _ = render(view)
    assert "mysqlsts_replication_seconds_behind_source" not in got
    assert got["mysqlsts_replication_sql_running"] == 0
    assert got["mysqlsts_replication_last_errno"] == 1062
    assert got["mysqlsts_ready"] == 0


def test_down_server_is_up_0_with_no_replication_guesses() -> None:
    down = Observation(taken_at=NOW, up=False, error="(2003) refused")
    view = replace(REPLICA_VIEW, ready=Verdict(False, "down"),
                   state=replace(REPLICA_VIEW.state, observation=down))
    got, metrics, _ = render(view)
    assert got["mysqlsts_up"] == 0 and got["mysqlsts_ready"] == 0
    assert not [name for name in got if name.startswith("mysqlsts_replication_")]
    # Until the server tells, info carries the pod's identity and the configured flavor.
    assert 'mysqlsts_info{flavor="mariadb",role="replica",server_id="101",version=""}' in got


def test_counters_count() -> None:
    registry = CollectorRegistry()
    metrics = Metrics(registry, lambda: REPLICA_VIEW)
    metrics.scrape_errors.inc()
    metrics.stream_served("refused", ChunkCounts())
    metrics.stream_served("refused", ChunkCounts())
    metrics.stream_served("ok", ChunkCounts(compressed=5, incompressible=2, behind=3))
    metrics.stream_served("failed", ChunkCounts(uncompressed=4))
    got = samples(generate_latest(registry).decode())
    assert got["mysqlsts_scrape_errors_total"] == 1
    assert got['mysqlsts_clone_streams_served_total{result="refused"}'] == 2
    assert got['mysqlsts_clone_streams_served_total{result="ok"}'] == 1
    assert got['mysqlsts_clone_streams_served_total{result="failed"}'] == 1
    assert got['mysqlsts_clone_chunks_served_total{encoding="zstd"}'] == 5
    assert got['mysqlsts_clone_chunks_served_total{encoding="raw"}'] == 9


def test_consistency_metrics_once_the_checksum_table_was_read() -> None:
    got, _, _ = render(REPLICA_VIEW)
    assert got["mysqlsts_consistency_diverged_chunks"] == 1
    assert got["mysqlsts_consistency_checked_chunks"] == 12
    assert got["mysqlsts_consistency_last_pass_timestamp_seconds"] == NOW - 3600
    assert render(PRIMARY_VIEW)[0]["mysqlsts_consistency_diverged_chunks"] == 0
    unread, _, _ = render(replace(REPLICA_VIEW, consistency=None))
    assert not [name for name in unread if name.startswith("mysqlsts_consistency_")]
    # Read, but no pass has completed here: counts, and no timestamp.
    never = Summary(read_at=NOW, last_pass=None, pass_started=None, checked=0, diverged=0)
    before, _, _ = render(replace(REPLICA_VIEW, consistency=never))
    assert before["mysqlsts_consistency_diverged_chunks"] == 0
    assert "mysqlsts_consistency_last_pass_timestamp_seconds" not in before


def test_primary_metrics() -> None:
    got, _, _ = render(PRIMARY_VIEW)
    assert got["mysqlsts_heartbeat_last_write_timestamp_seconds"] == NOW - 0.4
    assert not [name for name in got if name.startswith("mysqlsts_replication_")]
    assert "mysqlsts_clone_duration_seconds" not in got  # never cloned
    assert got["mysqlsts_clone_bytes_total"] == 0


CLONE_STEP = "## While a clone runs"


def _documented(section: str = "## Metrics") -> dict[str, set[str]]:
    """The metric table under `section` (up to the next heading)."""
    text = DOC.read_text().split(section + "\n", 1)[1].split("\n## ", 1)[0]
    rows = re.findall(r"^\| `(mysqlsts_[a-z_]+)` \| (\w+) \|([^|]*)\|", text, re.M)
    return {name: set(re.findall(r"`(\w+)`", labels.split("=")[0]))
            for name, _, labels in rows}


def test_every_documented_metric_is_exported_with_its_labels_and_nothing_else() -> None:
    # PRIMARY_VIEW holds a primary lease: the opt-in metric is exported too.
    documented = _documented() | _documented("## With a primary lease")
    assert len(documented) >= 14
    exported: dict[str, set[str]] = {}
    for view in (REPLICA_VIEW, PRIMARY_VIEW):
        _, _, text = render(view)
        for family in text_string_to_metric_families(text):
            for sample in family.samples:
                if sample.name.endswith("_created"):
                    continue
                exported.setdefault(sample.name, set()).update(sample.labels)
    assert exported == documented


def test_the_clone_step_exports_its_documented_metrics_and_follows_the_clone() -> None:
    from mysqlsts.clone.progress import ClonePhase, CloneProgress, ProgressCollector

    progress = CloneProgress(failures=2)
    registry = CollectorRegistry()
    registry.register(ProgressCollector(progress))

    def scrape() -> dict[tuple[str, str], float]:
        text = generate_latest(registry).decode()
        return {(s.name, s.labels.get("phase", "")): s.value
                for f in text_string_to_metric_families(text) for s in f.samples}

    exported: dict[str, set[str]] = {}
    for family in text_string_to_metric_families(generate_latest(registry).decode()):
        for sample in family.samples:
            exported.setdefault(sample.name, set()).update(sample.labels)
    assert exported == _documented(CLONE_STEP)

    first = scrape()
    assert first[("mysqlsts_clone_phase", "waiting_for_donor")] == 1
    assert first[("mysqlsts_clone_failures_total", "")] == 2
    progress.donor_attempts, progress.phase, progress.bytes = 3, ClonePhase.STREAMING, 4096
    later = scrape()
    assert later[("mysqlsts_clone_bytes_total", "")] == 4096
    assert later[("mysqlsts_clone_donor_attempts_total", "")] == 3
    assert later[("mysqlsts_clone_phase", "streaming")] == 1
    assert sum(v for (name, _), v in later.items() if name == "mysqlsts_clone_phase") == 1
    # A point-in-time recovery's apply (a restore step): its transactions and replay rate.
    from mysqlsts.core.replay_rate import ReplayRate
    assert later[("mysqlsts_recovery_transactions", "")] == 0
    replay = ReplayRate(total=300)
    replay.update(0, 10.0)
    replay.update(120, 12.0)
    progress.replayed(replay)
    replaying = scrape()
    assert replaying[("mysqlsts_recovery_transactions", "")] == 300
    assert replaying[("mysqlsts_recovery_transactions_applied", "")] == 120
    assert replaying[("mysqlsts_recovery_replay_rate", "")] == 60.0


def test_the_lease_gauge_only_with_a_lease_and_only_on_the_primary() -> None:
    assert render(PRIMARY_VIEW)[0]["mysqlsts_primary_lease_held"] == 1
    assert render(replace(PRIMARY_VIEW, lease_held=False))[0]["mysqlsts_primary_lease_held"] == 0
    assert "mysqlsts_primary_lease_held" not in render(replace(PRIMARY_VIEW, lease_held=None))[0]
    assert "mysqlsts_primary_lease_held" not in render(replace(REPLICA_VIEW, lease_held=True))[0]


def test_the_archive_metrics_only_with_an_archiver_and_as_documented() -> None:
    from mysqlsts.archive.archiver import ArchiveState

    state = ArchiveState(segments=3, transactions=40, gaps=1, store_failures=2,
                         last_commit=int(NOW) - 1)
    values, _, text = render(replace(REPLICA_VIEW, archive=state, archive_held=True))
    assert values["mysqlsts_archive_lease_held"] == 1
    assert values["mysqlsts_archive_segments_total"] == 3
    assert values["mysqlsts_archive_transactions_total"] == 40
    assert values["mysqlsts_archive_gaps_total"] == 1
    assert values["mysqlsts_archive_store_failures_total"] == 2
    assert values["mysqlsts_archive_last_commit_timestamp_seconds"] == int(NOW) - 1
    exported = {sample.name for family in text_string_to_metric_families(text)
                for sample in family.samples if sample.name.startswith("mysqlsts_archive")}
    assert exported == set(_documented("## With an archive"))
    assert not any(name.startswith("mysqlsts_archive") for name in render(REPLICA_VIEW)[0])
    assert "mysqlsts_archive_last_commit_timestamp_seconds" not in render(
        replace(REPLICA_VIEW, archive=ArchiveState(), archive_held=True))[0]
    # A pod whose archiver waits (or lost the lease) exports its counters, not a newest
    # commit that would only grow old.
    waiting, _, _ = render(replace(REPLICA_VIEW, archive=state, archive_held=False))
    assert waiting["mysqlsts_archive_lease_held"] == 0
    assert waiting["mysqlsts_archive_segments_total"] == 3
    assert "mysqlsts_archive_last_commit_timestamp_seconds" not in waiting


def test_the_backup_metrics_only_with_a_catalog_and_as_documented() -> None:
    from mysqlsts.core.backup_metrics import BackupFigures
    from mysqlsts.sidecar.backup_catalog import CatalogState

    section = set(_documented("## Backups in the archive's store"))
    assert len(section) == 14
    # Before the first good read: only the read counters, both results at 0.
    values, _, _ = render(replace(REPLICA_VIEW, backups=CatalogState(reads_failed=3)))
    assert {name for name in values if name.startswith("mysqlsts_backup")} == {
        'mysqlsts_backup_catalog_reads_total{result="ok"}',
        'mysqlsts_backup_catalog_reads_total{result="failed"}'}
    assert values['mysqlsts_backup_catalog_reads_total{result="failed"}'] == 3
    figures = BackupFigures(count=4, damaged=1, last_end=NOW - 600, last_size=12345,
                            last_verification=NOW - 3600, last_verification_ok=False,
                            recoverable_from=NOW - 86400, recoverable_to=NOW - 600,
                            last_duration=50.0, last_parts=3, last_throughput=246.9,
                            store_bytes={"base_backups": 40000, "binlog_segments": 0})
    state = CatalogState(figures, NOW - 30, reads_ok=7, reads_failed=3)
    values, _, text = render(replace(REPLICA_VIEW, backups=state))
    assert values["mysqlsts_backup_count"] == 4
    assert values["mysqlsts_backup_damaged_count"] == 1
    assert values["mysqlsts_backup_last_end_timestamp_seconds"] == NOW - 600
    assert values["mysqlsts_backup_last_size_bytes"] == 12345
    assert values["mysqlsts_backup_last_verification_timestamp_seconds"] == NOW - 3600
    assert values["mysqlsts_backup_last_verification_ok"] == 0
    assert values["mysqlsts_backup_recoverable_from_timestamp_seconds"] == NOW - 86400
    assert values["mysqlsts_backup_recoverable_to_timestamp_seconds"] == NOW - 600
    assert values["mysqlsts_backup_catalog_read_timestamp_seconds"] == NOW - 30
    assert values["mysqlsts_backup_last_duration_seconds"] == 50.0
    assert values["mysqlsts_backup_last_parts"] == 3
    assert values["mysqlsts_backup_last_throughput_bytes_per_second"] == 246.9
    assert values['mysqlsts_store_bytes{kind="base_backups"}'] == 40000
    assert values['mysqlsts_store_bytes{kind="binlog_segments"}'] == 0
    families = {family.name: family for family in text_string_to_metric_families(text)}
    reads = {sample.labels["result"]: sample.value
             for sample in families["mysqlsts_backup_catalog_reads"].samples
             if sample.name.endswith("_total")}
    assert reads == {"ok": 7, "failed": 3}
    exported = {sample.name for family in families.values() for sample in family.samples
                if sample.name.startswith(("mysqlsts_backup", "mysqlsts_store")) and not
                sample.name.endswith("_created")}
    assert exported == section
    # A store with no backup and no drill: counts, no times, never a 0 time.
    empty = BackupFigures(0, 0, None, None, None, None, None, None)
    values = render(replace(REPLICA_VIEW, backups=CatalogState(empty, NOW, 1, 0)))[0]
    assert values["mysqlsts_backup_count"] == 0
    assert "mysqlsts_backup_last_end_timestamp_seconds" not in values
    assert "mysqlsts_backup_last_verification_ok" not in values
    assert "mysqlsts_backup_last_duration_seconds" not in values
    assert "mysqlsts_backup_last_throughput_bytes_per_second" not in values
    assert not any(name.startswith(("mysqlsts_backup", "mysqlsts_store"))
                   for name in render(REPLICA_VIEW)[0])


def test_the_binlog_metrics_only_on_a_purging_primary_and_as_documented() -> None:
    from mysqlsts.core.binlog_purge import Backlog

    section = set(_documented("## The primary's binary logs, with an archive"))
    values, _, _ = render(replace(PRIMARY_VIEW, binlog=Backlog(5000, 1200, "")))
    assert values["mysqlsts_binlog_bytes"] == 5000
    assert values["mysqlsts_binlog_unarchived_bytes"] == 1200
    assert values["mysqlsts_binlog_purge_blocked"] == 0
    assert {name for name in values if name.startswith("mysqlsts_binlog")} == section
    blocked = Backlog(5000, 1200, "the archive is not contiguous (a gap)")
    assert render(replace(PRIMARY_VIEW, binlog=blocked))[0]["mysqlsts_binlog_purge_blocked"] == 1
    # Before the purger's first round, and never on a replica.
    assert not any(name.startswith("mysqlsts_binlog") for name in render(PRIMARY_VIEW)[0])
    assert not any(name.startswith("mysqlsts_binlog")
                   for name in render(replace(REPLICA_VIEW, binlog=Backlog(1, 1, "")))[0])
