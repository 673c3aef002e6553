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

from mysqlsts.sidecar.purge import BinlogPurger, store_bases
from mysqlsts.store.binlog_archive import IndexCache
from mysqlsts.store.filestore import FileStore
from tests.integration.archive_helpers import (
    write_rows,
)
from tests.servers import MakeServer

pytestmark = pytest.mark.integration


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

    donor = Donor(primary, free_port(), secrets)
    try:
        done = backup_cli("--store", f"file://{tmp_path / 'store'}", "--donor",
                          f"127.0.0.1:{donor.port}", "--clone-token-file",
                          str(secrets / "clone-token"))
        assert done.returncode == 0, done.stderr
    finally:
        donor.stop()
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
