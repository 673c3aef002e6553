"""The sidecar's opt-in binlog archiver on real servers: every pod runs one, the replica's holds
the archive lease and archives with the set's replication account while the primary's waits,
and it stops (and gives the lease up) with the sidecar."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from mysqlsts.core.backup_layout import BINLOG_LOCK
from mysqlsts.core.binlog_index import breaks
from mysqlsts.errors import ConfigError, MysqlstsError
from mysqlsts.options import ArchiveWorkerOptions
from mysqlsts.sidecar.app import SidecarApp
from mysqlsts.store.binlog_archive import index_names
from mysqlsts.store.filestore import FileStore
from mysqlsts.store.lease_objects import ObjectLeaseStore
from tests.integration.archive_helpers import make_app_table, wait_archived, write_rows
from tests.integration.sidecar_servers import Harness, http_get, wait_for

pytestmark = pytest.mark.integration


def _binlog_metrics(app: SidecarApp) -> dict[str, float]:
    metrics = http_get(app.http_port, "/metrics")[1]
    return {line.split()[0]: float(line.split()[1]) for line in metrics.splitlines()
            if line.startswith("mysqlsts_binlog_")}


def _ready(app: SidecarApp) -> bool:
    return http_get(app.http_port, "/readyz")[0] == 200


def test_the_replicas_archiver_archives_the_primarys_binlog_the_primarys_waits(
        harness: Harness, tmp_path: Path) -> None:
    (tmp_path / "store").mkdir()
    store = FileStore(tmp_path / "store")
    archive = ArchiveWorkerOptions(archive_store=f"file://{tmp_path / 'store'}",
                                   archive_binlog_keep_hours=0)
    primary = harness.server("p", 100)
    replica = harness.server("r", 101, replica=True)
    p_app = harness.sidecar(harness.settings(0, primary, primary, archive=archive))
    wait_for("primary ready", lambda: _ready(p_app), 20)
    r_app = harness.sidecar(harness.settings(1, replica, primary, archive=archive))
    wait_for("replica ready", lambda: _ready(r_app), 30)
    assert p_app.archive is not None and r_app.archive is not None
    make_app_table(primary)
    write_rows(primary, 1, 20)
    records = wait_archived(store, None, primary.value("SELECT @@gtid_binlog_pos"))
    assert breaks(records) == []
    dumps = primary.sql("SELECT user FROM information_schema.processlist "
                        "WHERE command LIKE 'Binlog Dump%'")
    assert sorted(row["user"] for row in dumps) == ["repl", "repl"]  # the replica and archiver
    metrics = http_get(r_app.http_port, "/metrics")[1]
    values = {line.split()[0]: float(line.split()[1]) for line in metrics.splitlines()
              if line.startswith("mysqlsts_archive_")}
    assert values["mysqlsts_archive_segments_total"] >= 1
    assert values["mysqlsts_archive_transactions_total"] >= 21
    assert values["mysqlsts_archive_gaps_total"] == 0
    assert abs(values["mysqlsts_archive_last_commit_timestamp_seconds"] - time.time()) < 30
    assert values["mysqlsts_archive_lease_held"] == 1
    waiting = {line.split()[0]: float(line.split()[1]) for line in
               http_get(p_app.http_port, "/metrics")[1].splitlines()
               if line.startswith("mysqlsts_archive_")}
    assert waiting["mysqlsts_archive_lease_held"] == 0
    assert waiting["mysqlsts_archive_segments_total"] == 0
    assert "mysqlsts_archive_last_commit_timestamp_seconds" not in waiting
    # The primary's sidecar purges what is archived, and only the primary's.
    assert p_app.purge is not None and r_app.purge is None
    first = primary.sql("SHOW BINARY LOGS")[0]["Log_name"]
    primary.sql("FLUSH BINARY LOGS")
    write_rows(primary, 21, 5)
    wait_archived(store, None, primary.value("SELECT @@gtid_binlog_pos"))
    wait_for("archived binary logs purged", lambda: p_app.purge.purge_once() is not None and
             primary.sql("SHOW BINARY LOGS")[0]["Log_name"] != first, 20)  # type: ignore[union-attr]
    # The primary's sidecar exports its binary logs' bytes; a record lost from the index
    # blocks the purge, and the gauge says so.
    binlog = _binlog_metrics(p_app)
    assert binlog["mysqlsts_binlog_purge_blocked"] == 0
    assert 0 < binlog["mysqlsts_binlog_unarchived_bytes"] <= binlog["mysqlsts_binlog_bytes"]
    assert not any(name.startswith("mysqlsts_binlog") for name in _binlog_metrics(r_app))
    primary.sql("FLUSH BINARY LOGS")
    write_rows(primary, 26, 5)
    wait_archived(store, None, primary.value("SELECT @@gtid_binlog_pos"))
    wait_for("three segments archived", lambda: len(list(index_names(store))) >= 3, 20)
    lost = sorted(index_names(store))[1]  # one between two others: a gap
    store.delete(lost)
    with pytest.raises(MysqlstsError, match="not contiguous"):
        p_app.purge.purge_once()  # type: ignore[union-attr]
    assert _binlog_metrics(p_app)["mysqlsts_binlog_purge_blocked"] == 1
    harness.stop_sidecar(r_app)
    assert not r_app.archive.thread.is_alive()
    assert r_app.archive.archiver is not None
    assert r_app.archive.archiver.state.transactions >= 26
    # Its stop gave the lease up (the next replica's archiver takes a free one at once).
    record, _ = ObjectLeaseStore(store, BINLOG_LOCK).read(1)
    assert record is not None and record.holder == ""


def test_a_bad_archive_store_fails_the_sidecars_start(harness: Harness) -> None:
    primary = harness.server("p", 100)
    with pytest.raises(ConfigError, match="store URL"):
        SidecarApp(harness.settings(0, primary, primary, archive=ArchiveWorkerOptions(
            archive_store="ftp://nowhere")))
