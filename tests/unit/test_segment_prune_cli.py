"""`mysqlsts backup prune` over a file:// store holding backups and a binlog archive: the
segments before the oldest kept backup and the orphans an hour past go, record first; the
newest segment, an orphan past it and everything under --dry-run stay."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from click.testing import CliRunner

from mysqlsts.cli import cli
from mysqlsts.core.backup_layout import BINLOG_SEGMENTS
from mysqlsts.store.binlog_archive import (
    load_records,
    remove_segment,
    seal_segment,
    segment_names,
    write_segment,
)
from mysqlsts.store.filestore import FileStore
from tests.unit.test_backup_list import write_backup
from tests.unit.test_pitr_plan import make_segment, transaction


def _orphan(seq: int) -> str:
    return f"{BINLOG_SEGMENTS}{0:010d}-{seq:020d}-{100:010d}-{'cd' * 8}"


def test_prune_deletes_the_segments_the_kept_backups_no_longer_need(tmp_path: Path) -> None:
    store = FileStore(tmp_path)
    now = datetime.now(UTC).replace(microsecond=0)
    first = int((now - timedelta(days=11)).timestamp())
    transactions = [transaction(seq, first + seq * 3600) for seq in range(1, 21)]
    for low in range(0, 20, 5):  # 1..5, 6..10, 11..15, 16..20
        write_segment(store, *seal_segment(make_segment(transactions[low:low + 5]), None), None)
    for age, suffix, seq in [(10, "aaaaaa", 5), (9, "bbbbbb", 12), (1, "cccccc", 18)]:
        write_backup(store, now - timedelta(days=age), suffix, f"0-100-{seq}")
    store.put_new(_orphan(7), b"cut short")  # inside 6..10, committed days ago
    store.put_new(_orphan(21), b"in flight")  # past the newest record: a write in flight
    args = ["backup", "prune", "--store", f"file://{tmp_path}", "--retain-window", "7d",
            "--retain-min", "1"]
    objects = sorted(info.name for info in store.list())
    runner = CliRunner()
    dry = runner.invoke(cli, [*args, "--dry-run"])
    assert dry.exit_code == 0, dry.output
    assert "would delete 2 archive segments, 0-100-1 .. 0-100-10" in dry.output
    assert sorted(info.name for info in store.list()) == objects

    done = runner.invoke(cli, args)
    assert done.exit_code == 0, done.output
    assert "segments_deleted=2 segments_kept=2 orphans_deleted=1" in done.output
    records = load_records(store, None)
    assert [r.domains[0].first for r in records] == ["0-100-11", "0-100-16"]
    assert sorted(segment_names(store)) == sorted([*(r.segment for r in records),
                                                   _orphan(21)])


class Recording(FileStore):
    def __init__(self, root: Path) -> None:
        super().__init__(root)
        self.deleted: list[str] = []

    def delete(self, name: str) -> None:
        self.deleted.append(name)
        super().delete(name)


def test_a_segment_goes_record_first(tmp_path: Path) -> None:
    store = Recording(tmp_path)
    record, stored = seal_segment(make_segment([transaction(1, 1000)]), None)
    write_segment(store, record, stored, None)
    remove_segment(store, record)
    assert store.deleted == [record.index_name, record.segment]
    assert list(store.list()) == []
