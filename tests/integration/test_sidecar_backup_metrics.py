"""The backups of the archive's store as the archiving sidecar exports them, on real servers:
a real backup taken from the set's primary through the clone stream into a file:// store, a
real restore drill of it (`backup verify`), then the sidecar of the pod whose archiver holds
the archive lease reads the store and its /metrics show them; the other pod exports none of it."""

from __future__ import annotations

import json
import time
from datetime import datetime
from pathlib import Path

import pytest
from test_backup_take import backup_cli, backup_to_directory
from test_clone import BACKUP_GRANTS, BACKUP_PASSWORD, BACKUP_USER, TOKEN, Donor

from mysqlsts.options import ArchiveWorkerOptions
from mysqlsts.sidecar.app import SidecarApp
from mysqlsts.store.binlog_archive import load_records
from mysqlsts.store.catalog import read_catalog
from mysqlsts.store.filestore import FileStore
from tests.integration.sidecar_servers import Harness, http_get, wait_for

pytestmark = pytest.mark.integration


def _ready(app: SidecarApp) -> bool:
    return http_get(app.http_port, "/readyz")[0] == 200


def _scrape(app: SidecarApp) -> dict[str, float]:
    return {line.split()[0]: float(line.split()[1])
            for line in http_get(app.http_port, "/metrics")[1].splitlines()
            if line.startswith("mysqlsts_") and not line.startswith("#")}


def _unix(text: str) -> float:
    return datetime.fromisoformat(text).timestamp()


def test_the_archiving_sidecar_exports_the_stores_backups(harness: Harness,
                                                          tmp_path: Path) -> None:
    secrets_dir = tmp_path / "backup-secrets"
    secrets_dir.mkdir()
    (secrets_dir / "clone-token").write_text(TOKEN + "\n")
    primary = harness.server("p", 100)
    replica = harness.server("r", 101, replica=True)
    p_app = harness.sidecar(harness.settings(0, primary, primary))
    wait_for("primary ready", lambda: _ready(p_app), 20)
    # The set's backup account exists (bootstrap); the Donor helper logs in with its password.
    primary.sql(f"ALTER USER {BACKUP_USER}@'%' IDENTIFIED BY '{BACKUP_PASSWORD}'",
                f"GRANT {BACKUP_GRANTS} ON *.* TO {BACKUP_USER}@'%'",
                "CREATE DATABASE app", "CREATE TABLE app.t (id INT PRIMARY KEY)",
                "INSERT INTO app.t VALUES (1), (2), (3)")
    donor = Donor(primary, harness.ports(), secrets_dir)
    try:
        url, backup = backup_to_directory(tmp_path / "store", donor.port, secrets_dir)
    finally:
        donor.stop()
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    drill = backup_cli("verify", "--store", url, "--scratch-dir", str(scratch))
    assert drill.returncode == 0, drill.stderr
    [manifest] = read_catalog(FileStore(tmp_path / "store")).backups
    [verdict_file] = (tmp_path / "store" / "backups" / backup).glob("verify-*-ok.json")
    verdict = json.loads(verdict_file.read_text())

    archive = ArchiveWorkerOptions(archive_store=url)
    r_app = harness.sidecar(harness.settings(1, replica, primary, archive=archive))
    assert r_app.backups is not None
    wait_for("the store's backups read",
             lambda: "mysqlsts_backup_count" in _scrape(r_app), 30)
    values = _scrape(r_app)
    assert values["mysqlsts_backup_count"] == 1
    assert values["mysqlsts_backup_damaged_count"] == 0
    assert values["mysqlsts_backup_last_end_timestamp_seconds"] == _unix(manifest.end_time)
    assert values["mysqlsts_backup_last_size_bytes"] == manifest.size > 0
    assert values["mysqlsts_backup_last_verification_timestamp_seconds"] == _unix(
        verdict["started"])
    assert values["mysqlsts_backup_last_verification_ok"] == 1
    assert values["mysqlsts_backup_recoverable_from_timestamp_seconds"] == _unix(
        manifest.end_time)
    # The window's end: the backup's, or already the last archived commit after it.
    assert values["mysqlsts_backup_recoverable_to_timestamp_seconds"] >= _unix(
        manifest.end_time)
    assert values['mysqlsts_backup_catalog_reads_total{result="ok"}'] >= 1
    assert values['mysqlsts_backup_catalog_reads_total{result="failed"}'] == 0
    assert abs(values["mysqlsts_backup_catalog_read_timestamp_seconds"] - time.time()) < 60
    duration = _unix(manifest.end_time) - _unix(manifest.start_time)
    assert duration > 0
    assert values["mysqlsts_backup_last_duration_seconds"] == pytest.approx(duration)
    assert values["mysqlsts_backup_last_parts"] == len(manifest.parts) >= 1
    assert values["mysqlsts_backup_last_throughput_bytes_per_second"] == pytest.approx(
        manifest.size / duration)
    under_backups = sum(path.stat().st_size for path in
                        (tmp_path / "store" / "backups").rglob("*") if path.is_file())
    assert values['mysqlsts_store_bytes{kind="base_backups"}'] == under_backups > manifest.size
    assert values['mysqlsts_store_bytes{kind="binlog_segments"}'] >= 0  # the archive's, growing
    assert not any(name.startswith("mysqlsts_backup") for name in _scrape(p_app))
    # The archiver (this pod's) archives the primary's heartbeats: the window's end moves past
    # the backup to the commit time of the last archived transaction, as `backup list` says.
    wait_for("the window reaching into the archive", lambda: r_app.backups.round() > 0 and  # type: ignore[union-attr]
             _scrape(r_app)["mysqlsts_backup_recoverable_to_timestamp_seconds"]
             > _unix(manifest.end_time) + 1, 30)
    to = _scrape(r_app)["mysqlsts_backup_recoverable_to_timestamp_seconds"]
    commits = {_unix(r.last_commit) for r in load_records(FileStore(tmp_path / "store"), None)}
    assert to in commits and to <= time.time() + 1
    harness.stop_sidecar(r_app)
    assert not r_app.backups.thread.is_alive()
