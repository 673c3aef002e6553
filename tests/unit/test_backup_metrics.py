"""The figures the archiving sidecar exports from its store's backups: read from a real file://
store (manifests, a damaged one, a running backup, drills' verdicts), and the worker that reads
them every few minutes, keeping the last good figures when a read fails."""

from __future__ import annotations

import threading
from datetime import timedelta
from pathlib import Path

from test_backup_list import START, write_backup

from mysqlsts.core.backup_layout import manifest_name
from mysqlsts.core.backup_metrics import StoreContents, backup_figures
from mysqlsts.core.backup_verify import FAILED, OK, record_name
from mysqlsts.errors import MysqlstsError
from mysqlsts.sidecar.backup_catalog import BackupCatalogWorker
from mysqlsts.store.catalog import read_catalog, read_contents
from mysqlsts.store.filestore import FileStore

DAY1_END = (START + timedelta(minutes=2)).timestamp()
DAY2_END = (START + timedelta(days=1, minutes=2)).timestamp()


def test_an_empty_store_has_counts_and_no_times(tmp_path: Path) -> None:
    figures = backup_figures(read_catalog(FileStore(tmp_path)))
    assert (figures.count, figures.damaged) == (0, 0)
    assert figures.last_end is None and figures.last_size is None
    assert figures.last_verification is None and figures.last_verification_ok is None
    assert figures.recoverable_from is None and figures.recoverable_to is None


def test_figures_from_manifests_and_verdicts(tmp_path: Path) -> None:
    store = FileStore(tmp_path)
    older = write_backup(store, START, "aaaaaa", "0-100-10")
    newer = write_backup(store, START + timedelta(days=1), "bbbbbb", "0-100-20")
    write_backup(store, START + timedelta(days=2), "cccccc", "", manifest=False)  # running
    edited = write_backup(store, START + timedelta(days=3), "dddddd", "0-100-30")
    path = tmp_path / manifest_name(edited)
    path.write_text(path.read_text().replace("0-100-30", "0-100-31"))
    # The older backup's drill passed on day 2; the newer one's failed on day 3.
    store.put_new(record_name(older, START + timedelta(days=1, hours=1), OK), b"{}")
    figures = backup_figures(read_catalog(store))
    assert (figures.count, figures.damaged) == (2, 1)
    assert figures.last_end == DAY2_END  # the damaged and the running one are not backups
    assert figures.last_size == len(f"data of {newer}")
    assert figures.recoverable_from == DAY1_END and figures.recoverable_to == DAY2_END
    assert figures.last_verification == (START + timedelta(days=1, hours=1)).timestamp()
    assert figures.last_verification_ok is True

    failed_at = START + timedelta(days=3)
    store.put_new(record_name(newer, failed_at, FAILED), b"{}")
    figures = backup_figures(read_catalog(store))
    assert figures.last_verification == failed_at.timestamp()
    assert figures.last_verification_ok is False
    # A drill of the older backup passing later is the newest verdict again.
    store.put_new(record_name(older, failed_at + timedelta(seconds=1), OK), b"{}")
    assert backup_figures(read_catalog(store)).last_verification_ok is True


def test_the_newest_runs_figures_and_the_bytes_by_kind(tmp_path: Path) -> None:
    """Duration, parts and throughput from the newest manifest (write_backup's runs take 2
    minutes); bytes by kind from the listings: every object under backups/ (a running
    backup's part and a drill's verdict too), the archive's segments, not its index."""
    store = FileStore(tmp_path)
    empty = read_contents(store)
    figures = backup_figures(empty.catalog, empty.bytes_by_kind)
    assert figures.store_bytes == {"base_backups": 0, "binlog_segments": 0}
    assert (figures.last_duration, figures.last_parts, figures.last_throughput) == (
        None, None, None)

    older = write_backup(store, START, "aaaaaa", "0-100-10")
    newer = write_backup(store, START + timedelta(days=1), "bbbbbb", "0-100-20")
    write_backup(store, START + timedelta(days=2), "cccccc", "", manifest=False)
    store.put_new(record_name(older, START + timedelta(hours=1), OK), b"{}")
    store.put_new("binlog/segments/0-100/000001", b"s" * 1000)
    store.put_new("binlog/segments/0-100/000002", b"s" * 500)
    store.put_new("binlog/index/0000001.json", b"i" * 77)
    contents = read_contents(store)
    figures = backup_figures(contents.catalog, contents.bytes_by_kind)
    assert figures.last_duration == 120.0
    assert figures.last_parts == 1
    assert figures.last_throughput == len(f"data of {newer}") / 120.0
    under_backups = sum(path.stat().st_size for path in (tmp_path / "backups").rglob("*")
                        if path.is_file())
    assert figures.store_bytes == {"base_backups": under_backups, "binlog_segments": 1500}
    assert under_backups > 3 * len(f"data of {newer}")  # parts, manifests and the verdict
    assert contents.catalog == read_catalog(store)


