"""Purging the primary's binary logs past a gap in the archive, on real MariaDB: the gap stops
every purge until a base backup (taken through the real CLI into the same store) stands after
it; then the files before the backup's position and the archived ones after it go, and those
holding unarchived transactions stay."""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path

import pytest
from test_backup_take import backup_cli
from test_binlog_purge import _files, _purge_until, archive_three_files
from test_clone import Donor
from test_segment_prune import backed_up_primary

from mysqlsts.core.binlog_index import SegmentRecord
from mysqlsts.sidecar.purge import BinlogPurger, store_bases
from mysqlsts.store.binlog_archive import IndexCache
from mysqlsts.store.filestore import FileStore
from tests.integration.archive_helpers import archiver_for, running, wait_archived, write_rows
from tests.servers import MakeServer, Server

pytestmark = pytest.mark.integration


def take_base(primary: Server, port: int, secrets: Path, store: Path) -> None:
    """A base backup of `primary` into the file:// store at `store`, through the real CLI."""
    donor = Donor(primary, port, secrets)
    try:
        done = backup_cli("--store", f"file://{store}", "--donor", f"127.0.0.1:{donor.port}",
                          "--clone-token-file", str(secrets / "clone-token"))
        assert done.returncode == 0, done.stderr
    finally:
        donor.stop()


def test_a_base_backup_after_a_gap_lets_the_purge_go_on(
        mariadb: MakeServer, free_port: Callable[[], int], tmp_path: Path) -> None:
    primary, secrets = backed_up_primary(mariadb, tmp_path)
    store = FileStore(tmp_path / "store")
    store.delete(archive_three_files(primary, store)[1])  # a record lost: a gap in the archive
    purger = BinlogPurger(IndexCache(store, None), primary.connect, threading.Event(), keep=0,
                          bases=store_bases(store, lambda key_id: None))
    before = _files(primary)
    with pytest.raises(Exception, match="not contiguous .* no base backup stands after it"):
        purger.purge_once()
    assert _files(primary) == before

    take_base(primary, free_port(), secrets, tmp_path / "store")
    # Rows after the backup, not archived (the archiver is stopped): their file stays.
    write_rows(primary, 100, 5)
    primary.sql("FLUSH BINARY LOGS")
    write_rows(primary, 200, 5)
    unarchived = [f for f in _files(primary) if f not in before]
    _purge_until(purger, primary, before[-2])
    # Every file before the backup's position went (the gap's among them); the one holding
    # the first unarchived rows (the newest at the backup) and those after it stay.
    assert _files(primary) == [before[-1], *unarchived]
    assert purger.purged_to == before[-1]
    assert purger.purge_once() is None  # nothing more may go, and no error: a base stands
    assert _files(primary) == [before[-1], *unarchived]


def test_a_base_between_two_gaps_lets_the_files_up_to_the_later_one_go(
        mariadb: MakeServer, free_port: Callable[[], int], tmp_path: Path) -> None:
    primary, secrets = backed_up_primary(mariadb, tmp_path)
    store = FileStore(tmp_path / "store")
    store.delete(archive_three_files(primary, store)[1])  # the first gap
    take_base(primary, free_port(), secrets, tmp_path / "store")  # after it
    # Three more files of archived rows: each file's new index records, by file.
    archiver, stop = archiver_for(primary, store, start="oldest")
    later: list[tuple[str, list[SegmentRecord]]] = []
    with running(archiver, stop):
        for n in range(3):
            known = {r.index_name for r in IndexCache(store, None).records()}
            write_rows(primary, 100 + 10 * n, 10)
            records = wait_archived(store, None, primary.value("SELECT @@gtid_binlog_pos"))
            later.append((_files(primary)[-1],
                          [r for r in records if r.index_name not in known]))
            primary.sql("FLUSH BINARY LOGS")
    holding_gap, lost = later[1]
    for record in lost:  # the later gap: the middle file's transactions
        store.delete(record.index_name)
    missing = (f"seq {lost[0].domains[0].first_seq}..{lost[-1].domains[0].last_seq} "
               "missing")
    files = _files(primary)
    stay = files[files.index(holding_gap):]
    purger = BinlogPurger(IndexCache(store, None), primary.connect, threading.Event(), keep=0,
                          bases=store_bases(store, lambda key_id: None))
    _purge_until(purger, primary, files[files.index(holding_gap) - 1])
    # Every file before the one holding the later gap went (the first gap's, those before
    # the base's position, and the archived one after it); that one and those after stay.
    assert _files(primary) == stay
    assert purger.backlog is not None and missing in purger.backlog.blocked
    # Every file left counts: the first holds the later gap (the server may still add its
    # binlog checkpoint event to the newest, so the figures are compared with each other).
    assert purger.backlog.unarchived == purger.backlog.total > 0
    with pytest.raises(Exception, match=f"not contiguous .*{missing}.* no base backup stands"):
        purger.purge_once()
    assert _files(primary) == stay
