"""The archiver writes the index's checkpoints as it archives a real primary's binary log
(encrypted archive, the checkpoint threshold lowered to 5 records): each after the records it
holds, a failed write tried again later while archiving goes on, a restarted archiver resumes
through the newest one without a gap or a duplicate, and the archive read through it replays
to equal tables."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import pytest

from mysqlsts.core import binlog_checkpoint as bc
from mysqlsts.core.backup_layout import BINLOG_CHECKPOINTS
from mysqlsts.core.backup_parts import BackupKeys
from mysqlsts.core.binlog_index import breaks, parse_record
from mysqlsts.store.archive_checkpoints import checkpoint_names
from mysqlsts.store.base import StoreError, read_all
from mysqlsts.store.binlog_archive import index_names, load_index, load_records
from mysqlsts.store.filestore import FileStore
from tests.countingstore import CountingStore
from tests.integration.archive_helpers import (
    archiver_for,
    make_app_table,
    replay,
    running,
    wait_archived,
    write_rows,
)
from tests.servers import MakeServer
from tests.unit.test_index_checkpoint import chain_held

pytestmark = pytest.mark.integration

KEYS = BackupKeys.from_secret(b"c" * 32)


class FirstCheckpointFails(CountingStore):
    """A store whose first checkpoint write fails (a 503), and which counts GETs."""

    def __init__(self, store: FileStore) -> None:
        super().__init__(store)
        self.failed = 0

    def put_new(self, name: str, data: bytes) -> None:
        if name.startswith(BINLOG_CHECKPOINTS) and not self.failed:
            self.failed += 1
            raise StoreError(f"store {self.describe()}: 503 Slow Down (injected)")
        super().put_new(name, data)


def _batches(primary_sql: Callable[[], str], write: Callable[[int], None],
             wait: Callable[[str], object], first: int, count: int) -> None:
    """`count` batches of rows, each archived (so in a segment of its own) before the next."""
    for n in range(first, first + count):
        write(n)
        wait(primary_sql())


def test_the_archiver_writes_checkpoints_and_resumes_through_them(
        mariadb: MakeServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(bc, "CHECKPOINT_RECORDS", 5)
    primary = mariadb("p", server_id=100)
    restored = mariadb("r", server_id=200)
    (tmp_path / "store").mkdir()
    inner = FileStore(tmp_path / "store")
    store = FirstCheckpointFails(inner)

    def position() -> str:
        return str(primary.value("SELECT @@gtid_binlog_pos"))

    def batch(n: int) -> None:
        write_rows(primary, n * 100, 3)

    def wait(gtid: str) -> object:
        return wait_archived(inner, KEYS, gtid)

    archiver, stop = archiver_for(primary, store, KEYS)
    with running(archiver, stop):
        time.sleep(0.5)
        make_app_table(primary)
        _batches(position, batch, wait, 1, 12)
    assert store.failed == 1  # the first checkpoint's write failed; archiving went on
    segments = archiver.state.segments
    assert segments >= 12
    names = checkpoint_names(inner)
    assert names, "no checkpoint written"
    every = [parse_record(n, read_all(inner, n), KEYS.seal_key) for n in index_names(inner)]
    held = chain_held(inner, KEYS)
    assert held <= {r.index_name for r in every}  # only records that exist
    assert len(every) - len(held) < 2 * 5  # a threshold left out, and one written meanwhile
    assert load_records(inner, KEYS) == every

    # A restarted archiver resumes through the newest checkpoint: few GETs, no gap, no twice.
    store.gets.clear()
    archiver, stop = archiver_for(primary, store, KEYS)
    with running(archiver, stop):
        deadline = time.monotonic() + 20
        while not archiver.position and time.monotonic() < deadline:
            time.sleep(0.05)  # resume() sets the position once it has read the index
        resumed_gets = len(store.gets)
        _batches(position, batch, wait, 13, 6)
    assert 1 <= resumed_gets <= 10, resumed_gets  # the checkpoint, and those after it
    assert archiver.state.duplicates == 0
    index = load_index(inner, KEYS)
    assert breaks(index.records) == []
    assert index.records == [parse_record(n, read_all(inner, n), KEYS.seal_key)
                             for n in index_names(inner)]
    assert len(checkpoint_names(inner)) > len(names)
    replay(index.records, inner, KEYS, restored, tmp_path / "replay")
    assert restored.checksum("app.t") == primary.checksum("app.t")