def test_of_two_drills_in_one_second_the_failed_one_counts(tmp_path: Path) -> None:
    store = FileStore(tmp_path)
    one = write_backup(store, START, "aaaaaa", "0-100-10")
    two = write_backup(store, START + timedelta(hours=1), "bbbbbb", "0-100-20")
    at = START + timedelta(hours=2)
    store.put_new(record_name(one, at, OK), b"{}")
    store.put_new(record_name(two, at, FAILED), b"{}")
    assert backup_figures(read_catalog(store)).last_verification_ok is False


def test_the_worker_counts_reads_and_keeps_the_last_good_figures(tmp_path: Path) -> None:
    store = FileStore(tmp_path)
    write_backup(store, START, "aaaaaa", "0-100-10")
    broken = {"now": False}

    def read() -> StoreContents:
        if broken["now"]:
            raise MysqlstsError("store unreachable")
        return read_contents(store)

    walls = iter([1000.0, 2000.0, 3000.0])
    worker = BackupCatalogWorker(read, threading.Event(), every=300.0, wall=lambda: next(walls))
    assert worker.state.figures is None and worker.state.read_at is None
    assert worker.round() == 300.0
    first = worker.state
    assert (first.reads_ok, first.reads_failed, first.read_at) == (1, 0, 1000.0)
    assert first.figures is not None and first.figures.count == 1

    broken["now"] = True
    assert worker.round() == 300.0
    assert worker.round() == 300.0
    kept = worker.state
    assert (kept.reads_ok, kept.reads_failed) == (1, 2)
    assert kept.figures == first.figures and kept.read_at == 1000.0

    broken["now"] = False
    write_backup(store, START + timedelta(days=1), "bbbbbb", "0-100-20")
    worker.round()
    assert worker.state.figures is not None and worker.state.figures.count == 2
    assert (worker.state.reads_ok, worker.state.reads_failed, worker.state.read_at) == (
        2, 2, 2000.0)


def test_the_window_reaches_the_archives_last_commit_as_backup_list_says(
        tmp_path: Path) -> None:
    """With the archive's index the window's end is the last archived commit reachable from a
    backup (what `backup list --json` reports, from the same function), not the backup's end;
    an index that cannot be read fails the read (the last good figures stay)."""
    from test_pitr_plan import make_segment, record_of, transaction

    from mysqlsts.core.backup_catalog import catalog_json, recoverable

    store = FileStore(tmp_path)
    write_backup(store, START, "aaaaaa", "0-100-10")
    base = int(START.timestamp()) + 600
    records = [record_of(make_segment([transaction(seq, base + seq) for seq in (11, 12, 13)])),
               record_of(make_segment([transaction(seq, base + seq) for seq in (14, 15)]))]
    contents = read_contents(store, records=lambda: records)
    figures = backup_figures(contents.catalog, contents.bytes_by_kind, contents.recoverable)
    assert figures.recoverable_from == DAY1_END
    assert figures.recoverable_to == base + 15
    assert contents.recoverable == recoverable(read_catalog(store), records)
    assert catalog_json(contents.catalog, contents.recoverable)["recoverable"]["continuous"]
    # Without the index: the backups' own points; with a segment lost after the backup's,
    # the window ends at the backup.
    assert backup_figures(read_catalog(store)).recoverable_to == DAY1_END
    lost = read_contents(store, records=lambda: records[1:])
    assert backup_figures(lost.catalog, {}, lost.recoverable).recoverable_to == DAY1_END

    def unreadable() -> list:  # type: ignore[type-arg]
        raise MysqlstsError("index record damaged")

    try:
        read_contents(store, records=unreadable)
        raise AssertionError("an unreadable index was read")
    except MysqlstsError as error:
        assert "damaged" in str(error)
