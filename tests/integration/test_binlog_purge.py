"""Nothing purged unarchived, on real MariaDB: the primary's purger removes the binary logs
whose transactions are all in the archive, keeps the others, and purges nothing while the
archive has a gap; what it measures for the metrics (the binary logs' bytes, those not archived
yet, what blocks the purge) follows the archiver stopping and catching up."""

from __future__ import annotations

import contextlib
import threading
import time
from pathlib import Path

from mysqlsts.adapters.binlog_files import binlog_files
from mysqlsts.sidecar.purge import BinlogPurger
from mysqlsts.store.base import read_all
from mysqlsts.store.binlog_archive import IndexCache, index_names
from mysqlsts.store.filestore import FileStore
from tests.integration.archive_helpers import (
    archiver_for,
    make_app_table,
    running,
    wait_archived,
    write_rows,
)
from tests.servers import MakeServer, Server


def _files(primary: Server) -> list[str]:
    with contextlib.closing(primary.connect()) as conn:
        return [f.name for f in binlog_files(conn)]


def _sizes(primary: Server) -> dict[str, int]:
    return {str(row["Log_name"]): int(row["File_size"])
            for row in primary.sql("SHOW BINARY LOGS")}


def _purge_until(purger: BinlogPurger, primary: Server, gone: str) -> None:
    """Purge until `gone` has left (InnoDB's binlog checkpoint may hold a file a moment)."""
    deadline = time.monotonic() + 15
    while gone in _files(primary):
        purger.purge_once()
        assert time.monotonic() < deadline, _files(primary)
        time.sleep(0.2)


class Bases:
    """The store's base backups as the purger reads them (none here), counting the reads."""

    def __init__(self) -> None:
        self.reads = 0

    def __call__(self) -> list[str]:
        self.reads += 1
        return []


def test_only_archived_binary_logs_are_purged(mariadb: MakeServer, tmp_path: Path) -> None:
    primary = mariadb("p", server_id=100)
    make_app_table(primary)
    (tmp_path / "store").mkdir()
    store = FileStore(tmp_path / "store")
    # From the first transaction: an archive that began later would (rightly) purge nothing.
    archiver, stop = archiver_for(primary, store, start="oldest")
    purger = BinlogPurger(IndexCache(store, None), primary.connect, threading.Event(), keep=0)
    with running(archiver, stop):
        for n in range(3):  # three files of archived rows
            write_rows(primary, n * 10 + 1, 10)
            primary.sql("FLUSH BINARY LOGS")
        wait_archived(store, None, primary.value("SELECT @@gtid_binlog_pos"))
    # The archiver is stopped: these rows, and the files they are in, are not archived.
    archived_files = _files(primary)
    write_rows(primary, 100, 5)
    primary.sql("FLUSH BINARY LOGS")
    write_rows(primary, 200, 5)
    primary.sql("FLUSH BINARY LOGS")
    before = _files(primary)
    newest_archived = archived_files[-1]  # it began after the last archived transaction
    _purge_until(purger, primary, archived_files[-2])
    after = _files(primary)
    # Every file before the one holding the first unarchived row went; that one and those
    # after it stayed.
    assert after == before[before.index(newest_archived):], (before, after)
    assert purger.purge_once() is None  # nothing more may go
    assert _files(primary) == after


def archive_three_files(primary: Server, store: FileStore) -> list[str]:
    """Three binary log files of rows, archived from the first transaction (an archive that
    began later would, rightly, purge nothing): the index records' names."""
    make_app_table(primary)
    store.root.mkdir()
    archiver, stop = archiver_for(primary, store, start="oldest")
    with running(archiver, stop):
        for n in range(3):
            write_rows(primary, n * 10 + 1, 10)
            wait_archived(store, None, primary.value("SELECT @@gtid_binlog_pos"))
            primary.sql("FLUSH BINARY LOGS")
    names = list(index_names(store))
    assert len(names) >= 3
    return names


def test_a_gap_in_the_archive_stops_every_purge(mariadb: MakeServer, tmp_path: Path) -> None:
    primary = mariadb("p", server_id=100)
    store = FileStore(tmp_path / "store")
    names = archive_three_files(primary, store)
    lost = names[1]  # a segment's record lost in the store: a gap in the archive
    kept = read_all(store, lost)
    store.delete(lost)
    bases = Bases()
    purger = BinlogPurger(IndexCache(store, None), primary.connect, threading.Event(), keep=0,
                          bases=bases)
    before = _files(primary)
    try:
        purger.purge_once()
        raise AssertionError("purged over a gap")
    except Exception as error:  # noqa: BLE001 (the message is what is checked)
        assert "not contiguous" in str(error), error
    assert _files(primary) == before
    assert bases.reads == 1  # a base backup past the gap could let files go: read, once
    assert purger.backlog is not None and "not contiguous" in purger.backlog.blocked
    assert purger.backlog.total == sum(_sizes(primary).values())
    store.put_new(lost, kept)
    fresh = BinlogPurger(IndexCache(store, None), primary.connect, threading.Event(), keep=0,
                         bases=bases)
    _purge_until(fresh, primary, before[0])
    assert fresh.backlog is not None and fresh.backlog.blocked == ""
    assert bases.reads == 1  # the archive alone purges: the store's backups are not read


def test_an_archive_that_began_after_the_oldest_binlog_purges_nothing(
        mariadb: MakeServer, tmp_path: Path) -> None:
    """An archive added to a running primary starts at its position then: the older files
    hold transactions (here the table's creation) that only the binary log has."""
    primary = mariadb("p", server_id=100)
    make_app_table(primary)
    primary.sql("FLUSH BINARY LOGS")
    (tmp_path / "store").mkdir()
    store = FileStore(tmp_path / "store")
    archiver, stop = archiver_for(primary, store, start="current")
    with running(archiver, stop):
        for n in range(3):
            write_rows(primary, n * 10 + 1, 10)
            primary.sql("FLUSH BINARY LOGS")
        wait_archived(store, None, primary.value("SELECT @@gtid_binlog_pos"))
    before = _files(primary)
    bases = Bases()
    purger = BinlogPurger(IndexCache(store, None), primary.connect, threading.Event(), keep=0,
                          bases=bases)
    assert purger.purge_once() is None
    assert _files(primary) == before
    assert purger.backlog is not None and "begins after" in purger.backlog.blocked
    assert bases.reads == 1  # a base backup past the archive's start could let them go


def test_unarchived_bytes_rise_while_the_archiver_stops_and_fall_once_it_catches_up(
        mariadb: MakeServer, tmp_path: Path) -> None:
    primary = mariadb("p", server_id=100)
    make_app_table(primary)
    (tmp_path / "store").mkdir()
    store = FileStore(tmp_path / "store")
    purger = BinlogPurger(IndexCache(store, None), primary.connect, threading.Event(), keep=0)
    archiver, stop = archiver_for(primary, store, start="oldest")
    with running(archiver, stop):
        write_rows(primary, 1, 10)
        wait_archived(store, None, primary.value("SELECT @@gtid_binlog_pos"))
    purger.purge_once()
    caught_up = purger.backlog
    assert caught_up is not None and caught_up.blocked == ""
    sizes = _sizes(primary)
    newest = list(sizes)[-1]
    # All archived: only the newest file (the server writes it) counts.
    assert (caught_up.total, caught_up.unarchived) == (sum(sizes.values()), sizes[newest])
    # The archiver stopped: every file from the one holding the first unarchived row counts.
    for n in range(3):
        write_rows(primary, 100 + n * 50, 50)
        primary.sql("FLUSH BINARY LOGS")
    assert purger.purge_once() is None
    behind = purger.backlog
    sizes = _sizes(primary)
    names = list(sizes)
    unarchived = sum(sizes[name] for name in names[names.index(newest):])
    assert behind is not None and behind.blocked == ""  # waiting, not blocked
    assert (behind.total, behind.unarchived) == (sum(sizes.values()), unarchived)
    assert behind.unarchived > caught_up.unarchived + 3 * 50 * len("row 100")
    # It catches up; the purge takes the archived files, and both figures fall.
    archiver, stop = archiver_for(primary, store, start="oldest")
    with running(archiver, stop):
        wait_archived(store, None, primary.value("SELECT @@gtid_binlog_pos"))
    _purge_until(purger, primary, names[-2])
    after = purger.backlog
    sizes = _sizes(primary)
    assert after is not None and after.unarchived == sizes[list(sizes)[-1]]
    assert after.unarchived < behind.unarchived and after.total < behind.total
    assert after.total == sum(sizes.values())
